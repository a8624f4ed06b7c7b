"""How the agent reads the numbers of its own answers: as the tool's schema and the request mean them.

A constrained small model writes values JSON accepts but a tool may not take as meant: a whole number
where the schema types a number (`[1, 3]` for an array of floats), and a rate the request gives as a
percentage written as that percentage (5.0 for "5%") where tools take a fraction (0.05). Both are read
back here, after the answer is parsed and before it is run or graded.
"""

from __future__ import annotations

import re
from typing import Any

from agentlearn.toolcall import MAX_NESTING, tool_by_name
from storage.records import ToolCall

# "5%", "5.5 %", "5 percent": a rate the request gives as a percentage.
PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*\d)")


def with_typed_numbers(call: ToolCall, tools: list[dict[str, Any]]) -> ToolCall:
    """The call with each whole number its tool's schema types "number" (not "integer") written as a float.

    A constrained model writes `[1, 3]` for an array of floats as readily as `[1.0, 3.0]`; JSON Schema holds
    both valid, but a Python tool (and BFCL's checker, inside a list) tells int from float: 4 of 57 failed
    answers to BFCL simple_python were whole numbers in a float array.
    """
    tool = tool_by_name(tools, call.name)
    if tool is None:
        return call
    return call.model_copy(update={"arguments": _typed_numbers(call.arguments, tool["parameters"], 0)})


def _typed_numbers(value: Any, schema: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_NESTING:
        return value
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_typed_numbers(v, schema["items"], depth + 1) for v in value]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: _typed_numbers(v, schema["properties"].get(k), depth + 1) for k, v in value.items()}
    return value


def with_fractions(call: ToolCall, tools: list[dict[str, Any]], said: str) -> ToolCall:
    """The call with each number argument that repeats a percentage of `said` ("5%": 5 or 5.0) written as
    its fraction (0.05), unless the argument's description asks for a percentage.

    Of 18 BFCL simple_python requests giving a rate as "N%", 16 expect the fraction (the other 2 describe
    their argument "as a percentage"); the embedded model wrote the percentage in 4 of its 57 failures.
    """
    # A number the request also gives plainly ("10%" and "10 years") may be either: left as written.
    plain = {float(n) for n in NUMBER.findall(PERCENT.sub(" ", said))}
    percents = {float(n) for n in PERCENT.findall(said)} - plain
    tool = tool_by_name(tools, call.name) if percents else None
    props = (tool or {}).get("parameters", {}).get("properties")
    if not isinstance(props, dict):
        return call
    out = dict(call.arguments)
    for name, value in call.arguments.items():
        spec = props.get(name) if isinstance(props.get(name), dict) else {}
        if (spec.get("type") == "number" and isinstance(value, int | float) and not isinstance(value, bool)
                and float(value) in percents and "percent" not in str(spec.get("description", "")).lower()):
            out[name] = round(float(value) / 100, 12)
    return call if out == call.arguments else call.model_copy(update={"arguments": out})
