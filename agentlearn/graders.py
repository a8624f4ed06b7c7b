"""Verifiers for tool calls: each grader scores one aspect in [0, 1] and says why.

Every grader has the signature `(raw_output, call, expected, tools, kinds=None) -> Grade`, so
evaluation and RLVR rewards share them. `kinds` maps the expected tool's argument names to their
kinds (agentlearn.arg_kinds); an argument without one gets arg_kinds.kind_of's value-based
fallback. Graders are pure (no I/O, no model) and fast.

Each argument is graded under its kind's rule (`argument_grades`):
- categorical and extractive: equal after normalisation (`values_match`: case, spaces, `_` and `-`
  ignored; numbers equal numeric strings; arrays compare as multisets, every item must match);
- free_text: token F1 between the two values (lower-cased alphanumeric tokens; `_`, `-` and
  punctuation split words), right when it reaches FREE_TEXT_THRESHOLD = 0.5. An array or object
  of free text is compared as the text of all its values together, so item order and how the text
  is cut into items do not matter.
A missing expected argument or an unexpected non-null one is wrong; null counts as absent.

`grade` combines them into a Verdict:
- success = call_match: the function name is right and every argument is right under its rule;
- scores: name_match, call_match, args_score (mean per-argument score, the F1 itself for free text,
  over the expected-or-given keys; 0 when the name is wrong), args_exact (strict JSON equality),
  valid_json, schema_valid, required_args;
- arguments: one ArgGrade per argument when the name is right;
- reward: the weighted mean of the scores with WEIGHTS (name and argument score carry most of it;
  format, schema, required arguments and exact match give partial credit; call_match is the success
  itself and carries no weight of its own);
- reason: one sentence naming the first failure, checked in the order of CHECK_ORDER.

`grade_task` is the entry the agent's verify step uses: a task with a reference (acceptable
alternatives, several calls or none; BFCL suites) is graded by agentlearn.suites.references.grade,
whose Verdict carries the same scores (name_match, call_match, args_score, args_exact), so every
figure below is computed the same way for both.

`args_normalised` is the kind-free argument agreement (every argument compared by values_match);
RLVR rewards use it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from jsonschema.exceptions import SchemaError, best_match
from referencing.exceptions import Unresolvable

from agentlearn.arg_kinds import kind_of, tokens
from agentlearn.toolcall import parse_tool_call, schema_validator, tool_by_name
from storage.records import ArgGrade, Task, ToolCall, Trajectory, Verdict


class Grade(NamedTuple):
    """One grader's result."""

    name: str
    score: float
    reason: str


Tools = list[dict[str, Any]]
ArgKinds = dict[str, str]
Grader = Callable[..., Grade]

FREE_TEXT_THRESHOLD = 0.5
WEIGHTS: dict[str, float] = {
    "name_match": 0.3,
    "args_score": 0.3,
    "required_args": 0.1,
    "schema_valid": 0.1,
    "valid_json": 0.1,
    "args_exact": 0.1,
    "call_match": 0.0,
}
CHECK_ORDER = ("valid_json", "name_match", "required_args", "call_match", "schema_valid", "args_exact")
_NO_CALL = "no tool call was produced"


def valid_json(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
               kinds: ArgKinds | None = None) -> Grade:
    """1 if a JSON tool call could be read from the output (or was given already parsed)."""
    if call is not None and not raw_output.strip():
        return Grade("valid_json", 1.0, "the call came structured")
    parsed = parse_tool_call(raw_output)
    if parsed.call is None:
        return Grade("valid_json", 0.0, parsed.error)
    return Grade("valid_json", 1.0, "a JSON tool call was found")


def name_match(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
               kinds: ArgKinds | None = None) -> Grade:
    """1 if the called function is the expected one."""
    if call is None:
        return Grade("name_match", 0.0, _NO_CALL)
    if call.name == expected.name:
        return Grade("name_match", 1.0, f"called {call.name}")
    return Grade("name_match", 0.0, f"called {call.name} instead of {expected.name}")


