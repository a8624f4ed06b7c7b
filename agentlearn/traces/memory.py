"""What a suite has learned, for an agent that is not ours: the approved playbook and the exemplars
retrieved for its request, as data (`memory_for`) or as text added to its system message (`inject`).

The proxy and `agentlearn.memory_for` share this, so an agent that builds its prompts itself gets
exactly what an agent behind the proxy is given. Both fit within one token budget: the playbook first
(at most the settings' playbook share, best bullets first), then exemplars best first while they fit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentlearn import prompts
from agentlearn.memory import exemplars, insights, playbook, retrieval
from agentlearn.traces.assemble import message_of
from agentlearn.workspace import Workspace, open_workspace
from storage.records import Exemplar, Insight, Message, Task, ToolCall

CHARS_PER_TOKEN = 2.5  # as playbook.for_prompt counts
DEFAULT_BUDGET_TOKENS = 1000  # playbook and exemplars together


@dataclass
class Memory:
    """The memory given to one request: what was chosen, the text it becomes, and how long retrieval took."""

    suite: str
    playbook: list[dict[str, Any]] = field(default_factory=list)  # {id, section, text}, in prompt order
    exemplars: list[dict[str, Any]] = field(default_factory=list)  # {id, input, call, score}, best first
    text: str = ""  # the block added to the system message ("" when there is nothing to add)
    exemplar_mode: str = ""
    insights_version: int = 0
    retrieval_ms: float = 0.0  # all of it: playbook, query embedding, exemplar selection
    embedding_ms: float = 0.0  # the query embedding alone (part of retrieval_ms)

    @property
    def exemplar_ids(self) -> list[str]:
        return [e["id"] for e in self.exemplars]

    @property
    def insight_ids(self) -> list[str]:
        return [b["id"] for b in self.playbook]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_messages(messages: Sequence[dict[str, Any] | Message]) -> list[Message]:
    """Chat messages in any shape traces use (OpenAI dicts, content as parts...) or Messages, text only."""
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
            continue
        read = message_of(m)
        if read is None:
            raise ValueError(f"a message must be an object with role and content, not {type(m).__name__}")
        out.append(Message(role=read.role, content=read.text))
    return out


def _request(suite: str, messages: list[Message]) -> Task:
    """The request as a task to retrieve for: its latest user message (the request being worked on)."""
    users = [m for m in messages if m.role == "user" and m.content.strip()]
    return Task(id="", suite=suite, sample_id="", split="heldout", input=users[-1:], expected=ToolCall(name=""))


LEXICAL_MODES = ("fixed", "bm25")  # modes that need no query embedding


def _chosen_exemplars(ws: Workspace, suite: str, task: Task,
                      budget_chars: float) -> tuple[list[exemplars.Scored], str, float]:
    """The exemplars that fit the budget, best first; the mode; the query embedding's milliseconds."""
    if not task.input:
        return [], "", 0.0
    # The suite's stored choice (python -m agentlearn retrieval choose), else the starting one. Never made
    # here: making it scores the whole train split, seconds on a request's path.
    choice = retrieval.current(ws, suite) or retrieval.DEFAULT_CHOICE
    mode, k, tool_aware = str(choice["mode"]), int(choice["k"]), bool(choice["tool_aware"])
    start, query = time.perf_counter(), None
    if mode not in LEXICAL_MODES:
        query = ws.encoder([exemplars.text_of(task.input)])[0]
    embedding_ms = (time.perf_counter() - start) * 1000
    found = exemplars.select(ws, task, mode, k=k, tool_aware=tool_aware, query_vector=query)
    kept, used = [], 0.0
    for scored in found:
        cost = len(prompts.exemplar_block([scored.exemplar]))
        if used + cost <= budget_chars:
            kept.append(scored)
            used += cost
    return kept, mode if kept else "", embedding_ms


def recall(ws: Workspace, suite: str, messages: Sequence[dict[str, Any] | Message],
           budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> Memory:
    """The suite's approved playbook and the exemplars retrieved for these messages, within the budget."""
    start = time.perf_counter()
    msgs = as_messages(messages)
    rules: list[Insight] = playbook.for_prompt(insights.active(ws, suite),
                                               min(ws.settings.playbook_tokens, budget_tokens))
    rules_text = prompts.playbook_block(playbook.grouped(rules)) if rules else ""
    left = budget_tokens * CHARS_PER_TOKEN - len(rules_text)
    shots, mode, embedding_ms = _chosen_exemplars(ws, suite, _request(suite, msgs), left)
    # Best first as retrieved; in the text the closest case comes last, as in the agent's own prompt.
    shots_text = prompts.exemplar_block(prompts.order_shots([s.exemplar for s in shots]))
    return Memory(suite=suite,
                  playbook=[{"id": r.id, "section": r.section, "text": r.text} for r in rules],
                  exemplars=[_exemplar_data(s.exemplar, s.score) for s in shots],
                  text="\n\n".join(t for t in (rules_text, shots_text) if t),
                  exemplar_mode=mode,
                  insights_version=insights.insights_version(ws, suite) if rules else 0,
                  retrieval_ms=(time.perf_counter() - start) * 1000, embedding_ms=embedding_ms)


def _exemplar_data(e: Exemplar, score: float) -> dict[str, Any]:
    return {"id": e.id, "input": [m.model_dump() for m in e.input],
            "call": {"name": e.call.name, "arguments": e.call.arguments}, "score": score}


def memory_for(suite: str, messages: Sequence[dict[str, Any] | Message], *, ws: Workspace | None = None,
               budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> dict[str, Any]:
    """The memory the proxy would add to this request, as data: playbook bullets, exemplars and their text.

    For agents that build their prompts themselves; `text` is what the proxy appends to the system message.
    """
    return recall(ws or open_workspace(), suite, messages, budget_tokens).to_dict()


def inject(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The messages with `text` appended to the first system message (one put first where there is none).

    The caller's list is not changed. A system message whose content is a list of parts gets a text part.
    """
    if not text:
        return list(messages)
    out = [dict(m) for m in messages]
    for m in out:
        if m.get("role") in ("system", "developer"):
            content = m.get("content")
            if isinstance(content, list):
                m["content"] = [*content, {"type": "text", "text": text}]
            else:
                m["content"] = f"{content}\n\n{text}" if content else text
            return out
    return [{"role": "system", "content": text}, *out]
