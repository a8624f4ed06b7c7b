"""The trace formats `traces import` reads, and the one function that reads a file in any of them.

FORMATS maps a format's name to its reader and its test for `--format auto`; adding a format is adding
a module with `read(documents)` and `looks_like(record)` and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.traces import langfuse, langsmith, openai_logs, otlp
from agentlearn.traces.documents import MAX_BYTES, Document, read_documents
from agentlearn.traces.episode import ImportedEpisode
from agentlearn.traces.store import save_episodes
from agentlearn.workspace import Workspace


class Format(NamedTuple):
    read: Callable[[list[Document]], list[ImportedEpisode]]
    looks_like: Callable[[dict[str, Any]], bool]


def _read_otlp(documents: list[Document]) -> list[ImportedEpisode]:
    """Spans of every request in the file, then episodes: a trace split over several requests is one episode."""
    spans = []
    for doc in documents:
        try:
            spans += otlp.spans_from_otlp_json(doc.value)
        except ValueError as e:
            raise ValueError(f"{doc.where}: {e}") from None
    return otlp.episodes_from_spans(spans)


def _is_otlp(value: dict[str, Any]) -> bool:
    return "resourceSpans" in value or "resource_spans" in value


FORMATS: dict[str, Format] = {
    "otlp-json": Format(_read_otlp, _is_otlp),
    "openai": Format(openai_logs.read, openai_logs.looks_like),
    "langsmith": Format(langsmith.read, langsmith.looks_like),
    "langfuse": Format(langfuse.read, langfuse.looks_like),
}


def detect(documents: list[Document]) -> str:
    """The format of a file's records, from its first record; ValueError saying what was seen."""
    first = documents[0]
    for name, fmt in FORMATS.items():
        if fmt.looks_like(first.value):
            return name
    keys = ", ".join(list(first.value)[:8]) or "none"
    raise ValueError(f"{first.where}: not a trace format this reads (its keys: {keys}); the formats are "
                     f"{', '.join(FORMATS)}: give one with --format")


def read_episodes(path: str | Path, fmt: str = "auto", max_bytes: int = MAX_BYTES) -> tuple[str, list[ImportedEpisode]]:
    """The format read and the episodes of a trace file; ValueError naming the file and record at fault."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}; choose auto or one of {', '.join(FORMATS)}")
    documents = read_documents(path, max_bytes)
    fmt = detect(documents) if fmt == "auto" else fmt
    episodes = FORMATS[fmt].read(documents)
    if not episodes:
        raise ValueError(f"{path}: no model calls or tool executions found in it as {fmt}")
    return fmt, episodes


def import_file(ws: Workspace, path: str | Path, suite: str, fmt: str = "auto", *, who: Identity,
                max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Read a trace file and store its episodes in `suite`, all or nothing; counts and the format read.

    Runs that record no user request (instrumented without message content) cannot become tasks: they
    are left out and counted as `skipped`; a file with nothing else is refused. `who` needs the import
    action (agentlearn.policy), checked before the file is read.
    """
    policy.require(ws.repo, who, "import")
    fmt, episodes = read_episodes(path, fmt, max_bytes)
    usable = [e for e in episodes if e.request.strip()]
    if not usable:
        raise ValueError(f"{path}: none of its {len(episodes)} runs records a user request, so none can become a "
                         "task; the agent's instrumentation must record message content (for OpenTelemetry GenAI "
                         "instrumentations: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)")
    return {"format": fmt, **save_episodes(ws, suite, usable, who=who), "skipped": len(episodes) - len(usable)}
