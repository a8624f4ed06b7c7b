"""The loop for an agent that is not ours, with real parts: an OpenAI-client agent traced by OpenInference's
instrumentation and the OpenTelemetry OTLP/HTTP exporter sends its run to `collect`; a person labels the
episode a success; it becomes an exemplar; the next request through `proxy` carries it to the upstream.
"""

from __future__ import annotations

import json

import openai
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentlearn.feedback import labels
from agentlearn.memory import exemplars
from agentlearn.traces import collect, proxy
from storage.records import Trajectory
from tests.asgi_server import serving
from tests.openai_fake import Upstream

SERVICE = "desk-agent"
TOOLS = [{"type": "function", "function": {
    "name": "reset_password", "description": "Reset a user's password and send it.",
    "parameters": {"type": "object", "properties": {"username": {"type": "string"}, "delivery": {"type": "string"}},
                   "required": ["username"]}}}]
CALL = {"id": "call_r1", "type": "function",
        "function": {"name": "reset_password", "arguments": json.dumps({"username": "dlee", "delivery": "sms"})}}


def reset_password(username: str, delivery: str = "email") -> str:
    return f"temporary password for {username} sent by {delivery}"


def desk_agent(client: openai.OpenAI, request: str, model: str = "desk-model", **options) -> str:
    """A plain tool-calling loop on the OpenAI client: call the model, run what it calls, until it answers."""
    messages = [{"role": "system", "content": "You are the help desk."}, {"role": "user", "content": request}]
    for _ in range(4):
        message = client.chat.completions.create(model=model, messages=messages, tools=TOOLS,
                                                 **options).choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            result = reset_password(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return ""


def test_a_traced_openai_agent_is_collected_labeled_and_its_success_reaches_the_next_request(ws):
    fake = Upstream()
    fake.replies = [{"role": "assistant", "content": None, "tool_calls": [CALL]},
                    {"role": "assistant", "content": "I reset dlee's password and texted it."}]
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    with serving(fake.app) as upstream, serving(collect.create_app(ws, quiet_s=3600)) as collector:
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector + "/v1/traces")))
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            with provider.get_tracer(SERVICE).start_as_current_span("desk-agent run"):  # one trace per run
                answer = desk_agent(openai.OpenAI(base_url=upstream + "/v1", api_key="sk-x", max_retries=0),
                                    "Reset the password of dlee and text it to him.")
        finally:
            instrumentor.uninstrument()
            provider.shutdown()
    assert answer == "I reset dlee's password and texted it."

    [episode] = ws.repo.find(Trajectory, source="collect")
    assert episode.suite == SERVICE and episode.model == "fake-model"  # the model the response named
    assert [[c.name for c in s.calls] for s in episode.steps] == [["reset_password"], []]
    assert episode.steps[0].calls[0].arguments == {"username": "dlee", "delivery": "sms"}
    assert episode.steps[0].results[0].content == "temporary password for dlee sent by sms"
    assert episode.steps[1].answer == answer

    labels.submit_label(ws, episode.id, "maya", "success", score=5)
    assert exemplars.sync_bank(ws, SERVICE) == 1

    with serving(fake.app) as upstream, serving(proxy.create_app(ws, upstream + "/v1")) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-x", max_retries=0,
                               default_headers={"X-Agentlearn-Suite": SERVICE})
        client.chat.completions.create(model="desk-model", messages=[
            {"role": "user", "content": "Please reset the password of akhan and text it to her."}], tools=TOOLS)
    system = fake.received[-1][1]["messages"][0]
    assert system["role"] == "system"
    assert "Request: Reset the password of dlee and text it to him." in system["content"]
    assert '"name": "reset_password", "arguments": {"username": "dlee", "delivery": "sms"}' in system["content"]
