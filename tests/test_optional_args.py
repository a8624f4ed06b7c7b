"""Optional arguments left out where a suite's references leave them out (agentlearn/optional_args.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import optional_args
from agentlearn.optional_args import OptionalRule
from storage.records import CallReference, Reference, Task, ToolCall

AREA = {"name": "area", "parameters": {"type": "object", "required": ["base", "height"], "properties": {
    "base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}}}}
ROOTS = {"name": "roots", "parameters": {"type": "object", "required": ["a"], "properties": {
    "a": {"type": "integer"}, "root_type": {"type": "string"}}}}


def _task(n: int, tool: dict, reference: dict | None = None, expected: dict | None = None, split: str = "train") -> Task:
    ref = Reference(calls=[CallReference(name=tool["name"], arguments=reference)]) if reference is not None else None
    return Task(id=f"t{n}", suite="s", sample_id=str(n), split=split, input=[], tools=[tool], reference=ref,
                expected=ToolCall(name=tool["name"], arguments=expected or {}))


def test_references_that_accept_optional_arguments_left_out_make_answers_leave_them_out_but_those_a_tool_needs():
    tasks = [_task(i, AREA, {"base": [i], "height": [2], "unit": ["units", ""]}) for i in range(4)]
    tasks += [_task(10 + i, ROOTS, {"a": [i], "root_type": ["all"]}) for i in range(2)]  # needed both times
    tasks += [_task(20 + i, AREA, {"base": [i], "height": [2]}) for i in range(3)]  # left out: not given
    tasks.append(_task(30, AREA, {"base": [1], "height": [2], "unit": ["cm"]}, split="heldout"))  # not train: unread
    rule = optional_args.rule(tasks)
    assert rule == OptionalRule(leave_out=True, kept=frozenset({"roots.root_type"}), cases=9, needed=2)
    assert "left out" in rule.describe() and "roots.root_type" in rule.describe()
    area, roots = optional_args.applied([AREA, ROOTS], rule)
    assert list(area["parameters"]["properties"]) == ["base", "height"]
    assert list(roots["parameters"]["properties"]) == ["a", "root_type"]
    assert "unit" in AREA["parameters"]["properties"]  # the suite's tool is not changed


def test_references_that_fill_their_optional_arguments_keep_them_offered():
    tasks = [_task(i, AREA, expected={"base": i, "height": 2, "unit": "cm"}) for i in range(6)]  # plain expected calls
    rule = optional_args.rule(tasks)
    assert rule == OptionalRule(leave_out=False, cases=6, needed=6) and "offered" in rule.describe()
    assert optional_args.applied([AREA], rule) == [AREA]


def test_too_few_cases_say_nothing_and_tools_without_properties_pass_unchanged():
    few = [_task(i, AREA, {"base": [i], "height": [2], "unit": [""]}) for i in range(optional_args.MIN_CASES - 1)]
    assert not optional_args.rule(few).leave_out
    bare = {"name": "ping", "parameters": {"type": "object"}}
    assert optional_args.applied([bare], OptionalRule(leave_out=True)) == [bare]
    assert optional_args.rule([]).describe().startswith("optional arguments offered")


def test_the_options_name_the_rule_and_all_turns_it_off():
    from agentlearn.methods import RunOptions

    assert RunOptions().optional_args == "auto"
    assert "optional-args all" in RunOptions(optional_args="all").label()


def test_on_bfcl_simple_python_the_rule_leaves_optional_arguments_out_and_that_rights_real_answers():
    """The real import of BFCL simple_python, and 104 real answers of the embedded model to it: the figures in
    the module's docstring."""
    from agentlearn.suites import bfcl, references

    drafts = {d.sample_id: d for d in bfcl.read("simple_python")["drafts"]}
    tasks = [Task(id=f"t:{d.sample_id}", suite="s", sample_id=d.sample_id, split="train", input=d.input, tools=d.tools,
                  expected=d.expected, tags=d.tags, reference=d.reference) for d in drafts.values()]
    rule = optional_args.rule(tasks)
    assert rule.leave_out and rule.needed * 2 < rule.cases  # 106 of 293 optional arguments needed
    rows = [json.loads(x) for x in (Path(__file__).parent / "data" / "bfcl_answers.jsonl").read_text().splitlines()]
    by_id = {t.sample_id: t for t in tasks}
    as_written = left_out = 0
    for row in (r for r in rows if r["category"] == "simple_python"):
        task = by_id[row["id"]]
        calls = [ToolCall(name=c["name"], arguments=c["arguments"]) for c in row["calls"]]
        [tool] = optional_args.applied(task.tools, rule)
        allowed = set(tool["parameters"]["properties"])
        trimmed = [ToolCall(name=c.name, arguments={k: v for k, v in c.arguments.items() if k in allowed}) for c in calls]
        as_written += references.grade(task, calls, row["output"]).success
        left_out += references.grade(task, trimmed, row["output"]).success
    assert (as_written, left_out) == (61, 77)


@pytest.mark.slow
def test_the_compiled_grammar_refuses_an_optional_argument_the_rule_left_out(real_ws):
    import xgrammar as xgr

    from agentlearn.llm import grammar_compiler
    from agentlearn.models import chat_model_dir

    compiler = grammar_compiler(str(chat_model_dir(real_ws.settings.models_dir)))

    def accepts(tools: list[dict], text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiler.compile(tools))
        return all(matcher.accept_string(ch) for ch in text)

    with_unit = '{"name": "area", "arguments": {"base": 1, "height": 2, "unit": "cm"}}'
    assert accepts([AREA], with_unit)
    trimmed = optional_args.applied([AREA], OptionalRule(leave_out=True))
    assert not accepts(trimmed, with_unit)
    assert accepts(trimmed, '{"name": "area", "arguments": {"base": 1, "height": 2}}')
