"""The tool-call grammar: what a constrained decoder may write for a set of tools.

The model writes the JSON object of one call, `{"name": <an offered tool>, "arguments": {...}}`, with the
argument keys of that tool's schema and values typed by it; the agent puts it between `<tool_call>` tags.
xgrammar compiles the JSON schema (an `anyOf` with one object per tool) against the tokenizer once per
tool set, and its transformers logits processor masks every token that would leave the grammar, row by
row in a batch.

Schemas come from users' suites, so they are cleaned before compiling: references and keywords xgrammar
cannot honour are dropped, free strings get a length bound and integers at most 15 digits (a small model
otherwise runs on inside a string, or writes zeros, until the budget ends), and a tool whose schema still
fails to compile falls back to "any JSON object" for its arguments rather than losing the constraint on
the name.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from agentlearn.toolcall import CLOSE, OPEN

MAX_STRING_CHARS = 160  # longer free text is not a tool argument a small model should write
MAX_ARRAY_ITEMS = 16  # the most items any array argument may get, whatever the suite's data
# An integer gets at most 15 digits (float64 holds them exactly). Unbounded, the small model runs on
# writing zeros ("total_outcomes": 1000000...) until the budget ends, leaving no call that parses: 5 of
# 100 answers to BFCL simple_python did. Numbers stay unbounded: a bound there drops exponents (1.6e-19).
MAX_INTEGER = 10**15 - 1
# Keys in the schema's order. xgrammar's any_order applies to every object, the call itself included, and
# then the model may write the arguments before the name: on one public suite (14 heldout tasks) name
# accuracy fell from 57% to 43% with it, for +0.01 args_score.
ANY_ORDER = False
_DROP = ("$ref", "$defs", "definitions", "$schema", "$id", "format", "pattern", "patternProperties",
         "dependencies", "dependentSchemas", "if", "then", "else", "not")
_lock = threading.Lock()
# A step's final answer: words, never starting a tag (a call is written in the grammar's other branch).
ANSWER_EBNF = "root ::= [^<] [^<]*"


def _clean(schema: Any, depth: int = 0) -> Any:
    """A copy of a JSON schema that xgrammar compiles: no references, bounded strings, no boolean quirks."""
    if depth > 12 or schema is True or not isinstance(schema, dict):
        return {}
    out = {k: v for k, v in schema.items() if k not in _DROP}
    for key in ("properties",):
        if isinstance(out.get(key), dict):
            out[key] = {name: _clean(sub, depth + 1) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _clean(out[key], depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_clean(sub, depth + 1) for sub in out[key]]
    types = out.get("type")
    if (types == "string" or (isinstance(types, list) and "string" in types)) and "enum" not in out:
        out["maxLength"] = min(int(out.get("maxLength", MAX_STRING_CHARS)), MAX_STRING_CHARS)
    if types in ("integer", ["integer"]):
        out["minimum"] = max(_bound(out.get("minimum"), -MAX_INTEGER, math.ceil), -MAX_INTEGER)
        out["maximum"] = min(_bound(out.get("maximum"), MAX_INTEGER, math.floor), MAX_INTEGER)
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [r for r in out["required"] if r in out["properties"]]
    return out


def _bound(value: Any, default: int, inward: Any) -> int:
    """An integer's bound from a schema (a float rounded inward), or `default` where it has none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return int(inward(value))


def _arguments_schema(tool: dict[str, Any]) -> dict[str, Any]:
    params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    cleaned = _clean(params)
    cleaned.setdefault("type", "object")
    return cleaned


