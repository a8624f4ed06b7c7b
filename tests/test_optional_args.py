"""Optional values kept only where the conversation states them, in suites whose references leave them out
(agentlearn/optional_args.py)."""

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


def test_references_that_accept_optional_arguments_left_out_make_answers_keep_only_stated_ones_but_those_a_tool_needs():
    tasks = [_task(i, AREA, {"base": [i], "height": [2], "unit": ["units", ""]}) for i in range(4)]
    tasks += [_task(10 + i, ROOTS, {"a": [i], "root_type": ["all"]}) for i in range(2)]  # needed both times
    tasks += [_task(20 + i, AREA, {"base": [i], "height": [2]}) for i in range(3)]  # left out: not given
    tasks.append(_task(30, AREA, {"base": [1], "height": [2], "unit": ["cm"]}, split="heldout"))  # not train: unread
    rule = optional_args.rule(tasks)
    assert rule == OptionalRule(leave_out=True, kept=frozenset({"roots.root_type"}), cases=9, needed=2)
    assert "only where the request states them" in rule.describe() and "roots.root_type" in rule.describe()
    said = "Find the area of a triangle with a base of 10 cm and height of 5."
    area = ToolCall(name="area", arguments={"base": 10, "height": 5, "unit": "hecta"})
    assert optional_args.stated_only(area, [AREA], rule, said).arguments == {"base": 10, "height": 5}
    stated = area.model_copy(update={"arguments": {"base": 10, "height": 5, "unit": "CM"}})
    assert optional_args.stated_only(stated, [AREA], rule, said) == stated
    roots = ToolCall(name="roots", arguments={"a": 1, "root_type": "real"})  # unstated, but the tool needs it
    assert optional_args.stated_only(roots, [ROOTS], rule, said) == roots


@pytest.mark.parametrize(("value", "said", "kept"), [
    ("height", "a base of 10 and height of 5", False),  # another argument's name
    (5, "a base of 10 and height of 5", False),  # another argument's value
    ("circle", "the area of a circle of radius 3", False),  # a word of the tool's own description
    ("m", "a radius of 3 mm", False),  # inside a word
    (3, "a radius of 3.5", False),  # inside a number
    (2.0, "round to 2 places", True),
    (["a", "b"], "tags a and b", True),
    (["a", "z"], "tags a and b", False),
    (3, "for the next three days", True),  # a number written as a word
    ("historical records", "the earliest reference in the historical record", True),  # words of the same stems
    (["price", "rating"], "the average price and ratings", True),
    ("record historical", "the earliest reference in the historical record", False),  # ...in the same order
    ("priced", "the average price", True),
    ("pricing", "the average prize", False),
    (True, "true", False),  # a switch is stated by the words of its name, not by "true"
    (False, "without any extra cost", True),  # ...which the request says (the model chose the value)
])
def test_a_value_is_stated_only_as_a_word_of_its_own_that_no_other_part_of_the_call_or_the_tool_explains(
        value, said, kept):
    tool = {"name": "geometry.area", "description": "The area of a circle or a square.", "parameters": {
        "type": "object", "required": ["base", "height"], "properties": {
            "base": {"type": "integer"}, "height": {"type": "integer"}, "extra": {}}}}
    call = ToolCall(name="geometry.area", arguments={"base": 10, "height": 5, "extra": value})
    out = optional_args.stated_only(call, [tool], OptionalRule(leave_out=True), said)
    assert ("extra" in out.arguments) is kept


@pytest.mark.parametrize(("name", "said", "kept"), [
    ("include_precipitation", "the weather in New York including the precipitation", True),  # any form of each word
    ("standardize", "Run a linear regression. Also apply standardization.", True),
    ("equalVariance", "assuming equal variance", True),  # camel case
    ("include_details", "the weather with details", False),  # one word unsaid
])
def test_a_switch_is_stated_by_each_word_of_its_name_in_any_form(name, said, kept):
    tool = {"name": "lookup", "parameters": {"type": "object", "properties": {name: {"type": "boolean"}}}}
    call = ToolCall(name="lookup", arguments={name: True})
    assert (name in optional_args.stated_only(call, [tool], OptionalRule(leave_out=True), said).arguments) is kept


def test_references_that_fill_their_optional_arguments_keep_them_offered():
    tasks = [_task(i, AREA, expected={"base": i, "height": 2, "unit": "cm"}) for i in range(6)]  # plain expected calls
    rule = optional_args.rule(tasks)
    assert rule == OptionalRule(leave_out=False, cases=6, needed=6) and "offered" in rule.describe()
    invented = ToolCall(name="area", arguments={"base": 1, "height": 2, "unit": "hecta"})
    assert optional_args.stated_only(invented, [AREA], rule, "") == invented


def test_too_few_cases_say_nothing_and_tools_without_properties_pass_unchanged():
    few = [_task(i, AREA, {"base": [i], "height": [2], "unit": [""]}) for i in range(optional_args.MIN_CASES - 1)]
    assert not optional_args.rule(few).leave_out
    bare = {"name": "ping", "parameters": {"type": "object"}}
    ping = ToolCall(name="ping", arguments={"host": "x"})
    assert optional_args.stated_only(ping, [bare], OptionalRule(leave_out=True), "") == ping
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
    as_written = left_out = kept_stated = 0
    for row in (r for r in rows if r["category"] == "simple_python"):
        task = by_id[row["id"]]
        calls = [ToolCall(name=c["name"], arguments=c["arguments"]) for c in row["calls"]]
        required = set(task.tools[0]["parameters"].get("required", []))
        trimmed = [ToolCall(name=c.name, arguments={k: v for k, v in c.arguments.items() if k in required}) for c in calls]
        said = "\n".join(m.content for m in task.input if m.role != "system")
        stated = [optional_args.stated_only(c, task.tools, rule, said) for c in calls]
        as_written += references.grade(task, calls, row["output"]).success
        left_out += references.grade(task, trimmed, row["output"]).success
        kept_stated += references.grade(task, stated, row["output"]).success
    assert (as_written, left_out, kept_stated) == (61, 77, 78)