def required_args(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
                  kinds: ArgKinds | None = None) -> Grade:
    """Fraction of required arguments present (the tool schema's, else the expected call's)."""
    if call is None:
        return Grade("required_args", 0.0, _NO_CALL)
    tool = tool_by_name(tools, expected.name)
    required = list(tool["parameters"].get("required", [])) if tool else list(expected.arguments)
    if not required:
        return Grade("required_args", 1.0, "no arguments are required")
    missing = [k for k in required if call.arguments.get(k) is None]
    score = 1.0 - len(missing) / len(required)
    if missing:
        return Grade("required_args", score, f"required argument(s) missing: {', '.join(missing)}")
    return Grade("required_args", 1.0, "all required arguments are present")


def args_exact(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
               kinds: ArgKinds | None = None) -> Grade:
    """1 if the arguments equal the expected ones exactly (same keys, same JSON values)."""
    if call is None:
        return Grade("args_exact", 0.0, _NO_CALL)
    if _same_json(call.arguments, expected.arguments):
        return Grade("args_exact", 1.0, "arguments match exactly")
    key = _first_difference(call.arguments, expected.arguments, _same_json)
    return Grade("args_exact", 0.0, f"argument {key!r} differs from the expected value")


def argument_grades(call: ToolCall, expected: ToolCall, kinds: ArgKinds | None = None) -> list[ArgGrade]:
    """One ArgGrade per expected-or-given argument (nulls count as absent), each under its kind's rule."""
    got = {k: v for k, v in call.arguments.items() if v is not None}
    want = {k: v for k, v in expected.arguments.items() if v is not None}
    known = {expected.name: kinds or {}}
    out = []
    for key in list(want) + [k for k in got if k not in want]:
        kind = kind_of(known, expected.name, key, want.get(key, got.get(key)))
        if key not in got:
            out.append(ArgGrade(name=key, kind=kind, status="missing", score=0.0, expected=want[key]))
        elif key not in want:
            out.append(ArgGrade(name=key, kind=kind, status="unexpected", score=0.0, got=got[key]))
        else:
            score, right = _compare(kind, got[key], want[key])
            out.append(ArgGrade(name=key, kind=kind, status="right" if right else "wrong", score=round(score, 4),
                                expected=want[key], got=got[key]))
    return out


def _compare(kind: str, got: Any, want: Any) -> tuple[float, bool]:
    if kind == "free_text":
        score = token_f1(got, want)
        return score, score >= FREE_TEXT_THRESHOLD
    same = values_match(got, want)
    return float(same), same


def call_match(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
               kinds: ArgKinds | None = None) -> Grade:
    """1 if the name is right and every argument is right under its kind's rule."""
    if call is None:
        return Grade("call_match", 0.0, _NO_CALL)
    if call.name != expected.name:
        return Grade("call_match", 0.0, f"called {call.name} instead of {expected.name}")
    wrong = next((a for a in argument_grades(call, expected, kinds) if a.status != "right"), None)
    if wrong is None:
        return Grade("call_match", 1.0, "every argument is right under its kind's rule")
    return Grade("call_match", 0.0, _why(wrong))


def args_score(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
               kinds: ArgKinds | None = None) -> Grade:
    """Mean per-argument score under the kinds' rules when the name is right; 0 when it is wrong."""
    if call is None:
        return Grade("args_score", 0.0, _NO_CALL)
    if call.name != expected.name:
        return Grade("args_score", 0.0, f"called {call.name} instead of {expected.name}")
    grades = argument_grades(call, expected, kinds)
    if not grades:
        return Grade("args_score", 1.0, "no arguments expected or given")
    score = sum(a.score for a in grades) / len(grades)
    right = sum(a.status == "right" for a in grades)
    return Grade("args_score", score, f"{right} of {len(grades)} arguments right")


