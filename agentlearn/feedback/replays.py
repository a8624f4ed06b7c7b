"""Replay from a corrected step: run the episode again from that step with the person's call in place of the
model's, to see what follows it; the replay is a new run, linked to the original.

A replay runs in a child process (agentlearn.processes, kind "replay", `python -m agentlearn replay
CORRECTION_ID`), never inside a page: it goes on for up to the suite's max_steps model turns and executes
tools that may each take up to their binding's timeout (minutes in all on the embedded model), which a
rerun of the page would cut off, and it keeps the model out of the dashboard's process. The Process record
is where the link lives: its argument is the correction, its result names the original run, the step and
the replayed run; every session finds it there after a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agentlearn import processes
from agentlearn.accounts import Identity
from agentlearn.feedback.corrections import correction, stored
from agentlearn.workspace import Workspace
from storage.records import Correction, Process, Trajectory

KIND = "replay"


@dataclass(frozen=True)
class Replay:
    """One replay of a run from a corrected step, finished or not."""

    process_id: str
    correction_id: str
    original: str  # the corrected run
    step: int  # the step whose call was replaced (0-based)
    replay: str  # the replayed run's id ("" until it is stored)
    status: str  # the process's: running | succeeded | failed | stopped
    error: str
    created: datetime


def _correction(ws: Workspace, correction_id: str) -> tuple[Correction, Trajectory]:
    c = correction(ws, correction_id)
    return c, stored(ws, Trajectory, c.trajectory_id, f"the corrected run {c.trajectory_id!r} is not in the store any more")


def start(ws: Workspace, correction_id: str, *, who: Identity) -> Process:
    """Start the child process that replays a correction's run from its step; `who` needs the label action."""
    _correction(ws, correction_id)  # a clear error here rather than in a child's log
    return processes.start(ws, KIND, [KIND, correction_id], who=who)


def run(ws: Workspace, correction_id: str, *, who: Identity) -> Trajectory:
    """The child's work: replay the run from the corrected step (agentlearn.agent.replay_from) and return it."""
    c, traj = _correction(ws, correction_id)
    try:
        from agentlearn.agent import replay_from
    except ImportError:
        raise RuntimeError("replaying needs agentlearn.agent.replay_from (the agent loop), which this "
                           "installation lacks") from None
    replayed = replay_from(ws, traj, c.step, c.call, who=who)
    processes.finish(ws, result={"original": traj.id, "step": c.step, "replay": replayed.id})
    return replayed


def _of(ws: Workspace, p: Process) -> Replay | None:
    correction_id = p.args[1] if len(p.args) > 1 else ""
    original, step = p.result.get("original", ""), p.result.get("step")
    if not original:
        c = ws.repo.get(Correction, correction_id)
        if c is None:
            return None
        original, step = c.trajectory_id, c.step
    return Replay(p.id, correction_id, original, int(step or 0), p.result.get("replay", ""), p.status, p.error,
                  p.created)


def replays(ws: Workspace, trajectory_id: str) -> list[Replay]:
    """Replays started from a run (newest first), whatever their state."""
    found = [r for p in ws.repo.find(Process, kind=KIND) if (r := _of(ws, processes.get(ws, p.id) or p)) is not None
             and r.original == trajectory_id]
    return sorted(found, key=lambda r: r.created, reverse=True)


def running_for(ws: Workspace, trajectory_id: str) -> bool:
    """True while a replay of this run is still running (a second one waits for it)."""
    return any(r.status == "running" for r in replays(ws, trajectory_id))


def origin(ws: Workspace, trajectory_id: str) -> Replay | None:
    """The replay that produced this run, if it is one."""
    for p in ws.repo.find(Process, kind=KIND):
        if p.result.get("replay") == trajectory_id:
            return _of(ws, p)
    return None
