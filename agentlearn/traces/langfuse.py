"""Langfuse exports to episodes: traces with their observations, or observations alone, grouped by trace.

The shapes of Langfuse's public API: a trace (`GET /api/public/traces/{id}`: id, name, timestamp,
input, output, sessionId, observations [...]), an observation (id, traceId, type, name, startTime,
endTime, parentObservationId, input, output, model, usageDetails or usage, level, statusMessage), or a
page of either (`{"data": [...], "meta": {...}}`). A GENERATION is a model call: input a message list
(or `{"messages": [...], "tools": [...]}`), output an assistant message (or a string, or `choices`).
A TOOL observation, or a SPAN whose name is a tool the model called, is a tool execution;
level ERROR marks it failed.
"""

from __future__ import annotations

from typing import Any

from agentlearn.traces import assemble
from agentlearn.traces.assemble import ModelTurn, Msg, ToolRun
from agentlearn.traces.documents import Document
from agentlearn.traces.episode import ImportedEpisode

OBSERVATION_TYPES = frozenset({"GENERATION", "SPAN", "EVENT", "TOOL", "AGENT", "CHAIN", "RETRIEVER", "EMBEDDING",
                               "EVALUATOR", "GUARDRAIL"})


def looks_like(value: dict) -> bool:
    """True for a Langfuse trace, observation or page of them (for `--format auto`)."""
    if isinstance(value.get("data"), list) and isinstance(value.get("meta"), dict):
        return not value["data"] or (isinstance(value["data"][0], dict) and looks_like(value["data"][0]))
    return isinstance(value.get("observations"), list) or (
        value.get("type") in OBSERVATION_TYPES and "traceId" in value)


def read(documents: list[Document]) -> list[ImportedEpisode]:
    """One episode per trace, traces in order of first appearance."""
    traces: dict[str, dict] = {}
    observations: dict[str, list[dict]] = {}
    for where, item in _items(documents):
        if isinstance(item.get("observations"), list):
            if not item.get("id"):
                raise ValueError(f"{where}: a Langfuse trace needs an 'id'")
            traces[str(item["id"])] = item
            observations.setdefault(str(item["id"]), [])
            for i, obs in enumerate(item["observations"]):
                observations[str(item["id"])].append(_observation(obs, f"{where}, observations[{i}]"))
        else:
            obs = _observation(item, where)
            observations.setdefault(str(obs["traceId"]), []).append(obs)
    out = []
    for trace_id, members in observations.items():
        trace = traces.get(trace_id, {})
        turns = [_turn(o) for o in members if o["type"] == "GENERATION"]
        called = {c.name for t in turns for c in (t.output.calls if t.output else [])}
        runs = [_run(o) for o in members if o["type"] == "TOOL" or (o["type"] == "SPAN" and o.get("name") in called)]
        found = assemble.episode(trace_id, turns, runs, fmt="langfuse", agent=str(trace.get("name") or ""),
                                 request=assemble.request_of(trace.get("input")))
        if found is not None:
            out.append(found)
    return out


def _items(documents: list[Document]) -> list[tuple[str, dict]]:
    out = []
    for doc in documents:
        page = isinstance(doc.value.get("data"), list) and isinstance(doc.value.get("meta"), dict)
        for i, item in enumerate(doc.value["data"] if page else [doc.value]):
            where = f"{doc.where}, data[{i}]" if page else doc.where
            if not isinstance(item, dict):
                raise ValueError(f"{where}: a Langfuse trace or observation is an object, not {type(item).__name__}")
            out.append((where, item))
    return out


def _observation(obs: Any, where: str) -> dict:
    if not isinstance(obs, dict) or obs.get("type") not in OBSERVATION_TYPES or not obs.get("traceId"):
        raise ValueError(f"{where}: not a Langfuse observation (it needs 'traceId' and a 'type' such as "
                         "GENERATION, SPAN or TOOL)")
    if assemble.seconds_of(obs.get("startTime")) is None:
        raise ValueError(f"{where}: startTime {str(obs.get('startTime'))[:40]!r} is not an ISO 8601 time")
    return obs


def _duration(obs: dict) -> float | None:
    return assemble.duration_of(obs.get("startTime"), obs.get("endTime"))


def _output(value: Any) -> Msg | None:
    if isinstance(value, str):
        return Msg(role="assistant", text=value)
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        first = value["choices"][0]
        return assemble.message_of(first.get("message") if isinstance(first, dict) else None, "assistant")
    return assemble.message_of(value, "assistant")


def _turn(obs: dict) -> ModelTurn:
    given = obs.get("input")
    messages = given.get("messages") if isinstance(given, dict) else given
    params = obs.get("modelParameters") if isinstance(obs.get("modelParameters"), dict) else {}
    metadata = obs.get("metadata") if isinstance(obs.get("metadata"), dict) else {}
    tools = (given.get("tools") if isinstance(given, dict) else None) or params.get("tools") or metadata.get("tools")
    usage = obs.get("usageDetails") or obs.get("usage") or {}
    usage = usage if isinstance(usage, dict) else {}
    return ModelTurn(start=assemble.seconds_of(obs["startTime"]) or 0.0,
                     input=[m for m in map(assemble.message_of, messages if isinstance(messages, list) else [])
                            if m is not None],
                     output=_output(obs.get("output")), seconds=_duration(obs),
                     tokens_in=assemble.count_of(usage.get("input", usage.get("promptTokens"))),
                     tokens_out=assemble.count_of(usage.get("output", usage.get("completionTokens"))),
                     model=str(obs.get("model") or ""), tools=assemble.tools_of(tools))


def _run(obs: dict) -> ToolRun:
    failed = obs.get("level") == "ERROR"
    output = obs.get("output")
    metadata = obs.get("metadata") if isinstance(obs.get("metadata"), dict) else {}
    return ToolRun(start=assemble.seconds_of(obs["startTime"]) or 0.0, name=str(obs.get("name") or ""),
                   arguments=assemble.arguments_of(obs.get("input")),
                   content=assemble.as_text(output if output is not None
                                            else obs.get("statusMessage") if failed else ""),
                   error=failed, seconds=_duration(obs), call_id=str(metadata.get("tool_call_id") or ""))
