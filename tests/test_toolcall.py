"""Parsing and writing tool calls (also deeply nested input), normalising tool definitions, their schemas."""

from __future__ import annotations

import pytest

from agentlearn.toolcall import (
    MAX_NESTING,
    external_refs,
    format_tool_call,
    nesting_depth,
    normalise_tool,
    parse_tool_call,
    schema_validator,
    tool_by_name,
)
from storage.records import ToolCall


def test_tagged_call_with_think_block():
    text = ('<think>The user wants a reset by SMS.</think>\n'
            '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan", "delivery": "sms"}}</tool_call>')
    p = parse_tool_call(text)
    assert p.ok and p.error == ""
    assert p.call == ToolCall(name="reset_password", arguments={"username": "akhan", "delivery": "sms"})
    assert p.thought == "The user wants a reset by SMS."


def test_missing_closing_tag_after_truncation():
    p = parse_tool_call('<tool_call>{"name": "unlock_account", "arguments": {"username": "kd", "system": "vpn"}}')
    assert p.call == ToolCall(name="unlock_account", arguments={"username": "kd", "system": "vpn"})


def test_bare_json_in_prose_and_text_before_is_the_thought():
    p = parse_tool_call('I will look it up. {"name": "lookup_employee", "arguments": {"name": "Tom", "field": "email"}} done')
    assert p.call == ToolCall(name="lookup_employee", arguments={"name": "Tom", "field": "email"})
    assert p.thought == "I will look it up."


def test_bare_json_skips_objects_without_name():
    p = parse_tool_call('{"note": {"name": "not a call"}} then {"name": "check_service_status", "arguments": {}}')
    assert p.call == ToolCall(name="check_service_status")


def test_arguments_as_json_string_and_parameters_alias():
    p = parse_tool_call('<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>')
    assert p.call == ToolCall(name="a", arguments={"x": 1})
    p = parse_tool_call('<tool_call>{"name": "b", "parameters": {"y": [1, 2]}}</tool_call>')
    assert p.call == ToolCall(name="b", arguments={"y": [1, 2]})


def test_openai_function_wrapper():
    p = parse_tool_call('{"type": "function", "function": {"name": "c", "arguments": "{\\"z\\": true}"}}')
    assert p.call == ToolCall(name="c", arguments={"z": True})


def test_first_of_several_calls_wins():
    text = format_tool_call(ToolCall(name="first")) + format_tool_call(ToolCall(name="second"))
    assert parse_tool_call(text).call.name == "first"


@pytest.mark.parametrize("text, error", [
    ("", "no tool call found"),
    ("I cannot help with that.", "no tool call found"),
    ('<tool_call>{"arguments": {}}</tool_call>', "missing 'name'"),
    ('{"arguments": {"a": 1}}', "missing 'name'"),
    ('<tool_call>{"name": "", "arguments": {}}</tool_call>', "'name' must be a non-empty string"),
    ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "'arguments' must be a JSON object"),
    ('<tool_call>{"name": "a", "arguments": "{oops"}</tool_call>', "'arguments' is a string that is not valid JSON"),
    ("<tool_call></tool_call>", "empty <tool_call> block"),
])
def test_errors_say_what_is_wrong(text, error):
    p = parse_tool_call(text)
    assert p.call is None and not p.ok
    assert error in p.error


def test_invalid_json_error_gives_the_position_in_the_text():
    text = '<tool_call>{"name": "a", "arguments": {"x": 1,}}</tool_call>'
    p = parse_tool_call(text)
    assert p.call is None
    assert p.error.startswith("invalid JSON at char ")
    pos = int(p.error.split("char ")[1].split(":")[0])
    assert text[pos] == "}"  # the position points at the offending character in the whole output


def test_format_round_trips_and_keeps_unicode():
    call = ToolCall(name="lookup_employee", arguments={"name": "Zoë Müller", "field": "email"})
    text = format_tool_call(call)
    assert text.startswith("<tool_call>{") and text.endswith("}</tool_call>")
    assert "Zoë" in text
    assert parse_tool_call(text).call == call


