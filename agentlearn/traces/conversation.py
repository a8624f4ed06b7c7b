"""An OpenAI chat-completions conversation as episode steps: what `proxy` records for each exchange.

The request's messages hold the whole conversation so far (the assistant's earlier answers with their
tool calls, the tools' results, later user turns), so each exchange rebuilds the episode from them plus
the new answer: nothing is kept between requests except the episode in the store.
"""

from __future__ import annotations

import json
from typing import Any

from agentlearn.toolcall import format_tool_call
from agentlearn.traces.memory import text_of
from storage.records import Message, Step, ToolCall, ToolResult


def calls_of(message: dict[str, Any]) -> list[ToolCall]:
    """The tool calls of an assistant message (OpenAI form; arguments that are not JSON kept under "_raw")."""
    calls = []
    for c in message.get("tool_calls") or []:
        if not isinstance(c, dict):
            continue
        fn = c.get("function") if isinstance(c.get("function"), dict) else {}
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            args = {"_raw": raw}
        calls.append(ToolCall(name=str(fn.get("name", "")), arguments=args if isinstance(args, dict) else {"_raw": raw},
                              id=str(c.get("id") or "")))
    return calls


def transcript(messages: list[dict[str, Any]]) -> list[Message]:
    """The conversation as plain messages: an assistant's calls written out after its text, so two
    transcripts compare equal exactly when the conversations do (how conversations are joined)."""
    out = []
    for m in messages:
        text = text_of(m.get("content"))
        if m.get("role") == "assistant":
            text += "".join(format_tool_call(c) for c in calls_of(m))
        out.append(Message(role=str(m.get("role", "")), content=text))
    return out


def opening(messages: list[dict[str, Any]]) -> list[Message]:
    """The messages up to and including the first user message: the task the conversation is about."""
    for n, m in enumerate(messages):
        if m.get("role") == "user":
            return [Message(role="user", content=text_of(x.get("content")))
                    for x in messages[: n + 1] if x.get("role") == "user"]
    return []


def steps_of(messages: list[dict[str, Any]], answer: dict[str, Any]) -> list[Step]:
    """One step per assistant message (the earlier ones, then `answer`), each with its calls' results.

    A tool message fills the result of the call it names (tool_call_id), else the next call still open.
    A user message after the first answer opens a new turn, noted on that turn's first step.
    """
    steps: list[Step] = []
    turn, pending_user = 0, ""
    for m in [*messages, answer]:
        role = m.get("role")
        if role == "assistant":
            text, calls = text_of(m.get("content")), calls_of(m)
            steps.append(Step(action=text, calls=calls, answer="" if calls else text, turn=turn, user=pending_user))
            pending_user = ""
        elif role == "tool" and steps:
            _add_result(steps[-1], str(m.get("tool_call_id") or ""), text_of(m.get("content")))
        elif role == "user" and steps:
            turn, pending_user = turn + 1, text_of(m.get("content"))
    return steps


def _add_result(step: Step, call_id: str, content: str) -> None:
    answered = {r.call_id for r in step.results}
    call = next((c for c in step.calls if call_id and c.id == call_id), None) or \
        next((c for c in step.calls if c.id not in answered), None)
    step.results.append(ToolResult(call_id=call.id if call else call_id, name=call.name if call else "", content=content))
    step.observation = "\n".join(r.content for r in step.results)
