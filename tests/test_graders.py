"""Graders: each aspect alone, normalisation rules, each argument kind's rule, and the combined verdict."""

from __future__ import annotations

import pytest

from agentlearn import graders
from agentlearn.graders import (
    FREE_TEXT_THRESHOLD,
    WEIGHTS,
    args_exact,
    args_normalised,
    args_score,
    argument_grades,
    call_match,
    grade,
    name_match,
    required_args,
    schema_valid,
    token_f1,
    valid_json,
    values_match,
)
from agentlearn.toolcall import format_tool_call
from storage.records import ToolCall

TOOL = {"type": "function", "function": {
    "name": "schedule_meeting_room", "description": "Book a room.",
    "parameters": {"type": "object", "properties": {
        "room": {"type": "string"},
        "date": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
        "duration_minutes": {"type": "integer", "minimum": 15},
        "attendees": {"type": "integer"},
    }, "required": ["room", "date", "duration_minutes"], "additionalProperties": False},
}}
TOOLS = [TOOL]
EXPECTED = ToolCall(name="schedule_meeting_room", arguments={"room": "Orion", "date": "2025-03-14",
                                                               "duration_minutes": 60})


def call(**args) -> ToolCall:
    return ToolCall(name="schedule_meeting_room", arguments=args)


def test_perfect_call_scores_one_everywhere():
    v = grade(format_tool_call(EXPECTED), EXPECTED, EXPECTED, TOOLS)
    assert v.success and v.reward == 1.0
    assert v.scores == {name: 1.0 for name in WEIGHTS}
    assert v.reason == "Correct: schedule_meeting_room called with the expected arguments."


def test_no_call_fails_every_grader():
    v = grade("I am not sure.", None, EXPECTED, TOOLS)
    assert not v.success and v.reward == 0.0
    assert set(v.scores) == set(WEIGHTS) and not any(v.scores.values())
    assert v.reason == "Failed valid_json: no tool call found."


def test_wrong_name():
    other = ToolCall(name="order_hardware", arguments=EXPECTED.arguments)
    g = name_match("", other, EXPECTED, TOOLS)
    assert g.score == 0.0 and g.reason == "called order_hardware instead of schedule_meeting_room"
    v = grade(format_tool_call(other), other, EXPECTED, TOOLS)
    assert not v.success
    assert v.reason.startswith("Failed name_match: called order_hardware")
    assert v.scores["schema_valid"] == 0.0  # order_hardware was not offered


def test_required_args_from_schema_or_expected_call():
    g = required_args("", call(room="Orion"), EXPECTED, TOOLS)
    assert g.score == pytest.approx(1 / 3)
    assert "date, duration_minutes" in g.reason
    # Without the tool's schema, the expected call's own arguments are the required ones.
    g = required_args("", call(room="Orion", date="2025-03-14"), EXPECTED, [])
    assert g.score == pytest.approx(2 / 3) and "duration_minutes" in g.reason
    assert required_args("", call(room="x", date="y", duration_minutes=1), EXPECTED, TOOLS).score == 1.0


def test_normalisation_rules():
    assert values_match("Active_Directory", "active directory")
    assert values_match("  2-hours ", "2_hours")
    assert values_match("60", 60) and values_match(60.0, 60) and values_match("1e2", 100)
    assert values_match("true", True) and not values_match("true", 1)
    assert values_match(["b", "A"], ["a", "b"]) and not values_match(["a"], ["a", "a"])
    assert values_match({"k": [1, "2"]}, {"k": [2, 1]})
    assert not values_match("Orion", "Vega") and not values_match(60, 61)


def test_args_normalised_vs_exact():
    loose = call(room="orion", date="2025-03-14", duration_minutes="60")
    assert args_exact("", loose, EXPECTED, TOOLS).score == 0.0
    assert "'room'" in args_exact("", loose, EXPECTED, TOOLS).reason
    assert args_normalised("", loose, EXPECTED, TOOLS).score == 1.0
    reordered = call(duration_minutes=60, date="2025-03-14", room="Orion")
    assert args_exact("", reordered, EXPECTED, TOOLS).score == 1.0  # key order does not matter
    flag = ToolCall(name="t", arguments={"on": True})
    assert args_exact("", ToolCall(name="t", arguments={"on": 1}), flag, []).score == 0.0  # True is not 1
    assert args_exact("", ToolCall(name="t", arguments={"n": 60.0}), ToolCall(name="t", arguments={"n": 60}),
                      []).score == 0.0
    v = grade(format_tool_call(loose), loose, EXPECTED, TOOLS)
    assert v.success and v.reward < 1.0
    assert v.scores["schema_valid"] == 0.0  # "60" is not an integer
    assert v.reason.startswith("Correct under each argument's rule, but arguments break")


