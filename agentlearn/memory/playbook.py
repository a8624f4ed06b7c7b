"""The playbook: insights as itemised bullets in sections, with ACE-style outcome counters.

After a train run, every bullet it was shown gets one count from the run's outcome (verdicts' rule:
a reviewer's resolution, then people, then the verifier), without a model call:
- helpful: the run succeeded;
- harmful: the run failed in what the bullet's section is about (a tool-choice bullet and the wrong
  tool; an arguments bullet and a wrong argument; a format bullet and no parsable call), or failed at
  all for a domain-rules bullet;
- neutral: the run failed for a reason the bullet does not speak to.
Only train runs count: the counters order the bullets in the prompt, and letting heldout outcomes
order them would leak the evaluation into what is evaluated. People label later than runs are made,
so `recount` recomputes every counter from the runs with today's verdicts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from agentlearn import verdicts
from agentlearn.prompts import CHARS_PER_TOKEN
from agentlearn.workspace import Workspace
from storage.records import Insight, InsightChange, Trajectory

SECTIONS = ("tool choice", "arguments", "format", "domain rules")
_SECTION_WORDS = (
    ("format", r"\b(format|json|tool_call|<tool_call>|parse|syntax|quote|bracket)"),
    ("arguments", r"\b(argument|arguments|parameter|value|values|field|identifier|id)\b"),
    ("tool choice", r"\b(tool|call|calls|calling|function|instead of)\b"),
)


def section_for(text: str) -> str:
    """The section a bullet written without one belongs to, from its words."""
    low = text.lower()
    for section, pattern in _SECTION_WORDS:
        if re.search(pattern, low):
            return section
    return "domain rules"


def check_section(section: str) -> str:
    section = (section or "").strip().lower()
    if section not in SECTIONS:
        raise ValueError(f"unknown playbook section {section!r}; choose one of {', '.join(SECTIONS)}")
    return section


def failure_kind(trajectory: Trajectory) -> str:
    """What went wrong in a failed run: "format", "tool choice", "arguments", or "judged" (people said so)."""
    if trajectory.tool_call is None:
        return "format"
    v = trajectory.verdict
    if v is None:
        return "judged"
    if v.scores.get("name_match", 0.0) < 1.0:
        return "tool choice"
    if v.success:  # the verifier was satisfied but people (or a reviewer) said it failed
        return "judged"
    return "arguments"


def outcome(bullet_section: str, succeeded: bool, kind: str) -> str:
    """helpful | harmful | neutral for one bullet and one run (see the module docstring)."""
    if succeeded:
        return "helpful"
    if bullet_section == "domain rules" or kind == "judged" or kind == bullet_section:
        return "harmful"
    return "neutral"


def _counts(trajectories: Iterable[Trajectory], judge: verdicts.Judge) -> dict[str, dict[str, list[str]]]:
    """insight id -> outcome -> trajectory ids, for the judged train runs that were shown the insight."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for t in trajectories:
        if t.split != "train" or not t.memory.insight_ids:
            continue
        ok = judge.succeeded(t)
        if ok is None:
            continue
        for iid in t.memory.insight_ids:
            out[iid]["ok" if ok else failure_kind(t)].append(t.id)
    return out


def _tally(section: str, by_kind: dict[str, list[str]]) -> dict[str, int]:
    tally = {"helpful": 0, "harmful": 0, "neutral": 0}
    for kind, ids in by_kind.items():
        tally[outcome(section, kind == "ok", kind)] += len(ids)
    return tally


def count_outcomes(ws: Workspace, trajectories: Sequence[Trajectory]) -> list[Insight]:
    """Add the outcomes of new runs to the counters of the bullets they were shown; returns those bullets.

    One history entry per bullet and call, naming the runs that caused it.
    """
    counted = [t for t in trajectories if t.split == "train" and t.memory.insight_ids]
    if not counted:  # most batches (heldout, no playbook): do not read every label and ruling for nothing
        return []
    counts = _counts(counted, verdicts.judge(ws))
    changed = []
    for iid, by_kind in counts.items():
        def add(current: Insight, by_kind=by_kind) -> Insight:
            tally = _tally(current.section, by_kind)
            ids = [tid for ids in by_kind.values() for tid in ids]
            return _with_counters(current, current.helpful + tally["helpful"], current.harmful + tally["harmful"],
                                  current.neutral + tally["neutral"], ids, _words(tally))
        if ws.repo.get(Insight, iid) is not None:
            changed.append(ws.repo.update(Insight, iid, add))
    return changed


def recount(ws: Workspace, suite: str) -> list[Insight]:
    """Recompute every counter of a suite's bullets from its runs and today's verdicts; returns the changed ones."""
    counts = _counts(ws.repo.find(Trajectory, suite=suite, split="train"), verdicts.judge(ws))
    changed = []
    for insight in ws.repo.find(Insight, suite=suite):
        by_kind = counts.get(insight.id, {})
        tally = _tally(insight.section, by_kind)
        if (insight.helpful, insight.harmful, insight.neutral) == (tally["helpful"], tally["harmful"], tally["neutral"]):
            continue
        ids = [tid for ids in by_kind.values() for tid in ids]

        def set_to(current: Insight, tally=tally, ids=ids) -> Insight:
            return _with_counters(current, tally["helpful"], tally["harmful"], tally["neutral"], ids,
                                  "recounted with today's verdicts: " + _words(tally))
        changed.append(ws.repo.update(Insight, insight.id, set_to))
    return changed


def _words(tally: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in tally.items() if n) or "nothing counted"


def _with_counters(insight: Insight, helpful: int, harmful: int, neutral: int, evidence: list[str],
                   cause: str) -> Insight:
    entry = InsightChange(by="outcomes", operation="OUTCOMES", text=cause, importance=insight.importance,
                          evidence=evidence[:50])  # the newest 50 runs name the cause; counts hold the rest
    return insight.model_copy(update={"helpful": helpful, "harmful": harmful, "neutral": neutral,
                                      "history": [*insight.history, entry]})


# --- what the prompt shows ------------------------------------------------------------------------


def rank_key(insight: Insight) -> tuple:
    """Best first: more helpful than harmful, then ExpeL importance, then the older bullet."""
    return (-(insight.helpful - insight.harmful), -insight.importance, insight.created)


def for_prompt(bullets: Sequence[Insight], budget_tokens: int,
               exclude: Iterable[str] = ()) -> list[Insight]:
    """The bullets the prompt shows: best first within the budget, then kept grouped by section."""
    skip = set(exclude)
    budget = budget_tokens * CHARS_PER_TOKEN
    chosen, used = [], 0.0
    for b in sorted((b for b in bullets if b.status == "active" and b.id not in skip), key=rank_key):
        cost = len(b.text) + 4
        if used + cost > budget:
            continue  # a shorter, lower-ranked bullet may still fit
        chosen.append(b)
        used += cost
    order = {s: n for n, s in enumerate(SECTIONS)}
    return sorted(chosen, key=lambda b: (order.get(b.section, len(order)), rank_key(b)))


def grouped(bullets: Sequence[Insight]) -> list[tuple[str, list[str]]]:
    """(section, texts) in prompt order, for prompts.playbook_block."""
    out: dict[str, list[str]] = {}
    for b in bullets:
        out.setdefault(b.section, []).append(b.text.strip())
    return list(out.items())
