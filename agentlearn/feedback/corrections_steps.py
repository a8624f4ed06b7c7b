"""Corrections of one step of an episode: the call a step should have made, stored beside the run.

The run stays as the model produced it (corrections.py says why); the Correction names the step, so a
replay from that step (feedback.replays) shows what follows the corrected call. Optionally the corrected
values also become acceptable alternatives in the task's reference, for tasks that have one: the next
grading then accepts what the person showed was right.
"""

from __future__ import annotations

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.feedback.corrections import CorrectionError, check_call, of_trajectory, run_and_task
from agentlearn.workspace import Workspace
from storage.records import Correction, Task, ToolCall, Trajectory


def can_add_alternative(task: Task | None) -> bool:
    """Only a task with a reference (acceptable values per argument) can take the corrected values as one more."""
    return task is not None and task.reference is not None


def _checked(traj: Trajectory, task: Task, call: ToolCall) -> ToolCall:
    """The call held to the task's tools, or to the tools an imported episode's agent was offered."""
    if task.tools or not traj.tools:
        return check_call(task, call)
    return check_call(task.model_copy(update={"tools": traj.tools}), call)


def correct_step(ws: Workspace, trajectory_id: str, step: int, call: ToolCall, *, who: Identity, note: str = "",
                 add_alternative: bool = False) -> Correction:
    """Store `who`'s corrected call for step `step` (0-based) of a run; with add_alternative, also accept its
    values in the task's reference. CorrectionError says what is wrong; nothing is stored then.

    `who` needs the label action (agentlearn.policy).
    """
    who = policy.require(ws.repo, who, "label")
    traj, task = run_and_task(ws, trajectory_id)
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < max(1, len(traj.steps)):
        raise CorrectionError([f"step {step!r} is not a step of trajectory {traj.id} (steps 0 to "
                               f"{max(1, len(traj.steps)) - 1}, counted from 0)"])
    call = _checked(traj, task, call)
    if add_alternative:
        if not can_add_alternative(task):
            raise CorrectionError([f"task {task.id!r} has no reference to add an alternative to; the correction "
                                   "alone can be stored"])
        try:
            from agentlearn.suites.references import add_alternative as add_to_reference
        except ImportError:
            raise CorrectionError(["accepting alternatives needs agentlearn.suites.references, which this "
                                   "installation lacks; the correction alone can be stored"]) from None
        add_to_reference(ws, task.id, call, who=who)
    return ws.repo.put(Correction(trajectory_id=traj.id, task_id=task.id, suite=traj.suite, author=who.name,
                                  call=call, note=note.strip(), step=step, add_alternative=add_alternative))


def of_step(ws: Workspace, trajectory_id: str, step: int) -> list[Correction]:
    """The corrections of one step of a run, newest first."""
    return [c for c in of_trajectory(ws, trajectory_id) if c.step == step]