def test_args_normalised_partial_credit_and_reasons():
    g = args_normalised("", call(room="Vega", date="2025-03-14", duration_minutes=60), EXPECTED, TOOLS)
    assert g.score == pytest.approx(2 / 3)
    assert g.reason == "argument 'room' is \"Vega\", expected \"Orion\""
    g = args_normalised("", call(room="Orion", date="2025-03-14", duration_minutes=60, attendees=3), EXPECTED, TOOLS)
    assert g.score == pytest.approx(3 / 4) and g.reason == "argument 'attendees' was not expected"
    g = args_normalised("", call(room="Orion", date="2025-03-14"), EXPECTED, TOOLS)
    assert "'duration_minutes' is missing" in g.reason
    # null counts as absent on both sides
    assert args_normalised("", call(room="Orion", date="2025-03-14", duration_minutes=60, attendees=None),
                           EXPECTED, TOOLS).score == 1.0


def test_schema_valid():
    assert schema_valid("", EXPECTED, EXPECTED, TOOLS).score == 1.0
    g = schema_valid("", call(room="Orion", date="14/03/2025", duration_minutes=60), EXPECTED, TOOLS)
    assert g.score == 0.0 and "at date" in g.reason
    g = schema_valid("", call(room="Orion", date="2025-03-14", duration_minutes=60, colour="red"), EXPECTED, TOOLS)
    assert g.score == 0.0 and "colour" in g.reason
    g = schema_valid("", EXPECTED, EXPECTED, [])
    assert g.score == 0.0 and g.reason == "schedule_meeting_room is not one of the offered tools"
    bad_schema = [{"name": "schedule_meeting_room", "parameters": {"type": "no-such-type"}}]
    assert "not a valid JSON schema" in schema_valid("", EXPECTED, EXPECTED, bad_schema).reason


def test_valid_json():
    assert valid_json('<tool_call>{"name": "x"}</tool_call>', None, EXPECTED, TOOLS).score == 1.0
    g = valid_json('<tool_call>{"name": "x",</tool_call>', None, EXPECTED, TOOLS)
    assert g.score == 0.0 and g.reason.startswith("invalid JSON at char")
    assert valid_json("", EXPECTED, EXPECTED, TOOLS).score == 1.0  # a structured call (no text) is fine


def test_reward_is_the_documented_weighted_mean():
    wrong_room = call(room="Vega", date="2025-03-14", duration_minutes=60)
    v = grade(format_tool_call(wrong_room), wrong_room, EXPECTED, TOOLS)
    expected = sum(WEIGHTS[n] * s for n, s in v.scores.items()) / sum(WEIGHTS.values())
    assert v.reward == pytest.approx(expected, abs=1e-4)
    assert v.scores["args_score"] == pytest.approx(2 / 3, abs=1e-4)
    assert 0.0 < v.reward < 1.0 and not v.success
    assert v.reason == "Failed call_match: argument 'room' is \"Vega\", expected \"Orion\"."


def test_every_grader_has_the_shared_signature_and_a_weight():
    assert set(graders.GRADERS) == set(WEIGHTS) == set(graders.CHECK_ORDER) | {"args_score"}
    for name, g in graders.GRADERS.items():
        result = g("", EXPECTED, EXPECTED, TOOLS)
        assert result.name == name and 0.0 <= result.score <= 1.0 and result.reason
        assert g("", EXPECTED, EXPECTED, TOOLS, {"room": "free_text"}).name == name


# --- argument kinds ------------------------------------------------------------------------------

TICKET = ToolCall(name="escalate", arguments={
    "ticket_id": "INC-0042", "priority": "high", "reason": "The mail server has been down since this morning",
})
TICKET_KINDS = {"ticket_id": "extractive", "priority": "categorical", "reason": "free_text"}
ESCALATE = {"name": "escalate", "parameters": {"type": "object", "properties": {
    "ticket_id": {"type": "string"}, "priority": {"enum": ["low", "high"]}, "reason": {"type": "string"}}}}


def ticket(**changes) -> ToolCall:
    return ToolCall(name="escalate", arguments={**TICKET.arguments, **changes})


def test_token_f1():
    assert token_f1("mail server down", "the mail server is down") == pytest.approx(2 * 1 * 0.6 / 1.6)
    assert token_f1("password_expired", "Password expired!") == 1.0  # `_` splits words, case and punctuation go
    assert token_f1("expired password", "password expired") == 1.0  # order does not matter
    assert token_f1("printer jam", "vpn down") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1(None, "a") == 0.0
    assert token_f1(["a b", "c"], "c b a") == 1.0  # arrays are compared as their text together


