"""`python -m agentlearn proxy`: an OpenAI-compatible endpoint that gives another agent what its team taught.

    agent --POST /v1/chat/completions--> proxy --(system message + playbook + exemplars)--> upstream
          <------------- the upstream's answer, byte for byte (streamed or not) -------------

For the suite a request names (the X-Agentlearn-Suite header, else `metadata.suite`, else the proxy's
--suite) the proxy appends the approved playbook and the exemplars retrieved for the request to the
system message (traces.memory, within a token budget), forwards the request, returns the answer as the
upstream sent it, and then records the exchange as a step of an episode (traces.conversation): one
episode per conversation, named by the X-Agentlearn-Conversation header (or `metadata.conversation`),
else joined by message prefix (a request that continues a recorded conversation extends its episode).

The caller's credentials for the upstream (Authorization and the like) are forwarded and never stored,
logged or put into a record. The proxy keeps no state of its own beyond the store, so several run side
by side on one PostgreSQL. Who may send: traces.access (loopback without accounts, a token with them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from agentlearn.accounts import Identity
from agentlearn.tasks import check_text
from agentlearn.traces import access, conversation, store
from agentlearn.traces.memory import DEFAULT_BUDGET_TOKENS, Memory, inject, recall
from agentlearn.workspace import Workspace
from storage.records import MemoryUsed, Trajectory, now

SUITE_HEADER = "x-agentlearn-suite"
CONVERSATION_HEADER = "x-agentlearn-conversation"
# The caller's headers the upstream needs (its key, organisation, project); no other header is forwarded.
FORWARDED_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project", "openai-beta")
# The upstream's response headers that describe the connection or the body's encoding (the body goes back
# decoded, its length counted again); every other one (request ids, rate limits) goes back to the caller.
NOT_PASSED_BACK = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
                             "content-type", "date", "server"})
OWN_METADATA = ("suite", "conversation")  # metadata keys meant for the proxy, removed before forwarding
MAX_BODY = 16 * 1024 * 1024
SOURCE = "proxy"  # Trajectory.source of the episodes it records
log = logging.getLogger(__name__)
MAX_CONVERSATIONS_PER_OPENING = 10_000  # prefix joining looks this far among conversations with one opening


@dataclass
class Exchange:
    """One request and the upstream's answer, as the proxy records it (no headers: no credentials)."""

    suite: str
    conversation: str  # the caller's conversation id ("" = join by message prefix)
    messages: list[dict[str, Any]]  # as the caller sent them (without the memory the proxy added)
    tools: list[dict[str, Any]]
    answer: dict[str, Any] = field(default_factory=dict)  # the assistant message
    model: str = ""
    seconds: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    memory: Memory | None = None


def _error(status: int, message: str) -> JSONResponse:
    """An error in OpenAI's shape, so clients show the message."""
    return JSONResponse({"error": {"message": message, "type": "agentlearn_proxy"}}, status_code=status)


