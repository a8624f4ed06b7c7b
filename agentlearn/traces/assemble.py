"""From what any trace format records to an episode: model turns and tool runs, joined into steps.

Formats differ in how they write a model call (OTLP span attributes, OpenAI request/response bodies,
LangSmith runs, Langfuse observations) but all say the same things: the messages sent, the text and
calls that came back, and, separately or in the next call's messages, what each tool answered. Each
reader turns its records into `ModelTurn`s and `ToolRun`s; `episode` joins them in time order, the
tool results to the calls by call id (else by position, else by name), so every format gets the same steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentlearn.toolcall import normalise_tool
from agentlearn.traces.episode import ImportedEpisode
from storage.records import Message, Step, ToolCall, ToolResult


@dataclass
class Msg:
    """One chat message as a trace records it: text, the calls an assistant made, or a tool's answer."""

    role: str
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    call_id: str = ""  # a tool message: the call it answers


@dataclass
class ModelTurn:
    """One call of the model: what it was sent, what it answered, and its cost."""

    start: float  # seconds since the epoch (orders turns and tool runs)
    input: list[Msg] = field(default_factory=list)
    output: Msg | None = None
    seconds: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ToolRun:
    """One execution of a tool, recorded on its own (an execute_tool span, a tool run or observation)."""

    start: float
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    content: str = ""
    error: bool = False
    seconds: float | None = None
    call_id: str = ""


# --- the pieces every format shares -------------------------------------------------------------


def as_text(value: Any) -> str:
    """A tool result or message content as text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def arguments_of(value: Any) -> dict[str, Any]:
    """A call's arguments as a dict: JSON text is parsed; any other value is kept under "input"."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"input": value}
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"input": value}


def call_of(obj: Any) -> ToolCall | None:
    """A tool call in any of the common shapes: OpenAI ({id, function: {name, arguments}}), LangChain
    ({id, name, args}), OpenTelemetry GenAI parts ({type: tool_call, id, name, arguments})."""
    if not isinstance(obj, dict):
        return None
    inner = obj.get("function") if isinstance(obj.get("function"), dict) else obj
    name = inner.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    args = inner.get("arguments", inner.get("args", inner.get("input")))
    return ToolCall(name=name.strip(), arguments=arguments_of(args), id=str(obj.get("id") or ""))


def _content_text(content: Any) -> str:
    """Message content that is a string or a list of parts ({type: text, text|content}); other parts skipped."""
    if isinstance(content, list):
        texts = [p.get("text", p.get("content")) if isinstance(p, dict) else p for p in content]
        return "\n".join(t for t in texts if isinstance(t, str))
    return as_text(content)


def message_of(obj: Any, role: str = "") -> Msg | None:
    """A chat message from the shapes traces use: OpenTelemetry GenAI ({role, parts}), OpenAI ({role,
    content, tool_calls, tool_call_id}), LangChain's serialised messages ({lc, kwargs: {content, type}})."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("kwargs"), dict) and "lc" in obj:  # langchain_core dumpd form
        kwargs = obj["kwargs"]
        kind = obj["id"][-1] if isinstance(obj.get("id"), list) and obj["id"] else ""
        return message_of({**kwargs, "role": _LANGCHAIN_ROLES.get(kwargs.get("type") or kind, kwargs.get("type", ""))})
    role = str(obj.get("role") or obj.get("type") or role)
    role = _LANGCHAIN_ROLES.get(role, role)
    if isinstance(obj.get("parts"), list):
        return _message_of_parts(role, obj["parts"])[0]
    calls = [c for c in map(call_of, obj.get("tool_calls") or []) if c is not None]
    if not calls and isinstance(obj.get("additional_kwargs"), dict):  # older LangChain messages
        calls = [c for c in map(call_of, obj["additional_kwargs"].get("tool_calls") or []) if c is not None]
    if isinstance(obj.get("function_call"), dict) and (legacy := call_of(obj["function_call"])):
        calls.append(legacy)
    return Msg(role=role, text=_content_text(obj.get("content")), calls=calls, call_id=str(obj.get("tool_call_id") or ""))


_LANGCHAIN_ROLES = {"human": "user", "ai": "assistant", "HumanMessage": "user", "AIMessage": "assistant",
                    "SystemMessage": "system", "ToolMessage": "tool", "AIMessageChunk": "assistant"}


def _message_of_parts(role: str, parts: list[Any]) -> list[Msg]:
    """A GenAI message's parts: its text and calls as one message, each tool_call_response as a tool message."""
    said = Msg(role=role)
    texts, answers = [], []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(as_text(part.get("content")))
        elif kind == "tool_call" and (call := call_of(part)):
            said.calls.append(call)
        elif kind == "tool_call_response":
            answers.append(Msg(role="tool", call_id=str(part.get("id") or ""),
                               text=as_text(part.get("response", part.get("result")))))
    said.text = "\n".join(texts)
    return ([said] if said.text or said.calls or not answers else []) + answers


def messages_of(obj: Any) -> list[Msg]:
    """Every message one recorded message holds (a GenAI message with several tool responses holds several)."""
    if isinstance(obj, dict) and isinstance(obj.get("parts"), list):
        return _message_of_parts(str(obj.get("role") or ""), obj["parts"])
    found = message_of(obj)
    return [found] if found is not None else []


def tool_results(messages: list[Msg]) -> list[Msg]:
    """Tool answers among messages (role tool, or any message that names the call it answers)."""
    return [m for m in messages if m.role == "tool" or (m.call_id and not m.calls)]