def test_free_text_is_right_by_similarity_and_ids_must_match():
    paraphrase = ticket(reason="mail server down since the morning")
    v = grade("", paraphrase, TICKET, [ESCALATE], TICKET_KINDS)
    assert v.success and v.scores["call_match"] == 1.0 and v.scores["args_exact"] == 0.0
    reason = next(a for a in v.arguments if a.name == "reason")
    assert reason.kind == "free_text" and reason.status == "right" and FREE_TEXT_THRESHOLD <= reason.score < 1
    assert v.scores["args_score"] == pytest.approx((1 + 1 + reason.score) / 3, abs=1e-4)
    assert v.reason.startswith("Correct under each argument's rule, but argument 'reason' differs")
    # The same paraphrase with no kinds: a sentence is free text by the value-based fallback.
    assert grade("", paraphrase, TICKET, []).success
    # Everything categorical (the kind-free rule) wants the words exactly.
    assert not grade("", paraphrase, TICKET, [], dict.fromkeys(TICKET_KINDS, "categorical")).success

    unrelated = grade("", ticket(reason="user asked for a new laptop"), TICKET, [], TICKET_KINDS)
    assert not unrelated.success
    assert "(free text, similarity 0.00 < 0.5)" in unrelated.reason
    wrong_id = grade("", ticket(ticket_id="INC-0043"), TICKET, [], TICKET_KINDS)
    assert not wrong_id.success and wrong_id.reason == ("Failed call_match: argument 'ticket_id' is \"INC-0043\", "
                                                        "expected \"INC-0042\".")
    assert grade("", ticket(ticket_id="inc 0042", priority="HIGH"), TICKET, [], TICKET_KINDS).success  # normalised
    assert not grade("", ticket(priority="low"), TICKET, [], TICKET_KINDS).success


def test_argument_grades_statuses_and_scores():
    got = ToolCall(name="escalate", arguments={"ticket_id": "INC-0042", "priority": "low", "team": "network",
                                               "note": None})
    grades = {a.name: a for a in argument_grades(got, TICKET, TICKET_KINDS)}
    assert list(grades) == ["ticket_id", "priority", "reason", "team"]  # expected first, then unexpected; nulls absent
    assert [(a.status, a.score) for a in grades.values()] == [("right", 1.0), ("wrong", 0.0), ("missing", 0.0),
                                                              ("unexpected", 0.0)]
    assert grades["reason"].expected == TICKET.arguments["reason"] and grades["team"].got == "network"
    assert grades["priority"].kind == "categorical" and grades["team"].kind == "extractive"  # fallback for unknown
    assert args_score("", got, TICKET, [], TICKET_KINDS).score == pytest.approx(1 / 4)
    assert call_match("", got, TICKET, [], TICKET_KINDS).reason == "argument 'priority' is \"low\", expected \"high\""
    v = grade("", got, TICKET, [], TICKET_KINDS)
    assert [a.name for a in v.arguments] == list(grades) and not v.success


def test_a_wrong_name_scores_no_arguments():
    other = ToolCall(name="close_ticket", arguments=TICKET.arguments)
    v = grade("", other, TICKET, [], TICKET_KINDS)
    assert v.scores["name_match"] == v.scores["call_match"] == v.scores["args_score"] == 0.0
    assert v.arguments == []


def test_arrays_by_kind():
    want = ToolCall(name="t", arguments={"tags": ["vpn", "urgent"]})
    assert grade("", ToolCall(name="t", arguments={"tags": ["URGENT", "vpn"]}), want, [], {"tags": "categorical"}).success
    assert not grade("", ToolCall(name="t", arguments={"tags": ["vpn"]}), want, [], {"tags": "categorical"}).success
    labels = ToolCall(name="t", arguments={"steps": ["check_cables", "restart_router"]})
    split_differently = ToolCall(name="t", arguments={"steps": ["restart the router", "check cables"]})
    assert grade("", split_differently, labels, [], {"steps": "free_text"}).success
    assert not grade("", split_differently, labels, [], {"steps": "extractive"}).success


def test_schema_refs_are_never_fetched(monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("a schema reference was fetched")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    for ref in ("http://example.com/schema.json", "file:///etc/passwd"):
        tools = [{"name": "t", "parameters": {"type": "object", "properties": {"a": {"$ref": ref}}}}]
        g = schema_valid("", ToolCall(name="t", arguments={"a": 1}), ToolCall(name="t"), tools)
        assert g.score == 0.0 and g.reason == (f"t's schema refers to {ref!r}, which is not inside the schema "
                                               "(references are never fetched)")
    local = [{"name": "t", "parameters": {"type": "object", "$defs": {"n": {"type": "integer"}},
                                          "properties": {"a": {"$ref": "#/$defs/n"}}}}]
    assert schema_valid("", ToolCall(name="t", arguments={"a": 1}), ToolCall(name="t"), local).score == 1.0
    assert schema_valid("", ToolCall(name="t", arguments={"a": "x"}), ToolCall(name="t"), local).score == 0.0


def test_boolean_subschemas_grade_without_crashing():
    tools = [{"name": "t", "parameters": {"type": "object", "properties": {"a": True, "b": False}}}]
    want = ToolCall(name="t", arguments={"a": {"any": ["thing"]}})
    v = grade("", want, want, tools)
    assert v.success and v.scores["schema_valid"] == 1.0
    assert grade("", ToolCall(name="t", arguments={"a": 1, "b": 2}), want, tools).scores["schema_valid"] == 0.0
