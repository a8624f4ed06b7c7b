"""An OpenAI chat-completions conversation as an episode: what `proxy` records for each exchange.

The request's messages hold the whole conversation so far (the assistant's earlier answers with their
calls, the tools' results, later user turns), so each exchange rebuilds the episode from them plus the
new answer: every assistant message is one model turn, joined into steps as every trace format's are
(traces.assemble). Nothing is kept between requests except the episode in the store.
"""

from __future__ import annotations

from typing import Any

from agentlearn.toolcall import format_tool_call
from agentlearn.traces.assemble import ModelTurn, Msg, episode, message_of, tools_of
from agentlearn.traces.episode import ImportedEpisode
from storage.records import Message

FORMAT = "openai-chat"


def _messages(messages: list[dict[str, Any]]) -> list[Msg]:
    return [m for m in map(message_of, messages) if m is not None]


def transcript(messages: list[dict[str, Any]]) -> list[Message]:
    """The conversation as plain messages, an assistant's calls written after its text: two transcripts are
    equal exactly when the conversations are (how a request is joined to the conversation it continues)."""
    return [Message(role=m.role, content=m.text + "".join(format_tool_call(c) for c in m.calls))
            for m in _messages(messages)]


def request_of(messages: list[dict[str, Any]]) -> str:
    """The conversation's first user message: the task it is about."""
    return next((m.text for m in _messages(messages) if m.role == "user" and m.text.strip()), "")


def episode_of(conversation_id: str, messages: list[dict[str, Any]], answer: dict[str, Any], *,
               tools: list[dict[str, Any]], model: str = "", seconds: float | None = None,
               tokens_in: int | None = None, tokens_out: int | None = None) -> ImportedEpisode | None:
    """The conversation so far (`messages`, then the upstream's `answer`) as one episode.

    The earlier assistant messages become turns without timings (they were measured when they happened);
    the answer's turn carries this exchange's time, tokens and model. None without a user request.
    """
    msgs = _messages([*messages, answer])
    offered = tools_of(tools)
    # Turns are ordered by their place in the conversation: the "start" is the message's index.
    turns = [ModelTurn(start=float(i), input=msgs[:i], output=m, tools=offered)
             for i, m in enumerate(msgs[:-1]) if m.role == "assistant"]
    turns.append(ModelTurn(start=float(len(msgs) - 1), input=msgs[:-1], output=msgs[-1], seconds=seconds,
                           tokens_in=tokens_in, tokens_out=tokens_out, model=model, tools=offered))
    found = episode(conversation_id, turns, [], fmt=FORMAT, request=request_of(messages))
    if found is None or not found.request:
        return None
    found.started = None  # the turns' starts are places, not times
    found.prompt = transcript([*messages, answer])
    return found
