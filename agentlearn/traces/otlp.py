"""OpenTelemetry traces (OTLP JSON or protobuf) to episodes: GenAI semantic conventions and OpenInference.

`spans_from_otlp_json` reads one ExportTraceServiceRequest in its JSON form (what a collector's file
exporter or an OTLP/HTTP JSON body holds: resourceSpans > scopeSpans > spans, attributes as key/value
pairs) into flat span dicts; `spans_from_otlp_protobuf` reads the protobuf form with the official
opentelemetry-proto classes. `episodes_from_spans` groups spans by trace and reads each trace's model
calls and tool executions, written in any of:

- GenAI semantic conventions: `gen_ai.input.messages` / `gen_ai.output.messages` (messages of typed
  parts: text, tool_call, tool_call_response), `gen_ai.system_instructions`, `gen_ai.tool.definitions`,
  `gen_ai.request.model` / `gen_ai.response.model`, `gen_ai.usage.input_tokens` / `output_tokens`;
  `execute_tool` spans with `gen_ai.tool.name`, `gen_ai.tool.call.id`, `.arguments`, `.result`.
- their older event form: span events `gen_ai.system.message`, `gen_ai.user.message`,
  `gen_ai.assistant.message`, `gen_ai.tool.message`, `gen_ai.choice` (the body in the event's
  attributes), and `gen_ai.content.prompt` / `gen_ai.content.completion` events (`gen_ai.prompt` /
  `gen_ai.completion` JSON).
- the flattened form OpenLLMetry writes: `gen_ai.prompt.N.role|content|tool_call_id`,
  `gen_ai.completion.N.tool_calls.M.name|arguments|id`, `llm.request.functions.N.*`, `llm.request.type`.
- OpenInference: `openinference.span.kind` LLM / TOOL / AGENT, flattened `llm.input_messages.N.message.*`,
  `llm.output_messages.N.message.*` (with `tool_calls.M.tool_call.*`), `llm.tools.N.tool.json_schema`,
  `llm.model_name`, `llm.token_count.*`; tool spans with `tool.name`, `input.value`, `output.value`.

A model span inside another model span (two instrumentations of one call) counts once, as the outer one.
Trace and span ids are hex, as OTLP JSON writes them; base64 (protobuf's own JSON mapping) is accepted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections import defaultdict
from typing import Any

from agentlearn.tasks import check_text
from agentlearn.traces.assemble import (
    ModelTurn,
    Msg,
    ToolRun,
    arguments_of,
    as_text,
    call_of,
    episode,
    message_of,
    messages_of,
    tools_of,
)
from agentlearn.traces.episode import ImportedEpisode

STATUS_ERROR = 2  # Status.code of a failed span (STATUS_CODE_ERROR)
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


# --- OTLP JSON to flat spans --------------------------------------------------------------------


def spans_from_otlp_json(payload: dict) -> list[dict]:
    """The spans of one ExportTraceServiceRequest (JSON form) as flat dicts; ValueError naming the field
    that is wrong (e.g. "resourceSpans[0].scopeSpans[1].spans[2].traceId: ...").

    Each span: trace_id, span_id, parent_span_id (hex; "" for a root), name, kind, start_ns, end_ns,
    attributes (a plain dict), events ([{name, time_ns, attributes}]), status ({code, message}),
    resource (its resource's attributes), service (resource `service.name`), scope (instrumentation name).
    Text is checked as task files are (tasks.check_text: no NUL, no lone surrogate, bounded nesting).
    """
    if not isinstance(payload, dict):
        raise ValueError(f"an OTLP trace request is a JSON object, not {type(payload).__name__}")
    check_text(payload, "the trace request")  # a body from the network is held to a file's rules
    groups = _field(payload, "resourceSpans", list, "")
    if groups is None:
        raise ValueError("not an OTLP trace request: no 'resourceSpans'")
    out: list[dict] = []
    for i, group in enumerate(groups):
        where = f"resourceSpans[{i}]"
        _need(group, dict, where)
        resource = _field(group, "resource", dict, where) or {}
        resource_attrs = _attributes(_field(resource, "attributes", list, f"{where}.resource") or [],
                                     f"{where}.resource.attributes")
        service = resource_attrs.get("service.name", "")
        for j, scoped in enumerate(_field(group, "scopeSpans", list, where) or []):
            here = f"{where}.scopeSpans[{j}]"
            _need(scoped, dict, here)
            scope = _field(scoped, "scope", dict, here) or {}
            for k, span in enumerate(_field(scoped, "spans", list, here) or []):
                out.append(_span(span, f"{here}.spans[{k}]", resource_attrs, str(service), str(scope.get("name", ""))))
    return out


def spans_from_otlp_protobuf(data: bytes) -> list[dict]:
    """The spans of one ExportTraceServiceRequest in protobuf (an OTLP/HTTP body), read with opentelemetry-proto,
    as spans_from_otlp_json gives them. The messages are read field by field: going through protobuf's JSON
    form (json_format.MessageToDict, pure Python) cost more than the rest of a received batch."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as e:
        raise ValueError(f"not an OTLP protobuf trace request: {e}") from None
    out: list[dict] = []
    for i, group in enumerate(request.resource_spans):
        resource = _pb_attributes(group.resource.attributes)
        service = str(resource.get("service.name", ""))
        for j, scoped in enumerate(group.scope_spans):
            for k, span in enumerate(scoped.spans):
                out.append(_pb_span(span, f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]", resource, service,
                                    scoped.scope.name))
    # A body from the network is held to a file's rules (tasks.check_text). Protobuf's parser has already
    # refused text that is not UTF-8 and nesting past 100 messages (under MAX_NESTING levels here), so
    # only a NUL character can be left: walking the spans in Python, to name where, is needed only then.
    if "\\u0000" in json.dumps(out):
        check_text(out, "the trace request's spans")
    return out


