"""Tool calls as text: parse what a model wrote, write the canonical form, normalise tool schemas.

The canonical form, used in exemplars, prompts and SFT targets, is

    <tool_call>{"name": "reset_password", "arguments": {"username": "jdoe"}}</tool_call>

Parsing is lenient because small models are sloppy: the closing tag may be missing (output cut off),
a `<think>...</think>` block may come first, the JSON may stand bare in the text, "arguments" may be
a JSON string and "parameters" is accepted for "arguments". The first call found wins.

Parsing never raises, not even on JSON nested too deeply for Python's recursion limit.

A tool is kept in one form everywhere: {"name": str, "description": str, "parameters": JSON schema}.
OpenAI-style definitions ({"type": "function", "function": {...}}) are unwrapped to it. Its schema is
checked with `schema_validator`, which never fetches a `$ref`: references resolve inside the schema
or fail with a clear message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry

from storage.records import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
TAGS = ("<think>", "</think>", OPEN, CLOSE)  # an SFT adapter's tokenizer holds these as special tokens
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_decoder = json.JSONDecoder()
_TOO_DEEP = "JSON nested too deeply to read"
# Deeper arguments are refused: grading, storing and prompting recurse into them.
MAX_NESTING = 64


@dataclass(frozen=True)
class ParsedCall:
    """The call found in a model's output (None if none), why not, and the reasoning before it."""

    call: ToolCall | None
    error: str = ""
    thought: str = ""

    @property
    def ok(self) -> bool:
        return self.call is not None


def format_tool_call(call: ToolCall) -> str:
    """The canonical `<tool_call>{json}</tool_call>` text of a call."""
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{OPEN}{body}{CLOSE}"


def format_tool_calls(calls: list[ToolCall]) -> str:
    """The canonical text of an answer of several calls: each call's text, one a line."""
    return "\n".join(format_tool_call(c) for c in calls)


def parse_tool_call(text: str) -> ParsedCall:
    """Find the first tool call in a model's output; never raises."""
    text = text or ""
    thought, rest, offset = _split_thought(text)
    start = rest.find(OPEN)
    if start >= 0:
        body_start = start + len(OPEN)
        end = rest.find(CLOSE, body_start)
        body = rest[body_start:] if end < 0 else rest[body_start:end]
        if not thought:
            thought = rest[:start].strip()
        return _parse_tagged(body, offset + body_start, thought)
    return _parse_bare(rest, offset, thought)


@dataclass(frozen=True)
class ParsedCalls:
    """Every call in a model's output, in order; the first error; the reasoning; the text when no call was made."""

    calls: list[ToolCall]
    error: str = ""
    thought: str = ""
    answer: str = ""


def parse_tool_calls(text: str) -> ParsedCalls:
    """Every `<tool_call>` block of an output (or its one bare JSON call); never raises.

    An output without a call is an answer in words: `answer` holds it (without a leading thought). A
    block that does not parse is left out of `calls` and named in `error`.
    """
    text = text or ""
    if OPEN not in text:
        one = parse_tool_call(text)
        if one.call is not None:
            return ParsedCalls([one.call], "", one.thought)
        thought, rest, _ = _split_thought(text)
        return ParsedCalls([], "", thought, rest.strip())
    calls, errors, thought, at = [], [], "", 0
    while (start := text.find(OPEN, at)) >= 0:
        end = text.find(CLOSE, start)
        block = text[start:] if end < 0 else text[start:end + len(CLOSE)]
        parsed = parse_tool_call(block)
        if not calls and not errors:
            thought = parse_tool_call(text[:start] + block).thought
        if parsed.call is not None:
            calls.append(parsed.call)
        else:
            errors.append(parsed.error)
        if end < 0:
            break
        at = end + len(CLOSE)
    return ParsedCalls(calls, errors[0] if errors else "", thought)


def without_repeats(calls: list[ToolCall]) -> list[ToolCall]:
    """The calls in order, less any that repeats an earlier one word for word (name and arguments; ids aside).

    An answer ends at such a repeat (grammar.logits_processor): the repeat is the model looping, not a
    second request (1 of BFCL's 440 parallel references asks for one call twice).
    """
    seen: set[str] = set()
    out = []
    for call in calls:
        key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(call)
    return out