def _request_fields(raw: bytes, headers: Any, default_suite: str) -> tuple[dict[str, Any], str, str]:
    """(body to forward, suite, conversation id) from a request; ValueError saying what is wrong."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the request body is not JSON ({e})") from None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ValueError("the request body must be an object with a non-empty 'messages' list")
    if not all(isinstance(m, dict) for m in body["messages"]):
        raise ValueError("every entry of 'messages' must be an object")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    suite = (headers.get(SUITE_HEADER) or str(metadata.get("suite") or "") or default_suite).strip()
    if not suite:
        raise ValueError(f"name a suite: the {SUITE_HEADER} header, metadata.suite, or the proxy's --suite")
    check_text(suite, "the suite name")
    conversation_id = (headers.get(CONVERSATION_HEADER) or str(metadata.get("conversation") or "")).strip()
    if metadata:
        rest = {k: v for k, v in metadata.items() if k not in OWN_METADATA}
        body = {k: v for k, v in body.items() if k != "metadata"} | ({"metadata": rest} if rest else {})
    return body, suite, conversation_id


def _usage(body: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


class StreamedAnswer:
    """The assistant message an SSE stream of chat.completion.chunk events adds up to (content, tool calls)."""

    def __init__(self) -> None:
        self._buffer = b""
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.model = ""
        self.usage: dict[str, Any] = {}
        self.done = False

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                continue
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                self._add(event)

    def _add(self, event: dict[str, Any]) -> None:
        self.model = self.model or str(event.get("model") or "")
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {} if isinstance(choice, dict) and choice.get("index", 0) == 0 else {}
            if isinstance(delta.get("content"), str):
                self.content.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                call = self.calls.setdefault(int(tc.get("index", 0)),
                                             {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["function"]["name"] += fn.get("name") or ""
                call["function"]["arguments"] += fn.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        calls = [self.calls[i] for i in sorted(self.calls)]
        return {"role": "assistant", "content": "".join(self.content) or None} | ({"tool_calls": calls} if calls else {})


def create_app(ws: Workspace, upstream: str, suite: str = "", budget_tokens: int = DEFAULT_BUDGET_TOKENS,
               timeout_s: float = 600.0) -> FastAPI:
    """The proxy as an ASGI app forwarding to `upstream` (an OpenAI base URL, e.g. http://host:8000/v1)."""
    target = upstream.rstrip("/") + "/chat/completions"
    client = httpx.AsyncClient(timeout=timeout_s)
    app = access.receiver("agentlearn proxy", _error)
    app.router.add_event_handler("shutdown", client.aclose)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        who = await access.sender(ws.repo, request)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, f"the request body is {len(raw)} bytes; the proxy takes at most {MAX_BODY}")
        try:
            body, suite_name, conversation_id = _request_fields(raw, request.headers, suite)
        except ValueError as e:
            return _error(400, str(e))
        memory = await run_in_threadpool(recall, ws, suite_name, body["messages"], budget_tokens)
        exchange = Exchange(suite=suite_name, conversation=conversation_id, messages=body["messages"],
                            tools=body.get("tools") if isinstance(body.get("tools"), list) else [],
                            model=str(body.get("model") or ""), memory=memory)
        forward = body | {"messages": inject(body["messages"], memory.text)}
        headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
        timing = {"server-timing": f"memory;dur={memory.retrieval_ms:.2f}, embedding;dur={memory.embedding_ms:.2f}"}
        start = time.perf_counter()
        try:
            reply = await client.send(client.build_request("POST", target, json=forward, headers=headers),
                                      stream=bool(body.get("stream")))
        except httpx.HTTPError as e:
            return _error(502, f"the upstream {upstream} did not answer: {type(e).__name__}")
        media = reply.headers.get("content-type", "application/json")
        timing = _passed_back(reply.headers) | timing
        if body.get("stream"):
            return _streamed(ws, reply, exchange, who, start, media, timing)
        exchange.seconds = time.perf_counter() - start
        background = None
        if reply.status_code == 200:
            answer = _json_or_none(reply.content)
            if answer is not None:
                _take_answer(exchange, answer)
                background = BackgroundTask(record, ws, exchange, who=who)
        return Response(reply.content, status_code=reply.status_code, media_type=media, headers=timing,
                        background=background)

    return app


def _passed_back(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in NOT_PASSED_BACK}


