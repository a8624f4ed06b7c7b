"""What Overview and Evaluate show about people's work: agreement, progress, success rates, counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from agentlearn import verdicts
from agentlearn.feedback.index import mask_of, task_map, trajectory_index
from agentlearn.feedback.labels import label_index
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Label, Resolution, Task, Trajectory


@dataclass
class Agreement:
    """Cohen's kappa with how many items it rests on (kappa is None when undefined)."""

    kappa: float | None
    n: int
    agree: float | None  # raw fraction of agreement
    reason: str = ""  # why kappa is undefined, in words (empty when it is defined)

    def text(self) -> str:
        """κ to two decimals, or the reason it is undefined."""
        return self.reason if self.kappa is None else f"{self.kappa:.2f}"


def agreement_of(a: list[str], b: list[str], nothing: str = "nothing to compare yet") -> Agreement:
    """Cohen's kappa of two aligned verdict lists; `nothing` says in words what is missing when they are empty."""
    if not a:
        return Agreement(None, 0, None, f"κ undefined: {nothing}")
    x, y = np.asarray(a) == "success", np.asarray(b) == "success"
    agree = float(np.mean(x == y))
    if len(set(a) | set(b)) < 2:
        # One class only: chance agreement is already 100%, so kappa divides by zero.
        return Agreement(None, len(a), agree, f"κ undefined: everyone gave the same verdict ({a[0]})")
    # Cohen's kappa of two verdicts (what sklearn's cohen_kappa_score gives; importing it cost Overview a second).
    chance = x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean())
    return Agreement(float((agree - chance) / (1 - chance)), len(a), agree)


def kappa_human_verifier(ws: Workspace, suite: str = "") -> Agreement:
    """Agreement between the people's verdict and the automatic verifier on labeled trajectories."""
    return ws.kept(("kappa_human_verifier", suite), (Trajectory, Task, Label), lambda: _kappa_human_verifier(ws, suite))


def _kappa_human_verifier(ws: Workspace, suite: str = "") -> Agreement:
    idx = trajectory_index(ws)
    judge = verdicts.judge(ws)  # its verdicts are kept from one label to the next
    human, machine = [], []
    for tid in label_index(ws).latest:
        n = idx.position.get(tid)
        if n is None or idx.verifier[n] < 0 or (suite and idx.suite[n] != suite):
            continue
        human.append(judge.people_said(tid))
        machine.append("success" if idx.verifier[n] == 1 else "fail")
    return agreement_of(human, machine, "no labeled run has a verifier verdict yet")


def kappa_between_people(ws: Workspace, suite: str = "") -> Agreement:
    """Agreement between pairs of people on trajectories both labeled (pooled over all pairs)."""
    return ws.kept(("kappa_between_people", suite), (Trajectory, Task, Label), lambda: _kappa_between_people(ws, suite))


def _kappa_between_people(ws: Workspace, suite: str = "") -> Agreement:
    idx = trajectory_index(ws)
    a, b = [], []
    for tid, by in label_index(ws).latest.items():
        n = idx.position.get(tid)
        if len(by) < 2 or (suite and (n is None or idx.suite[n] != suite)):
            continue
        people = sorted(by)
        for i, p in enumerate(people):
            for q in people[i + 1:]:
                a.append(by[p].verdict)
                b.append(by[q].verdict)
    return agreement_of(a, b, "no run has labels from two people yet")


def progress_by_suite(ws: Workspace) -> pd.DataFrame:
    """Per suite: trajectories, how many are labeled, the share, and the verifier's success rate."""
    return ws.kept("progress_by_suite", (Trajectory, Task, Label), lambda: _progress_by_suite(ws)).copy()


