"""Numbers of the agent's answers read as the tool means them (agentlearn/answer_values.py)."""

from __future__ import annotations

from agentlearn.answer_values import with_fractions, with_typed_numbers
from storage.records import ToolCall


def test_whole_numbers_the_schema_types_number_become_floats_at_any_depth_and_integers_stay():
    tool = {"name": "fit", "parameters": {"type": "object", "properties": {
        "points": {"type": "array", "items": {"type": "number"}}, "degree": {"type": "integer"},
        "rate": {"type": "number"}, "flag": {"type": "number"},
        "box": {"type": "object", "properties": {"w": {"type": "number"}}}}}}
    call = ToolCall(name="fit", arguments={"points": [1, 2.5, 3], "degree": 2, "rate": 5, "flag": True,
                                           "box": {"w": 4, "extra": 1}, "unknown": 7})
    typed = with_typed_numbers(call, [tool]).arguments
    assert typed == {"points": [1.0, 2.5, 3.0], "degree": 2, "rate": 5.0, "flag": True, "box": {"w": 4.0, "extra": 1},
                     "unknown": 7}
    assert [type(v) for v in typed["points"]] == [float] * 3 and type(typed["degree"]) is int
    assert type(typed["box"]["extra"]) is int and typed["flag"] is True
    assert with_typed_numbers(call, []).arguments is call.arguments  # a tool not offered: left as written


def test_a_rate_given_as_a_percentage_is_written_as_its_fraction_unless_the_argument_asks_for_a_percentage():
    tool = {"name": "npv", "parameters": {"type": "object", "properties": {
        "rate": {"type": "number", "description": "The discount rate."},
        "growth": {"type": "number", "description": "Growth as a percentage."},
        "years": {"type": "integer"}, "cash": {"type": "number"}}}}
    said = "Discount at 8% with 5.5 percent growth over 10 years on $3 of cash."
    call = ToolCall(name="npv", arguments={"rate": 8.0, "growth": 5.5, "years": 10, "cash": 3})
    assert with_fractions(call, [tool], said).arguments == {"rate": 0.08, "growth": 5.5, "years": 10, "cash": 3}
    already = ToolCall(name="npv", arguments={"rate": 0.08})
    assert with_fractions(already, [tool], said) == already
    both = ToolCall(name="npv", arguments={"rate": 10})  # "10%" and "10 years": either, so as written
    assert with_fractions(both, [tool], "Discount at 10% over 10 years.") == both
    assert with_fractions(call, [tool], "Discount at 10 over 10 years.") == call  # no percentage in the request
