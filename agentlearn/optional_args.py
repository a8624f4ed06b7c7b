"""Which optional arguments an answer may write, from what a suite's references do with them.

A small model offered an optional argument fills it with a made-up value ("unit": "hecta", "z": 4)
rather than leave it out. Where a suite's references leave optional arguments out, or accept them left
out, such a value is far more often wrong than right: of 104 answers of the embedded SmolLM2 to BFCL
simple_python (tests/data/bfcl_answers.jsonl), 61 are right as written and 77 with their optional
arguments removed.

`rule(tasks)` reads the train split. Each optional argument (in the tool's properties, not in its
`required`) of each reference call is one case; it is needed when the reference gives it and does not
accept it left out (a plain expected call has no alternatives: an argument it gives is needed). When
fewer than half of at least MIN_CASES cases are needed, answers leave optional arguments out, except
those a tool's references need in most of their cases. `applied(tools, rule)` is what the grammar is
then compiled from: the tools without the arguments left out. Suites whose references fill their
optional arguments (most hand-written suites) keep them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agentlearn.suites.references import OMIT, reference_of
from storage.records import Task

MIN_CASES = 5  # fewer cases than this say too little about a suite: optional arguments stay offered


@dataclass(frozen=True)
class OptionalRule:
    """Leave optional arguments out of answers (but those in `kept`, "tool.argument"), and the evidence."""

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
        return f"optional arguments left out ({share})" + (f", but {', '.join(sorted(self.kept))}" if self.kept else "")


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


def applied(tools: list[dict[str, Any]], optional: OptionalRule) -> list[dict[str, Any]]:
    """Copies of the tools without the optional arguments the rule leaves out (the others unchanged)."""
    if not optional.leave_out:
        return tools
    out = []
    for tool in tools:
        params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
        props = params.get("properties") if isinstance(params.get("properties"), dict) else None
        if not props:
            out.append(tool)
            continue
        required = set(params.get("required") or [])
        keep = {k: v for k, v in props.items() if k in required or f"{tool.get('name')}.{k}" in optional.kept}
        out.append({**tool, "parameters": {**params, "properties": keep}})
    return out
