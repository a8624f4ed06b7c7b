"""BFCL's Python-flavoured schemas become JSON Schema (agentlearn.suites.schema)."""

import pytest
from jsonschema import Draft202012Validator

from agentlearn.suites.schema import json_schema, tool_schema


def test_types_map_to_json_schema_all_the_way_down():
    doc = {"name": "plan", "description": "Plan a trip.", "parameters": {
        "type": "dict", "required": ["legs"],
        "properties": {
            "budget": {"type": "float", "description": "in euros"},
            "point": {"type": "tuple", "items": {"type": "integer"}},
            "anything": {"type": "any", "description": "free"},
            "legs": {"type": "array", "items": {"type": "dict", "properties": {
                "city": {"type": "string", "required": True}, "nights": {"type": "integer"}}}},
            "options": {"type": "dict", "properties": {"fast": {"type": "boolean"}}},
        }}}
    tool = tool_schema(doc)
    params = tool["parameters"]
    assert tool["name"] == "plan" and tool["description"] == "Plan a trip."
    assert params["type"] == "object" and params["required"] == ["legs"]
    props = params["properties"]
    assert props["budget"] == {"type": "number", "description": "in euros"}
    assert props["point"] == {"type": "array", "items": {"type": "integer"}}
    assert props["anything"] == {"description": "free"}  # no type constraint
    assert props["legs"]["items"]["type"] == "object"
    assert props["legs"]["items"]["properties"]["city"] == {"type": "string"}  # `required: true` dropped
    assert props["options"]["properties"]["fast"]["type"] == "boolean"
    Draft202012Validator.check_schema(params)
    validator = Draft202012Validator(params)
    assert validator.is_valid({"legs": [{"city": "Rome", "nights": 2}], "budget": 3, "anything": [1, "x"]})
    assert not validator.is_valid({"legs": [{"city": "Rome", "nights": "two"}]})


def test_java_names_and_unknown_types():
    assert json_schema({"type": "HashMap"}) == {"type": "object"}
    assert json_schema({"type": "long"}) == {"type": "integer"}
    with pytest.raises(ValueError, match=r"properties\.color\.type: unknown type 'Colour'"):
        json_schema({"type": "dict", "properties": {"color": {"type": "Colour"}}})
    with pytest.raises(ValueError, match="needs a 'name'"):
        tool_schema({"parameters": {}})