def value_limits(calls: list[Any]) -> dict[str, Any]:
    """How long each argument's strings and arrays may be, from a suite's reference calls (ToolCall-like).

    {"tool.argument": chars, "*": chars for arguments never seen, "tool.argument[]": items, "*[]": items}:
    the longest value seen, plus half again and a little. A small model that starts repeating a word
    inside a string, or the same item inside an array, runs on to the end of the budget and leaves no
    parseable call; a bound from the suite's own data stops it where a real value would end.
    """
    longest: dict[str, int] = {}
    items: dict[str, int] = {}

    def visit(key: str, value: Any) -> None:
        if isinstance(value, str):
            longest[key] = max(longest.get(key, 0), len(value))
        elif isinstance(value, list):
            items[f"{key}[]"] = max(items.get(f"{key}[]", 0), len(value))
            for item in value:
                visit(key, item)

    for call in calls:
        for name, value in (call.arguments or {}).items():
            visit(f"{call.name}.{name}", value)
    bound = {key: min(MAX_STRING_CHARS, int(n * 1.5) + 8) for key, n in longest.items()}
    bound["*"] = min(MAX_STRING_CHARS, int(max(longest.values(), default=MAX_STRING_CHARS // 2) * 1.5) + 8)
    bound.update({key: min(MAX_ARRAY_ITEMS, int(n * 1.5) + 1) for key, n in items.items()})
    bound["*[]"] = min(MAX_ARRAY_ITEMS, int(max(items.values(), default=MAX_ARRAY_ITEMS // 2) * 1.5) + 1)
    return bound


def with_value_limits(tools: list[dict[str, Any]], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies of the tools whose string arguments (and string items of arrays) carry maxLength, and whose
    arrays carry maxItems, from `limits`."""
    if not limits:
        return tools
    out = []
    for tool in tools:
        params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
        props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
        new_props = {}
        for name, spec in props.items():
            key = f"{tool['name']}.{name}"
            new_props[name] = _bounded(spec, limits.get(key, limits.get("*")),
                                       limits.get(f"{key}[]", limits.get("*[]")))
        out.append({**tool, "parameters": {**params, "properties": new_props}} if props else tool)
    return out


def _bounded(spec: Any, chars: int | None, items: int | None) -> Any:
    if not isinstance(spec, dict) or "enum" in spec:
        return spec
    spec = dict(spec)
    types = spec.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and chars:
        spec["maxLength"] = min(int(spec.get("maxLength", chars)), chars)
    if "array" in types and items:
        spec["maxItems"] = max(int(spec.get("minItems", 0)), min(int(spec.get("maxItems", items)), items))
    if isinstance(spec.get("items"), dict):
        spec["items"] = _bounded(spec["items"], chars, None)
    return spec


def call_schema(tools: list[dict[str, Any]], loose: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The JSON schema of one call to one of `tools` (arguments of tools in `loose`: any object)."""
    options = []
    for tool in tools:
        args = {"type": "object"} if tool["name"] in loose else _arguments_schema(tool)
        options.append({"type": "object", "properties": {"name": {"const": tool["name"]}, "arguments": args},
                        "required": ["name", "arguments"]})
    return options[0] if len(options) == 1 else {"anyOf": options}


class Compiler:
    """Compiles tool sets for one tokenizer, caching by the tools' JSON."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import xgrammar as xgr

        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.compiler = xgr.GrammarCompiler(self.info)
        self._compile = lru_cache(maxsize=64)(self._compile_uncached)
        self._compile_step = lru_cache(maxsize=64)(self._compile_step_uncached)

    @property
    def stop_token_ids(self) -> list[int]:
        return list(self.info.stop_token_ids)

    def compile(self, tools: list[dict[str, Any]]) -> Any:
        """The compiled grammar of one call to one of `tools`."""
        with _lock:
            # Not sort_keys: the grammar writes keys in the schema's order, and sorted JSON would make
            # that alphabetical (the model could then not write an exemplar's first argument first).
            return self._compile(json.dumps(tools))

    def compile_step(self, tools: list[dict[str, Any]], max_calls: int, may_answer: bool = True) -> Any:
        """The compiled grammar of one step of an episode: 1..max_calls tagged calls of `tools`, or (when
        `may_answer`) an answer in words."""
        with _lock:
            return self._compile_step(json.dumps(tools), max_calls, may_answer)

    def _loose(self, tools: list[dict[str, Any]]) -> frozenset[str]:
        """The tools whose own schema does not compile (their arguments become any JSON object)."""
        loose: set[str] = set()
        for tool in tools:
            try:
                self.compiler.compile_json_schema(call_schema([tool]), any_whitespace=False)
            except Exception:  # xgrammar raises RuntimeError/ValueError for schemas it cannot honour
                loose.add(tool["name"])
        return frozenset(loose)

    def _compile_uncached(self, tools_json: str) -> Any:
        tools = json.loads(tools_json)
        return self.compiler.compile_json_schema(call_schema(tools, self._loose(tools)), any_whitespace=False,
                                                 any_order=ANY_ORDER)

    def _compile_step_uncached(self, tools_json: str, max_calls: int, may_answer: bool) -> Any:
        import xgrammar as xgr

        tools = json.loads(tools_json)
        call = xgr.Grammar.from_json_schema(json.dumps(call_schema(tools, self._loose(tools))), any_whitespace=False,
                                            any_order=ANY_ORDER)
        tagged = xgr.Grammar.concat(xgr.Grammar.from_ebnf(f'root ::= "{OPEN}"'), call,
                                    xgr.Grammar.from_ebnf(f'root ::= "{CLOSE}"'))
        then = xgr.Grammar.concat(xgr.Grammar.from_ebnf('root ::= "\\n"'), tagged)
        runs = [xgr.Grammar.concat(tagged, *[then] * n) if n else tagged for n in range(max(1, max_calls))]
        answer = [xgr.Grammar.from_ebnf(ANSWER_EBNF)] if may_answer else []
        return self.compiler.compile_grammar(xgr.Grammar.union(*answer, *runs) if len(answer) + len(runs) > 1 else runs[0])


def logits_processor(compiled: list[Any], end_on_repeat: list[bool] | None = None,
                     decode: Callable[[list[int]], str] | None = None, stop_ids: list[int] | None = None) -> Any:
    """A fresh transformers logits processor for one generate() call (one compiled grammar per row).

    Rows flagged in `end_on_repeat` (answers of several calls) end as soon as a call repeats an earlier
    call of the same answer word for word: only `stop_ids` may follow it. The 135M model otherwise writes
    one call again and again up to the most calls allowed: 13 of 20 answers to BFCL parallel did, at
    60 s a task. `decode` turns a row's new tokens into text.
    """
    import xgrammar as xgr

    if not (end_on_repeat and any(end_on_repeat) and decode and stop_ids):
        return xgr.contrib.hf.LogitsProcessor(copy.copy(compiled))
    return _ending_on_repeat()(copy.copy(compiled), end_on_repeat, decode, stop_ids)


def repeats_a_call(text: str) -> bool:
    """Whether `text` ends with a tagged call that it already wrote before, word for word."""
    if not text.rstrip().endswith(CLOSE):
        return False
    bodies = [part.split(OPEN, 1)[-1].strip() for part in text.rstrip().split(CLOSE)[:-1]]
    return len(bodies) > 1 and bodies[-1] in bodies[:-1]


@lru_cache(maxsize=1)
def _ending_on_repeat() -> type:
    """xgrammar's processor with an end on repeats (a class made on first use: xgrammar loads lazily)."""
    import torch
    import xgrammar as xgr

    class EndingOnRepeat(xgr.contrib.hf.LogitsProcessor):
        def __init__(self, compiled: list[Any], rows: list[bool], decode: Callable[[list[int]], str],
                     stop_ids: list[int]) -> None:
            super().__init__(compiled)
            self.rows, self.decode, self.stop_ids, self.start = rows, decode, stop_ids, None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if self.start is None:
                self.start = input_ids.shape[1]  # the prompt's length: what follows it is the answer
            scores = super().__call__(input_ids, scores)
            if input_ids.shape[1] == self.start:
                return scores
            for row, watched in enumerate(self.rows):
                if not watched or self.matchers[row].is_terminated():
                    continue
                if CLOSE[-1] not in self.decode(input_ids[row, -1:].tolist()):
                    continue  # a call ends only with the tag's last character
                if repeats_a_call(self.decode(input_ids[row, self.start:].tolist())):
                    allowed = torch.full_like(scores[row], float("-inf"))
                    allowed[self.stop_ids] = scores[row, self.stop_ids]
                    if torch.isfinite(allowed).any():  # the grammar may end here (it always may after a call)
                        scores[row] = allowed
            return scores

    return EndingOnRepeat
