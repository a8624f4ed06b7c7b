"""`collect` receiving what the real OpenTelemetry SDK and its OTLP/HTTP exporter send.

The agent below is a small tool-calling loop instrumented the way GenAI instrumentations do it (an
invoke_agent span, a chat span per model call with gen_ai.input/output.messages, an execute_tool span
per tool run); its spans leave through opentelemetry-exporter-otlp-proto-http's OTLPSpanExporter.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentlearn import accounts, users
from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.traces import access, collect
from agentlearn.workspace import open_workspace
from storage.records import Span, Trajectory
from tests.asgi_server import serving
from tests.seed import ME

SERVICE = "trip-agent"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "book_train", "description": "Book a train.",
                                           "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}}]
REQUEST = "Check the weather in Lyon, and if it is dry book me a train there."


def _weather(city: str) -> str:
    return json.dumps({"city": city, "sky": "dry", "celsius": 21})


def _book(to: str) -> str:
    return f"booked seat 42 on the 9:14 to {to}"


PLAN = [("get_weather", {"city": "Lyon"}, _weather), ("book_train", {"to": "Lyon"}, _book)]


def run_agent(provider: TracerProvider, request: str = REQUEST) -> None:
    """A two-tool agent run with its final answer, traced with GenAI semantic conventions."""
    tracer = provider.get_tracer("trip-agent-instrumentation")
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.tool.definitions": json.dumps([t["function"] for t in TOOLS])}
    messages = [{"role": "user", "parts": [{"type": "text", "content": request}]}]
    with tracer.start_as_current_span("invoke_agent trip-agent", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "trip-agent"}):
        for n, (tool, args, fn) in enumerate(PLAN):
            call = {"type": "tool_call", "id": f"call_{n}", "name": tool, "arguments": args}
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                    **common, "gen_ai.input.messages": json.dumps(messages),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call]}]),
                    "gen_ai.usage.input_tokens": 50 + n, "gen_ai.usage.output_tokens": 12}):
                pass
            with tracer.start_as_current_span(f"execute_tool {tool}", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.tool.call.id": call["id"],
                    "gen_ai.tool.call.arguments": json.dumps(args)}) as span:
                result = fn(**args)
                span.set_attribute("gen_ai.tool.call.result", result)
            messages += [{"role": "assistant", "parts": [call]},
                         {"role": "tool", "parts": [{"type": "tool_call_response", "id": call["id"], "response": result}]}]
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                **common, "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                    {"type": "text", "content": "It is dry in Lyon: you have seat 42 on the 9:14."}]}])}):
            pass


def _provider(processor_exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(processor_exporter))
    return provider


def _recorded_spans(request: str = REQUEST) -> list[ReadableSpan]:
    """One agent run's finished spans, children before the root (the order they end in)."""
    memory = InMemorySpanExporter()
    run_agent(_provider(memory), request)
    return list(memory.get_finished_spans())


def _episodes(ws) -> list[Trajectory]:
    return ws.repo.find(Trajectory, source=collect.SOURCE)


@pytest.fixture
def collector(ws) -> Iterator[str]:
    with serving(collect.create_app(ws, quiet_s=3600)) as url:
        yield url + "/v1/traces"


def test_an_sdk_exported_agent_run_becomes_one_episode_with_its_calls_and_results(ws, collector):
    provider = _provider(OTLPSpanExporter(endpoint=collector))
    run_agent(provider)
    provider.shutdown()

    [episode] = _episodes(ws)
    assert episode.suite == SERVICE and episode.source == "collect" and episode.model == "gpt-4o-mini"
    assert [[c.name for c in s.calls] for s in episode.steps] == [["get_weather"], ["book_train"], []]
    assert episode.steps[0].calls[0].arguments == {"city": "Lyon"}
    assert json.loads(episode.steps[0].results[0].content)["sky"] == "dry"
    assert episode.steps[1].results[0].content == "booked seat 42 on the 9:14 to Lyon"
    assert episode.steps[-1].answer == "It is dry in Lyon: you have seat 42 on the 9:14."
    assert episode.steps[0].tokens_in == 50 and {t["name"] for t in episode.tools} == {"get_weather", "book_train"}
    spans = ws.repo.find(Span, trace_id=episode.trace_id)
    assert len(spans) == 6 and all(s.status == "assembled" for s in spans)

    # The same run sent again (an exporter's retry) changes nothing; another run is another episode.
    provider = _provider(OTLPSpanExporter(endpoint=collector, compression=Compression.Gzip))
    run_agent(provider, "Is it dry in Lyon? Then book a train.")
    provider.shutdown()
    assert len(_episodes(ws)) == 2 and ws.repo.count(Span) == 12