def args_normalised(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
                    kinds: ArgKinds | None = None) -> Grade:
    """Fraction of argument keys (expected or given) whose values agree after normalisation, whatever their kind."""
    if call is None:
        return Grade("args_normalised", 0.0, _NO_CALL)
    grades = argument_grades(call, expected, {k: "categorical" for k in {**expected.arguments, **call.arguments}})
    if not grades:
        return Grade("args_normalised", 1.0, "no arguments expected or given")
    wrong = [a for a in grades if a.status != "right"]
    if not wrong:
        return Grade("args_normalised", 1.0, "arguments match after normalisation")
    return Grade("args_normalised", 1.0 - len(wrong) / len(grades), _why(wrong[0]))


def _why(arg: ArgGrade) -> str:
    if arg.status == "missing":
        return f"argument {arg.name!r} is missing (expected {_show(arg.expected)})"
    if arg.status == "unexpected":
        return f"argument {arg.name!r} was not expected"
    why = f"argument {arg.name!r} is {_show(arg.got)}, expected {_show(arg.expected)}"
    if arg.kind == "free_text":
        why += f" (free text, similarity {arg.score:.2f} < {FREE_TEXT_THRESHOLD})"
    return why


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def schema_valid(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
                 kinds: ArgKinds | None = None) -> Grade:
    """1 if the call names an offered tool and its arguments validate against the tool's schema."""
    if call is None:
        return Grade("schema_valid", 0.0, _NO_CALL)
    tool = tool_by_name(tools, call.name)
    if tool is None:
        return Grade("schema_valid", 0.0, f"{call.name} is not one of the offered tools")
    try:
        error = best_match(schema_validator(tool["parameters"]).iter_errors(call.arguments))
    except SchemaError as e:
        return Grade("schema_valid", 0.0, f"{call.name}'s parameters are not a valid JSON schema: {e.message}")
    except Unresolvable as e:
        return Grade("schema_valid", 0.0, f"{call.name}'s schema refers to {e.ref!r}, which is not inside the "
                                         "schema (references are never fetched)")
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        return Grade("schema_valid", 0.0, f"arguments break {call.name}'s schema"
                                         f"{f' at {where}' if where else ''}: {error.message}")
    return Grade("schema_valid", 1.0, f"arguments fit {call.name}'s schema")


GRADERS: dict[str, Grader] = {
    "valid_json": valid_json,
    "name_match": name_match,
    "required_args": required_args,
    "call_match": call_match,
    "args_score": args_score,
    "schema_valid": schema_valid,
    "args_exact": args_exact,
}


def grade(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools,
          kinds: ArgKinds | None = None) -> Verdict:
    """Run every grader and combine them into a Verdict (success, reward, one-sentence reason, per-argument grades)."""
    grades = {name: g(raw_output or "", call, expected, tools, kinds) for name, g in GRADERS.items()}
    scores = {name: round(g.score, 4) for name, g in grades.items()}
    success = scores["call_match"] == 1.0
    reward = sum(WEIGHTS[n] * s for n, s in scores.items()) / sum(WEIGHTS.values())
    failed = next((grades[n] for n in CHECK_ORDER if grades[n].score < 1.0), None)
    if failed is None:
        reason = f"Correct: {expected.name} called with the expected arguments."
    elif success:
        reason = f"Correct under each argument's rule, but {failed.reason}."
    else:
        reason = f"Failed {failed.name}: {failed.reason}."
    arguments = argument_grades(call, expected, kinds) if call is not None and call.name == expected.name else []
    return Verdict(success=success, reward=round(reward, 4), reason=reason, scores=scores, arguments=arguments)


def grade_task(task: Task, output: str, calls: list[ToolCall], kinds: ArgKinds | None = None) -> Verdict:
    """A task's verdict: BFCL's rule against its reference where it has one (agentlearn.suites.references:
    acceptable alternatives, several calls in any order, or none), else `grade` of the first call."""
    if task.reference is not None:
        from agentlearn.suites import references

        return references.grade(task, calls, output)
    return grade(output, calls[0] if calls else None, task.expected, task.tools, kinds)


