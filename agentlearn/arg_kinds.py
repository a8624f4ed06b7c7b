"""Argument kinds: how each argument of each tool is graded.

- `categorical`: one of a known set of values (an enum in the schema, a boolean, or a small set of
  values the suite reuses). Compared after normalisation (graders.values_match).
- `extractive`: a value read from the conversation (identifiers, numbers, dates, names). Compared
  after normalisation too: a copied value is either right or wrong.
- `free_text`: words the caller chooses (a sentence, or an invented label such as a snake_case
  summary that is not in the conversation). Compared by token F1 (graders.FREE_TEXT_THRESHOLD).

`infer(tasks, tools)` decides a kind per (tool, argument) from the schema and the suite's own tasks
(every expected call with its conversation). The first rule that applies wins:

1. Schema: `enum` or `const` (for an array, on its items) or type boolean -> categorical.
2. Observed values (non-null; arrays and objects count their scalar leaves):
   a. all booleans -> categorical;
   b. a small reused set of short labels -> categorical: counted over every argument of that name in
      the suite (one suite tends to mean one thing by one name), at least MIN_REUSE_OBSERVATIONS
      values, at most CATEGORICAL_MAX_VALUES distinct ones after normalisation, no more distinct values
      than half the observations, and none longer than CATEGORICAL_MAX_WORDS words (a repeated
      sentence is still a sentence);
   c. otherwise each value of this tool's argument votes: extractive if it appears in its task's
      conversation (its lower-cased alphanumeric tokens occur there in a row, so "2_hours" is found in
      "locked out for 2 hours"), is a number, or looks like an identifier (a single word with a digit:
      INC-001, 2025-03-14, 95%); free_text if not. Extractive wins when at least half vote for it
      (the stricter rule on a tie).
3. Schema only (never observed): integer or number -> extractive; a string with `format` or
   `pattern` -> extractive; anything else is left out, and `kind_of` decides from the value.

`kinds_for(suite)` applies a person's overrides (Suite.arg_kind_overrides) over the inferred kinds.
`kind_of(kinds, tool, arg, value)` is what graders use; for an argument with no kind its fallback
looks at the value alone: booleans are categorical; numbers, identifiers and values of at most
FALLBACK_MAX_EXTRACTIVE_WORDS words are extractive; longer strings are free text; arrays and objects
are free text when most of their string leaves are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, get_args

from storage.records import ArgKind, Suite, Task

KINDS: tuple[str, ...] = get_args(ArgKind)
MIN_REUSE_OBSERVATIONS = 3
CATEGORICAL_MAX_VALUES = 10
CATEGORICAL_MAX_WORDS = 3
FALLBACK_MAX_EXTRACTIVE_WORDS = 2

Kinds = dict[str, dict[str, str]]

_TOKEN = re.compile(r"[^\W_]+")  # unicode letters and digits; `_`, `-` and punctuation split words
_IDENTIFIER = re.compile(r"^[^\s_]*\d[^\s_]*$")  # one word (no space or underscore) holding a digit
_WORDS = re.compile(r"[^\s_]+")


def tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens; `_`, `-` and punctuation separate words."""
    return _TOKEN.findall(str(text).lower())


