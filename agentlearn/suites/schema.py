"""BFCL's Python-flavoured function schemas as JSON Schema.

BFCL (the Berkeley Function Calling Leaderboard, `bfcl-eval`) writes parameter types the way Python
(and, for its Java and JavaScript categories, those languages) names them: "dict", "float", "tuple",
"any", "HashMap", "long"... JSON Schema has object, number, array, and no constraint for "anything".
The table follows bfcl_eval.constants.type_mappings.GORILLA_TO_OPENAPI (Apache-2.0) with one change:
"any" puts no type constraint on the value (BFCL's table makes it a string, which a schema validator
would then hold against a number or a list the task accepts).

Nested schemas are converted all the way down: `properties` of objects, `items` of arrays (a single
schema or, for tuples, a list of them), `additionalProperties` when it is a schema. A property's
`required: true` and `optional: true` (forms some BFCL files use) are not JSON Schema and are dropped from the property; a
list of required names on an object stays. Every other keyword (description, enum, default, format...)
is kept as written.
"""

from __future__ import annotations

from typing import Any

# BFCL type name -> JSON Schema type; None: no type constraint.
TYPES: dict[str, str | None] = {
    "string": "string", "String": "string", "char": "string", "str": "string",
    "integer": "integer", "int": "integer", "byte": "integer", "short": "integer", "long": "integer",
    "Bigint": "integer",
    "number": "number", "float": "number", "double": "number",
    "boolean": "boolean", "bool": "boolean", "Boolean": "boolean",
    "array": "array", "list": "array", "tuple": "array", "Array": "array", "ArrayList": "array",
    "Queue": "array", "Stack": "array", "Set": "array",
    "dict": "object", "object": "object", "HashMap": "object", "Hashtable": "object",
    "any": None, "Any": None, "": None,  # a blank type (one BFCL JavaScript task) names nothing
    "null": "null",
}


def json_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema for a BFCL parameter schema (the whole `parameters` object or any part of it).

    ValueError names the unknown type and where it is, e.g. "properties.unit.type: unknown type 'Color'".
    """
    if not isinstance(parameters, dict):
        raise ValueError(f"a parameter schema must be an object, not {type(parameters).__name__}")
    return _convert(parameters, "")


def tool_schema(func_doc: dict[str, Any]) -> dict[str, Any]:
    """A BFCL function document as a tool: {"name", "description", "parameters"} with JSON Schema parameters."""
    name = func_doc.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a function document needs a 'name'")
    params = func_doc.get("parameters") or {"type": "dict", "properties": {}}
    try:
        converted = json_schema(params)
    except ValueError as e:
        raise ValueError(f"function {name!r}: {e}") from None
    converted.setdefault("type", "object")
    converted.setdefault("properties", {})
    return {"name": name, "description": str(func_doc.get("description") or ""), "parameters": converted}


def _convert(schema: Any, where: str) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        at = f"{where}.{key}" if where else key
        if key == "type":
            kind = _json_type(value, at)
            if kind is not None:
                out["type"] = kind
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _convert(sub, f"{at}.{name}") for name, sub in value.items()}
        elif key == "items":
            out["items"] = [_convert(s, f"{at}.{i}") for i, s in enumerate(value)] if isinstance(value, list) \
                else _convert(value, at)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert(value, at)
        elif key == "required" and not isinstance(value, list):
            continue  # `required: true` on a property: not JSON Schema; the object's list says it
        elif key == "optional" and isinstance(value, bool):
            continue  # BFCL's own marker, not JSON Schema: the object's `required` list already says it
        else:
            out[key] = value
    if isinstance(out.get("items"), list):  # a tuple's positional item schemas: JSON Schema's prefixItems
        out["prefixItems"] = out.pop("items")
    return out


def _json_type(value: Any, where: str) -> str | list[str] | None:
    if isinstance(value, list):
        kinds = [_json_type(v, where) for v in value]
        return None if None in kinds else sorted(set(kinds))  # type: ignore[arg-type]
    if not isinstance(value, str) or value not in TYPES:
        raise ValueError(f"{where}: unknown type {value!r}")
    return TYPES[value]