def _split_thought(text: str) -> tuple[str, str, int]:
    """(thought, text after it, offset of that text in the original)."""
    m = _THINK.search(text)
    if m is None or text[: m.start()].strip():
        return "", text, 0
    return m.group(1).strip(), text[m.end():], m.end()


def _parse_tagged(body: str, offset: int, thought: str) -> ParsedCall:
    lead = len(body) - len(body.lstrip())
    if not body.strip():
        return ParsedCall(None, "empty <tool_call> block", thought)
    if body[lead] != "{":
        return ParsedCall(None, f"invalid JSON at char {offset + lead}: expected '{{' after {OPEN}", thought)
    try:
        obj, _ = _decoder.raw_decode(body, lead)
    except json.JSONDecodeError as e:
        return ParsedCall(None, f"invalid JSON at char {offset + e.pos}: {e.msg}", thought)
    except RecursionError:
        return ParsedCall(None, f"{_TOO_DEEP} at char {offset + lead}", thought)
    call, error = _to_call(obj)
    return ParsedCall(call, error, thought)


def _parse_bare(text: str, offset: int, thought: str) -> ParsedCall:
    first_error = ""
    i = text.find("{")
    if i < 0:
        return ParsedCall(None, "no tool call found", thought)
    while i >= 0:
        try:
            obj, end = _decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            first_error = first_error or f"invalid JSON at char {offset + e.pos}: {e.msg}"
            i = text.find("{", i + 1)
            continue
        except RecursionError:  # later "{"s are likely inside this deep object; trying each would take quadratic time
            return ParsedCall(None, first_error or f"{_TOO_DEEP} at char {offset + i}", thought)
        call, error = _to_call(obj)
        if call is not None:
            return ParsedCall(call, "", thought or text[:i].strip())
        first_error = first_error or error
        i = text.find("{", end)  # skip the inside of an object that was not a call
    return ParsedCall(None, first_error or "no tool call found", thought)


def _to_call(obj: Any) -> tuple[ToolCall | None, str]:
    if not isinstance(obj, dict):
        return None, f"a tool call must be a JSON object, not {type(obj).__name__}"
    if "name" not in obj and isinstance(obj.get("function"), dict):
        obj = obj["function"]  # OpenAI style {"type": "function", "function": {...}}
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, "missing 'name'" if name is None else "'name' must be a non-empty string"
    args = obj.get("arguments", obj.get("parameters"))
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            return None, f"'arguments' is a string that is not valid JSON (char {e.pos}: {e.msg})"
        except RecursionError:
            return None, f"'arguments' is a string of {_TOO_DEEP}"
    if not isinstance(args, dict):
        return None, f"'arguments' must be a JSON object, not {type(args).__name__}"
    if nesting_depth(args) > MAX_NESTING:
        return None, f"'arguments' are nested more than {MAX_NESTING} levels deep"
    return ToolCall(name=name.strip(), arguments=args), ""


# --- tool definitions --------------------------------------------------------------------------


def normalise_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """One tool definition in the form {"name", "description", "parameters"}; raises ValueError if unusable."""
    if not isinstance(tool, dict):
        raise ValueError(f"a tool must be a JSON object, not {type(tool).__name__}")
    inner = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = inner.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a tool needs a non-empty 'name'")
    description = inner.get("description") or ""
    if not isinstance(description, str):
        raise ValueError(f"tool {name!r}: 'description' must be a string")
    params = inner.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise ValueError(f"tool {name!r}: 'parameters' must be a JSON schema object")
    return {"name": name.strip(), "description": description, "parameters": params}


def tool_by_name(tools: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The tool called `name` (in normalised form) among `tools`, or None."""
    for tool in tools:
        inner = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if inner.get("name") == name:
            return normalise_tool(tool)
    return None


def schema_validator(parameters: dict[str, Any]) -> Draft202012Validator:
    """A validator for a tool's parameters; SchemaError if the schema is broken. It never fetches a `$ref`."""
    return _validator(json.dumps(parameters, sort_keys=True))


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    # A registry without a retrieve function: an http or file reference is unresolvable, never downloaded.
    return Draft202012Validator(schema, registry=Registry())


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep a JSON value goes (a scalar is 0); iterative, so any depth is fine."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def external_refs(schema: Any) -> list[str]:
    """Every `$ref` in a schema that points outside it (not starting with '#'), in document order."""
    found, stack = [], [schema]
    while stack:  # iterative: a deeply nested schema must not hit the recursion limit
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.append(ref)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found
