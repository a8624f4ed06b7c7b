"""Training jobs: each one is its own detached process, watched through its Job record.

    launch()  validate -> Job record (queued) -> jobs_dir/<id>/job.yaml -> `python -m agentlearn.training`
    the job   running -> events/heartbeat -> adapter + Adapter record -> succeeded | stopped | failed
    stop()    a control file the job reads at its next step (stop, or stop and save the adapter)
    refresh_statuses()  a job whose process is gone, or whose heartbeat stopped, is marked failed

The process is started in its own session, so closing the dashboard or the terminal does not end
it, and killing it (even with SIGKILL) leaves the store as it was: every write is atomic.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlearn import policy, processes
from agentlearn.accounts import Identity
from agentlearn.redact import redact
from agentlearn.training import preflight, runner
from agentlearn.training.config import JobConfig, preset
from agentlearn.training.control import STOP, STOP_AND_SAVE, request
from agentlearn.workspace import Workspace
from storage.records import Adapter, Job, new_id, now

ACTIVE = ("queued", "running", "stopping")
DONE = ("succeeded", "failed", "stopped")
HEARTBEAT_S = 10.0
STALE_AFTER_S = 180.0
_PROCS: dict[str, subprocess.Popen] = {}  # children of this process, kept so they can be reaped


def job_dir(ws: Workspace, job_id: str) -> Path:
    """The folder of a job: job.yaml, train.log, control file, trainer scratch space."""
    return ws.settings.jobs_dir / job_id


def with_base_model(ws: Workspace, config: JobConfig) -> JobConfig:
    """The config naming the workspace's embedded model when it names no base model, so that the job
    trains the model the workspace serves whatever process runs it."""
    return config if config.base_model else dataclasses.replace(config, base_model=ws.settings.local_model)


def new_job(ws: Workspace, config: JobConfig) -> Job:
    """Store a queued Job for a config and write its job.yaml."""
    config = with_base_model(ws, config)
    job = Job(method=config.method, config=config.to_dict(), export_id=config.export_id, max_steps=config.max_steps)
    folder = job_dir(ws, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = config.save(folder / "job.yaml")
    job = job.model_copy(update={"config_path": str(path), "log_path": str(folder / "train.log")})
    return ws.repo.put(job)


def default_preset() -> str:
    """cuda-qlora where a CUDA GPU is present, else cpu-small."""
    import torch

    return "cuda-qlora" if torch.cuda.is_available() else "cpu-small"


def config_for_suite(ws: Workspace, method: str, suite: str, preset_name: str = "",
                     pairs_from: tuple[str, ...] = ("preferences",), **overrides: Any) -> JobConfig:
    """Export the method's dataset for a suite and build a config from a preset around it."""
    from agentlearn import datasets
    from agentlearn.training import sizing

    exported = datasets.export(ws, method, suite, pairs_from=pairs_from)
    config = with_base_model(ws, preset(method, preset_name or default_preset(), dataset_path=exported.path,
                                        export_id=exported.id, suite=suite, **overrides))
    # Steps and max_length from the data (a validation slice for SFT), unless they were given.
    return sizing.prepare(config, ws.settings.models_dir, keep=tuple(overrides))[0]


