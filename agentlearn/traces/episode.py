"""One episode read from another agent's traces, in the project's own terms, before it is stored.

Every trace format (agentlearn.traces.formats) reads into this one shape; `store.save_episodes` turns it
into a Task (the first user request) and a Trajectory (the steps), so nothing downstream knows the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.records import MemoryUsed, Message, Step, ToolCall


@dataclass
class ImportedEpisode:
    """A run of someone's agent: what was asked, what it was offered, what it did step by step."""

    trace_id: str  # the trace (or conversation) id: the stored trajectory's id derives from it
    request: str  # the first user request: the task it becomes
    steps: list[Step] = field(default_factory=list)  # model turns in order, each with its calls and their results
    tools: list[dict[str, Any]] = field(default_factory=list)  # offered tools, {"name", "description", "parameters"}
    answer: str = ""  # the final answer's text ("" when the run ended on a call)
    model: str = ""
    service: str = ""  # the service that emitted the spans (OpenTelemetry resource service.name)
    agent: str = ""  # the agent's own name, where the trace gives one
    started: datetime | None = None
    prompt: list[Message] = field(default_factory=list)  # the messages of the first model call (system, user...)
    format: str = ""  # the reader that read it (a key of formats.FORMATS)
    memory: MemoryUsed | None = None  # what the proxy added to the agent's prompt (None: nothing known)

    @property
    def calls(self) -> list[ToolCall]:
        """Every call the agent made, in order."""
        return [call for step in self.steps for call in step.calls]
