"""`python -m agentlearn collect`: an OTLP/HTTP receiver that turns another agent's live spans into episodes.

    agent (OpenTelemetry SDK, OpenInference) --POST /v1/traces (protobuf or JSON)--> collect --> store

A batch is read whole (traces.otlp) before anything is kept: one that cannot be read is refused with
HTTP 400 and the reason, and nothing of it is stored. Read spans are stored as they come (Span records),
so the collector keeps no state of its own: several collectors on one PostgreSQL see the same spans, and
halves of one trace sent to two of them make one episode. A trace becomes an episode (traces.store,
source "collect") as soon as its root span is stored, and again whenever more of its spans arrive (a
partial trace is completed in place); a trace whose root never comes is assembled once it has been quiet
for `quiet_s`. The suite is the collector's --suite, else the service's name from the spans.
Who may send: traces.access (loopback without accounts, an ingest token with them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections import defaultdict
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from agentlearn import accounts
from agentlearn.accounts import AccessDenied, Identity
from agentlearn.traces import access, store
from agentlearn.traces.otlp import episodes_from_spans, spans_from_otlp_json, spans_from_otlp_protobuf
from agentlearn.workspace import Workspace
from storage.gc_pause import paused
from storage.records import Span, now

SOURCE = "collect"  # Trajectory.source of the episodes it assembles
DEFAULT_SUITE = "collected"  # for spans that name no service
MAX_BODY = 8 * 1024 * 1024  # bytes of one batch, after decompression
QUIET_S = 30.0
PROTOBUF, JSON = "application/x-protobuf", "application/json"
log = logging.getLogger(__name__)


class Refused(ValueError):
    """A batch that is not read: the HTTP status and the reason go back to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _status(code: int, message: str) -> JSONResponse:
    """A refusal in OTLP's shape (google.rpc.Status as JSON: INVALID_ARGUMENT, UNAUTHENTICATED...)."""
    rpc = {400: 3, 401: 16, 415: 3}.get(code, 2)
    return JSONResponse({"code": rpc, "message": message}, status_code=code)


def _body(raw: bytes, encoding: str) -> bytes:
    """The batch's bytes, decompressed (gzip or deflate, as OTLP exporters may send), at most MAX_BODY."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = raw
    elif encoding in ("gzip", "deflate"):
        try:
            inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
            data = inflater.decompress(raw, MAX_BODY + 1)
        except zlib.error as e:
            raise Refused(400, f"the {encoding} body cannot be decompressed: {e}") from None
    else:
        raise Refused(415, f"Content-Encoding {encoding!r} is not supported (gzip, deflate or none)")
    if len(data) > MAX_BODY:
        raise Refused(400, f"the batch is over {MAX_BODY} bytes; send smaller batches (the exporter's "
                           "max_export_batch_size)")
    return data


def read_batch(data: bytes, content_type: str) -> list[dict[str, Any]]:
    """The spans of one OTLP/HTTP body (protobuf or JSON), checked whole; Refused saying what is wrong."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == PROTOBUF:
            spans = spans_from_otlp_protobuf(data)
        elif kind == JSON:
            try:
                payload = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"the body is not JSON: {e}") from None
            spans = spans_from_otlp_json(payload)  # both readers check the text (tasks.check_text)
        else:
            raise Refused(415, f"Content-Type {content_type or '(none)'!r} is not OTLP: send {PROTOBUF} or {JSON}")
    except Refused:
        raise
    except (ValueError, TypeError, RecursionError) as e:
        raise Refused(400, f"unreadable span batch: {e}") from None
    return spans


def store_spans(ws: Workspace, spans: list[dict[str, Any]], suite: str, who: Identity) -> list[Span]:
    """Keep a read batch (a span sent again replaces itself); returns the records stored."""
    records = [Span(id=f"{s['trace_id']}:{s['span_id']}", trace_id=s["trace_id"], span_id=s["span_id"],
                    parent_id=s["parent_span_id"], suite=suite, sender="" if who.local else who.name, data=s)
               for s in spans]
    ws.repo.put_many(records)
    return records


def _sender(ws: Workspace, spans: list[Span]) -> Identity:
    """Who the trace's newest span came from: the episode is stored on their behalf."""
    name = next((s.sender for s in reversed(spans) if s.sender), "")
    account = accounts.find(ws.repo, name) if name else None
    if account is None:
        return accounts.local_identity()  # refused by the policy if accounts exist
    return accounts.identity_of(account)


def spans_of(ws: Workspace, trace_ids: set[str], held: Sequence[Span] = ()) -> dict[str, list[Span]]:
    """The stored spans of these traces, oldest first: one read by their indexed trace id, so a database
    backend never reads (or keeps in memory) the spans of other traces. Spans in `held` (just stored by
    the caller) are taken as they are instead of being read back."""
    found = ws.repo.find_in(Span, "trace_id", trace_ids, skip={s.id for s in held})
    traces: dict[str, list[Span]] = {t: [] for t in sorted(trace_ids)}
    for span in sorted([*found, *held], key=lambda s: (s.created, s.id)):
        traces[span.trace_id].append(span)
    return traces


