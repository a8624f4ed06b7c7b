"""The tool-call grammar's schemas: cleaned for xgrammar, strings bounded by the suite's own values."""

from __future__ import annotations

from agentlearn import grammar
from storage.records import ToolCall

TOOL = {"name": "open_ticket", "description": "",
        "parameters": {"type": "object", "properties": {
            "title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"type": "string", "enum": ["low", "high"]}, "count": {"type": "integer"},
            "ref": {"$ref": "http://example.invalid/schema.json"}, "any": True},
            "required": ["title", "gone"]}}


def test_limits_come_from_the_longest_reference_value_with_a_margin():
    calls = [ToolCall(name="open_ticket", arguments={"title": "x" * 10, "tags": ["ab", "abcdef"]}),
             ToolCall(name="open_ticket", arguments={"title": "x" * 20})]
    limits = grammar.string_limits(calls)
    assert limits["open_ticket.title"] == 20 * 1.5 + 8 and limits["open_ticket.tags"] == 6 * 1.5 + 8
    assert limits["*"] == limits["open_ticket.title"]  # arguments never seen: the suite's longest
    assert grammar.string_limits([])["*"] <= grammar.MAX_STRING_CHARS


def test_bounded_tools_carry_max_length_on_strings_and_string_items_only():
    [tool] = grammar.with_string_limits([TOOL], {"open_ticket.title": 12, "*": 30})
    props = tool["parameters"]["properties"]
    assert props["title"]["maxLength"] == 12 and props["tags"]["items"]["maxLength"] == 30
    assert "maxLength" not in props["level"] and "maxLength" not in props["count"]
    assert "maxLength" not in TOOL["parameters"]["properties"]["title"]  # the suite's tool is not changed


def test_the_call_schema_drops_references_and_keeps_only_known_required_keys():
    schema = grammar.call_schema([TOOL])
    args = schema["properties"]["arguments"]
    assert schema["properties"]["name"] == {"const": "open_ticket"}
    assert args["properties"]["ref"] == {} and args["properties"]["any"] == {}  # no $ref is ever followed
    assert args["required"] == ["title"]
    both = grammar.call_schema([TOOL, {**TOOL, "name": "close_ticket"}])
    assert [o["properties"]["name"]["const"] for o in both["anyOf"]] == ["open_ticket", "close_ticket"]