def launch(ws: Workspace, config: JobConfig, *, who: Identity) -> Job:
    """Validate, then start the job in a detached process; returns the queued Job (with pid).

    `who` needs the train action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "train")
    config = with_base_model(ws, config)
    errors = preflight.validate(config, ws.settings.models_dir)
    if errors:
        raise ValueError("the job cannot start:\n- " + "\n- ".join(errors))
    job = new_job(ws, config)
    proc = processes.spawn(ws, "agentlearn.training", ["--config", job.config_path, "--job-id", job.id],
                           job.log_path, {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"},
                           model_access=False)
    _PROCS[job.id] = proc
    return ws.repo.update(Job, job.id, lambda j: j.model_copy(update={"pid": j.pid or proc.pid}))


def run_job(ws: Workspace, job_id: str, config: JobConfig) -> Job:
    """Run a stored job in this process (the job process's main): train, save, register, report."""
    folder = job_dir(ws, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    ws.repo.update(Job, job_id, lambda j: j.model_copy(update={
        "status": "running" if j.status == "queued" else j.status, "pid": os.getpid(), "heartbeat": now()}))
    from agentlearn.training.callbacks import JobProgress  # transformers: only the job process needs it

    signal.signal(signal.SIGTERM, lambda *_: request(folder, STOP))  # a plain kill stops at the next step
    beat = _Heartbeat(ws, job_id)
    beat.start()
    progress = JobProgress(ws, job_id, folder)
    adapter_id = new_id()
    adapter_dir = ws.settings.adapters_dir / adapter_id
    try:
        result = runner.train(config, ws.settings.models_dir, folder / "trainer", adapter_dir, [progress],
                              should_save=lambda: progress.request != STOP)
    except BaseException as e:  # noqa: BLE001 - any failure must reach the record, then the exit status
        traceback.print_exc()
        beat.stop()
        message = redact(f"{type(e).__name__}: {e}".strip())
        return ws.repo.update(Job, job_id, lambda j: j.model_copy(update={
            "status": "failed", "error": message[:2000], "finished": now(), "heartbeat": now()}))
    beat.stop()
    if result.saved:
        ws.repo.put(Adapter(id=adapter_id, name=config.name or f"{config.method}-{config.suite or 'data'}-{job_id[:6]}",
                            path=str(adapter_dir), base_model=runner.base_model_dir(config, ws.settings.models_dir),
                            job_id=job_id, method=config.method))
    status = "stopped" if progress.request else "succeeded"
    summary = {**result.metrics, "rows": float(result.rows), "rows_left_out": float(result.dropped)}
    return ws.repo.update(Job, job_id, lambda j: j.model_copy(update={
        "status": status, "adapter_id": adapter_id if result.saved else "", "step": result.steps,
        "metrics": {**j.metrics, **summary}, "finished": now(), "heartbeat": now()}))


def stop(ws: Workspace, job_id: str, save: bool = False, *, who: Identity) -> Job:
    """Ask a running job to stop at its next step; with save=True it saves its adapter first (`who`: train)."""
    policy.require(ws.repo, who, "train")
    job = ws.repo.get(Job, job_id)
    if job is None:
        raise ValueError(f"no job with id {job_id!r}")
    if job.status not in ACTIVE:
        raise ValueError(f"job {job_id} is {job.status}; only a queued or running job can be stopped")
    request(job_dir(ws, job_id), STOP_AND_SAVE if save else STOP)
    return ws.repo.update(Job, job_id, lambda j: j.model_copy(update={"status": "stopping"})
                          if j.status in ACTIVE else j)


def refresh_statuses(ws: Workspace, stale_after: float = STALE_AFTER_S) -> list[Job]:
    """Mark as failed the active jobs whose process is gone or silent; returns the jobs changed."""
    for job_id, proc in list(_PROCS.items()):
        if proc.poll() is not None:  # reap ended children: a zombie would still look alive
            _PROCS.pop(job_id, None)
    changed = []
    for job in ws.repo.all(Job):
        if job.status not in ACTIVE:
            continue
        why = _why_dead(job, stale_after)
        if why:
            updated = ws.repo.update(Job, job.id, lambda j, why=why: j.model_copy(update={
                "status": "failed", "error": why, "finished": now()}) if j.status in ACTIVE else j)
            if updated.status == "failed":
                changed.append(updated)
    return changed


def list_jobs(ws: Workspace) -> list[Job]:
    """All jobs, newest first, with dead ones marked failed."""
    refresh_statuses(ws)
    return sorted(ws.repo.all(Job), key=lambda j: j.created, reverse=True)


def wait(ws: Workspace, job_id: str, timeout: float | None = None, poll: float = 1.0,
         on_progress: Callable[[Job], None] | None = None) -> Job:
    """Block until the job ends (or `timeout` seconds pass); returns the latest Job."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        refresh_statuses(ws)
        job = ws.repo.get(Job, job_id)
        if job is None:
            raise ValueError(f"no job with id {job_id!r}")
        if on_progress:
            on_progress(job)
        if job.status in DONE or (deadline is not None and time.monotonic() > deadline):
            return job
        time.sleep(poll)


def statuses(found: list[Job]) -> dict[str, str]:
    """Job id -> status: what a view was drawn with, to compare with the store later."""
    return {j.id: j.status for j in found}


def ended_since(before: dict[str, str], found: list[Job]) -> list[Job]:
    """The jobs that were active in `before` (statuses()) and have ended in `found`."""
    return [j for j in found if before.get(j.id) in ACTIVE and j.status in DONE]


def outcome(job: Job) -> str:
    """One line on how an ended job ended: status, steps, time, train loss, adapter or error."""
    p = progress(job)
    parts = [f"{job.method.upper()} job {job.id} {job.status}", f"step {job.step}/{job.max_steps}",
             f"{p.elapsed_s:.0f} s"]
    if "train_loss" in job.metrics:
        parts.append(f"train loss {job.metrics['train_loss']:.3f}")
    if job.adapter_id:
        parts.append(f"adapter {job.adapter_id} saved")
    below = below_base(job)
    if below:
        parts.append(f"BELOW ITS BASE on validation ({below_base_text(below)}): not offered as an improvement")
    if job.error:
        parts.append(job.error.splitlines()[0][:200])
    return " · ".join(parts)


def below_base(job: Job) -> dict[str, float]:
    """{} unless the job's adapter scored below its base model on the validation slice (name accuracy, then
    call accuracy); else the figures: base and adapter name and call accuracy and the slice's rows."""
    m = job.metrics
    if "base_val_name_accuracy" not in m or "val_name_accuracy" not in m:
        return {}
    base = (m["base_val_name_accuracy"], m.get("base_val_call_accuracy", 0.0))
    adapter = (m["val_name_accuracy"], m.get("val_call_accuracy", 0.0))
    if adapter >= base:
        return {}
    return {"base_name": base[0], "base_call": base[1], "adapter_name": adapter[0], "adapter_call": adapter[1],
            "rows": m.get("val_rows", 0.0)}


def adapter_below_base(ws: Workspace, adapter_id: str) -> bool:
    """Whether the job that made an adapter found it below its base on validation (below_base)."""
    adapter = ws.repo.get(Adapter, adapter_id)
    job = ws.repo.get(Job, adapter.job_id) if adapter is not None and adapter.job_id else None
    return bool(job and below_base(job))


def validation_text(job: Job) -> str:
    """Validation name accuracy, base -> adapter, for a table ("" without a validation slice); BELOW BASE marks
    an adapter that is not offered as an improvement."""
    m = job.metrics
    if "val_name_accuracy" not in m:
        return ""
    base = f"base {m['base_val_name_accuracy']:.0%} -> " if "base_val_name_accuracy" in m else ""
    return f"{base}{m['val_name_accuracy']:.0%} on {m.get('val_rows', 0):.0f} rows" + (
        " · BELOW BASE" if below_base(job) else "")


def below_base_text(below: dict[str, float]) -> str:
    """The figures of below_base in words."""
    return (f"name accuracy base {below['base_name']:.0%} vs adapter {below['adapter_name']:.0%}, call accuracy "
            f"base {below['base_call']:.0%} vs adapter {below['adapter_call']:.0%}, on {below['rows']:.0f} rows")


@dataclass
class Progress:
    """How far a job is and how long it should still take."""

    fraction: float
    elapsed_s: float
    eta_s: float | None


def progress(job: Job) -> Progress:
    """Progress from the job's events: elapsed since training began, ETA from its steps' rate (processes.eta_s)."""
    if not job.max_steps:
        return Progress(0.0, 0.0, None)
    start = next((e.at for e in job.events if e.step == 0), None) or job.created
    end = job.finished or now()
    elapsed = max(0.0, (end - start).total_seconds())
    eta = None
    if job.status in ACTIVE:
        reached = job.step_at or max((e.at for e in job.events if e.step == job.step), default=None) or job.heartbeat
        if reached is not None:
            eta = processes.eta_s(processes.Mark(0, start), processes.Mark(job.step, reached), job.max_steps, now())
    return Progress(min(1.0, job.step / job.max_steps), elapsed, eta)


# Metric groups worth a chart each, per method (TRL's logged names).
CHARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "sft": {"loss": ("loss",), "learning rate": ("learning_rate",), "token accuracy": ("mean_token_accuracy",)},
    "dpo": {"loss": ("loss",), "reward margin": ("rewards/margins",), "preference accuracy": ("rewards/accuracies",),
            "learning rate": ("learning_rate",)},
    "grpo": {"reward": ("reward", "rewards/call_reward/mean", "rewards/format_reward/mean"),
             "loss": ("loss",), "learning rate": ("learning_rate",), "completion length": ("completions/mean_length",)},
}


