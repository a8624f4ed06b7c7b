"""Imported episodes into the store: a Task for each first user request, a Trajectory for each trace.

An imported episode has no reference: its task's `expected` is an empty call and the task is tagged
"no-reference" until a person's label or correction supplies one. Identical requests share one task
(its id is the suite and a hash of the request), and a trajectory's id derives from the suite and the
trace id, so importing the same traces again updates them in place. A task that already exists keeps
everything people set on it (its reference, split, tags); only the tools its agent was offered grow.
Everything is written in one put_many: a batch is stored whole or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.tasks import check_text, task_id
from agentlearn.traces.episode import ImportedEpisode
from agentlearn.workspace import Workspace
from storage.records import MemoryUsed, Message, Record, Suite, Task, ToolCall, Trajectory, now

R = TypeVar("R", Task, Trajectory)
SOURCE = "traces"
NO_REFERENCE = "no-reference"  # the tag of a task whose right answer nobody has given yet


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def request_task_id(suite: str, request: str) -> str:
    """The id of the task an imported request becomes (the same request in the same suite: the same task)."""
    return task_id(suite, f"request-{_digest(request.strip())}")


def trajectory_id(suite: str, trace_id: str) -> str:
    """The id of the trajectory a trace becomes in a suite (re-importing it replaces that record)."""
    return f"{SOURCE}-{_digest(suite, trace_id)}"


def save_episodes(ws: Workspace, suite: str, episodes: Sequence[ImportedEpisode], *, who: Identity,
                  source: str = SOURCE) -> dict[str, int]:
    """Store episodes in `suite` (created if missing); returns counts: episodes, steps, calls, new and
    updated trajectories, new tasks. `source` is the trajectories' source ("traces"; "collect" for spans
    received live, "proxy" for proxied conversations: the same trace gets the same id either way). `who`
    needs the import action. Episodes without a user request are refused with the trace id, before
    anything is written."""
    records, counts = episode_records(ws, suite, episodes, who=who, source=source)
    ws.repo.put_many(records)
    return counts


def episode_records(ws: Workspace, suite: str, episodes: Sequence[ImportedEpisode], *, who: Identity,
                    source: str = SOURCE) -> tuple[list[Record], dict[str, int]]:
    """What save_episodes writes (the suite, the tasks, the trajectories) and its counts, unwritten: for a
    caller that stores them in one put_many with records of its own. Checks and refuses as save_episodes."""
    policy.require(ws.repo, who, "import")
    if not suite.strip():
        raise ValueError("the suite needs a name")
    check_text(suite, "the suite name")
    for e in episodes:
        if not e.request.strip():
            raise ValueError(f"trace {e.trace_id}: no user request found, so it cannot become a task")
    old_suite = ws.repo.get(Suite, suite)
    task_ids = {request_task_id(suite, e.request) for e in episodes}
    stored_tasks = {t.id: t for t in _stored(ws, Task, suite, task_ids)}
    stored_runs = {t.id for t in _stored(ws, Trajectory, suite, {trajectory_id(suite, e.trace_id) for e in episodes})}
    tasks: dict[str, Task] = {}
    records: list[Record] = []
    counts = {"episodes": len(episodes), "steps": 0, "calls": 0, "trajectories_new": 0, "trajectories_updated": 0,
              "tasks_new": 0}
    tools: dict[str, dict[str, Any]] = {t["name"]: t for t in (old_suite.tools if old_suite else [])}
    for e in episodes:
        tid = request_task_id(suite, e.request)
        task = tasks.get(tid) or stored_tasks.get(tid)
        if task is None:
            task = _new_task(tid, suite, e)
            counts["tasks_new"] += 1
        known = {t["name"] for t in task.tools}
        tasks[tid] = task.model_copy(update={"tools": task.tools + [t for t in e.tools if t["name"] not in known]})
        tools.update({t["name"]: t for t in e.tools if t["name"] not in tools})
        trajectory = _trajectory(suite, tasks[tid], e, source)
        counts["trajectories_updated" if trajectory.id in stored_runs else "trajectories_new"] += 1
        counts["steps"] += len(e.steps)
        counts["calls"] += len(e.calls)
        records.append(trajectory)
    suite_record = (old_suite.model_copy(update={"tools": list(tools.values())}) if old_suite else
                    Suite(id=suite, name=suite, tools=list(tools.values()), source=source,
                          description="Episodes imported from an agent's traces."))
    return [suite_record, *tasks.values(), *records], counts


def _stored(ws: Workspace, kind: type[R], suite: str, ids: set[str]) -> list[R]:
    """The stored records of the suite among these ids, read by id in one go: the cost follows the episodes
    saved, not the size of the suite."""
    return [r for r in ws.repo.find_in(kind, "id", ids) if r.suite == suite]


def _new_task(tid: str, suite: str, e: ImportedEpisode) -> Task:
    return Task(id=tid, suite=suite, sample_id=tid.split(":", 1)[1], split="train",
                input=[Message(role="user", content=e.request)], tools=list(e.tools),
                expected=ToolCall(name=""), tags=[NO_REFERENCE], created=e.started or now())


def _trajectory(suite: str, task: Task, e: ImportedEpisode, source: str) -> Trajectory:
    first_turn = [c for s in e.steps if s.turn == 0 for c in s.calls]
    last = e.steps[-1] if e.steps else None
    return Trajectory(
        id=trajectory_id(suite, e.trace_id), task_id=task.id, suite=suite, split=task.split, prompt=e.prompt,
        steps=e.steps, output=e.answer or (last.action if last else ""),
        tool_call=first_turn[0] if first_turn else None, tool_calls=first_turn, model=e.model, source=source,
        trace_id=e.trace_id, tools=e.tools, created=e.started or now(), memory=e.memory or MemoryUsed(),
    )
