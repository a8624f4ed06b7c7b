"""A TrainerCallback that reports a job's steps to its Process record, its metrics to its Job record, and
obeys a stop-and-save request.

Steps go through processes.report (status, progress and ETA are the Process's, as for every child);
each TRL log line becomes a JobEvent on the Job (the charts), through `ws.repo.update`, atomic across
processes. A stop-and-save request (processes.stop(save=True)) is read at the end of every step.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from agentlearn import processes
from agentlearn.workspace import Workspace
from storage.records import Job, JobEvent


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers among TRL's logged values."""
    out = {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class JobProgress(TrainerCallback):
    """Steps to the Process, metrics to the Job; stop (and save) at the next step when asked."""

    def __init__(self, ws: Workspace, job_id: str) -> None:
        self.ws, self.job_id = ws, job_id
        self.message = "training"

    def on_train_begin(self, args, state, control, **kwargs):
        # The first report marks when training (not model loading) began: the ETA's rate is counted from it.
        processes.report(self.ws, state.global_step, state.max_steps, self.message)

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = numeric(logs or {})
        if not values:
            return
        event = JobEvent(step=state.global_step, values=values)
        self.ws.repo.update(Job, self.job_id, lambda job: job.model_copy(update={
            "events": [*job.events, event], "metrics": {**job.metrics, **values}}))
        shown = next((k for k in ("loss", "reward", "train_loss") if k in values), "")
        if shown:
            self.message = f"step {state.global_step}: {shown} {values[shown]:.4f}"

    def on_step_end(self, args, state, control, **kwargs):
        processes.report(self.ws, state.global_step, state.max_steps, self.message)
        if processes.requested(self.ws) == processes.STOP_AND_SAVE:
            control.should_training_stop = True
        return control