def _json_or_none(content: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _take_answer(exchange: Exchange, body: dict[str, Any]) -> None:
    choices = body.get("choices") if isinstance(body.get("choices"), list) else []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    exchange.answer = message if isinstance(message, dict) else {"role": "assistant", "content": ""}
    exchange.model = str(body.get("model") or exchange.model)
    exchange.tokens_in, exchange.tokens_out = _usage(body)


def _streamed(ws: Workspace, reply: httpx.Response, exchange: Exchange, who: Identity, start: float,
              media: str, timing: dict[str, str]) -> Response:
    """The upstream's stream passed through chunk by chunk; the exchange is recorded once it ended whole."""
    answer = StreamedAnswer()

    async def chunks():
        try:
            async for chunk in reply.aiter_bytes():  # decoded: the body goes back uncompressed
                answer.feed(chunk)
                yield chunk
        finally:
            await reply.aclose()

    def after() -> None:
        if reply.status_code != 200 or not answer.done:
            return
        exchange.seconds = time.perf_counter() - start
        exchange.answer, exchange.model = answer.message(), answer.model or exchange.model
        exchange.tokens_in, exchange.tokens_out = _usage({"usage": answer.usage})
        record(ws, exchange, who=who)

    return StreamingResponse(chunks(), status_code=reply.status_code, media_type=media, headers=timing,
                             background=BackgroundTask(after))


# --- recording --------------------------------------------------------------------------------------


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def conversation_of(ws: Workspace, exchange: Exchange) -> str:
    """The conversation id the exchange belongs to: the caller's, else one joined by message prefix.

    Joined: the first recorded conversation opened by the same first request whose transcript this
    request continues (it starts with everything recorded there), else a new one.
    """
    if exchange.conversation:
        return exchange.conversation
    now_said = conversation.transcript(exchange.messages)
    base = _hash(conversation.request_of(exchange.messages))
    for n in range(MAX_CONVERSATIONS_PER_OPENING):
        conv = f"prefix-{base}-{n}"
        found = ws.repo.get(Trajectory, store.trajectory_id(exchange.suite, conv))
        if found is None or now_said[: len(found.prompt)] == found.prompt:
            return conv
    raise ValueError(f"more than {MAX_CONVERSATIONS_PER_OPENING} conversations open with the same request: "
                     f"send the {CONVERSATION_HEADER} header")


def record(ws: Workspace, exchange: Exchange, *, who: Identity) -> Trajectory | None:
    """Store the exchange as the newest step of its conversation's episode (rebuilt from the messages).

    Earlier steps keep the timings and token counts recorded when they happened; the episode keeps its
    first time. None when the conversation has no user request to be a task (nothing is stored).
    """
    conv = conversation_of(ws, exchange)
    found = conversation.episode_of(conv, exchange.messages, exchange.answer, tools=exchange.tools,
                                    model=exchange.model, seconds=exchange.seconds,
                                    tokens_in=exchange.tokens_in, tokens_out=exchange.tokens_out)
    if found is None:
        log.warning("proxy: a conversation in suite %r has no user request; not recorded", exchange.suite)
        return None
    traj_id = store.trajectory_id(exchange.suite, conv)
    previous = ws.repo.get(Trajectory, traj_id)
    for old, new in zip(previous.steps if previous else [], found.steps[:-1], strict=False):
        new.seconds, new.tokens_in, new.tokens_out = old.seconds, old.tokens_in, old.tokens_out
    found.started = previous.created if previous else now()
    memory = exchange.memory
    if memory is not None:
        found.memory = MemoryUsed(method="proxy", exemplar_ids=memory.exemplar_ids, exemplar_mode=memory.exemplar_mode,
                                  insight_ids=memory.insight_ids, insights_version=memory.insights_version,
                                  k=len(memory.exemplar_ids))
    store.save_episodes(ws, exchange.suite, [found], who=who, source=SOURCE)
    return ws.repo.get(Trajectory, traj_id)


def serve(ws: Workspace, upstream: str, *, host: str = "127.0.0.1", port: int = 8788, suite: str = "",
          budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> None:
    """Run the proxy until interrupted; refuses an address off loopback while no accounts exist."""
    if not upstream.startswith(("http://", "https://")):
        raise ValueError(f"--upstream must be an http(s) URL such as http://127.0.0.1:8000/v1, not {upstream!r}")
    access.serve(lambda: create_app(ws, upstream, suite, budget_tokens), ws.repo, host=host, port=port)