def assemble(ws: Workspace, traces: dict[str, list[Span]]) -> int:
    """Make (or remake) the episode of each trace from its stored spans; marks the spans assembled.

    Episodes of one suite sent by one account are stored together, in one put_many with their spans'
    marks (a crash leaves both or neither). A group that cannot be stored (an episode without a user
    request, a sender no longer allowed) is logged and marked too: the next span of its traces tries
    again. Returns the episodes stored.
    """
    groups: dict[tuple[str, str], list] = defaultdict(list)
    unused = dict(traces)  # traces that hold no model call or tool run: only marked
    for trace_id, spans in traces.items():
        for episode in episodes_from_spans([s.data for s in spans]):
            suite = next((s.suite for s in spans if s.suite), "") or episode.service or DEFAULT_SUITE
            groups[(suite, next((s.sender for s in reversed(spans) if s.sender), ""))].append((episode, spans))
            unused.pop(trace_id, None)
    made = 0
    for (suite, _), found in groups.items():
        marks = _marked([spans for _, spans in found])
        try:
            records, counts = store.episode_records(ws, suite, [e for e, _ in found], who=_sender(ws, found[0][1]),
                                                    source=SOURCE)
        except (ValueError, AccessDenied) as e:
            log.warning("collect: %d trace(s) of suite %r not stored as episodes: %s", len(found), suite, e)
            records, counts = [], {"episodes": 0}
        ws.repo.put_many([*records, *marks])
        made += counts["episodes"]
    marks = _marked(list(unused.values()))
    if marks:
        ws.repo.put_many(marks)
    return made


def _marked(traces: list[list[Span]]) -> list[Span]:
    """The spans of these traces not yet marked assembled, marked."""
    return [s.model_copy(update={"status": "assembled"}) for spans in traces for s in spans if s.status != "assembled"]


def receive(ws: Workspace, spans: list[dict[str, Any]], suite: str, who: Identity) -> int:
    """Store a read batch, then assemble each trace it touched whose root span is stored; returns episodes made.

    The spans are read back after they are stored (never before): of two collectors storing halves of a
    trace at once, the one that reads last finds both halves."""
    stored = store_spans(ws, spans, suite, who)
    traces = spans_of(ws, {s.trace_id for s in stored}, held=stored)
    return assemble(ws, {t: found for t, found in traces.items() if any(not s.parent_id for s in found)})


def sweep(ws: Workspace, quiet_s: float = QUIET_S) -> int:
    """Assemble the traces with spans not yet in an episode and none newer than `quiet_s`; returns how many."""
    newest: dict[str, datetime] = {}
    for span in ws.repo.find(Span, status="open"):
        newest[span.trace_id] = max(newest.get(span.trace_id, span.created), span.created)
    cutoff = now() - timedelta(seconds=quiet_s)
    quiet = {t for t, when in newest.items() if when <= cutoff}
    if quiet:
        assemble(ws, spans_of(ws, quiet))
    return len(quiet)


def create_app(ws: Workspace, suite: str = "", quiet_s: float = QUIET_S) -> FastAPI:
    """The receiver as an ASGI app; while it runs, quiet traces are swept every quiet_s / 2 seconds."""

    async def sweeping() -> None:
        while True:
            await asyncio.sleep(max(quiet_s / 2, 0.05))
            try:
                await run_in_threadpool(sweep, ws, quiet_s)
            except Exception as e:  # the store was briefly unreachable: the next round tries again
                log.warning("collect: sweeping quiet traces failed: %s", e)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        task = asyncio.create_task(sweeping())
        yield
        task.cancel()

    app = access.receiver("agentlearn collect", _status, lifespan=lifespan)

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        who = await access.sender(ws.repo, request)
        content_type = request.headers.get("content-type", "")
        try:
            raw = await _read_capped(request)
            await run_in_threadpool(_take, ws, raw, request.headers.get("content-encoding", ""), content_type,
                                    suite, who)
        except Refused as e:
            return _status(e.status, str(e))
        if content_type.startswith(PROTOBUF):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)
        return JSONResponse({})

    return app


def _take(ws: Workspace, raw: bytes, encoding: str, content_type: str, suite: str, who: Identity) -> None:
    """Read a received body and keep its spans (off the event loop); Refused if it cannot be read. The
    batch's many short-lived containers are made with the garbage collector paused (storage.gc_pause)."""
    with paused():
        receive(ws, read_batch(_body(raw, encoding), content_type), suite, who)


async def _read_capped(request: Request) -> bytes:
    """The request body, refused once it passes MAX_BODY bytes (compressed bodies are capped again inflated)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(400, f"the batch is over {MAX_BODY} bytes; send smaller batches (the exporter's "
                               "max_export_batch_size)")
        chunks.append(chunk)
    return b"".join(chunks)


def serve(ws: Workspace, *, host: str = "127.0.0.1", port: int = 4318, suite: str = "",
          quiet_s: float = QUIET_S) -> None:
    """Run the receiver until interrupted; refuses an address off loopback while no accounts exist."""
    access.serve(lambda: create_app(ws, suite, quiet_s), ws.repo, host=host, port=port)
