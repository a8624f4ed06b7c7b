"""What every task file format shares: a task as read (Draft), JSON lines read with their line
number, and the checks of text and tool schemas that make a store refuse nothing it was handed.

agentlearn.tasks (the JSONL format and the one import path) and agentlearn.suites.bfcl (BFCL's format)
both read through these, so that a bad line is refused the same way whatever its format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agentlearn.toolcall import MAX_NESTING, external_refs, normalise_tool
from storage.records import Message, Reference, ToolCall


def _check_tool(tool: dict[str, Any]) -> dict[str, Any]:
    tool = normalise_tool(tool)
    try:
        Draft202012Validator.check_schema(tool["parameters"])
    except SchemaError as e:
        raise ValueError(f"tool {tool['name']!r}: 'parameters' is not a valid JSON schema: {e.message}") from None
    except RecursionError:  # lines are bounded by check_text first; this guards tools given from code
        raise ValueError(f"tool {tool['name']!r}: 'parameters' is nested too deeply to check") from None
    outside = external_refs(tool["parameters"])
    if outside:
        raise ValueError(f"tool {tool['name']!r}: $ref {outside[0]!r} points outside the schema; only references "
                         "inside it ('#/...') are allowed, nothing is fetched")
    return tool


MAX_DIGITS = 100  # a longer run of digits is no id or count; Python refuses ints past 4,300 digits anyway


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number with {len(text.lstrip('-'))} digits (at most {MAX_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large for a float")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str) -> Any:
    """json.loads that refuses what a store cannot keep as written: huge numbers, NaN and Infinity."""
    return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)


def check_text(value: Any, what: str) -> None:
    """ValueError naming the place (`what`, then the JSON path) of the first problem in a parsed value:
    nested more than MAX_NESTING levels, a lone surrogate (not text: it cannot be written as UTF-8), or
    a NUL character (PostgreSQL cannot store it, so neither backend takes it). Iterative: any depth is fine."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node, path, what)
            continue
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = [(str(i), v) for i, v in enumerate(node)]
        else:
            continue
        if depth >= MAX_NESTING:
            shown = path if len(path) <= 80 else path[:80] + "..."
            raise ValueError(f"{what}: nested more than {MAX_NESTING} levels deep (at {shown or 'the top'})")
        for key, child in reversed(children):  # document order: the first problem in the line is named
            where = f"{path}.{key}" if path else key
            if isinstance(node, dict):
                _check_string(key, where, what, "the key of ")
            stack.append((child, where, depth + 1))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_string(text: str, path: str, what: str, part: str = "") -> None:
    if "\x00" in text:
        raise ValueError(f"{what}: {part}{path or 'the value'} holds a NUL character (\\u0000); the store "
                         "cannot keep it: remove it")
    bad = _SURROGATE.search(text)
    if bad:
        raise ValueError(f"{what}: {part}{path or 'the value'} holds \\u{ord(bad.group()):04x}, half of a "
                         "surrogate pair, which is not text: fix the escape or remove it")


def _decode(raw: bytes, n: int, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not UTF-8 text (byte {e.start + 1} of the line is {raw[e.start]:#04x}); "
                         "save the file as UTF-8") from None
    return text.removeprefix("\ufeff") if n == 1 else text  # a byte order mark some editors write


def parse_json_line(raw: bytes, n: int, where: str) -> Any:
    """The JSON value of line `n` of a file (None for a blank line); ValueError starting with `where`."""
    text = _decode(raw, n, where)
    if not text.strip():
        return None
    try:
        return _loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: invalid JSON at column {e.colno}: {e.msg}") from None
    except ValueError as e:  # a number refused by _loads
        raise ValueError(f"{where}: {e}") from None
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply to read (more than {MAX_NESTING} levels)") from None


def check_task_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's tools in the stored form, each a valid JSON schema with no outside $ref; ValueError otherwise."""
    return [_check_tool(t) for t in tools]


@dataclass
class Draft:
    """One task as a reader read it, before the suite, its split and its ids are given."""

    sample_id: str
    input: list[Message]
    expected: ToolCall
    tools: list[dict[str, Any]] | None = None  # None: the suite's tools
    tags: list[str] = field(default_factory=list)
    reference: Reference | None = None
    turns: list[list[Message]] = field(default_factory=list)
    turn_calls: list[list[ToolCall]] = field(default_factory=list)
    held_back: dict[int, list[str]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