def metric_rows(job: Job) -> list[dict[str, Any]]:
    """The job's logged values as long-form rows (step, metric, value, chart) for plotting."""
    groups = CHARTS.get(job.method, {})
    chart_of = {name: chart for chart, names in groups.items() for name in names}
    return [{"step": e.step, "metric": k, "value": v, "chart": chart_of[k]}
            for e in job.events for k, v in e.values.items() if k in chart_of]


# --- internals ---------------------------------------------------------------------------------


def _why_dead(job: Job, stale_after: float) -> str:
    if job.pid is not None and not processes.pid_alive(job.pid):
        return (f"the job process (pid {job.pid}) ended without reporting a result: it was killed or crashed "
                "(out of memory?); see the log")
    last = job.heartbeat or job.created
    silent = (now() - last).total_seconds()
    if silent > stale_after:
        return f"no heartbeat for {silent:.0f} s: the job process hangs or runs elsewhere; marked failed"
    return ""


class _Heartbeat:
    """A thread that writes the job's heartbeat while it loads, generates or trains."""

    def __init__(self, ws: Workspace, job_id: str, every: float = HEARTBEAT_S) -> None:
        self.ws, self.job_id, self.every = ws, job_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.ws.repo.update(Job, self.job_id, lambda j: j.model_copy(update={"heartbeat": now()}))
            except Exception:  # noqa: BLE001 - a missed beat is not worth killing the training for
                pass