def _progress_by_suite(ws: Workspace) -> pd.DataFrame:
    idx = trajectory_index(ws)
    labeled = mask_of(idx, label_index(ws).latest.keys())
    df = pd.DataFrame({"suite": idx.suite, "labeled": labeled, "verified": idx.verifier >= 0,
                       "success": idx.verifier == 1})
    if df.empty:
        return pd.DataFrame(columns=["suite", "trajectories", "labeled", "labeled %", "verifier success %"])
    g = df.groupby("suite")
    out = pd.DataFrame({"trajectories": g.size(), "labeled": g["labeled"].sum()})
    out["labeled %"] = (100 * out["labeled"] / out["trajectories"]).round(1)
    out["verifier success %"] = (100 * g["success"].sum() / g["verified"].sum().clip(lower=1)).round(1)
    return out.reset_index()


def progress_by_annotator(ws: Workspace) -> pd.DataFrame:
    """Per annotator: trajectories labeled, labels written, share judged success, last label time."""
    return ws.kept("progress_by_annotator", (Trajectory, Task, Label), lambda: _progress_by_annotator(ws)).copy()


def _progress_by_annotator(ws: Workspace) -> pd.DataFrame:
    rows = []
    latest = label_index(ws).latest
    per: dict[str, list[Label]] = {}
    for by in latest.values():
        for name, label in by.items():
            per.setdefault(name, []).append(label)
    total = len(trajectory_index(ws))
    for name, labels in sorted(per.items()):
        rows.append({"annotator": name, "trajectories labeled": len(labels),
                     "% of store": round(100 * len(labels) / max(total, 1), 1),
                     "success %": round(100 * sum(lb.verdict == "success" for lb in labels) / len(labels), 1),
                     "last label": max(lb.created for lb in labels).strftime("%Y-%m-%d %H:%M")})
    return pd.DataFrame(rows, columns=["annotator", "trajectories labeled", "% of store", "success %", "last label"])


# Bucket widths for success over time: (pandas frequency, seconds, words, plotly tick format).
BUCKETS = (("1min", 60, "minute", "%H:%M"), ("5min", 300, "5 minutes", "%H:%M"),
           ("15min", 900, "15 minutes", "%H:%M"), ("h", 3600, "hour", "%b %d %H:%M"),
           ("6h", 21600, "6 hours", "%b %d %H:%M"), ("D", 86400, "day", "%b %d"),
           ("W", 604800, "week", "%b %d"), ("MS", 2629746, "month", "%b %Y"))
MAX_BUCKETS = 24


def time_bucket(span_seconds: float) -> tuple[str, float, str, str]:
    """The narrowest bucket that cuts a time span into at most MAX_BUCKETS periods."""
    return next((b for b in BUCKETS if span_seconds / b[1] <= MAX_BUCKETS), BUCKETS[-1])


def success_over_time(ws: Workspace, freq: str | None = None, suite: str = "") -> pd.DataFrame:
    """Verifier success rate per period and learning method (columns: period, method, runs, success %), of
    one suite's runs when `suite` is given.

    Without `freq` the bucket is chosen from the runs' time span (time_bucket); `attrs` says which:
    "bucket" (words), "seconds" and "tickformat".
    """
    return ws.kept(("success_over_time", freq, suite), (Trajectory, Task), lambda: _success_over_time(ws, freq, suite)).copy()


def _success_over_time(ws: Workspace, freq: str | None = None, suite: str = "") -> pd.DataFrame:
    idx = trajectory_index(ws)
    ok = (idx.verifier >= 0) & ((idx.suite == suite) if suite else True)
    if not ok.any():
        return pd.DataFrame(columns=["period", "method", "runs", "success %"])
    created = idx.created[ok]
    bucket = (next((b for b in BUCKETS if b[0] == freq), (freq, 86400.0, freq, "%b %d")) if freq
              else time_bucket(float(created.max() - created.min())))
    df = pd.DataFrame({"created": pd.to_datetime(created, unit="s"), "method": idx.method[ok],
                       "success": idx.verifier[ok] == 1})
    if bucket[0] in ("W", "MS"):
        df["period"] = df["created"].dt.to_period(bucket[0][0]).dt.start_time
    else:
        df["period"] = df["created"].dt.floor(bucket[0])
    g = df.groupby(["period", "method"])["success"]
    out = pd.DataFrame({"runs": g.size(), "success %": (100 * g.mean()).round(1)}).reset_index()
    out.attrs.update(bucket=bucket[2], seconds=bucket[1], tickformat=bucket[3])
    return out


