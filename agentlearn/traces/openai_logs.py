"""OpenAI chat-completions logs to episodes: request and response bodies, or stored completions.

A record is one model call, in any of the shapes people keep them in:
- `{"request": {model, messages, tools, metadata}, "response": ChatCompletion}` (a log of both bodies;
  either may also sit under "body", as Batch API input and output lines hold them);
- a stored completion (`client.chat.completions.list()` items, `object: "chat.completion"`) with its
  input messages under `messages` (from `client.chat.completions.messages.list(id)`: a list, or that
  call's `{"object": "list", "data": [...]}`); a `{"object": "list", "data": [...]}` page of such records.

The calls of one agent run are joined into an episode: by a conversation id in the request's `metadata`
(conversation_id, session_id, thread_id or trace_id), else because a request's messages start with an
earlier call's messages and answer (the way an agent loop grows its message list). A call's tool results
come from the next call's tool messages.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agentlearn.traces.assemble import ModelTurn, Msg, count_of, episode, message_of, tools_of
from agentlearn.traces.documents import Document
from agentlearn.traces.episode import ImportedEpisode

CONVERSATION_KEYS = ("conversation_id", "session_id", "thread_id", "trace_id")


def looks_like(value: dict) -> bool:
    """True for a record this reader knows (for `--format auto`)."""
    if value.get("object") == "list" and isinstance(value.get("data"), list):
        return bool(value["data"]) and isinstance(value["data"][0], dict) and looks_like(value["data"][0])
    return value.get("object") == "chat.completion" or (
        isinstance(value.get("request"), dict) and isinstance(value.get("response"), dict))


def read(documents: list[Document]) -> list[ImportedEpisode]:
    """One episode per agent run found among the calls, in order of each run's first call."""
    runs: dict[str, list[ModelTurn]] = {}
    by_prefix: dict[str, str] = {}  # hash of a message list an agent would send next -> its run
    for doc in _records(documents):
        request, response = _bodies(doc)
        messages = [m for m in map(message_of, request.get("messages") or []) if m is not None]
        choices = response.get("choices") or []
        output = message_of(choices[0].get("message"), "assistant") if choices and isinstance(choices[0], dict) else None
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        turn = ModelTurn(start=float(response.get("created") or 0), input=messages, output=output,
                         tokens_in=count_of(usage.get("prompt_tokens")), tokens_out=count_of(usage.get("completion_tokens")),
                         model=str(response.get("model") or request.get("model") or ""),
                         tools=tools_of(request.get("tools")))
        prefixes = _prefix_hashes(messages)
        run = _conversation(request) or next((by_prefix[h] for h in reversed(prefixes) if h in by_prefix), "")
        run = run or str(response.get("id") or doc.where)
        runs.setdefault(run, []).append(turn)
        if output is not None:
            by_prefix[_prefix_hashes(messages + [output])[-1]] = run
    out = []
    for run, turns in runs.items():
        found = episode(run, turns, [], fmt="openai")
        if found is not None:
            out.append(found)
    return out


def _records(documents: list[Document]) -> list[Document]:
    out = []
    for doc in documents:
        value = doc.value
        page = value.get("object") == "list" and isinstance(value.get("data"), list)
        for i, item in enumerate(value["data"] if page else [value]):
            where = f"{doc.where}, data[{i}]" if page else doc.where
            if not isinstance(item, dict) or not (item.get("object") == "chat.completion" or "request" in item
                                                  or "response" in item):
                raise ValueError(f"{where}: not an OpenAI chat-completions record (a request and response, or a "
                                 "stored chat.completion with its messages)")
            out.append(Document(where, item))
    return out


def _unwrap(value: Any) -> dict:
    if isinstance(value, dict) and isinstance(value.get("body"), dict):
        return value["body"]
    return value if isinstance(value, dict) else {}


def _bodies(doc: Document) -> tuple[dict, dict]:
    """The request and response bodies of one record; ValueError naming it when there is no response."""
    value = doc.value
    if value.get("object") == "chat.completion":
        stored = value.get("messages", value.get("input_messages"))
        if isinstance(stored, dict):  # the messages list call's page
            stored = stored.get("data")
        return {"messages": stored if isinstance(stored, list) else [], "metadata": value.get("metadata") or {},
                "model": value.get("model", "")}, value
    request, response = _unwrap(value.get("request")), _unwrap(value.get("response"))
    if not isinstance(response.get("choices"), list):
        raise ValueError(f"{doc.where}: the response has no 'choices' list (a ChatCompletion body)")
    if not isinstance(request.get("messages", []), list):
        raise ValueError(f"{doc.where}: the request's 'messages' is not a list")
    return request, response


def _conversation(request: dict) -> str:
    meta = request.get("metadata") if isinstance(request.get("metadata"), dict) else {}
    return next((str(meta[k]) for k in CONVERSATION_KEYS if meta.get(k)), "")


def _prefix_hashes(messages: list[Msg]) -> list[str]:
    """A running hash of each prefix of a message list (what later calls of the same run start with)."""
    out, h = [], hashlib.sha256()
    for m in messages:
        h.update(json.dumps([m.role, m.text, [[c.name, c.arguments] for c in m.calls], m.call_id],
                            sort_keys=True, ensure_ascii=False).encode("utf-8"))
        out.append(h.copy().hexdigest())
    return out