def _pb_span(span: Any, where: str, resource: dict, service: str, scope: str) -> dict:
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if not trace_id or not span_id:
        raise ValueError(f"{where}: a span needs a traceId and a spanId")
    for name, value, size in (("traceId", trace_id, 16), ("spanId", span_id, 8), ("parentSpanId", parent, 8)):
        if value and len(value) != size:
            raise ValueError(f"{where}.{name}: {len(value)} bytes is not a {size}-byte id")
    return {
        "trace_id": trace_id.hex(), "span_id": span_id.hex(), "parent_span_id": parent.hex(), "name": span.name,
        "kind": span.kind, "start_ns": span.start_time_unix_nano, "end_ns": span.end_time_unix_nano,
        "attributes": _pb_attributes(span.attributes),
        "events": [{"name": e.name, "time_ns": e.time_unix_nano, "attributes": _pb_attributes(e.attributes)}
                   for e in span.events],
        "status": {"code": span.status.code, "message": span.status.message},
        "resource": resource, "service": service, "scope": scope,
    }


def _pb_attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _pb_value(pair.value) for pair in pairs}


def _pb_value(value: Any) -> Any:
    """One protobuf AnyValue as a plain Python value (as _value reads its JSON form). Nesting is bounded by
    protobuf's own parser (100 messages deep)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None if which is None else getattr(value, which)


@functools.cache
def _camel_to_snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _field(obj: dict, name: str, kind: type, where: str) -> Any:
    """obj[name] (or its snake_case spelling, as protobuf's JSON writes with original field names), of `kind`."""
    value = obj.get(name, obj.get(_camel_to_snake(name)))
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{where + '.' if where else ''}{name}: expected {_KIND_WORDS[kind]}, "
                         f"got {type(value).__name__}")
    return value


_KIND_WORDS = {list: "a list", dict: "an object", str: "a string"}


def _need(value: Any, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        raise ValueError(f"{where}: expected {_KIND_WORDS[kind]}, got {type(value).__name__}")


def _span(span: Any, where: str, resource: dict, service: str, scope: str) -> dict:
    _need(span, dict, where)
    status = _field(span, "status", dict, where) or {}
    events = []
    for n, event in enumerate(_field(span, "events", list, where) or []):
        _need(event, dict, f"{where}.events[{n}]")
        events.append({"name": str(event.get("name", "")),
                       "time_ns": _nanos(event, "timeUnixNano", f"{where}.events[{n}]"),
                       "attributes": _attributes(_field(event, "attributes", list, f"{where}.events[{n}]") or [],
                                                 f"{where}.events[{n}].attributes")})
    trace_id = _id(span, "traceId", 16, where)
    span_id = _id(span, "spanId", 8, where)
    if not trace_id or not span_id:
        raise ValueError(f"{where}: a span needs a traceId and a spanId")
    return {
        "trace_id": trace_id, "span_id": span_id, "parent_span_id": _id(span, "parentSpanId", 8, where),
        "name": str(span.get("name", "")), "kind": _span_kind(span.get("kind", 0)),
        "start_ns": _nanos(span, "startTimeUnixNano", where), "end_ns": _nanos(span, "endTimeUnixNano", where),
        "attributes": _attributes(_field(span, "attributes", list, where) or [], f"{where}.attributes"),
        "events": events, "status": {"code": _status_code(status.get("code", 0)), "message": str(status.get("message", ""))},
        "resource": resource, "service": service, "scope": scope,
    }


def _id(span: dict, name: str, size: int, where: str) -> str:
    """A trace or span id as lower-case hex: OTLP JSON's hex, or protobuf JSON's base64 of the raw bytes."""
    value = _field(span, name, str, where) or ""
    if not value:
        return ""
    if len(value) == 2 * size:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValueError(f"{where}.{name}: {value[:40]!r} is not a {size}-byte id (hex or base64)")
    return raw.hex()


def _nanos(obj: dict, name: str, where: str) -> int:
    value = obj.get(name, obj.get(_camel_to_snake(name), 0))
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.isdigit()):
        raise ValueError(f"{where}.{name}: {str(value)[:40]!r} is not a time in nanoseconds")
    return int(value)


_SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
               "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}


def _span_kind(kind: Any) -> int:
    """Span.kind as OTLP JSON writes it (an integer); protobuf's JSON mapping writes the enum's name."""
    if isinstance(kind, str):
        return _SPAN_KINDS.get(kind, 0)
    return kind if isinstance(kind, int) and not isinstance(kind, bool) else 0


def _status_code(code: Any) -> int:
    if isinstance(code, str):  # protobuf JSON writes the enum's name
        return {"STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": STATUS_ERROR}.get(code, 0)
    return int(code) if isinstance(code, int) else 0


def _attributes(pairs: list, where: str) -> dict[str, Any]:
    """OTLP's [{key, value: {stringValue | intValue | ...}}] as a plain dict."""
    out: dict[str, Any] = {}
    for n, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise ValueError(f"{where}[{n}]: an attribute is {{\"key\": ..., \"value\": ...}}")
        out[pair["key"]] = _value(pair.get("value") or {}, f"{where}[{n}].value")
    return out


def _value(value: Any, where: str) -> Any:
    """One OTLP AnyValue as a plain Python value."""
    _need(value, dict, where)
    for key, read in _VALUE_READERS.items():
        if key in value:
            try:
                return read(value[key], where)
            except (TypeError, ValueError, binascii.Error) as e:
                raise ValueError(f"{where}.{key}: {e}") from None
    return None


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)) or len(str(v)) > 30:
        raise ValueError(f"{str(v)[:40]!r} is not an integer")
    return int(v)


