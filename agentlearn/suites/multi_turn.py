"""BFCL's multi-turn rule for grading an episode, and its ground-truth call strings as ToolCalls.

An episode passes a user turn when, after replaying every call so far on fresh environments, the
agent's environments are in the same state as the reference's (state check) and every result of the
turn's reference calls appears among the results of the agent's calls so far (response check). Turns
whose reference is "call nothing" are replayed but not checked. The episode succeeds when every turn
passes.

Taken from bfcl-eval 2026.3.23 (Apache-2.0), eval_checker/multi_turn_eval/: `state_checker` and
`response_checker` (multi_turn_checker.py) are called as they are; `multi_turn_checker`'s loop (its
turn order, its skipping of empty reference turns and its "no calls in this turn" failure) is
followed here because it reads its input as code strings run through `eval` (multi_turn_utils.py),
which an agent's calls never are; a call that raises gives "Error during execution: ..." as there.
Unlike it, every turn is graded (not only up to the first failure) so that each turn's pass is known.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import response_checker, state_checker

from agentlearn.suites import environments
from storage.records import Task, ToolCall, Trajectory, Verdict

_SHOWN = 160  # characters of a result or difference quoted in a reason


def parse_calls(text: str) -> list[ToolCall]:
    """Calls written as Python, e.g. "mv(source='a.txt', destination='b')" or a list of them.

    Parsed with `ast`, never evaluated: arguments must be literals. Positional arguments take the
    names of the registered environment method's parameters.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"not a Python call: {text!r} ({getattr(e, 'msg', e)})") from None
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    return [_call(node) for node in nodes]


def _call(node: ast.expr) -> ToolCall:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a call of a named function: {ast.unparse(node)!r}")
    name = node.func.id
    arguments: dict[str, Any] = {}
    if node.args:
        names = environments.parameter_names(name)
        if len(node.args) > len(names):
            raise ValueError(f"{name} takes {len(names)} arguments, {len(node.args)} were given positionally")
        arguments.update(zip(names, (_literal(arg, name) for arg in node.args), strict=False))
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ValueError(f"{name}: '**' arguments are not allowed")
        if keyword.arg in arguments:
            raise ValueError(f"{name}: argument {keyword.arg!r} is given twice")
        arguments[keyword.arg] = _literal(keyword.value, name)
    return ToolCall(name=name, arguments=arguments)


def _literal(node: ast.expr, name: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: argument {ast.unparse(node)!r} is not a literal value") from None


def call_text(call: ToolCall) -> str:
    """A call as BFCL writes it: name(arg=value, ...)."""
    return f"{call.name}({', '.join(f'{k}={v!r}' for k, v in call.arguments.items())})"


@dataclass
class _Replay:
    """One side's environments, replayed turn by turn."""

    instances: dict[str, object]
    results: list[str] = field(default_factory=list)  # every call's result so far, all turns

    def run(self, calls: list[ToolCall]) -> tuple[list[str], list[str]]:
        """This turn's results, and a note for each call that raised."""
        results, errors = [], []
        for call in calls:
            try:
                results.append(environments.call(self.instances, call))
            except Exception as e:  # noqa: BLE001 - a failing call is an observation, as in BFCL
                results.append(f"Error during execution: {e}")
                errors.append(f"{_clip(call_text(call))} raised {type(e).__name__}: {_clip(str(e))}")
        self.results.extend(results)
        return results, errors


def grade_episode(task: Task, trajectory: Trajectory) -> Verdict:
    """BFCL's multi-turn verdict: per turn, equal environment states and the reference's results found.

    The agent's calls of turn t are the calls of its steps with `turn == t`, in order. `scores` holds
    each turn's pass ("turn_0": 1.0, ...); `reward` is the share of turns passed before the first
    failure (1.0 on success); `reason` names the first failing turn (counted from 1), why, and any call that raised.
    """
    if not task.turn_calls:
        raise ValueError(f"task {task.sample_id or task.id}: no reference calls per turn to grade by (turn_calls)")
    reference, agent = _Replay(environments.for_task(task)), _Replay(environments.for_task(task))
    scores: dict[str, float] = {}
    first_failure = ""
    for turn, expected in enumerate(task.turn_calls):
        calls = [call for step in trajectory.steps if step.turn == turn for call in step.calls]
        _, agent_errors = agent.run(calls)
        reference_results, reference_errors = reference.run(expected)
        why = _turn_failure(turn, expected, calls, reference, agent, reference_results) if expected else ""
        scores[f"turn_{turn}"] = 0.0 if why else 1.0
        if why and not first_failure:
            notes = [f"the agent's call {e}" for e in agent_errors] + [f"the reference call {e}" for e in reference_errors]
            # People read turns from 1, as the labeling view numbers them; `scores` keys stay 0-based data.
            first_failure = f"turn {turn + 1}: {why}" + "".join(f"; {note}" for note in notes)
    passed = next((t for t, s in enumerate(scores.values()) if s < 1.0), len(scores))
    if first_failure:
        reason = f"Failed {first_failure}."
    else:
        reason = f"Correct: every turn ({len(scores)}) leaves the environments as the reference does and has its results."
    return Verdict(success=not first_failure, reward=round(passed / len(scores), 4), reason=reason, scores=scores)


def _turn_failure(turn: int, expected: list[ToolCall], calls: list[ToolCall], reference: _Replay,
                  agent: _Replay, reference_results: list[str]) -> str:
    """Why a turn with reference calls fails (BFCL's checks in BFCL's order), or "" when it passes."""
    if not calls:
        return f"no calls, where the reference makes {len(expected)}"
    for name, instance in reference.instances.items():
        state = state_checker({name: agent.instances[name]}, {name: instance})
        if not state["valid"]:
            return _state_difference(name, state["details"]["differences"])
    response = response_checker(agent.results, reference_results, turn)
    if not response["valid"]:
        missing = response["details"]["missing_items"]
        shown = [call_text(c) for c, r in zip(expected, reference_results, strict=True) if r in missing]
        return (f"the results of the reference calls {', '.join(_clip(s) for s in shown)} are not among the "
                f"agent's (first missing: {_clip(missing[0])})")
    return ""


def _state_difference(name: str, differences: dict) -> str:
    parts = [f"{attr}: agent {agent}, reference {reference}" for attr, d in differences.items()
             for agent, reference in [_where_they_differ(_show(d["model"]), _show(d["ground_truth"]))]]
    return f"the {name} state differs from the reference's ({'; '.join(parts)})"


def _where_they_differ(agent: str, reference: str) -> tuple[str, str]:
    """Both texts from a little before their first difference (a file tree's text starts alike)."""
    same = next((i for i, (a, b) in enumerate(zip(agent, reference, strict=False)) if a != b),
                min(len(agent), len(reference)))
    start = max(0, same - _SHOWN // 4)
    lead = "..." if start else ""
    return _clip(lead + agent[start:]), _clip(lead + reference[start:])


def _show(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
