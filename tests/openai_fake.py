"""A fake OpenAI-compatible upstream: canned assistant messages in turn (as SSE chunks when streaming asked).

It keeps every request it received (headers and body), so tests see exactly what reached it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, StreamingResponse


class Upstream:
    """A fake OpenAI-compatible server: canned assistant messages in turn; `received` holds each request."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.replies: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.add_middleware(GZipMiddleware, minimum_size=10)  # answers compressed, as many servers send them
        self.app.post("/v1/chat/completions")(self.answer)

    async def answer(self, request: Request):
        body = await request.json()
        self.received.append((dict(request.headers), body))
        message = self.replies.pop(0) if self.replies else {"role": "assistant", "content": "done"}
        if body.get("stream"):
            return StreamingResponse(self._chunks(message), media_type="text/event-stream",
                                     headers={"x-request-id": "req-stream"})
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake-model",
                             "choices": [{"index": 0, "message": message,
                                          "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                             "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}},
                            headers={"x-request-id": "req-1"})

    @staticmethod
    def _chunks(message: dict[str, Any]) -> Iterator[str]:
        def event(delta: dict[str, Any], finish: str | None = None) -> str:
            return "data: " + json.dumps({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1,
                                          "model": "fake-model",
                                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
        yield event({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for i in range(0, len(text), 4):
            yield event({"content": text[i:i + 4]})
        for n, call in enumerate(message.get("tool_calls") or []):
            args = call["function"]["arguments"]
            yield event({"tool_calls": [{"index": n, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            for i in range(0, len(args), 7):
                yield event({"tool_calls": [{"index": n, "function": {"arguments": args[i:i + 7]}}]})
        yield event({}, "tool_calls" if message.get("tool_calls") else "stop")
        yield "data: [DONE]\n\n"