def token_f1(got: Any, want: Any) -> float:
    """Token F1 between two values' texts (every string and number inside them); 1 when both are empty."""
    a, b = Counter(_value_tokens(got)), Counter(_value_tokens(want))
    if not a and not b:
        return 1.0
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def _value_tokens(value: Any) -> list[str]:
    if isinstance(value, list):
        return [t for v in value for t in _value_tokens(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _value_tokens(v)]
    return [] if value is None else tokens(str(value))


# --- normalisation -----------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s_\-]+")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def normalise_value(value: Any) -> Any:
    """A comparable form of a JSON value.

    Strings ignore case, whitespace, underscores and hyphens; numbers equal numeric strings; booleans
    equal "true"/"false"; lists compare as multisets; null counts as absent inside objects.

    Scalars are tagged with their kind so that True never equals 1 (Python says it does).
    """
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, str):
        s = value.strip()
        if _NUMBER.match(s):
            return ("num", float(s))
        if s.lower() in ("true", "false"):
            return ("bool", s.lower() == "true")
        return ("str", _SEPARATORS.sub("", s.lower()))
    if isinstance(value, list):
        return sorted((normalise_value(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        return {k: normalise_value(v) for k, v in value.items() if v is not None}
    return ("null", None) if value is None else value


def values_match(got: Any, want: Any) -> bool:
    """True if two JSON values are equal after normalisation."""
    a, b = normalise_value(got), normalise_value(want)
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "num":
        return math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _same_json(a: Any, b: Any) -> bool:
    # Python says True == 1 == 1.0; JSON text does not, and neither should an exact match.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _first_difference(got: dict[str, Any], want: dict[str, Any], same: Callable[[Any, Any], bool]) -> str:
    for k in list(want) + [k for k in got if k not in want]:
        if k not in got or k not in want or not same(got[k], want[k]):
            return k
    return ""


# --- a run's figures (evaluations and retrieval's stage b count the same way) -------------------------


_CALL_QUALIFIED = re.compile(r"^[^\[\]]+\[\d+\]\.")


def task_result(t: Trajectory) -> dict[str, float]:
    """One task's outcome: name, call and exact as 0/1, args the argument score (-1 when the name was wrong)."""
    scores = t.verdict.scores if t.verdict else {}
    name = float(scores.get("name_match", 0.0) >= 1.0)
    call = float(scores.get("call_match", float(bool(t.verdict and t.verdict.success))) >= 1.0)
    exact = float(name == 1.0 and scores.get("args_exact", 0.0) >= 1.0)
    return {"name": name, "call": call, "exact": exact, "args": float(scores.get("args_score", 0.0)) if name else -1.0}


def score(finals: list[Trajectory]) -> dict[str, Any]:
    """The run's figures from each task's last trial (see the module docstring)."""
    results = {t.task_id: task_result(t) for t in finals}
    n = len(results)
    named = [r["args"] for r in results.values() if r["name"] == 1.0]
    per_argument: dict[str, list[int]] = {}
    for t in finals:
        if not t.verdict or t.verdict.scores.get("name_match", 0.0) < 1.0:
            continue
        for arg in t.verdict.arguments:
            if arg.status == "unexpected":
                continue  # an argument the reference does not have is not one of the suite's arguments
            # an answer graded against several reference calls names each argument with its call ("tool[1].arg")
            key = arg.name if _CALL_QUALIFIED.match(arg.name) else f"{t.tool_call.name if t.tool_call else '?'}.{arg.name}"
            cell = per_argument.setdefault(key, [0, 0])
            cell[0] += int(arg.status == "right")
            cell[1] += 1
    mean = (lambda key: sum(r[key] for r in results.values()) / n) if n else (lambda key: 0.0)
    return {"n": n, "name_accuracy": mean("name"), "call_accuracy": mean("call"), "exact_accuracy": mean("exact"),
            "args_score": sum(named) / len(named) if named else 0.0, "results": results,
            "per_argument": per_argument}
