"""Real-shaped trace files for the importers, made by the packages that write them in the wild.

OTLP JSON comes from the OpenTelemetry SDK itself: spans with GenAI and OpenInference attributes made by
a tracer, caught by the SDK's in-memory exporter, encoded by the OTLP exporter's own encoder
(opentelemetry-exporter-otlp-proto-common) and written with protobuf's JSON mapping, trace and span ids
then turned from base64 to hex as the OTLP/JSON specification asks. OpenAI logs are made of the openai
package's own types (ChatCompletion.model_dump); LangSmith runs of langsmith's Run schema; Langfuse
exports follow its public API's trace and observation shapes (the package is not installed here).

    .venv/bin/python -m tests.trace_samples        # rewrites tests/data/traces/*
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "traces"
T0 = 1_780_000_000_000_000_000  # a fixed start (ns since the epoch), so the files regenerate identically
MS = 1_000_000

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                                "unit": {"type": "string", "enum": ["c", "f"]}},
                               "required": ["city"]}}
TICKET_TOOL = {"type": "function", "name": "open_ticket", "description": "Open a help-desk ticket.",
               "parameters": {"type": "object", "properties": {"title": {"type": "string"},
                                                               "priority": {"type": "string"}},
                              "required": ["title"]}}


# --- OTLP JSON through the OpenTelemetry SDK ------------------------------------------------------


def _provider(seed: int):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class SeededIds(IdGenerator):
        def __init__(self) -> None:
            self.rng = random.Random(seed)

        def generate_span_id(self) -> int:
            return self.rng.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            return self.rng.getrandbits(128) or 1

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-agent", "service.instance.id": "weather-agent-1"}), id_generator=SeededIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _span(tracer, name: str, start: int, end: int, attributes: dict[str, Any], events=(), error: str = ""):
    """A finished span with these attributes (and events), nested under the current span."""
    from opentelemetry.trace import Status, StatusCode

    span = tracer.start_span(name, start_time=start, attributes=attributes)
    for event_name, event_attrs in events:
        span.add_event(event_name, event_attrs, timestamp=start + 1)
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end)
    return span


def _genai_trace(tracer, t: int, city: str, temp: str) -> None:
    """Current GenAI conventions: invoke_agent > chat (tool call) > execute_tool > chat (answer)."""
    from opentelemetry import trace

    agent = tracer.start_span("invoke_agent weather-agent", start_time=t, attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-agent", "gen_ai.provider.name": "openai"})
    with trace.use_span(agent, end_on_exit=False):
        call = {"type": "tool_call", "id": f"call_{city.lower()}", "name": "get_weather",
                "arguments": {"city": city, "unit": "c"}}
        user = {"role": "user", "parts": [{"type": "text", "content": f"What is the weather in {city}?"}]}
        common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                  "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                  "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You answer weather questions."}]),
                  "gen_ai.tool.definitions": json.dumps([WEATHER_TOOL])}
        _span(tracer, "chat gpt-4o-mini", t + 1 * MS, t + 401 * MS, {
            **common, "gen_ai.input.messages": json.dumps([user]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call], "finish_reason": "tool_call"}]),
            "gen_ai.usage.input_tokens": 84, "gen_ai.usage.output_tokens": 17})
        _span(tracer, "execute_tool get_weather", t + 402 * MS, t + 452 * MS, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": call["id"], "gen_ai.tool.call.arguments": json.dumps(call["arguments"]),
            "gen_ai.tool.call.result": json.dumps({"city": city, "temperature": temp})})
        answer = f"It is {temp} in {city}."
        _span(tracer, "chat gpt-4o-mini", t + 453 * MS, t + 853 * MS, {
            **common, "gen_ai.input.messages": json.dumps([
                user, {"role": "assistant", "parts": [call]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": call["id"],
                                            "response": {"city": city, "temperature": temp}}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}],
                                                   "finish_reason": "stop"}]),
            "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 9})
    agent.end(end_time=t + 900 * MS)


def _event_trace(tracer, t: int) -> None:
    """The older event-based form: messages as span events, a tool that fails, then an answer."""
    from opentelemetry import trace

    root = tracer.start_span("support-run", start_time=t)
    with trace.use_span(root, end_on_exit=False):
        common = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"}
        ask = ("gen_ai.user.message", {"content": "My laptop will not boot, please open a ticket."})
        tool_calls = [{"id": "call_t1", "type": "function",
                       "function": {"name": "open_ticket", "arguments": json.dumps({"title": "Laptop will not boot"})}}]
        _span(tracer, "chat gpt-4o-mini", t + 1 * MS, t + 301 * MS, {**common, "gen_ai.usage.input_tokens": 60,
                                                                    "gen_ai.usage.output_tokens": 21}, events=[
            ("gen_ai.system.message", {"content": "You are the help desk."}), ask,
            ("gen_ai.choice", {"index": 0, "finish_reason": "tool_calls",
                               "message": json.dumps({"role": "assistant", "tool_calls": tool_calls})})])
        _span(tracer, "execute_tool open_ticket", t + 302 * MS, t + 2302 * MS, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "open_ticket", "gen_ai.tool.call.id": "call_t1",
            "gen_ai.tool.call.arguments": json.dumps({"title": "Laptop will not boot"})},
            events=[("exception", {"exception.type": "TimeoutError", "exception.message": "ticket service timed out"})],
            error="ticket service timed out")
        _span(tracer, "chat gpt-4o-mini", t + 2303 * MS, t + 2503 * MS, {**common}, events=[
            ask, ("gen_ai.assistant.message", {"tool_calls": json.dumps(tool_calls)}),
            ("gen_ai.tool.message", {"id": "call_t1", "content": "ticket service timed out"}),
            ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                               "message": json.dumps({"role": "assistant",
                                                      "content": "The ticket system is down; please try again later."})})])
    root.end(end_time=t + 2600 * MS)


def _openinference_trace(tracer, t: int) -> None:
    """OpenInference (as its LangChain instrumentation writes): AGENT > LLM (tool call) > TOOL > LLM (answer)."""
    from opentelemetry import trace

    root = tracer.start_span("AgentExecutor", start_time=t, attributes={
        "openinference.span.kind": "AGENT", "input.value": json.dumps({"input": "Open a ticket: printer on floor 3 jams"})})
    with trace.use_span(root, end_on_exit=False):
        request = "Open a ticket: printer on floor 3 jams"
        tool = {"llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": TICKET_TOOL})}
        args = json.dumps({"title": "Printer on floor 3 jams", "priority": "low"})
        _span(tracer, "ChatOpenAI", t + 1 * MS, t + 501 * MS, {
            "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", **tool,
            "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "You are the help desk.",
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": request,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_p1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "open_ticket",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": args,
            "llm.token_count.prompt": 70, "llm.token_count.completion": 25})
        _span(tracer, "open_ticket", t + 502 * MS, t + 522 * MS, {
            "openinference.span.kind": "TOOL", "tool.name": "open_ticket", "input.value": args,
            "output.value": "ticket T-1042 opened"})
        _span(tracer, "ChatOpenAI", t + 523 * MS, t + 823 * MS, {
            "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", **tool,
            "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "You are the help desk.",
            "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": request,
            "llm.input_messages.2.message.role": "assistant",
            "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_p1",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "open_ticket",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": args,
            "llm.input_messages.3.message.role": "tool", "llm.input_messages.3.message.tool_call_id": "call_p1",
            "llm.input_messages.3.message.content": "ticket T-1042 opened",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "I opened ticket T-1042 for the printer.",
            "llm.token_count.prompt": 110, "llm.token_count.completion": 12})
    root.end(end_time=t + 900 * MS)


def otlp_request(seed: int = 7) -> dict[str, Any]:
    """One ExportTraceServiceRequest (OTLP JSON) with four traces: GenAI (twice, the same request once more),
    the event form and OpenInference; produced by the SDK and its OTLP encoder."""
    provider, exporter = _provider(seed)
    tracer = provider.get_tracer("tests.trace_samples")
    _genai_trace(tracer, T0, "Paris", "18 C")
    _event_trace(tracer, T0 + 10_000 * MS)
    _openinference_trace(tracer, T0 + 20_000 * MS)
    _genai_trace(tracer, T0 + 30_000 * MS, "Paris", "17 C")  # the same request again: the same task
    return encode(exporter.get_finished_spans())


def encode(spans) -> dict[str, Any]:
    """Finished SDK spans as OTLP JSON: the exporter's encoder, protobuf's JSON mapping, ids in hex."""
    import base64

    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    payload = MessageToDict(encode_spans(spans))
    for group in payload["resourceSpans"]:
        for scoped in group["scopeSpans"]:
            for span in scoped["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return payload


# --- OpenAI chat-completions logs from the openai package's types --------------------------------


def _completion(cid: str, created: int, message: dict[str, Any], usage: tuple[int, int]) -> dict[str, Any]:
    from openai.types.chat import ChatCompletion

    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return ChatCompletion.model_validate({
        "id": cid, "object": "chat.completion", "created": created, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }).model_dump()


def _tool_call(cid: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def openai_log() -> list[dict[str, Any]]:
    """An agent loop's log, one {request, response} a call: two runs (one with two calls at once)."""
    created = T0 // 10**9
    system = {"role": "system", "content": "You answer weather questions."}
    tools = [{"type": "function", "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"}}]
    lines = []
    # run 1: two cities at once, then the answer
    ask = {"role": "user", "content": "Compare the weather in Oslo and Rome."}
    calls = [_tool_call("call_o", "get_weather", {"city": "Oslo"}), _tool_call("call_r", "get_weather", {"city": "Rome"})]
    first = _completion("chatcmpl-1a", created, {"content": None, "tool_calls": calls}, (90, 40))
    lines.append({"request": {"model": "gpt-4o-mini", "messages": [system, ask], "tools": tools}, "response": first})
    followed = [system, ask, {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "tool", "tool_call_id": "call_o", "content": "2 C, snow"},
                {"role": "tool", "tool_call_id": "call_r", "content": "19 C, sun"}]
    lines.append({"request": {"model": "gpt-4o-mini", "messages": followed, "tools": tools},
                  "response": _completion("chatcmpl-1b", created + 2, {"content": "Rome is 17 degrees warmer than Oslo."},
                                          (150, 12))})
    # run 2 (interleaved in the log as a busy service writes it): one call, then the answer
    ask2 = {"role": "user", "content": "What is the weather in Paris?"}
    call = [_tool_call("call_p", "get_weather", {"city": "Paris", "unit": "c"})]
    lines.insert(1, {"request": {"model": "gpt-4o-mini", "messages": [system, ask2], "tools": tools},
                     "response": _completion("chatcmpl-2a", created + 1, {"content": None, "tool_calls": call}, (80, 20))})
    lines.append({"request": {"model": "gpt-4o-mini", "tools": tools, "messages": [
        system, ask2, {"role": "assistant", "content": None, "tool_calls": call},
        {"role": "tool", "tool_call_id": "call_p", "content": "18 C"}]},
        "response": _completion("chatcmpl-2b", created + 3, {"content": "It is 18 C in Paris."}, (110, 9))})
    return lines


