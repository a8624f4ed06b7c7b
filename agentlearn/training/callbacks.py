"""A TrainerCallback that streams a job's progress into its Job record and obeys stop requests.

Writes go through `ws.repo.update` (atomic across processes) and touch only the fields the job owns,
so a "stopping" status set by the dashboard meanwhile is kept. Each TRL log line becomes a JobEvent;
between log lines the step and heartbeat are written at most every `min_interval` seconds.
A stop request is a small file in the job folder (see control.py), checked at the end of every step.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from agentlearn.training.control import STOP, STOP_AND_SAVE, read_control
from agentlearn.workspace import Workspace
from storage.records import Job, JobEvent, now


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers among TRL's logged values."""
    out = {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class JobProgress(TrainerCallback):
    """Progress, metrics and heartbeat into the Job record; stop / stop-and-save at the next step."""

    def __init__(self, ws: Workspace, job_id: str, job_dir: Path, min_interval: float = 2.0) -> None:
        self.ws, self.job_id, self.job_dir = ws, job_id, Path(job_dir)
        self.min_interval = min_interval
        self.last_write = 0.0
        self.request = ""

    def _update(self, event: JobEvent | None = None, **fields: Any) -> None:
        def change(job: Job) -> Job:
            extra: dict[str, Any] = {}
            if event is not None:
                extra = {"events": [*job.events, event], "metrics": {**job.metrics, **event.values}}
            moment = now()
            if fields.get("step", job.step) != job.step:
                extra["step_at"] = moment
            return job.model_copy(update={**fields, **extra, "heartbeat": moment})

        self.ws.repo.update(Job, self.job_id, change)
        self.last_write = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        # A step-0 event marks when training (not model loading) began: the ETA is measured from it.
        self._update(max_steps=state.max_steps, step=state.global_step, step_at=now(),
                     event=JobEvent(step=state.global_step))

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = numeric(logs or {})
        if not values:
            return
        self._update(step=state.global_step, event=JobEvent(step=state.global_step, values=values))

    def on_step_end(self, args, state, control, **kwargs):
        request = read_control(self.job_dir)
        if request in (STOP, STOP_AND_SAVE):
            self.request = request
            control.should_training_stop = True
        if request or time.monotonic() - self.last_write >= self.min_interval:
            self._update(step=state.global_step)
        return control