def tools_of(definitions: Any) -> list[dict[str, Any]]:
    """Tool definitions (OpenAI, bare or OpenTelemetry GenAI form) as {"name", "description", "parameters"};
    definitions that name no tool are skipped."""
    out = []
    for tool in definitions if isinstance(definitions, list) else []:
        try:
            out.append(normalise_tool(tool))
        except ValueError:
            continue
    return out


def seconds_of(iso: Any) -> float | None:
    """An ISO 8601 time (a naive one is UTC) as seconds since the epoch; None if it is not one."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def duration_of(start: Any, end: Any) -> float | None:
    """Seconds between two ISO 8601 times; None unless both are times and the end is not before the start."""
    began, ended = seconds_of(start), seconds_of(end)
    return ended - began if began is not None and ended is not None and ended >= began else None


def count_of(value: Any) -> int | None:
    """A recorded token count: an integer as it is (a bool is not one), anything else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def request_of(value: Any) -> str:
    """The request a root run or trace was given: its input when that is text, else the text under
    `input`, `question` or `query` (the keys agent frameworks write); "" when there is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("input", "question", "query"):
            if isinstance(value.get(key), str):
                return value[key]
    return ""


# --- joining ------------------------------------------------------------------------------------


def episode(trace_id: str, turns: list[ModelTurn], runs: list[ToolRun], *, fmt: str, service: str = "",
            agent: str = "", request: str = "") -> ImportedEpisode | None:
    """The episode these model turns and tool runs of one trace make; None when there is neither a turn
    nor a run. `request` is used when no model turn holds a user message."""
    if not turns and not runs:
        return None
    turns = sorted(turns, key=lambda t: t.start)
    runs = sorted(runs, key=lambda r: r.start)
    first_input = turns[0].input if turns else []
    users = [m.text for m in first_input if m.role == "user" and m.text]
    # The first user message any model call was sent (the first call may hold only a system prompt).
    request = next((m.text for t in turns for m in t.input if m.role == "user" and m.text), request)
    timed: list[tuple[float, Step]] = []
    seen_users = len(users)
    turn_no = 0
    for i, t in enumerate(turns):
        step = _step(t)
        now_users = [m.text for m in t.input if m.role == "user" and m.text]
        if i == 0:
            step.user = request
        elif len(now_users) > seen_users:  # a new user message: the agent's next turn with the person
            turn_no += 1
            step.user = now_users[-1]
        seen_users = max(seen_users, len(now_users))
        step.turn = turn_no
        answers = tool_results(turns[i + 1].input) if i + 1 < len(turns) else []
        step.results = [_result(call, runs, answers, t.start) for call in step.calls]
        step.observation = "\n".join(r.content for r in step.results)
        timed.append((t.start, step))
    for run in runs:  # tool runs that no recorded model call asked for: a step each
        call = ToolCall(name=run.name, arguments=run.arguments, id=run.call_id)
        timed.append((run.start, Step(calls=[call], results=[_from_run(run)], observation=run.content,
                                      turn=turn_no)))
    steps = [s for _, s in sorted(timed, key=lambda pair: pair[0])]
    tools: dict[str, dict[str, Any]] = {}
    for t in turns:
        tools.update({tool["name"]: tool for tool in t.tools if tool["name"] not in tools})
    starts = [t.start for t in turns] + [r.start for r in runs]
    return ImportedEpisode(
        trace_id=trace_id, request=request, steps=steps, tools=list(tools.values()),
        answer=steps[-1].answer if steps else "", model=next((t.model for t in turns if t.model), ""),
        service=service, agent=agent, format=fmt,
        started=datetime.fromtimestamp(min(starts), UTC) if starts else None,
        prompt=[Message(role=m.role, content=m.text) for m in first_input if m.text],
    )


def _step(t: ModelTurn) -> Step:
    out = t.output or Msg(role="assistant")
    return Step(action=out.text if not out.calls else json.dumps(
        [{"name": c.name, "arguments": c.arguments} for c in out.calls], ensure_ascii=False),
        thought=out.text if out.calls else "", calls=list(out.calls), answer="" if out.calls else out.text,
        seconds=t.seconds, tokens_in=t.tokens_in, tokens_out=t.tokens_out)


def _from_run(run: ToolRun) -> ToolResult:
    return ToolResult(call_id=run.call_id, name=run.name, content=run.content, error=run.error, seconds=run.seconds)


def _result(call: ToolCall, runs: list[ToolRun], answers: list[Msg], after: float) -> ToolResult:
    """What answered `call`: its tool run (by id, else the next run of that tool), else a tool message of
    the next model call's input (by id, else the first one left); a run that kept no result text takes the
    message's. What is used is taken off its list."""
    run = next((r for r in runs if call.id and r.call_id == call.id), None) or next(
        (r for r in runs if r.name == call.name and r.start >= after and (not r.call_id or not call.id)), None)
    said = next((m for m in answers if call.id and m.call_id == call.id), None)
    if run is not None:
        runs.remove(run)
        if said is not None and not run.content and not run.error:  # the tool span kept no result; the next call did
            answers.remove(said)
            return _from_run(run).model_copy(update={"call_id": call.id or run.call_id, "content": said.text})
        return _from_run(run).model_copy(update={"call_id": call.id or run.call_id})
    msg = said
    if msg is None and not call.id:
        msg = next((m for m in answers if not m.call_id), None)
    if msg is None:
        return ToolResult(call_id=call.id, name=call.name)
    answers.remove(msg)
    return ToolResult(call_id=call.id, name=call.name, content=msg.text)