def check_kind(kind: str) -> str:
    """The kind itself, or ValueError naming the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown argument kind {kind!r} (known: {', '.join(KINDS)})")
    return kind


# --- inference -----------------------------------------------------------------------------------


def infer(tasks: list[Task], tools: list[dict[str, Any]]) -> Kinds:
    """tool name -> argument name -> kind, from the tools' schemas and the tasks' expected calls."""
    observed: dict[str, dict[str, list[tuple[Any, list[str]]]]] = {}
    by_name: dict[str, list[Any]] = {}
    for task in tasks:
        if not task.expected.name:
            continue  # a task whose right answer is no call (BFCL irrelevance) shows no argument
        text = tokens(" ".join(m.content for m in task.input))
        args = observed.setdefault(task.expected.name, {})
        for arg, value in task.expected.arguments.items():
            if value is None:
                continue
            args.setdefault(arg, []).append((value, text))
            by_name.setdefault(arg, []).extend(_leaves(value))
    out: Kinds = {}
    schemas = {t["name"]: _properties(t) for t in tools}
    for tool in list(schemas) + [name for name in observed if name not in schemas]:
        props = schemas.get(tool, {})
        seen = observed.get(tool, {})
        kinds = {}
        for arg in list(props) + [a for a in seen if a not in props]:
            kind = _infer_one(props.get(arg), seen.get(arg, []), by_name.get(arg, []))
            if kind is not None:
                kinds[arg] = kind
        out[tool] = kinds
    return out


def _properties(tool: dict[str, Any]) -> dict[str, Any]:
    params = tool.get("parameters")
    props = params.get("properties") if isinstance(params, dict) else None
    return props if isinstance(props, dict) else {}


def _infer_one(spec: Any, seen: list[tuple[Any, list[str]]], same_name: list[Any]) -> str | None:
    spec = spec if isinstance(spec, dict) else {}  # a boolean subschema (`true`) says nothing
    if _schema_is_categorical(spec):
        return "categorical"
    leaves = [leaf for value, _ in seen for leaf in _leaves(value)]
    if leaves:
        if all(isinstance(v, bool) for v in leaves):
            return "categorical"
        if _reused_set(same_name):
            return "categorical"
        votes = [_looks_extractive(value, text) for value, text in seen]
        return "extractive" if sum(votes) * 2 >= len(votes) else "free_text"
    kind = spec.get("type")
    if kind in ("integer", "number") or (kind == "string" and ("format" in spec or "pattern" in spec)):
        return "extractive"
    return None


def _schema_is_categorical(spec: dict[str, Any]) -> bool:
    items = spec.get("items") if spec.get("type") == "array" else None
    if isinstance(items, dict) and ("enum" in items or "const" in items):
        return True
    return "enum" in spec or "const" in spec or spec.get("type") == "boolean"


def _reused_set(values: list[Any]) -> bool:
    if len(values) < MIN_REUSE_OBSERVATIONS:
        return False
    counts = Counter(_norm(v) for v in values)
    if any(len(label.split()) > CATEGORICAL_MAX_WORDS for label in counts):
        return False
    return len(counts) <= CATEGORICAL_MAX_VALUES and len(counts) * 2 <= len(values)


def _looks_extractive(value: Any, text: list[str]) -> bool:
    leaves = [v for v in _leaves(value) if not isinstance(v, bool)]
    if not leaves:
        return True
    found = [_leaf_extractive(v, text) for v in leaves]
    return sum(found) * 2 >= len(found)


def _leaf_extractive(value: Any, text: list[str]) -> bool:
    if isinstance(value, (int, float)):
        return True
    s = str(value).strip()
    return bool(_IDENTIFIER.match(s)) or _occurs(tokens(s), text)


def _occurs(needle: list[str], haystack: list[str]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    first = needle[0]
    return any(haystack[i:i + len(needle)] == needle
               for i in range(len(haystack) - len(needle) + 1) if haystack[i] == first)


def _leaves(value: Any) -> Iterator[Any]:
    """The scalar values inside a JSON value (arrays and objects flattened, nulls dropped)."""
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif value is not None:
        yield value


def _norm(value: Any) -> str:
    return " ".join(tokens(value)) if not isinstance(value, bool) else str(value)


# --- reading -------------------------------------------------------------------------------------


def kinds_for(suite: Suite) -> Kinds:
    """The suite's kinds per tool and argument, a person's overrides applied over the inferred ones."""
    out = {tool: dict(args) for tool, args in suite.arg_kinds.items()}
    for tool, args in suite.arg_kind_overrides.items():
        out.setdefault(tool, {}).update(args)
    return out


def kind_of(kinds: Kinds | None, tool: str, arg: str, value: Any) -> str:
    """The kind of `tool`'s argument `arg`; without one, decided from `value` (see the module docstring)."""
    known = (kinds or {}).get(tool, {}).get(arg)
    if known is not None:
        return known
    return _fallback(value)


def _fallback(value: Any) -> str:
    if isinstance(value, bool):
        return "categorical"
    if isinstance(value, (list, dict)):
        strings = [v for v in _leaves(value) if isinstance(v, str)]
        free = sum(_fallback(v) == "free_text" for v in strings)
        return "free_text" if strings and free * 2 > len(strings) else "extractive"
    if value is None or isinstance(value, (int, float)):
        return "extractive"
    s = str(value).strip()
    if _IDENTIFIER.match(s) or len(_WORDS.findall(s)) <= FALLBACK_MAX_EXTRACTIVE_WORDS:
        return "extractive"
    return "free_text"


def table(suite: Suite) -> list[dict[str, str]]:
    """One row per tool argument: tool, argument, kind in use ('' = decided from the value), inferred kind, who set it."""
    effective = kinds_for(suite)
    args_of = {t["name"]: list(_properties(t)) for t in suite.tools}
    for tool, args in effective.items():
        args_of.setdefault(tool, [])
        args_of[tool] += [a for a in args if a not in args_of[tool]]
    rows = []
    for tool, args in args_of.items():
        for arg in args:
            overridden = arg in suite.arg_kind_overrides.get(tool, {})
            rows.append({"tool": tool, "argument": arg, "kind": effective.get(tool, {}).get(arg, ""),
                         "inferred": suite.arg_kinds.get(tool, {}).get(arg, ""),
                         "set_by": "person" if overridden else "inferred"})
    return rows
