"""Verifiers for tool calls: each grader scores one aspect in [0, 1] and says why.

Every grader has the same signature as `grade`, `(raw_output, call, expected, tools) -> Grade`, so
evaluation and RLVR rewards share them. They are pure (no I/O, no model) and fast.

`grade` combines them into a Verdict:
- success: the function name matches and the arguments match after normalisation;
- reward: the weighted mean of the scores with WEIGHTS (name and normalised arguments carry most
  of it; format, schema, required arguments and exact match give partial credit);
- reason: one sentence naming the first failure, checked in the order of CHECK_ORDER.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from agentlearn.toolcall import parse_tool_call, tool_by_name
from storage.records import ToolCall, Verdict


class Grade(NamedTuple):
    """One grader's result."""

    name: str
    score: float
    reason: str


Tools = list[dict[str, Any]]
Grader = Callable[[str, ToolCall | None, ToolCall, Tools], Grade]

WEIGHTS: dict[str, float] = {
    "name_match": 0.3,
    "args_normalised": 0.3,
    "required_args": 0.1,
    "schema_valid": 0.1,
    "valid_json": 0.1,
    "args_exact": 0.1,
}
CHECK_ORDER = ("valid_json", "name_match", "required_args", "args_normalised", "schema_valid", "args_exact")
_NO_CALL = "no tool call was produced"


def valid_json(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
    """1 if a JSON tool call could be read from the output (or was given already parsed)."""
    if call is not None and not raw_output.strip():
        return Grade("valid_json", 1.0, "the call came structured")
    parsed = parse_tool_call(raw_output)
    if parsed.call is None:
        return Grade("valid_json", 0.0, parsed.error)
    return Grade("valid_json", 1.0, "a JSON tool call was found")


def name_match(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
    """1 if the called function is the expected one."""
    if call is None:
        return Grade("name_match", 0.0, _NO_CALL)
    if call.name == expected.name:
        return Grade("name_match", 1.0, f"called {call.name}")
    return Grade("name_match", 0.0, f"called {call.name} instead of {expected.name}")


def required_args(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
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


def args_exact(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
    """1 if the arguments equal the expected ones exactly (same keys, same JSON values)."""
    if call is None:
        return Grade("args_exact", 0.0, _NO_CALL)
    if _same_json(call.arguments, expected.arguments):
        return Grade("args_exact", 1.0, "arguments match exactly")
    key = _first_difference(call.arguments, expected.arguments, _same_json)
    return Grade("args_exact", 0.0, f"argument {key!r} differs from the expected value")


def args_normalised(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
    """Fraction of argument keys (expected or given) whose values agree after normalisation.

    Strings compare ignoring case, whitespace, underscores and hyphens; numbers equal numeric
    strings; booleans equal "true"/"false"; lists compare as multisets; null counts as absent.
    """
    if call is None:
        return Grade("args_normalised", 0.0, _NO_CALL)
    got = {k: v for k, v in call.arguments.items() if v is not None}
    want = {k: v for k, v in expected.arguments.items() if v is not None}
    keys = list(want) + [k for k in got if k not in want]
    if not keys:
        return Grade("args_normalised", 1.0, "no arguments expected or given")
    wrong = [k for k in keys if k not in got or k not in want or not values_match(got[k], want[k])]
    score = 1.0 - len(wrong) / len(keys)
    if not wrong:
        return Grade("args_normalised", 1.0, "arguments match after normalisation")
    k = wrong[0]
    if k not in got:
        why = f"argument {k!r} is missing (expected {json.dumps(want[k], ensure_ascii=False)})"
    elif k not in want:
        why = f"argument {k!r} was not expected"
    else:
        why = (f"argument {k!r} is {json.dumps(got[k], ensure_ascii=False)}, "
               f"expected {json.dumps(want[k], ensure_ascii=False)}")
    return Grade("args_normalised", score, why)


def schema_valid(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Grade:
    """1 if the call names an offered tool and its arguments validate against the tool's schema."""
    if call is None:
        return Grade("schema_valid", 0.0, _NO_CALL)
    tool = tool_by_name(tools, call.name)
    if tool is None:
        return Grade("schema_valid", 0.0, f"{call.name} is not one of the offered tools")
    try:
        error = best_match(_validator(json.dumps(tool["parameters"], sort_keys=True)).iter_errors(call.arguments))
    except SchemaError as e:
        return Grade("schema_valid", 0.0, f"{call.name}'s parameters are not a valid JSON schema: {e.message}")
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        return Grade("schema_valid", 0.0, f"arguments break {call.name}'s schema"
                                         f"{f' at {where}' if where else ''}: {error.message}")
    return Grade("schema_valid", 1.0, f"arguments fit {call.name}'s schema")


GRADERS: dict[str, Grader] = {
    "valid_json": valid_json,
    "name_match": name_match,
    "required_args": required_args,
    "args_normalised": args_normalised,
    "schema_valid": schema_valid,
    "args_exact": args_exact,
}


def grade(raw_output: str, call: ToolCall | None, expected: ToolCall, tools: Tools) -> Verdict:
    """Run every grader and combine them into a Verdict (success, reward, one-sentence reason)."""
    grades = {name: g(raw_output or "", call, expected, tools) for name, g in GRADERS.items()}
    scores = {name: round(g.score, 4) for name, g in grades.items()}
    success = scores["name_match"] == 1.0 and scores["args_normalised"] == 1.0
    reward = sum(WEIGHTS[n] * s for n, s in scores.items()) / sum(WEIGHTS.values())
    failed = next((grades[n] for n in CHECK_ORDER if grades[n].score < 1.0), None)
    if failed is None:
        reason = f"Correct: {expected.name} called with the expected arguments."
    elif success:
        reason = f"Correct after normalisation, but {failed.reason}."
    else:
        reason = f"Failed {failed.name}: {failed.reason}."
    return Verdict(success=success, reward=round(reward, 4), reason=reason, scores=scores)


# --- normalisation -----------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s_\-]+")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def normalise_value(value: Any) -> Any:
    """A comparable form of a JSON value (see args_normalised for the rules).

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


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)  # a broken schema is the tool's fault, said as such
    return Draft202012Validator(schema)
