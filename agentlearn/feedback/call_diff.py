"""The reference beside the answer: a task's expected call against a run's call, argument by argument.

A person judging a run should see what the grader saw: the expected call, the agent's call, and for
every argument its kind, both values, the grader's status (right, wrong, missing, unexpected) and
score. The stored verdict's per-argument grades are used when the run has them (they are what the
verifier decided at the time); a run without them is graded now with graders.argument_grades under
the suite's current argument kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from agentlearn import arg_kinds, graders
from agentlearn.workspace import Workspace
from storage.records import ArgGrade, Suite, Task, ToolCall, Trajectory

STATUSES = ("right", "wrong", "missing", "unexpected")
COLUMNS = ("argument", "kind", "expected", "got", "status", "score")


@dataclass
class CallDiff:
    """Expected call, the run's call, one row per argument, and the grader's scores in one sentence."""

    expected: ToolCall
    got: ToolCall | None
    name_right: bool
    grades: list[ArgGrade] = field(default_factory=list)
    summary: str = ""
    graded_now: bool = False  # True when the run had no stored per-argument grades

    def rows(self) -> list[dict[str, Any]]:
        """One dict per argument: argument, kind, expected, got (JSON text, '' when absent), status, score."""
        return [{"argument": g.name, "kind": g.kind, "expected": _text(g.expected, g.status == "unexpected"),
                 "got": _text(g.got, g.status == "missing"), "status": g.status, "score": round(g.score, 2)}
                for g in self.grades]

    def table(self) -> pd.DataFrame:
        """rows() as a DataFrame with the columns in COLUMNS (empty, with those columns, when there are none)."""
        return pd.DataFrame(self.rows(), columns=list(COLUMNS))


def diff(task: Task, trajectory: Trajectory, kinds: dict[str, str] | None = None) -> CallDiff:
    """Compare a run's call with its task's expected call; `kinds` maps the expected tool's arguments to kinds."""
    expected, got = task.expected, trajectory.tool_call
    if got is None:
        return CallDiff(expected, None, False, summary=_no_call(trajectory))
    stored = trajectory.verdict.arguments if trajectory.verdict is not None else []
    name_right = got.name == expected.name
    # The grader grades arguments only under the right tool; under a wrong one the values are still
    # compared, so a person sees how far off the call was, but the sentence says they were not graded.
    grades = list(stored) if stored and name_right else graders.argument_grades(got, expected, kinds)
    graded_now = not (stored and name_right)
    return CallDiff(expected, got, name_right, grades, _summary(expected, got, grades, trajectory), graded_now)


def diff_for(ws: Workspace, task: Task, trajectory: Trajectory) -> CallDiff:
    """diff() under the suite's argument kinds (a person's overrides over the inferred ones)."""
    suite = ws.repo.get(Suite, task.suite)
    kinds = arg_kinds.kinds_for(suite).get(task.expected.name) if suite is not None else None
    return diff(task, trajectory, kinds)


def status_counts(d: CallDiff) -> dict[str, int]:
    """How many arguments have each status (every status present, zero when none)."""
    counts = dict.fromkeys(STATUSES, 0)
    for g in d.grades:
        counts[g.status] += 1
    return counts


# --- the sentence --------------------------------------------------------------------------------


def _summary(expected: ToolCall, got: ToolCall, grades: list[ArgGrade], trajectory: Trajectory) -> str:
    if got.name != expected.name:
        parts = [f"Wrong tool: called `{got.name}`, expected `{expected.name}`; arguments are compared "
                 "by name only and not graded"]
    else:
        parts = ["Right tool"]
        if not grades:
            parts.append("no arguments expected or given")
        else:
            right = sum(g.status == "right" for g in grades)
            parts.append(f"{right} of {len(grades)} argument{'s' if len(grades) != 1 else ''} right")
            parts += [_argument_words(g) for g in grades if g.kind == "free_text" or g.status != "right"]
    if trajectory.verdict is not None:
        word = "success" if trajectory.verdict.success else "fail"
        parts.append(f"verifier: {word}, reward {trajectory.verdict.reward:.2f}")
    return "; ".join(parts)


def _argument_words(g: ArgGrade) -> str:
    if g.status == "missing":
        return f"`{g.name}` is missing"
    if g.status == "unexpected":
        return f"`{g.name}` was not expected"
    if g.kind == "free_text":
        return (f"`{g.name}` is free text, similarity {g.score:.2f} "
                f"(needs {graders.FREE_TEXT_THRESHOLD:.2f})")
    return f"`{g.name}` is wrong ({g.kind}: must equal the expected value after normalisation)"


def _no_call(trajectory: Trajectory) -> str:
    why = "No tool call could be read from the output"
    if trajectory.verdict is not None:
        return f"{why}; verifier: fail, reward {trajectory.verdict.reward:.2f}"
    return why


def _text(value: Any, absent: bool) -> str:
    if absent:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
