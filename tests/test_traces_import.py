"""Trace import: each format's real-shaped sample (tests/trace_samples.py) into episodes, stored in place.

The samples were written by the packages that write such files (the OpenTelemetry SDK and its OTLP
encoder, openai's types, LangChain's run collector; Langfuse after its API's shapes); one test makes a
fresh OTLP request with the SDK and reads it both as JSON and as protobuf.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentlearn.accounts import local_identity
from agentlearn.traces import otlp
from agentlearn.traces.assemble import ModelTurn, Msg, episode
from agentlearn.traces.formats import import_file, read_episodes
from agentlearn.traces.store import NO_REFERENCE, save_episodes
from storage.records import Label, Task, ToolCall, Trajectory
from tests import trace_samples

DATA = Path(__file__).parent / "data" / "traces"
WHO = local_identity()

# file -> (format told from it, episodes, steps, calls, tasks)
SAMPLES = {
    "otlp.json": ("otlp-json", 4, 8, 4, 3),
    "openai.jsonl": ("openai", 2, 4, 3, 2),
    "openai_stored.json": ("openai", 1, 1, 1, 1),
    "langsmith.jsonl": ("langsmith", 2, 4, 2, 2),
    "langfuse.json": ("langfuse", 2, 4, 2, 2),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_each_format_imports_its_sample(ws, name):
    fmt, n_episodes, n_steps, n_calls, n_tasks = SAMPLES[name]
    counts = import_file(ws, DATA / name, "imported", who=WHO)
    assert counts == {"format": fmt, "episodes": n_episodes, "steps": n_steps, "calls": n_calls,
                      "trajectories_new": n_episodes, "trajectories_updated": 0, "tasks_new": n_tasks, "skipped": 0}
    runs = ws.repo.find(Trajectory, suite="imported")
    assert len(runs) == n_episodes and {t.source for t in runs} == {"traces"}
    for t in runs:
        assert t.trace_id and t.steps and t.tool_calls and t.tool_call == t.tool_calls[0]
        called = [s for s in t.steps if s.calls]
        assert called and all(len(s.results) == len(s.calls) for s in called)
        assert called[0].user and called[0].user == ws.repo.get(Task, t.task_id).input[0].content
    tasks = ws.repo.find(Task, suite="imported")
    assert len(tasks) == n_tasks
    assert all(t.split == "train" and t.expected == ToolCall(name="") and NO_REFERENCE in t.tags for t in tasks)


def _by_request(episodes):
    return {e.request: e for e in episodes}


def test_otlp_sample_reads_genai_events_and_openinference():
    fmt, episodes = read_episodes(DATA / "otlp.json")
    assert fmt == "otlp-json"
    found = _by_request(episodes)
    weather = found["What is the weather in Paris?"]  # GenAI conventions (the later of the two Paris traces)
    assert weather.agent == "weather-agent" and weather.service == "weather-agent"
    assert weather.model == "gpt-4o-mini-2024-07-18" and [t["name"] for t in weather.tools] == ["get_weather"]
    assert [m.role for m in weather.prompt] == ["system", "user"]
    first, last = weather.steps
    assert first.calls == [ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "c"}, id="call_paris")]
    assert json.loads(first.results[0].content)["city"] == "Paris" and first.results[0].seconds == pytest.approx(0.05)
    assert (first.tokens_in, first.tokens_out, first.seconds) == (84, 17, pytest.approx(0.4))
    assert last.answer == weather.answer and weather.answer.startswith("It is 1")
    events = found["My laptop will not boot, please open a ticket."]  # the older event form, a tool that failed
    assert events.steps[0].calls[0].arguments == {"title": "Laptop will not boot"}
    assert events.steps[0].results[0].error and events.steps[0].results[0].content == "ticket service timed out"
    assert events.answer == "The ticket system is down; please try again later."
    oi = found["Open a ticket: printer on floor 3 jams"]  # OpenInference
    assert oi.agent == "AgentExecutor" and [t["name"] for t in oi.tools] == ["open_ticket"]
    assert oi.steps[0].calls[0].arguments == {"title": "Printer on floor 3 jams", "priority": "low"}
    assert oi.steps[0].results[0].content == "ticket T-1042 opened"
    assert (oi.steps[1].tokens_in, oi.steps[1].tokens_out) == (110, 12)


def test_fresh_sdk_spans_read_alike_as_json_base64_json_and_protobuf():
    """The SDK's spans through the OTLP encoder: hex JSON, protobuf's own JSON (base64 ids) and protobuf bytes."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    provider, exporter = trace_samples._provider(seed=11)
    trace_samples._genai_trace(provider.get_tracer("t"), trace_samples.T0, "Oslo", "2 C")
    spans = exporter.get_finished_spans()
    request = encode_spans(spans)
    as_hex = otlp.spans_from_otlp_json(trace_samples.encode(spans))
    assert otlp.spans_from_otlp_json(MessageToDict(request)) == as_hex
    assert otlp.spans_from_otlp_protobuf(request.SerializeToString()) == as_hex
    assert {s["trace_id"] for s in as_hex} == {format(spans[0].context.trace_id, "032x")}
    (found,) = otlp.episodes_from_spans(as_hex)
    assert found.request == "What is the weather in Oslo?" and found.answer == "It is 2 C in Oslo."
    assert [c.name for c in found.calls] == ["get_weather"]