def test_halves_of_one_trace_sent_to_two_collectors_make_one_episode(pg_url, tmp_path):
    """Two collectors, each with its own workspace on one PostgreSQL: no state but the store's."""
    def workspace(name: str):
        return open_workspace(Settings(home=tmp_path / name, database_url=pg_url), encoder=hash_encode)

    ws_a, ws_b = workspace("a"), workspace("b")
    first, second = _recorded_spans(), _recorded_spans("Weather in Lyon, then a train if dry, please.")
    with serving(collect.create_app(ws_a, quiet_s=3600)) as url_a, serving(collect.create_app(ws_b, quiet_s=3600)) as url_b:
        to_a, to_b = OTLPSpanExporter(endpoint=url_a + "/v1/traces"), OTLPSpanExporter(endpoint=url_b + "/v1/traces")
        # Trace 1: the first spans to A, the rest (the root among them) to B.
        assert to_a.export(first[:3]) == SpanExportResult.SUCCESS
        assert _episodes(ws_a) == []  # no root yet: the partial trace waits
        assert to_b.export(first[3:]) == SpanExportResult.SUCCESS
        # Trace 2: the root's half arrives first, at B; the first half later, at A, completes it.
        assert to_b.export(second[3:]) == SpanExportResult.SUCCESS
        assert to_a.export(second[:3]) == SpanExportResult.SUCCESS
    episodes = {e.trace_id: e for e in _episodes(workspace("c"))}
    assert len(episodes) == 2
    for episode in episodes.values():
        assert [[c.name for c in s.calls] for s in episode.steps] == [["get_weather"], ["book_train"], []]
        assert all(r.content for s in episode.steps for r in s.results)


def test_a_partial_trace_is_assembled_when_quiet_and_completed_when_the_rest_arrives(ws, collector):
    spans = _recorded_spans()
    exporter = OTLPSpanExporter(endpoint=collector)
    exporter.export(spans[:2])  # the first chat span and its tool run; no root
    assert _episodes(ws) == [] and collect.sweep(ws, quiet_s=3600) == 0
    assert collect.sweep(ws, quiet_s=0) == 1
    [partial] = _episodes(ws)
    assert [[c.name for c in s.calls] for s in partial.steps] == [["get_weather"]]
    exporter.export(spans[2:])
    [whole] = _episodes(ws)
    assert whole.id == partial.id and len(whole.steps) == 3


BAD = [
    ("truncated protobuf", "application/x-protobuf", None, "protobuf"),
    ("not JSON", "application/json", b'{"resourceSpans": [', "not JSON"),
    ("wrong schema", "application/json", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 1}]}]}]}).encode(),
     "resourceSpans[0].scopeSpans[0].spans[0]"),
    ("not a trace request", "application/json", b'{"resourceLogs": []}', "resourceSpans"),
    ("oversized", "application/json", b" " * (collect.MAX_BODY + 1), "over"),
    ("bad gzip", "application/json", b"\x1f\x8b not gzip", "decompressed"),
]


@pytest.mark.parametrize(("what", "content_type", "body", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_batch_gets_400_with_the_reason_stores_nothing_and_serving_goes_on(ws, collector, what, content_type,
                                                                               body, reason):
    good = encode_spans(_recorded_spans()).SerializeToString()
    if body is None:
        body = good[: len(good) // 2]
    headers = {"content-type": content_type} | ({"content-encoding": "gzip"} if what == "bad gzip" else {})
    r = httpx.post(collector, content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]
    assert ws.repo.count(Span) == 0 and _episodes(ws) == []
    r = httpx.post(collector, content=gzip.compress(good), headers={"content-type": "application/x-protobuf",
                                                                    "content-encoding": "gzip"})
    assert r.status_code == 200 and len(_episodes(ws)) == 1


def test_other_content_types_are_refused(ws, collector):
    r = httpx.post(collector, content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/x-protobuf" in r.json()["message"]
    assert ws.repo.count(Span) == 0


def test_with_accounts_the_exporter_sends_an_ingest_token(ws, collector):
    users.add_user(ws.repo, "ada", "admin", "correct horse battery", who=ME)
    ada = accounts.identity_of(accounts.find(ws.repo, "ada"))
    spans = _recorded_spans()
    assert OTLPSpanExporter(endpoint=collector).export(spans) == SpanExportResult.FAILURE
    assert ws.repo.count(Span) == 0
    token = access.issue_token(ws.repo, "ada", who=ada)
    assert OTLPSpanExporter(endpoint=collector, headers={"x-agentlearn-token": token}).export(spans) == SpanExportResult.SUCCESS
    assert {s.sender for s in ws.repo.all(Span)} == {"ada"} and len(_episodes(ws)) == 1


def test_collect_refuses_to_listen_off_loopback_without_accounts(ws):
    with pytest.raises(ValueError, match="no accounts exist"):
        collect.serve(ws, host="0.0.0.0", port=1)

