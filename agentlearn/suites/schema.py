"""BFCL function documents as the JSON-Schema tools the project offers (`{"name","description","parameters"}`).

BFCL writes parameter types in its own vocabulary ("dict", "float", "tuple", "any", and Java/JavaScript
names such as "String" or "HashMap"); tasks store JSON Schema (validated with Draft 2020-12). The type
names map as bfcl-eval's `constants/type_mappings.py` (GORILLA_TO_OPENAPI) maps them, except that "any"
and names it does not know get no type at all (any value is accepted) rather than "string". BFCL's
non-schema "optional" marker is dropped: "required" already says which arguments may be left out.
"""

from __future__ import annotations

from typing import Any

from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI

# "Boolean" is JavaScript's name, which BFCL's table lacks; "any" accepts any value, so it gets no type.
_TYPES = {name: kind for name, kind in {**GORILLA_TO_OPENAPI, "Boolean": "boolean"}.items() if name.lower() != "any"}
_DROPPED = {"optional", "type"}


def json_schema(parameters: dict) -> dict:
    """One BFCL parameter schema (a function's `parameters`, or one property of it) as JSON Schema."""
    if not isinstance(parameters, dict):
        raise ValueError(f"a BFCL parameter schema must be an object, got {type(parameters).__name__}")
    out: dict[str, Any] = {key: value for key, value in parameters.items() if key not in _DROPPED}
    kind = parameters.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        out["type"] = _TYPES[kind]
    if isinstance(parameters.get("properties"), dict):
        out["properties"] = {name: json_schema(prop) for name, prop in parameters["properties"].items()}
    if isinstance(parameters.get("items"), dict):
        out["items"] = json_schema(parameters["items"])
    if isinstance(parameters.get("additionalProperties"), dict):
        out["additionalProperties"] = json_schema(parameters["additionalProperties"])
    if "required" in out and not isinstance(out["required"], list):
        del out["required"]
    return out


def tool_schema(func_doc: dict) -> dict:
    """One BFCL function document as a tool: its name, description and JSON-Schema parameters."""
    name = func_doc.get("name") if isinstance(func_doc, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("a BFCL function document needs a non-empty string 'name'")
    parameters = json_schema(func_doc.get("parameters") or {"type": "dict", "properties": {}})
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    return {"name": name, "description": str(func_doc.get("description", "")), "parameters": parameters}