def test_protobuf_is_read_field_by_field_as_its_json_form_is_read():
    """Every attribute value kind, events and a failed status read alike from protobuf bytes and from
    protobuf's JSON mapping; an id of the wrong size and a NUL character are refused, naming the place."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.trace import StatusCode

    provider, exporter = trace_samples._provider(seed=12)
    with provider.get_tracer("t").start_as_current_span("odd") as span:
        span.set_attributes({"n": 5, "x": 2.5, "yes": True, "words": ["a", "b"], "ints": [1, 2], "raw": b"\x01\xff"})
        span.add_event("note", {"k": "v"})
        span.set_status(StatusCode.ERROR, "boom")
    request = encode_spans(exporter.get_finished_spans())
    [read] = otlp.spans_from_otlp_protobuf(request.SerializeToString())
    assert [read] == otlp.spans_from_otlp_json(MessageToDict(request))
    assert {k: read["attributes"][k] for k in ("n", "x", "yes", "words", "ints", "raw")} == {
        "n": 5, "x": 2.5, "yes": True, "words": ["a", "b"], "ints": [1, 2], "raw": "01ff"}
    assert read["status"] == {"code": otlp.STATUS_ERROR, "message": "boom"} and read["events"][0]["name"] == "note"
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02\x03"
    with pytest.raises(ValueError, match=r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.spanId: 3 bytes"):
        otlp.spans_from_otlp_protobuf(request.SerializeToString())
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01" * 8
    request.resource_spans[0].scope_spans[0].spans[0].name = "a\x00b"
    with pytest.raises(ValueError, match="0.name holds a NUL"):
        otlp.spans_from_otlp_protobuf(request.SerializeToString())


def test_spans_of_one_trace_split_over_lines_make_one_episode(ws, tmp_path):
    payload = json.loads((DATA / "otlp.json").read_text())
    spans = payload["resourceSpans"][0]["scopeSpans"][0]["spans"]
    halves = [json.loads(json.dumps(payload)) for _ in range(2)]
    halves[0]["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans[::2]
    halves[1]["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans[1::2]
    path = tmp_path / "halves.jsonl"
    path.write_text("\n".join(json.dumps(h) for h in halves) + "\n")
    counts = import_file(ws, path, "halves", who=WHO)
    assert (counts["episodes"], counts["steps"], counts["calls"]) == (4, 8, 4)


def test_reimport_updates_in_place_and_keeps_what_people_set(ws):
    import_file(ws, DATA / "otlp.json", "s", who=WHO)
    runs = {t.id: t for t in ws.repo.find(Trajectory, suite="s")}
    task = ws.repo.get(Task, next(iter(runs.values())).task_id)
    ws.repo.put(task.model_copy(update={"expected": ToolCall(name="get_weather", arguments={"city": "Paris"}),
                                        "tags": ["checked"]}))
    label = ws.repo.put(Label(trajectory_id=next(iter(runs)), annotator="ana", verdict="success"))
    counts = import_file(ws, DATA / "otlp.json", "s", who=WHO)
    assert (counts["trajectories_new"], counts["trajectories_updated"], counts["tasks_new"]) == (0, 4, 0)
    assert {t.id for t in ws.repo.find(Trajectory, suite="s")} == set(runs)
    assert ws.repo.count(Task) == 3 and ws.repo.get(Label, label.id) is not None
    kept = ws.repo.get(Task, task.id)
    assert kept.expected.name == "get_weather" and kept.tags == ["checked"]


BAD = {
    "truncated.json": (lambda text: text[: len(text) // 2], "line"),
    "not-json.json": (lambda text: "resourceSpans: none\n", "line 1 column 1: invalid JSON"),
    "wrong-schema.json": (lambda text: json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}),
                          "resourceSpans[0].scopeSpans[0].spans[0]: a span needs a traceId"),
    "bad-time.json": (lambda text: text.replace('"startTimeUnixNano": "1780000000001000000"',
                                                '"startTimeUnixNano": "soon"', 1), "startTimeUnixNano"),
    "nul.jsonl": (lambda text: json.dumps(json.loads(text)) + "\n" + json.dumps({"resourceSpans": [], "x": "a\u0000"}),
                  "line 2"),
    "a-number.jsonl": (lambda text: json.dumps(json.loads(text)) + "\n7\n", "line 2: a trace record is a JSON object"),
    "unknown.json": (lambda text: json.dumps({"hello": "world"}), "not a trace format"),
    "openai-no-choices.jsonl": (lambda text: json.dumps({"request": {"messages": []}, "response": {"id": "x"}}),
                                "line 1: the response has no 'choices' list"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_refused_with_file_and_place_and_nothing_stored(ws, tmp_path, name):
    import_file(ws, DATA / "langfuse.json", "s", who=WHO)
    before = {t.id: t for t in ws.repo.all(Trajectory)}
    make, expected = BAD[name]
    path = tmp_path / name
    path.write_text(make((DATA / "otlp.json").read_text()))
    with pytest.raises(ValueError) as e:
        import_file(ws, path, "s", who=WHO)
    assert str(path) in str(e.value) and expected in str(e.value) and "\n" not in str(e.value)
    assert {t.id: t for t in ws.repo.all(Trajectory)} == before and ws.repo.count(Task) == 2


def test_oversized_file_is_refused_before_reading(ws, tmp_path):
    path = tmp_path / "big.json"
    shutil.copy(DATA / "otlp.json", path)
    with pytest.raises(ValueError, match="MiB limit of one import"):
        import_file(ws, path, "s", who=WHO, max_bytes=1024)
    assert ws.repo.count(Trajectory) == 0


def test_wrong_format_named_is_refused(ws):
    with pytest.raises(ValueError, match="not a LangSmith run"):
        import_file(ws, DATA / "otlp.json", "s", "langsmith", who=WHO)
    assert ws.repo.count(Trajectory) == 0


def test_a_new_user_message_opens_the_next_turn():
    ask, more = Msg(role="user", text="Weather in Oslo?"), Msg(role="user", text="And in Rome?")
    call = ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="c1")
    turns = [ModelTurn(start=1, input=[ask], output=Msg(role="assistant", calls=[call])),
             ModelTurn(start=2, input=[ask, Msg(role="assistant", calls=[call]), Msg(role="tool", text="2 C", call_id="c1")],
                       output=Msg(role="assistant", text="2 C in Oslo.")),
             ModelTurn(start=3, input=[ask, Msg(role="assistant", text="2 C in Oslo."), more],
                       output=Msg(role="assistant", text="I will check Rome."))]
    found = episode("t", turns, [], fmt="test")
    assert [(s.turn, s.user) for s in found.steps] == [(0, "Weather in Oslo?"), (0, ""), (1, "And in Rome?")]
    assert found.steps[0].results[0].content == "2 C"


def test_import_needs_the_import_role(ws):
    from agentlearn.accounts import Identity
    from agentlearn.users import add_user

    add_user(ws.repo, "root", "admin", "a long password 1", who=WHO)
    add_user(ws.repo, "ann", "annotator", "a long password 2", who=Identity(name="root", role="admin"))
    with pytest.raises(PermissionError):
        import_file(ws, DATA / "otlp.json", "s", who=Identity(name="ann", role="annotator"))
    assert ws.repo.count(Trajectory) == 0


def test_labeled_imported_episodes_reach_the_sft_export(ws):
    """Round trip: import, a person marks an episode a success, the SFT export holds it as a conversation:
    its request, the assistant's tool call and the tool's answer."""
    from agentlearn.datasets import export

    import_file(ws, DATA / "otlp.json", "s", who=WHO)
    run = next(t for t in ws.repo.find(Trajectory, suite="s") if t.tool_call and t.tool_call.name == "open_ticket"
               and not t.steps[0].results[0].error)
    ws.repo.put(Label(trajectory_id=run.id, annotator="ana", verdict="success"))
    record = export(ws, "sft", "s")
    rows = [json.loads(line) for line in Path(record.path).read_text().splitlines()]
    assert record.rows == 1 and record.trajectory_ids == [run.id]
    (row,) = rows
    messages = row["messages"]
    assert any(m["role"] == "user" and "Open a ticket: printer on floor 3 jams" in m["content"] for m in messages)
    calls = [c["function"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [c["name"] for c in calls] == ["open_ticket"] and "Printer on floor 3 jams" in json.dumps(calls[0])
    assert [m for m in messages if m["role"] == "tool"]  # the tool's answer follows the call


def test_cli_import_and_list(ws, capsys, tmp_path):
    from agentlearn.cli import main

    assert main(["traces", "import", str(DATA / "openai.jsonl"), "--suite", "logs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 2
    assert main(["traces", "list", "--suite", "logs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    oslo = next(e for e in listed if e["request"] == "Compare the weather in Oslo and Rome.")
    assert oslo["source"] == "traces" and oslo["trace_id"] == "chatcmpl-1a"
    assert [c["arguments"]["city"] for c in oslo["steps"][0]["calls"]] == ["Oslo", "Rome"]
    assert [r["content"] for r in oslo["steps"][0]["results"]] == ["2 C, snow", "19 C, sun"]
    assert oslo["steps"][-1]["answer"] == "Rome is 17 degrees warmer than Oslo."
    bad = tmp_path / "cut.jsonl"
    bad.write_text((DATA / "openai.jsonl").read_text()[:-40])
    assert main(["traces", "import", str(bad), "--suite", "logs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and f"{bad}, line 4" in err and "\n" not in err


def test_a_batch_with_an_episode_without_a_request_stores_nothing(ws):
    _, episodes = read_episodes(DATA / "langfuse.json")
    episodes[1].request = ""
    with pytest.raises(ValueError, match=f"trace {episodes[1].trace_id}: no user request"):
        save_episodes(ws, "s", episodes, who=WHO)
    assert ws.repo.count(Trajectory) == 0 and ws.repo.count(Task) == 0


def test_runs_recorded_without_message_content_are_left_out_and_counted(ws, tmp_path):
    """GenAI content capture is opt-in: a trace whose spans carry no messages has no request to become a task."""
    payload = json.loads((DATA / "otlp.json").read_text())
    spans = payload["resourceSpans"][0]["scopeSpans"][0]["spans"]
    first_trace = spans[0]["traceId"]
    for span in spans:
        if span["traceId"] == first_trace:
            span["attributes"] = [a for a in span.get("attributes", []) if "messages" not in a["key"] and "instructions" not in a["key"]]
    path = tmp_path / "no-content.json"
    path.write_text(json.dumps(payload))
    counts = import_file(ws, path, "s", who=WHO)
    assert (counts["episodes"], counts["skipped"]) == (3, 1)
    assert first_trace not in {t.trace_id for t in ws.repo.all(Trajectory)}
    for span in spans:
        span["attributes"] = [a for a in span.get("attributes", []) if not a["key"].startswith(("gen_ai.input", "gen_ai.system",
                                                                                          "llm.input", "input.value"))]
        span["events"] = [e for e in span.get("events", []) if e["name"] not in ("gen_ai.user.message",)]
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="CAPTURE_MESSAGE_CONTENT"):
        import_file(ws, path, "t", who=WHO)
    assert ws.repo.find(Trajectory, suite="t") == []


def test_openllmetry_flattened_attributes_read_as_steps():
    """OpenLLMetry's flattened gen_ai.prompt.N / gen_ai.completion.N attributes, spans made by the SDK."""
    from opentelemetry import trace

    provider, exporter = trace_samples._provider(seed=3)
    tracer = provider.get_tracer("t")
    t, ms = trace_samples.T0, trace_samples.MS
    common = {"llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
              "llm.request.functions.0.name": "get_weather",
              "llm.request.functions.0.parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})}
    ask = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather in Quito?"}
    root = tracer.start_span("agent", start_time=t)
    with trace.use_span(root, end_on_exit=True):
        trace_samples._span(tracer, "openai.chat", t, t + 300 * ms, {
            **common, **ask, "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.tool_calls.0.id": "q1",
            "gen_ai.completion.0.tool_calls.0.name": "get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments": json.dumps({"city": "Quito"}),
            "gen_ai.usage.prompt_tokens": 40, "gen_ai.usage.completion_tokens": 10})
        trace_samples._span(tracer, "openai.chat", t + 400 * ms, t + 600 * ms, {
            **common, **ask, "gen_ai.prompt.1.role": "assistant", "gen_ai.prompt.2.role": "tool",
            "gen_ai.prompt.2.tool_call_id": "q1", "gen_ai.prompt.2.content": "14 C, rain",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "14 C and rain in Quito."})
    spans = otlp.spans_from_otlp_json(trace_samples.encode(exporter.get_finished_spans()))
    assert len(spans) == 3 and len({s["trace_id"] for s in spans}) == 1
    (found,) = otlp.episodes_from_spans(spans)
    assert found.request == "Weather in Quito?" and [t["name"] for t in found.tools] == ["get_weather"]
    assert found.steps[0].calls == [ToolCall(name="get_weather", arguments={"city": "Quito"}, id="q1")]
    assert found.steps[0].results[0].content == "14 C, rain" and found.steps[0].tokens_in == 40
    assert found.answer == "14 C and rain in Quito."


def test_one_genai_tool_message_answering_two_calls_gives_each_its_result():
    calls = [{"type": "tool_call", "id": f"c{i}", "name": "get_weather", "arguments": {"city": city}}
             for i, city in enumerate(("Oslo", "Rome"))]
    user = {"role": "user", "parts": [{"type": "text", "content": "Oslo or Rome: which is warmer?"}]}

    def chat(span_id, start, inputs, output):
        return {"trace_id": "t", "span_id": span_id, "parent_span_id": "", "name": "chat", "start_ns": start,
                "end_ns": start + 10, "events": [], "status": {"code": 0, "message": ""}, "service": "", "resource": {},
                "attributes": {"gen_ai.operation.name": "chat", "gen_ai.input.messages": json.dumps(inputs),
                               "gen_ai.output.messages": json.dumps([output])}}

    spans = [chat("a", 1, [user], {"role": "assistant", "parts": calls}),
             chat("b", 100, [user, {"role": "assistant", "parts": calls}, {"role": "tool", "parts": [
                 {"type": "tool_call_response", "id": "c1", "response": "19 C"},
                 {"type": "tool_call_response", "id": "c0", "response": "2 C"}]}],
                  {"role": "assistant", "parts": [{"type": "text", "content": "Rome."}]})]
    (found,) = otlp.episodes_from_spans(spans)
    assert [(r.call_id, r.content) for r in found.steps[0].results] == [("c0", "2 C"), ("c1", "19 C")]
    assert found.answer == "Rome."


def test_a_remote_agent_recorded_only_as_invoke_agent_spans_is_one_episode():
    span = {"trace_id": "r", "span_id": "a", "parent_span_id": "", "name": "invoke_agent planner", "start_ns": 1,
            "end_ns": 2_000_000_001, "events": [], "status": {"code": 0, "message": ""}, "service": "", "resource": {},
            "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                           "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                               {"type": "text", "content": "Plan a trip to Lima"}]}]),
                           "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                               {"type": "text", "content": "Day 1: Miraflores."}]}])}}
    (found,) = otlp.episodes_from_spans([span])
    assert (found.agent, found.request, found.answer) == ("planner", "Plan a trip to Lima", "Day 1: Miraflores.")
    assert found.steps[0].seconds == pytest.approx(2.0)


