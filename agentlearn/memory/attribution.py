"""Attribution: did showing a bullet (or an exemplar) go with more successes?

For each bullet and each exemplar: the runs that were shown it, against the runs of the same tasks that
were not (so a bullet shown only on hard tasks is compared on those hard tasks), with the difference of
success rates, its 95% interval (Newcombe, from Wilson intervals) and both n. Every split and source
counts here: this is a report, not an input to the prompt (the counters, which order the prompt, use
train runs only). The comparison is observational: a controlled measure of one bullet is the A/B
evaluation (`eval --method insights --ablate ID`).

A bullet is flagged when the evidence is clearly against it: the difference's interval lies below 0,
or people and the verifier found it harmful at least FLAG_HARMFUL times and more often than helpful.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from agentlearn import stats, verdicts
from agentlearn.workspace import Workspace
from storage.records import Exemplar, Insight, Reflection, Trajectory

FLAG_HARMFUL = 3


@dataclass
class Effect:
    shown: int
    shown_ok: int
    unshown: int  # runs of the same tasks without it
    unshown_ok: int

    @property
    def rate_shown(self) -> float | None:
        return self.shown_ok / self.shown if self.shown else None

    @property
    def rate_unshown(self) -> float | None:
        return self.unshown_ok / self.unshown if self.unshown else None

    @property
    def difference(self) -> float | None:
        if not self.shown or not self.unshown:
            return None
        return self.rate_shown - self.rate_unshown

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.difference is None:
            return None
        return stats.newcombe_difference(self.shown_ok, self.shown, self.unshown_ok, self.unshown)


def _effects(runs: Iterable[Trajectory], judge: verdicts.Judge,
             ids_of: Callable[[Trajectory], list[str]]) -> dict[str, Effect]:
    judged = [(t, ok) for t in runs if (ok := judge.succeeded(t)) is not None]
    by_task: dict[str, list[tuple[Trajectory, bool]]] = defaultdict(list)
    shown_tasks: dict[str, set[str]] = defaultdict(set)
    for t, ok in judged:
        by_task[t.task_id].append((t, ok))
        for item in ids_of(t):
            shown_tasks[item].add(t.task_id)
    out = {}
    for item, tasks in shown_tasks.items():
        e = Effect(0, 0, 0, 0)
        for task_id in tasks:
            for t, ok in by_task[task_id]:
                if item in ids_of(t):
                    e.shown, e.shown_ok = e.shown + 1, e.shown_ok + ok
                else:
                    e.unshown, e.unshown_ok = e.unshown + 1, e.unshown_ok + ok
        out[item] = e
    return out


def _row(e: Effect | None) -> dict:
    e = e or Effect(0, 0, 0, 0)
    lo_hi = e.interval
    return {"shown": e.shown, "success_shown": e.rate_shown, "not_shown": e.unshown,
            "success_not_shown": e.rate_unshown, "difference": e.difference,
            "low": lo_hi[0] if lo_hi else None, "high": lo_hi[1] if lo_hi else None}


def flag_reason(row: dict) -> str:
    """Why a bullet looks harmful, in words ("" when it does not)."""
    if row.get("high") is not None and row["high"] < 0:
        return (f"runs shown it succeed less ({row['success_shown']:.0%} of {row['shown']}) than runs of the same "
                f"tasks without it ({row['success_not_shown']:.0%} of {row['not_shown']}); the difference's "
                f"interval is below 0")
    harmful, helpful = row.get("harmful", 0), row.get("helpful", 0)
    if harmful >= FLAG_HARMFUL and harmful > helpful:
        return f"counted harmful {harmful} times and helpful {helpful} times"
    return ""


def bullets(ws: Workspace, suite: str) -> pd.DataFrame:
    """One row per bullet of the suite (active first): counters, attributed effect, and a flag."""
    effects = _effects(ws.repo.find(Trajectory, suite=suite), verdicts.judge(ws), lambda t: t.memory.insight_ids)
    rows = []
    for b in ws.repo.find(Insight, suite=suite):
        row = {"id": b.id, "status": b.status, "section": b.section, "text": b.text, "importance": b.importance,
               "helpful": b.helpful, "harmful": b.harmful, "neutral": b.neutral, **_row(effects.get(b.id))}
        row["flag"] = flag_reason(row) if b.status == "active" else ""
        rows.append(row)
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["_flagged"] = frame["flag"].ne("")
    frame = frame.sort_values(["status", "_flagged", "difference"], ascending=[True, False, True], na_position="last")
    return frame.drop(columns="_flagged").reset_index(drop=True)  # active first, flagged first, worst first


_COLUMNS = ["id", "status", "section", "text", "importance", "helpful", "harmful", "neutral", "shown",
            "success_shown", "not_shown", "success_not_shown", "difference", "low", "high", "flag"]


def exemplars(ws: Workspace, suite: str) -> pd.DataFrame:
    """One row per exemplar of the suite that runs were shown: its attributed effect."""
    effects = _effects(ws.repo.find(Trajectory, suite=suite), verdicts.judge(ws), lambda t: t.memory.exemplar_ids)
    rows = []
    for ex in ws.repo.find(Exemplar, suite=suite):
        row = {"id": ex.id, "kind": ex.kind, "tool": ex.tool, "active": ex.active, **_row(effects.get(ex.id))}
        row["flag"] = flag_reason(row) if ex.active else ""
        rows.append(row)
    columns = ["id", "kind", "tool", "active", "shown", "success_shown", "not_shown", "success_not_shown",
               "difference", "low", "high", "flag"]
    return pd.DataFrame(rows, columns=columns)


def reflections(ws: Workspace, suite: str) -> pd.DataFrame:
    """One row per Reflexion plan of the suite: the trial it followed, and whether the next trial succeeded."""
    judge = verdicts.judge(ws)
    runs = ws.repo.find(Trajectory, suite=suite)
    by_episode: dict[tuple[str, int], Trajectory] = {(t.episode_id, t.trial): t for t in runs if t.episode_id}
    task_ids = {t.task_id for t in runs}
    rows = []
    for r in ws.repo.all(Reflection):
        if r.task_id not in task_ids:
            continue
        nxt = by_episode.get((r.episode_id, r.trial + 1))
        ok = judge.succeeded(nxt) if nxt is not None else None
        rows.append({"id": r.id, "task_id": r.task_id, "trial": r.trial, "text": r.text,
                     "next_trial": "" if nxt is None else ("success" if ok else "fail" if ok is False else "not judged")})
    return pd.DataFrame(rows, columns=["id", "task_id", "trial", "text", "next_trial"])


def reflection_summary(table: pd.DataFrame) -> str:
    """The reflections' record in one line."""
    followed = table[table["next_trial"] != ""]
    if followed.empty:
        return "no reflection has been followed by another trial yet (run with Reflexion, 3 trials)"
    ok = int((followed["next_trial"] == "success").sum())
    lo, hi = stats.wilson(ok, len(followed))
    return (f"the trial after a reflection succeeded {ok} of {len(followed)} times ({ok / len(followed):.0%}, "
            f"95% CI {lo:.0%}-{hi:.0%})")