def openai_stored() -> dict[str, Any]:
    """A page of stored completions (store=true), each with its input messages as the messages list call gives them."""
    from openai.types.chat import ChatCompletionStoreMessage

    created = T0 // 10**9 + 100
    # The SDK reads API responses without validating them (model_construct); its type says "assistant",
    # while the API lists the request's user messages too.
    ask = ChatCompletionStoreMessage.model_construct(id="msg_1", role="user", content="Open a ticket: VPN drops every hour",
                                                     content_parts=None).model_dump()
    completion = _completion("chatcmpl-s1", created, {"content": None, "tool_calls": [
        _tool_call("call_v", "open_ticket", {"title": "VPN drops every hour", "priority": "high"})]}, (70, 30))
    completion["metadata"] = {"app": "help-desk"}
    completion["messages"] = {"object": "list", "data": [ask], "first_id": "msg_1", "last_id": "msg_1",
                              "has_more": False}
    return {"object": "list", "data": [completion], "first_id": "chatcmpl-s1", "last_id": "chatcmpl-s1",
            "has_more": False}


# --- LangSmith runs recorded by LangChain's own tracer ---------------------------------------------


def langsmith_runs() -> list[dict[str, Any]]:
    """Runs of a LangChain agent loop (a fake chat model that asks for tools, real tools), recorded by
    langchain_core's run collector in the chat format and dumped as langsmith Run dicts, flat, as
    `Client.list_runs` gives them. Chat model runs get run_type "llm", as LangSmith's tracer records them."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

    @tool
    def get_weather(city: str, unit: str = "c") -> str:
        """Current weather in a city."""
        return json.dumps({"city": city, "temperature": "18 C" if unit == "c" else "64 F"})

    @tool
    def open_ticket(title: str, priority: str = "normal") -> str:
        """Open a help-desk ticket."""
        raise TimeoutError("ticket service timed out")

    tools = {t.name: t for t in (get_weather, open_ticket)}
    replies = iter([
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_w1"}]),
        AIMessage(content="It is 18 C in Paris."),
        AIMessage(content="", tool_calls=[{"name": "open_ticket", "args": {"title": "Laptop will not boot"}, "id": "call_t1"}]),
        AIMessage(content="The ticket system is down; please try again later."),
    ])
    from langchain_core.utils.function_calling import convert_to_openai_tool

    model = GenericFakeChatModel(messages=replies).bind(tools=[convert_to_openai_tool(t) for t in tools.values()])

    def agent(question: str, config) -> str:
        messages = [SystemMessage("You are the help desk."), HumanMessage(question)]
        while True:
            answer = model.invoke(messages, config)
            messages.append(answer)
            if not answer.tool_calls:
                return answer.content
            for call in answer.tool_calls:
                try:
                    messages.append(tools[call["name"]].invoke(call, config))
                except TimeoutError as e:
                    messages.append(ToolMessage(content=str(e), tool_call_id=call["id"], status="error"))

    collector = RunCollectorCallbackHandler(_schema_format="original+chat")
    runnable = RunnableLambda(agent).with_config(run_name="help-desk-agent")
    for question in ("What is the weather in Paris?", "My laptop will not boot, please open a ticket."):
        runnable.invoke(question, config={"callbacks": [collector]})
    out = []

    def flatten(run) -> None:
        row = run.model_dump(mode="json", exclude={"child_runs", "ls_client", "parent_run", "parent_dotted_order",
                                                   "session_name", "replicas"})
        row["run_type"] = "llm" if row["run_type"] == "chat_model" else row["run_type"]
        if row["error"]:  # LangChain appends the traceback: keep this machine's paths out of the sample
            row["error"] = row["error"].replace(str(Path(__file__).resolve().parent.parent), "/app")
        out.append(row)
        for child in run.child_runs:
            flatten(child)

    for run in collector.traced_runs:
        flatten(run)
    return out


# --- Langfuse: traces with observations, as its public API returns them --------------------------


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def langfuse_traces() -> list[dict[str, Any]]:
    """Two traces in the shape of GET /api/public/traces/{id} (TraceWithFullDetails): observations of type
    GENERATION (OpenAI messages in, the assistant message out) and TOOL, one tool failing (level ERROR)."""
    out = []
    for n, (question, tool, args, result, failed, answer) in enumerate([
        ("What is the weather in Lisbon?", "get_weather", {"city": "Lisbon"}, {"temperature": "21 C"}, False,
         "It is 21 C in Lisbon."),
        ("Open a ticket: the printer is on fire", "open_ticket", {"title": "Printer on fire", "priority": "high"},
         None, True, "I could not open the ticket; call the help desk."),
    ]):
        t = T0 + (50 + n * 10) * 1000 * MS
        trace_id = f"lf-trace-{n + 1}"
        call = _tool_call(f"call_lf{n}", tool, args)
        messages = [{"role": "system", "content": "You are the help desk."}, {"role": "user", "content": question}]
        tools_offered = [{"type": "function", "function": {k: v for k, v in spec.items() if k != "type"}}
                         for spec in (WEATHER_TOOL, TICKET_TOOL)]

        def observation(oid: str, kind: str, name: str, start: int, end: int, **rest: Any) -> dict[str, Any]:
            return {"id": oid, "traceId": trace_id, "type": kind, "name": name, "startTime": _iso(start),  # noqa: B023
                    "endTime": _iso(end), "parentObservationId": None, "level": "DEFAULT", "statusMessage": None,
                    "metadata": {}, "model": None, "usageDetails": {}, **rest}

        tool_obs = observation(f"obs-{n}-2", "TOOL", tool, t + 501 * MS, t + 700 * MS, input=args,
                               output=result, metadata={"tool_call_id": call["id"]})
        if failed:
            tool_obs.update(level="ERROR", statusMessage="printer service unavailable")
        out.append({
            "id": trace_id, "name": "help-desk-agent", "timestamp": _iso(t), "input": question, "output": answer,
            "sessionId": f"session-{n}", "userId": "u-17", "metadata": {}, "tags": [],
            "observations": [
                observation(f"obs-{n}-1", "GENERATION", "chat", t, t + 500 * MS, model="gpt-4o-mini",
                            input={"messages": messages, "tools": tools_offered},
                            output={"role": "assistant", "content": None, "tool_calls": [call]},
                            usageDetails={"input": 75, "output": 22, "total": 97}),
                tool_obs,
                observation(f"obs-{n}-3", "GENERATION", "chat", t + 701 * MS, t + 900 * MS, model="gpt-4o-mini",
                            input={"messages": messages + [{"role": "assistant", "content": None, "tool_calls": [call]},
                                                           {"role": "tool", "tool_call_id": call["id"],
                                                            "content": json.dumps(result)}], "tools": tools_offered},
                            output={"role": "assistant", "content": answer},
                            usageDetails={"input": 120, "output": 14, "total": 134}),
            ],
        })
    return out


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "otlp.json").write_text(json.dumps(otlp_request(), indent=1) + "\n", encoding="utf-8")
    (DATA / "openai.jsonl").write_text(_jsonl(openai_log()), encoding="utf-8")
    (DATA / "openai_stored.json").write_text(json.dumps(openai_stored(), indent=1) + "\n", encoding="utf-8")
    (DATA / "langsmith.jsonl").write_text(_jsonl(langsmith_runs()), encoding="utf-8")
    (DATA / "langfuse.json").write_text(json.dumps(langfuse_traces(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
