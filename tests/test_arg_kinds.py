"""Argument kinds: inference from schemas and a suite's own tasks, overrides, and the value-based fallback."""

from __future__ import annotations

import pytest

from agentlearn import arg_kinds, tasks
from agentlearn.arg_kinds import infer, kind_of, kinds_for
from storage.records import Message, Suite, Task, ToolCall


def task(i: int, text: str, name: str, **args) -> Task:
    return Task(suite="s", sample_id=f"t{i}", split="train", input=[Message(role="user", content=text)],
                expected=ToolCall(name=name, arguments=args))


ROUTE = {"name": "route", "parameters": {"type": "object", "properties": {
    "queue": {"type": "string", "enum": ["billing", "tech"]},
    "labels": {"type": "array", "items": {"enum": ["vip", "new"]}},
    "urgent": {"type": "boolean"},
    "count": {"type": "integer"},
    "when": {"type": "string", "format": "date"},
    "anything": {"type": "string"},
    "free": True,
}}}


def test_schema_rules_come_first_and_unseen_plain_strings_are_left_out():
    kinds = infer([], [ROUTE])
    assert kinds == {"route": {"queue": "categorical", "labels": "categorical", "urgent": "categorical",
                               "count": "extractive", "when": "extractive"}}


def test_ids_in_the_text_are_extractive_and_sentences_are_free_text():
    rows = [
        task(0, "Order ORD-7781 from Jane Doe arrived broken.", "refund", order="ORD-7781", customer="Jane Doe",
             note="The parcel was crushed in transit", amount=25),
        task(1, "Please refund order ORD-1203 for Bo Li, it never came.", "refund", order="ord 1203", customer="bo li",
             note="Customer says the delivery never arrived", amount="12.50"),
        task(2, "Refund for Sam Roe, order ORD-5521, wrong size sent.", "refund", order="ORD-5521", customer="Sam Roe",
             note="We shipped a size that was not ordered", amount=40),
    ]
    assert infer(rows, []) == {"refund": {"order": "extractive", "customer": "extractive", "note": "free_text",
                                          "amount": "extractive"}}


def test_invented_labels_are_free_text_and_text_spans_written_as_labels_are_extractive():
    rows = [
        task(0, "I was locked out for 2 hours", "unlock", duration="2_hours", summary="account_lockout_issue"),
        task(1, "Locked out since 30 minutes ago", "unlock", duration="30-minutes", summary="repeated_login_failure"),
    ]
    assert infer(rows, []) == {"unlock": {"duration": "extractive", "summary": "free_text"}}


def test_a_small_reused_set_is_categorical_counted_across_tools():
    levels = ["p1", "p2", "p1", "p2"]
    rows = [task(i, "it broke", "page" if i % 2 else "ticket", severity=level, title=f"broken thing {i}")
            for i, level in enumerate(levels)]
    kinds = infer(rows, [])
    assert kinds["page"]["severity"] == kinds["ticket"]["severity"] == "categorical"  # two of each, four in all
    assert kinds["ticket"]["title"] == "free_text"  # distinct values are no category
    sentences = [task(i, "x", "t", reason=["the disk is full again today", "the fan makes a loud noise"][i % 2])
                 for i in range(6)]
    assert infer(sentences, [])["t"]["reason"] == "free_text"  # a repeated sentence is still a sentence


def test_booleans_and_numbers_and_arrays():
    rows = [task(0, "Tags urgent and vpn, 3 users", "t", flag=True, n=3, tags=["urgent", "vpn"]),
            task(1, "Tags network, 5 users", "t", flag=False, n=5, tags=["network"])]
    assert infer(rows, []) == {"t": {"flag": "categorical", "n": "extractive", "tags": "extractive"}}


def test_overrides_win_and_the_fallback_decides_for_unknown_arguments():
    suite = Suite(name="s", arg_kinds={"t": {"a": "extractive", "b": "free_text"}},
                  arg_kind_overrides={"t": {"b": "categorical"}, "u": {"c": "free_text"}})
    kinds = kinds_for(suite)
    assert kinds == {"t": {"a": "extractive", "b": "categorical"}, "u": {"c": "free_text"}}
    assert kind_of(kinds, "t", "b", "whatever it is") == "categorical"
    assert kind_of(kinds, "t", "unseen", True) == "categorical"
    assert kind_of(kinds, "t", "unseen", 12.5) == "extractive"
    assert kind_of(None, "t", "unseen", "INC-0042") == "extractive"
    assert kind_of(None, "t", "unseen", "slow_internet") == "extractive"  # two words: short enough to copy
    assert kind_of(None, "t", "unseen", "the wifi drops every hour") == "free_text"
    assert kind_of(None, "t", "unseen", ["restart the router", "check the cables"]) == "free_text"
    assert kind_of(None, "t", "unseen", ["vpn", "mail"]) == "extractive"


def test_table_lists_every_schema_argument():
    suite = Suite(name="s", tools=[ROUTE], arg_kinds=infer([], [ROUTE]), arg_kind_overrides={"route": {"count":
                                                                                                      "free_text"}})
    rows = {r["argument"]: r for r in arg_kinds.table(suite)}
    assert list(rows) == ["queue", "labels", "urgent", "count", "when", "anything", "free"]
    assert rows["count"] == {"tool": "route", "argument": "count", "kind": "free_text", "inferred": "extractive",
                             "set_by": "person"}
    assert rows["anything"]["kind"] == "" and rows["anything"]["inferred"] == ""


def test_check_kind():
    assert arg_kinds.check_kind("free_text") == "free_text"
    with pytest.raises(ValueError, match="unknown argument kind 'prose' .known: categorical, extractive, free_text"):
        arg_kinds.check_kind("prose")


def test_the_built_in_suite_gets_enums_as_categories_and_names_as_extractive(ws):
    suite = tasks.ensure_demo_suite(ws)
    kinds = kinds_for(suite)
    assert kinds["reset_password"]["delivery"] == "categorical"
    assert kinds["reset_password"]["username"] == "extractive"
    assert kinds["schedule_meeting_room"]["date"] == "extractive"  # dates are identifiers, even when worked out
    assert set(kinds) == {t["name"] for t in suite.tools}