def _double(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{str(v)[:40]!r} is not a number")
    return float(v)


def _string(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def _array(v: Any, where: str) -> list:
    _need(v, dict, where)
    return [_value(item, f"{where}.values[{i}]") for i, item in enumerate(v.get("values") or [])]


def _kvlist(v: Any, where: str) -> dict:
    _need(v, dict, where)
    return _attributes(v.get("values") or [], f"{where}.values")


_VALUE_READERS = {
    "stringValue": _string, "string_value": _string,
    "intValue": _int, "int_value": _int,
    "doubleValue": _double, "double_value": _double,
    "boolValue": lambda v, w: bool(v), "bool_value": lambda v, w: bool(v),
    "arrayValue": _array, "array_value": _array,
    "kvlistValue": _kvlist, "kvlist_value": _kvlist,
    "bytesValue": lambda v, w: base64.b64decode(v).hex(), "bytes_value": lambda v, w: base64.b64decode(v).hex(),
}


# --- spans to episodes --------------------------------------------------------------------------


def episodes_from_spans(spans: list[dict]) -> list[ImportedEpisode]:
    """One episode per trace that holds a model call or a tool execution, traces in order of first appearance."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        by_trace[span["trace_id"]].append(span)
    out = []
    for trace_id, trace in by_trace.items():
        found = _trace_episode(trace_id, trace)
        if found is not None:
            out.append(found)
    return out


def _trace_episode(trace_id: str, spans: list[dict]) -> ImportedEpisode | None:
    by_id = {s["span_id"]: s for s in spans}
    model_spans = {s["span_id"] for s in spans if _is_model(s)}
    turns, runs = [], []
    for s in spans:
        if s["span_id"] in model_spans and not _inside(s, model_spans, by_id):
            turns.append(_turn(s))
        elif _is_tool(s):
            runs.append(_run(s))
    if not turns:  # a remote agent recorded only as invoke_agent spans with its messages
        turns = [_turn(s) for s in spans if _operation(s) == "invoke_agent" and "gen_ai.output.messages" in s["attributes"]]
    root = min(spans, key=lambda s: (bool(s["parent_span_id"] in by_id), s["start_ns"]))
    return episode(trace_id, turns, runs, fmt="otlp-json", service=root["service"],
                   agent=_agent(spans), request=_root_request(root))


def _operation(span: dict) -> str:
    return str(span["attributes"].get("gen_ai.operation.name", ""))


def _kind(span: dict) -> str:
    return str(span["attributes"].get("openinference.span.kind", "")).upper()


def _is_tool(span: dict) -> bool:
    return _operation(span) == "execute_tool" or _kind(span) == "TOOL"


def _is_model(span: dict) -> bool:
    if _is_tool(span) or _operation(span) == "invoke_agent" or _kind(span) in ("AGENT", "CHAIN"):
        return False
    attrs = span["attributes"]
    return (_operation(span) in MODEL_OPERATIONS or _kind(span) == "LLM" or "gen_ai.input.messages" in attrs
            or "llm.request.type" in attrs or any(e["name"].startswith("gen_ai.") for e in span["events"]))


def _inside(span: dict, model_spans: set[str], by_id: dict[str, dict]) -> bool:
    """True if an ancestor of this span is also a model span (the same call seen by two instrumentations)."""
    parent, hops = span["parent_span_id"], 0
    while parent and parent in by_id and hops < 1000:
        if parent in model_spans:
            return True
        parent, hops = by_id[parent]["parent_span_id"], hops + 1
    return False


def _agent(spans: list[dict]) -> str:
    for s in spans:
        name = s["attributes"].get("gen_ai.agent.name")
        if name:
            return str(name)
    agents = [s["name"] for s in spans if _kind(s) == "AGENT"]
    return agents[0] if agents else ""


def _root_request(root: dict) -> str:
    """The root span's input (OpenInference `input.value`), the request when no model call shows a user message."""
    value = root["attributes"].get("input.value", "")
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if isinstance(parsed, dict):
        for key in ("input", "question", "query", "messages"):
            if key in parsed:
                return as_text(parsed[key])
    return as_text(parsed)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _seconds(span: dict) -> float | None:
    return (span["end_ns"] - span["start_ns"]) / 1e9 if span["end_ns"] >= span["start_ns"] > 0 else None


def _int_attr(attrs: dict, *names: str) -> int | None:
    for name in names:
        if isinstance(attrs.get(name), (int, float)) and not isinstance(attrs.get(name), bool):
            return int(attrs[name])
    return None


def _turn(span: dict) -> ModelTurn:
    attrs = span["attributes"]
    inputs, output = _genai_messages(attrs)
    if not inputs and output is None:
        inputs, output = _openinference_messages(attrs)
    if not inputs and output is None:
        inputs, output = _flat_genai_messages(attrs)
    if not inputs and output is None:
        inputs, output = _event_messages(span["events"])
    tools = tools_of(_json(attrs.get("gen_ai.tool.definitions")))
    tools += tools_of([{**item, "parameters": _json(item.get("parameters"))}
                       for item in _indexed(attrs, "llm.request.functions.").values()])
    tools += tools_of([_json(item.get("tool", {}).get("json_schema")) for item in _indexed(attrs, "llm.tools.").values()])
    return ModelTurn(
        start=span["start_ns"] / 1e9, input=inputs, output=output, seconds=_seconds(span),
        tokens_in=_int_attr(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
        tokens_out=_int_attr(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                             "llm.token_count.completion"),
        model=str(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or attrs.get("llm.model_name") or ""),
        tools=tools,
    )


def _messages(value: Any) -> list[Msg]:
    found = _json(value)
    return [m for item in (found if isinstance(found, list) else []) for m in messages_of(item)]


def _genai_messages(attrs: dict) -> tuple[list[Msg], Msg | None]:
    inputs = _messages(attrs.get("gen_ai.input.messages"))
    system = _json(attrs.get("gen_ai.system_instructions"))
    if isinstance(system, list) and system:
        inputs.insert(0, message_of({"role": "system", "parts": system}))
    outputs = _messages(attrs.get("gen_ai.output.messages"))
    return inputs, (outputs[0] if outputs else None)


def _indexed(attrs: dict, prefix: str) -> dict[int, dict]:
    """OpenInference's flattened lists: {"p.0.message.role": "user"} -> {0: {"message": {"role": "user"}}}."""
    out: dict[int, dict] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        head, _, rest = key[len(prefix):].partition(".")
        if not head.isdigit() or not rest:
            continue
        node = out.setdefault(int(head), {})
        parts = rest.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    return dict(sorted(out.items()))


def _in_order(node: Any) -> list:
    """A flattened list's items ({"0": ..., "1": ...}) in index order."""
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted((k for k in node if k.isdigit()), key=int)]


def _openinference_message(item: dict) -> Msg:
    m = item.get("message", {})
    calls = [c for c in (call_of({"id": tc.get("tool_call", {}).get("id", ""), **tc.get("tool_call", {}).get("function", {})})
                         for tc in _in_order(m.get("tool_calls")) if isinstance(tc, dict)) if c is not None]
    text = m.get("content")
    if text is None:  # content as parts: message.contents.N.message_content.text
        text = "\n".join(str(c.get("message_content", {}).get("text", "")) for c in _in_order(m.get("contents"))
                         if isinstance(c, dict))
    return Msg(role=str(m.get("role", "")), text=as_text(text), calls=calls, call_id=str(m.get("tool_call_id", "")))


def _openinference_messages(attrs: dict) -> tuple[list[Msg], Msg | None]:
    inputs = [_openinference_message(v) for v in _indexed(attrs, "llm.input_messages.").values()]
    outputs = [_openinference_message(v) for v in _indexed(attrs, "llm.output_messages.").values()]
    return inputs, (outputs[0] if outputs else None)


def _flat_genai_message(item: dict) -> Msg:
    calls = [c for c in map(call_of, _in_order(item.get("tool_calls"))) if c is not None]
    return Msg(role=str(item.get("role", "")), text=as_text(item.get("content")), calls=calls,
               call_id=str(item.get("tool_call_id", "")))


def _flat_genai_messages(attrs: dict) -> tuple[list[Msg], Msg | None]:
    """The flattened form OpenLLMetry writes: gen_ai.prompt.N.role|content, gen_ai.completion.N.tool_calls.M.*."""
    inputs = [_flat_genai_message(v) for v in _indexed(attrs, "gen_ai.prompt.").values()]
    outputs = [_flat_genai_message(v) for v in _indexed(attrs, "gen_ai.completion.").values()]
    return inputs, (outputs[0] if outputs else None)


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_body(attrs: dict) -> dict:
    """An event's body: its JSON `body` / `gen_ai.event.content` attribute, else the attributes themselves."""
    for key in ("body", "gen_ai.event.content", "event.body"):
        parsed = _json(attrs.get(key))
        if isinstance(parsed, dict):
            return parsed
    return {k: (_json(v) if k in ("tool_calls", "message") else v) for k, v in attrs.items()}


def _event_messages(events: list[dict]) -> tuple[list[Msg], Msg | None]:
    inputs: list[Msg] = []
    output = None
    for e in events:
        if e["name"] in _EVENT_ROLES:
            body = _event_body(e["attributes"])
            msg = message_of({**body, "role": _EVENT_ROLES[e["name"]],
                              "tool_call_id": body.get("tool_call_id", body.get("id", ""))})
            if msg is not None:
                inputs.append(msg)
        elif e["name"] == "gen_ai.choice" and output is None:
            body = _event_body(e["attributes"])
            message = body.get("message") if isinstance(body.get("message"), dict) else body
            output = message_of({**message, "role": "assistant"})
        elif e["name"] == "gen_ai.content.prompt":
            inputs += _messages(e["attributes"].get("gen_ai.prompt"))
        elif e["name"] == "gen_ai.content.completion":
            done = _messages(e["attributes"].get("gen_ai.completion"))
            output = done[0] if done else output
    return inputs, output


def _run(span: dict) -> ToolRun:
    attrs = span["attributes"]
    name = attrs.get("gen_ai.tool.name") or attrs.get("tool.name") or span["name"].removeprefix("execute_tool").strip()
    args = attrs.get("gen_ai.tool.call.arguments", attrs.get("input.value"))
    result = attrs.get("gen_ai.tool.call.result", attrs.get("output.value"))
    failed = span["status"]["code"] == STATUS_ERROR
    if failed and result is None:
        result = span["status"]["message"] or next(
            (e["attributes"].get("exception.message", "") for e in span["events"] if e["name"] == "exception"), "")
    call_id = attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call.id") or ""
    return ToolRun(start=span["start_ns"] / 1e9, name=str(name), arguments=arguments_of(args), content=as_text(result),
                   error=failed, seconds=_seconds(span), call_id=str(call_id))