def test_an_openai_client_instrumented_by_openinference_imports_as_one_episode(ws, tmp_path):
    """The real openai client and OpenInference's real instrumentation, the SDK's exporter and OTLP encoder;
    only the upstream server is replaced (an httpx transport answering two chat completions). The app's
    own execute_tool span kept no result: the result comes from the next call's tool message."""
    import httpx
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor

    answers = iter([
        trace_samples._completion("chatcmpl-x1", 1, {"content": None, "tool_calls": [
            trace_samples._tool_call("call_1", "get_weather", {"city": "Paris"})]}, (50, 10)),
        trace_samples._completion("chatcmpl-x2", 2, {"content": "18 C in Paris."}, (70, 5)),
    ])
    client = openai.OpenAI(api_key="none", base_url="http://upstream.invalid/v1", http_client=httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=next(answers)))))
    provider, exporter = trace_samples._provider(seed=5)
    tools = [{"type": "function", "function": {k: v for k, v in trace_samples.WEATHER_TOOL.items() if k != "type"}}]
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("agent").start_as_current_span("weather-agent"):
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
            with provider.get_tracer("agent").start_as_current_span("execute_tool get_weather", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.id": "call_1"}):  # the app's own tool span, its result not recorded
                messages += [first.choices[0].message.model_dump(exclude_none=True),
                             {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    finally:
        instrumentor.uninstrument()
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(trace_samples.encode(exporter.get_finished_spans())))
    counts = import_file(ws, path, "instrumented", who=WHO)
    assert (counts["format"], counts["episodes"], counts["steps"], counts["calls"]) == ("otlp-json", 1, 2, 1)
    (run,) = ws.repo.find(Trajectory, suite="instrumented")
    assert run.model == "gpt-4o-mini-2024-07-18" and [t["name"] for t in run.tools] == ["get_weather"]
    assert run.steps[0].calls[0].arguments == {"city": "Paris"} and run.steps[0].results[0].content == "18 C"
    assert run.steps[0].results[0].seconds is not None  # timed by the tool span, its text from the next call
    assert (run.steps[0].tokens_in, run.steps[1].tokens_out) == (50, 5) and run.output == "18 C in Paris."


def test_langfuse_observations_pages_read_like_the_traces_they_came_from(ws, tmp_path):
    """GET /api/public/observations pages ({"data": [...], "meta": {...}}), one a line, without the trace objects."""
    observations = [obs for trace in json.loads((DATA / "langfuse.json").read_text()) for obs in trace["observations"]]
    path = tmp_path / "observations.jsonl"
    path.write_text("\n".join(json.dumps({"data": observations[i:i + 4], "meta": {"page": i // 4 + 1}})
                              for i in range(0, len(observations), 4)))
    counts = import_file(ws, path, "pages", who=WHO)
    assert (counts["format"], counts["episodes"], counts["steps"], counts["calls"]) == ("langfuse", 2, 4, 2)
    failed = next(t for t in ws.repo.find(Trajectory, suite="pages") if t.trace_id == "lf-trace-2")
    assert failed.steps[0].results[0].error and failed.steps[0].results[0].content == "printer service unavailable"