def success_by_method(ws: Workspace, suite: str = "") -> pd.DataFrame:
    """Per learning method: the verifier's success rate, and the learning verdict on runs people judged
    (of one suite's runs when `suite` is given).

    "human success %" is verdicts' rule (a resolution first, then people's labels) over the runs that
    people labeled or a reviewer resolved.
    """
    return ws.kept(("success_by_method", suite), (Trajectory, Task, Label, Resolution), lambda: _success_by_method(ws, suite)).copy()


def _success_by_method(ws: Workspace, suite: str = "") -> pd.DataFrame:
    idx = trajectory_index(ws)
    judge = verdicts.judge(ws)
    human = np.full(len(idx), -1, np.int8)
    for tid in judge.judged():  # people's verdict: the run itself need not be read
        n = idx.position.get(tid)
        if n is not None:
            human[n] = int(bool(judge.people_succeeded(tid)))
    df = pd.DataFrame({"method": idx.method, "verifier": idx.verifier, "human": human})
    if suite:
        df = df[idx.suite == suite]
    rows = []
    for method, part in df.groupby("method"):
        v, h = part["verifier"], part["human"]
        rows.append({"method": method or "(none)", "runs": len(part),
                     "verifier success %": round(100 * (v == 1).sum() / max((v >= 0).sum(), 1), 1),
                     "labeled": int((h >= 0).sum()),
                     "human success %": round(100 * (h == 1).sum() / (h >= 0).sum(), 1) if (h >= 0).any() else None})
    return pd.DataFrame(rows, columns=["method", "runs", "verifier success %", "labeled", "human success %"])


def eval_table(ws: Workspace, suite: str = "", limit: int | None = None) -> pd.DataFrame:
    """Stored evaluation runs, newest first, as a table."""
    runs = [r for r in ws.repo.all(EvalRun) if not suite or r.suite == suite][::-1]
    if limit is not None:
        runs = runs[:limit]
    rows = [{"when": r.created.strftime("%Y-%m-%d %H:%M"), "suite": r.suite, "split": r.split,
             "method": r.method, "exemplar mode": r.exemplar_mode, "k": r.k, "adapter": r.adapter or "(base)",
             "n": r.n, "name accuracy": round(r.name_accuracy, 3), "call accuracy": round(r.call_accuracy, 3),
             "seconds": round(r.seconds, 1), "id": r.id} for r in runs]
    return pd.DataFrame(rows, columns=["when", "suite", "split", "method", "exemplar mode", "k", "adapter", "n",
                                       "name accuracy", "call accuracy", "seconds", "id"])


def counts(ws: Workspace) -> dict[str, int]:
    """Headline counts for the overview."""
    from storage.records import Insight, InsightProposal, Preference

    idx = trajectory_index(ws)
    labels = label_index(ws)
    labeled = ws.caches.get("labeled runs", (idx.version, labels.version),  # 100k lookups: 0.1 s a visit
                            lambda: sum(1 for t in labels.latest if t in idx.position))
    return {"trajectories": len(idx), "labeled": labeled, "labels": labels.count, "preferences": ws.repo.count(Preference),
            "insights": sum(1 for i in ws.repo.all(Insight) if i.status == "active"),
            "pending proposals": len(ws.repo.find(InsightProposal, status="pending")),
            "tasks": len(task_map(ws))}


def text_diff(old: str, new: str) -> str:
    """A line diff from old to new ('-' removed, '+' added, '?' marks the changed characters)."""
    import difflib

    if old == new:
        return "  " + old if old else "(no text)"
    if not old.strip():
        return "\n".join("+ " + line for line in new.splitlines())
    if not new.strip():
        return "\n".join("- " + line for line in old.splitlines())
    return "\n".join(difflib.ndiff(old.splitlines(), new.splitlines()))
