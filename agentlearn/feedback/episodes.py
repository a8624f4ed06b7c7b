"""How an episode reads step by step on the labeling pages: each step's calls or answer, what each call
answered, the user message that opened each turn, and what the task expected in that turn.

A labeler looking for the first wrong step needs the model's calls beside the observations they led to,
in order, and the reference for the turn beside them; pages draw these plain values (agentlearn never
imports streamlit). Every string here is data: pages show it as text, never as Markdown or HTML.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from agentlearn.episode_text import is_episode, step_parts  # is_episode: the one rule; pages ask it here
from storage.records import OMIT, Step, Task, ToolCall, Trajectory

# Where an episode came from (Trajectory.source): the built-in agent, imported trace files, spans received
# by `collect`, conversations through `proxy`, a replay from a corrected step; import/eval are older runs.
SOURCES = ("agent", "traces", "collect", "proxy", "replay", "import", "eval")
FOLD_CHARS = 400  # an observation longer than this, or of more lines than FOLD_LINES, is shown folded
FOLD_LINES = 8
MAY_BE_LEFT_OUT = "may be left out"


@dataclass(frozen=True)
class Observation:
    """What one call answered (or the verifier's note of a step that executed nothing)."""

    name: str  # the tool that answered ("" for a note)
    content: str
    error: bool
    seconds: float | None
    folded: bool  # long: shown folded until opened


@dataclass(frozen=True)
class ExpectedCall:
    """One call the task expected in a turn, each argument with every acceptable value."""

    name: str
    arguments: tuple[tuple[str, tuple[str, ...]], ...]  # argument -> acceptable values as JSON text

    def text(self) -> str:
        """The call on one line: name(arg=v1 | v2 | may be left out, ...)."""
        args = ", ".join(f"{arg}={' | '.join(values)}" for arg, values in self.arguments)
        return f"{self.name}({args})"


@dataclass(frozen=True)
class StepView:
    """One step as the labeling pages show it."""

    index: int
    turn: int
    opens_turn: bool  # the first step of its turn: the user message and the turn's expected calls go above it
    user: str  # the user message that opened the turn ("" when unknown)
    thought: str  # what the model wrote before its calls, when its source kept it
    calls: tuple[ToolCall, ...]
    answer: str
    text: str  # the model's raw text when it made neither a call nor an answer that was parsed
    observations: tuple[Observation, ...]
    seconds: float | None
    tokens_in: int | None
    tokens_out: int | None
    expected: tuple[ExpectedCall, ...] | None  # on a turn's first step; None: no reference for the turn

    def timing(self) -> str:
        """The step's model time and tokens in words ("" when none were recorded)."""
        parts = []
        if self.seconds is not None:
            parts.append(f"{self.seconds:.2f} s")
        if self.tokens_in is not None or self.tokens_out is not None:
            parts.append(f"{self.tokens_in if self.tokens_in is not None else '?'} → "
                         f"{self.tokens_out if self.tokens_out is not None else '?'} tokens")
        return " · ".join(parts)


def folded(text: str) -> bool:
    """Whether an observation is long enough to be shown folded."""
    return len(text) > FOLD_CHARS or text.count("\n") >= FOLD_LINES


def call_text(call: ToolCall) -> str:
    """A call as one line of JSON (name and arguments; its id is the source's bookkeeping)."""
    return json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)


def _value(v) -> str:
    return MAY_BE_LEFT_OUT if v == OMIT else json.dumps(v, ensure_ascii=False)


def expected_for_turn(task: Task | None, turn: int) -> tuple[ExpectedCall, ...] | None:
    """The calls the task expected in a turn: `turn_calls` where the task has them, else (single-turn tasks)
    the reference with every acceptable value of each argument; None when the task says nothing."""
    if task is None:
        return None
    if task.turn_calls:
        if turn >= len(task.turn_calls):
            return None
        return tuple(ExpectedCall(c.name, tuple((k, (_value(v),)) for k, v in c.arguments.items()))
                     for c in task.turn_calls[turn])
    if turn != 0:
        return None
    if task.reference is not None:
        return tuple(ExpectedCall(c.name, tuple((k, tuple(_value(v) for v in values))
                                                for k, values in c.arguments.items()))
                     for c in task.reference.calls)
    return (ExpectedCall(task.expected.name, tuple((k, (_value(v),)) for k, v in task.expected.arguments.items())),)


def _user_of_turn(task: Task | None, turn: int) -> str:
    if task is None:
        return ""
    messages = task.input if turn == 0 else task.turns[turn - 1] if turn - 1 < len(task.turns) else []
    said = [m.content for m in messages if m.role == "user"]
    return "\n".join(said[-1:] if turn == 0 else said)


def _observations(step: Step) -> tuple[Observation, ...]:
    if step.results:
        return tuple(Observation(r.name or (step.calls[i].name if i < len(step.calls) else ""), r.content, r.error,
                                 r.seconds, folded(r.content)) for i, r in enumerate(step.results))
    if step.observation:
        return (Observation("", step.observation, False, None, folded(step.observation)),)
    return ()


def step_views(traj: Trajectory, task: Task | None) -> list[StepView]:
    """Every step of a run in order, with its turn's user message and expected calls on the turn's first step."""
    views, seen_turns = [], set()
    for i, step in enumerate(traj.steps):
        opens = step.turn not in seen_turns
        seen_turns.add(step.turn)
        views.append(StepView(
            index=i, turn=step.turn, opens_turn=opens,
            user=(step.user or _user_of_turn(task, step.turn)) if opens else step.user, thought=step.thought,
            calls=tuple(step.calls), answer=step.answer,
            text="" if (step.calls or step.answer) else step.action,
            observations=_observations(step), seconds=step.seconds, tokens_in=step.tokens_in,
            tokens_out=step.tokens_out, expected=expected_for_turn(task, step.turn) if opens else None))
    return views


def step_calls(traj: Trajectory, step: int) -> list[ToolCall]:
    """The calls a step made; for a single-call run without executed steps, the run's parsed call."""
    if not 0 <= step < max(1, len(traj.steps)):
        raise ValueError(f"trajectory {traj.id} has no step {step + 1} (it has {len(traj.steps)})")
    if traj.steps and traj.steps[step].calls:
        return list(traj.steps[step].calls)
    return [traj.tool_call] if traj.tool_call is not None and not is_episode(traj) else []


def _same_step(a: Step, b: Step) -> bool:
    """Equal as the agent and its tools saw them: calls, answer, turn and what each call answered."""
    return ([(c.name, c.arguments) for c in a.calls], a.answer, a.turn,
            [(r.content, r.error) for r in a.results]) == (
        [(c.name, c.arguments) for c in b.calls], b.answer, b.turn, [(r.content, r.error) for r in b.results])


def shared_steps(a: Trajectory, b: Trajectory) -> int:
    """How many leading steps two runs share: where their continuations part (an original and its replay)."""
    n = 0
    for x, y in zip(a.steps, b.steps, strict=False):
        if not _same_step(x, y):
            break
        n += 1
    return n


def transcript(steps: Sequence[Step]) -> str:
    """Steps as plain text, one line per call, result and answer, nothing shortened (a continuation's
    response in a preference, as stored and exported); the compact prompt form is episode_text.transcript."""
    lines = []
    for step in steps:
        for kind, value in step_parts(step):
            if kind == "call":
                lines.append(f"call: {call_text(value)}")
            elif kind == "result" and value is not None:
                lines.append(("error: " if value.error else "result: ") + value.content)
            elif kind == "answer":
                lines.append(f"answer: {value}")
            elif kind == "output":
                lines.append(value)
    return "\n".join(lines)