def test_normalise_tool_accepts_both_forms():
    params = {"type": "object", "properties": {"a": {"type": "string"}}}
    bare = {"name": "t", "description": "d", "parameters": params}
    openai = {"type": "function", "function": bare}
    assert normalise_tool(openai) == normalise_tool(bare) == bare
    assert normalise_tool({"name": "u"}) == {"name": "u", "description": "",
                                             "parameters": {"type": "object", "properties": {}}}
    assert tool_by_name([openai], "t") == bare
    assert tool_by_name([openai], "x") is None
    with pytest.raises(ValueError, match="non-empty 'name'"):
        normalise_tool({"description": "no name"})
    with pytest.raises(ValueError, match="'parameters' must be a JSON schema object"):
        normalise_tool({"name": "v", "parameters": []})


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "x", "arguments": {"a": ' + "[" * 100_000 + "</tool_call>",
    '<tool_call>{"name": "x", "arguments": ' + "{\"a\": " * 5_000 + "1" + "}" * 5_000 + "}</tool_call>",
    '{"name": "x", "arguments": {"a": ' + "[" * 50_000 + "]" * 50_000 + "}}",
    '{"name": "x", "arguments": "' + "[" * 50_000 + '"}',
])
def test_deeply_nested_json_never_raises(text):
    parsed = parse_tool_call(text)
    assert parsed.call is None and ("nested too deeply" in parsed.error or "nested more than" in parsed.error)


def test_arguments_deeper_than_the_limit_are_refused():
    def nested(depth: int) -> str:
        return '{"name": "x", "arguments": {"a": ' + "[" * depth + "]" * depth + "}}"

    assert parse_tool_call(nested(MAX_NESTING - 1)).ok
    assert parse_tool_call(nested(MAX_NESTING)).error == f"'arguments' are nested more than {MAX_NESTING} levels deep"
    assert nesting_depth(1) == 0 and nesting_depth({"a": [1]}) == 2


def test_external_refs_and_a_validator_that_fetches_nothing():
    schema = {"type": "object", "$defs": {"n": {"type": "integer"}},
              "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"items": [{"$ref": "http://x/s.json"}]},
                             "c": {"$ref": "file:///etc/passwd"}, "d": True}}
    assert external_refs(schema) == ["http://x/s.json", "file:///etc/passwd"]
    assert external_refs({"a": "[" * 10}) == []
    validator = schema_validator({"type": "object", "properties": {"a": {"$ref": "#/$defs/n"}},
                                  "$defs": {"n": {"type": "integer"}}})
    assert not list(validator.iter_errors({"a": 3})) and list(validator.iter_errors({"a": "x"}))


def test_several_calls_are_read_in_order_and_words_without_a_call_are_an_answer():
    from agentlearn.toolcall import parse_tool_calls

    text = ('<think>two steps</think><tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
            '<tool_call>{bad}</tool_call><tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>')
    parsed = parse_tool_calls(text)
    assert [c.name for c in parsed.calls] == ["a", "b"] and parsed.thought == "two steps"
    assert parsed.error.startswith("invalid JSON") and parsed.answer == ""
    words = parse_tool_calls("The password of ada is reset.")
    assert words.calls == [] and words.answer == "The password of ada is reset." and words.error == ""
    assert parse_tool_calls('{"name": "a", "arguments": {}}').calls[0].name == "a"  # a bare call still counts


def test_an_answers_repeated_calls_are_dropped_whatever_their_ids_and_key_order():
    from agentlearn.toolcall import without_repeats

    a = ToolCall(name="area", arguments={"w": 1, "h": 2}, id="c1")
    same = ToolCall(name="area", arguments={"h": 2, "w": 1}, id="c2")
    other = ToolCall(name="area", arguments={"w": 2, "h": 2})
    assert without_repeats([a, other, same, other]) == [a, other]

