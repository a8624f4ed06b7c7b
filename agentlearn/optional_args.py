"""Which optional arguments an answer keeps, from what a suite's references do with them.

A small model offered an optional argument fills it with a made-up value ("unit": "hecta", "z": 4)
rather than leave it out, but it also copies the value a request does give ("in Celsius", "top 5").
Where a suite's references leave optional arguments out, or accept them left out, an answer keeps an
optional value only where the conversation states it (`stated_only`): the value is written in the
request or a tool's result as a word or number of its own ("3" or "three"), or as words of the same stems
("historical records" for "historical record", ["price", "rating"] for "price and ratings"), it is not another argument's
value of the same call, nor one of the tool's argument names or a word of the tool's own name and
description (a request that speaks of "a circle" gives "circle" to no argument); a boolean is stated when
the conversation says each word of its argument's name in some form ("assuming equal variance":
`equal_variance`; "including the precipitation": `include_precipitation`). Of 104 answers of the embedded SmolLM2
to BFCL simple_python (tests/data/bfcl_answers.jsonl), 61 are right as written, 77 with every optional
argument removed, 78 with the stated ones kept.

`rule(tasks)` reads the train split. Each optional argument (in the tool's properties, not in its
`required`) of each reference call is one case; it is needed when the reference gives it and does not
accept it left out (a plain expected call has no alternatives: an argument it gives is needed). When
fewer than half of at least MIN_CASES cases are needed, answers keep only stated optional values, except
for arguments a tool's references need in most of their cases (kept as written). Suites whose references
fill their optional arguments (most hand-written suites) keep them all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import snowballstemmer

from agentlearn.suites.references import OMIT, reference_of
from agentlearn.toolcall import tool_by_name
from storage.records import Task, ToolCall

MIN_CASES = 5  # fewer cases than this say too little about a suite: optional arguments stay offered
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen twenty".split()
NUMBER_WORDS = {n: (word,) for n, word in enumerate(_ONES)} | {
    10 * n: (word,) for n, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)} | {
    12: ("twelve", "dozen"), 100: ("hundred",), 1000: ("thousand",)}  # "the next three days": days=3


@dataclass(frozen=True)
class OptionalRule:
    """Keep only stated optional values in answers (all of those in `kept`, "tool.argument"), and the evidence."""

    leave_out: bool = False
    kept: frozenset[str] = field(default_factory=frozenset)
    cases: int = 0
    needed: int = 0

    def describe(self) -> str:
        if not self.cases:
            return "optional arguments offered (no reference gives a case)"
        share = f"the references need {self.needed} of {self.cases} optional arguments they could"
        if not self.leave_out:
            return f"optional arguments offered ({share})"
        return (f"optional arguments kept only where the request states them ({share})"
                + (f"; {', '.join(sorted(self.kept))} kept as written" if self.kept else ""))


def rule(tasks: list[Task]) -> OptionalRule:
    """The rule for a suite from its train tasks (see the module's docstring)."""
    cases: Counter[str] = Counter()
    needed: Counter[str] = Counter()
    for task in tasks:
        if task.split != "train":
            continue
        schemas = {t.get("name"): t.get("parameters") or {} for t in task.tools if isinstance(t, dict)}
        for ref in reference_of(task).calls:
            params = schemas.get(ref.name)
            if not isinstance(params, dict) or not isinstance(params.get("properties"), dict):
                continue
            required = set(params.get("required") or [])
            for arg in params["properties"]:
                if arg in required:
                    continue
                key = f"{ref.name}.{arg}"
                cases[key] += 1
                given = ref.arguments.get(arg)
                needed[key] += bool(given) and OMIT not in given
    total, total_needed = sum(cases.values()), sum(needed.values())
    if total < MIN_CASES or total_needed * 2 >= total:
        return OptionalRule(cases=total, needed=total_needed)
    kept = frozenset(k for k, n in cases.items() if n >= 2 and needed[k] * 2 > n)
    return OptionalRule(leave_out=True, kept=kept, cases=total, needed=total_needed)


def stated_only(call: ToolCall, tools: list[dict[str, Any]], optional: OptionalRule, said: str) -> ToolCall:
    """The call without the optional values `said` (the conversation's words) does not state, where the rule
    leaves optional arguments out (see the module's docstring); other calls as they are."""
    if not optional.leave_out:
        return call
    tool = tool_by_name(tools, call.name)
    params = tool["parameters"] if tool else {}
    if not isinstance(params.get("properties"), dict):
        return call
    required = set(params.get("required") or [])
    own = _words(f"{tool['name']} {tool['description']}")  # "geometry.area_circle" -> "geometry area circle"
    names = {name.lower() for name in params["properties"]}
    conversation = _Said(said.lower(), _stems(said))

    def invented(name: str, value: Any) -> bool:
        if name in required or f"{call.name}.{name}" in optional.kept:
            return False
        if isinstance(value, bool):
            return not _names_a_switch(name, conversation.stems)
        if not _stated(value, conversation) or value in [v for k, v in call.arguments.items() if k != name]:
            return True
        return isinstance(value, str) and (value.lower() in names or _has_word(own, _words(value)))

    keep = {name: value for name, value in call.arguments.items() if not invented(name, value)}
    return call if keep == call.arguments else call.model_copy(update={"arguments": keep})


@dataclass(frozen=True)
class _Said:
    text: str  # the conversation, lower case
    stems: tuple[str, ...]  # its words' stems, in order


def _stated(value: Any, said: _Said) -> bool:
    """Whether the conversation writes `value`: a number as a word of its own ("3" or "three"), a string as a word
    or phrase of its own or as words of the same stems in the same order, every item of a list."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        forms = {str(value)} | ({str(int(value)), *NUMBER_WORDS.get(int(value), ())} if float(value).is_integer() else set())
        return any(_has_word(said.text, form) for form in forms)
    if isinstance(value, str):
        return bool(value.strip()) and (_has_word(said.text, value.lower()) or _has_phrase(said.stems, _stems(value)))
    if isinstance(value, list):
        return bool(value) and all(_stated(item, said) for item in value)
    return False


def _names_a_switch(name: str, stems: tuple[str, ...]) -> bool:
    """Whether the conversation (its words' `stems`) says each word of a boolean argument's name, in any form:
    "assuming equal variance" for `equal_variance`, "including the precipitation" for `include_precipitation`;
    "with details" for `include_details` does not (a small model sets a switch the request never mentions as
    readily as one it asks for)."""
    words = _stems(re.sub(r"([a-z])([A-Z])", r"\1 \2", name))
    return bool(words) and set(words) <= set(stems)


def _has_phrase(stems: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return n > 0 and any(stems[i:i + n] == phrase for i in range(len(stems) - n + 1))


def _stems(text: str) -> tuple[str, ...]:
    """The stems of `text`'s words (Snowball's English stemmer: "ratings" and "rating" -> "rate"). A stemmer keeps
    state while it works, so each call makes its own (a quarter of a microsecond): answers are read in threads."""
    return tuple(snowballstemmer.stemmer("english").stemWords(_words(text).split()))


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w|\.\d)", text) is not None  # not 3 of "3.5" or "mm"
