"""Training jobs: each one is a `train` child process (agentlearn.processes), its payload on a Job record.

    launch()  validate -> Job record + jobs_dir/<id>/job.yaml -> processes.start: `python -m agentlearn
              train --run-job ID`, whose Process record holds its status, heartbeat, progress, ETA and log
    the job   run_job: trains, reporting steps to its Process and metrics to its Job (the charts), saves
              the adapter and an Adapter record; a stop-and-save request ends it at its next step, saved
    stop()    processes.stop on the job's process: now, or at its next step saving the adapter
    get()     the Job with its status, error and end read from its Process (the one owner of them)

The process is started in its own session, so closing the dashboard or the terminal does not end
it, and killing it (even with SIGKILL) leaves the store as it was: every write is atomic.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentlearn import policy, processes
from agentlearn.accounts import Identity
from agentlearn.training import preflight, runner
from agentlearn.training.config import JobConfig, preset
from agentlearn.workspace import Workspace
from storage.records import Adapter, Job, Process, new_id, now

ACTIVE = ("queued", "running", "stopping")
DONE = ("succeeded", "failed", "stopped")
# The job process trains the local model offline: no tokenizer threads fighting the trainer's, no hub calls.
CHILD_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def job_dir(ws: Workspace, job_id: str) -> Path:
    """The folder of a job: job.yaml and the trainer's scratch space."""
    return ws.settings.jobs_dir / job_id


def with_base_model(ws: Workspace, config: JobConfig) -> JobConfig:
    """The config naming the workspace's embedded model when it names no base model, so that the job
    trains the model the workspace serves whatever process runs it."""
    return config if config.base_model else dataclasses.replace(config, base_model=ws.settings.local_model)


def new_job(ws: Workspace, config: JobConfig) -> Job:
    """Store a Job for a config and write its job.yaml."""
    config = with_base_model(ws, config)
    job = Job(method=config.method, config=config.to_dict(), export_id=config.export_id, max_steps=config.max_steps)
    folder = job_dir(ws, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = config.save(folder / "job.yaml")
    return ws.repo.put(job.model_copy(update={"config_path": str(path)}))


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
    """Validate, then start the job as a `train` child process; returns the Job (with its process_id).

    `who` needs the train action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "train")
    config = with_base_model(ws, config)
    errors = preflight.validate(config, ws.settings.models_dir)
    if errors:
        raise ValueError("the job cannot start:\n- " + "\n- ".join(errors))
    job = new_job(ws, config)
    started = processes.start(ws, "train", ["train", "--run-job", job.id], who=who, env=CHILD_ENV,
                              model_access=False)  # it trains the local model: no endpoint keys
    ws.repo.update(Job, job.id, lambda j: j.model_copy(update={"process_id": started.id}))
    return get(ws, job.id)


def run_job(ws: Workspace, job_id: str, config: JobConfig) -> Job:
    """Train a stored job in this process (the `train --run-job` child's work): train, save, register.

    Steps reach the Process record of a started child (processes.report), and its stop-and-save request
    ends the training at the next step with the adapter saved; a failure raises, for the child's end to
    record (redacted) on its Process.
    """
    from agentlearn.training.callbacks import JobProgress  # transformers: only the job process needs it

    adapter_id = new_id()
    adapter_dir = ws.settings.adapters_dir / adapter_id
    result = runner.train(config, ws.settings.models_dir, job_dir(ws, job_id) / "trainer", adapter_dir,
                          [JobProgress(ws, job_id)])
    if result.saved:
        ws.repo.put(Adapter(id=adapter_id, name=config.name or f"{config.method}-{config.suite or 'data'}-{job_id[:6]}",
                            path=str(adapter_dir), base_model=runner.base_model_dir(config, ws.settings.models_dir),
                            job_id=job_id, method=config.method))
    summary = {**result.metrics, "rows": float(result.rows), "rows_left_out": float(result.dropped)}
    return ws.repo.update(Job, job_id, lambda j: j.model_copy(update={
        "adapter_id": adapter_id if result.saved else "", "step": result.steps, "metrics": {**j.metrics, **summary}}))


def process(ws: Workspace, job: Job) -> Process | None:
    """The job's Process record (None for a job that ran without one: an imported bundle, an older store)."""
    return processes.get(ws, job.process_id) if job.process_id else None


def get(ws: Workspace, job_id: str) -> Job | None:
    """The Job with its status, error and end as its Process says (a crashed or silent process reads
    failed, processes' checks); a job without a process keeps what it recorded."""
    job = ws.repo.get(Job, job_id)
    return None if job is None else _with_process(ws, job)


def stop(ws: Workspace, job_id: str, save: bool = False, *, who: Identity) -> Job:
    """Stop a running job (processes.stop on its process): now, or with save=True at its next step after
    saving its adapter (`who`: train)."""
    policy.require(ws.repo, who, "train")
    job = get(ws, job_id)
    if job is None:
        raise ValueError(f"no job with id {job_id!r}")
    if job.status not in ACTIVE or not job.process_id:
        raise ValueError(f"job {job_id} is {job.status}; only a queued or running job can be stopped")
    processes.stop(ws, job.process_id, save=save)
    return get(ws, job_id)


def list_jobs(ws: Workspace) -> list[Job]:
    """All jobs, newest first, each with its status from its process (get)."""
    return sorted((_with_process(ws, j) for j in ws.repo.all(Job)), key=lambda j: j.created, reverse=True)


def wait(ws: Workspace, job_id: str, timeout: float | None = None, poll: float = 1.0,
         on_progress: Callable[[Process], None] | None = None) -> Job:
    """Block until the job ends (or `timeout` seconds pass); returns the latest Job. `on_progress` gets
    its Process record at every poll."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get(ws, job_id)
        if job is None:
            raise ValueError(f"no job with id {job_id!r}")
        running = process(ws, job)
        if on_progress and running is not None:
            on_progress(running)
        if job.status in DONE or (deadline is not None and time.monotonic() > deadline):
            return job
        time.sleep(poll)


def statuses(found: list[Job]) -> dict[str, str]:
    """Job id -> status: what a view was drawn with, to compare with the store later."""
    return {j.id: j.status for j in found}


def ended_since(before: dict[str, str], found: list[Job]) -> list[Job]:
    """The jobs that were active in `before` (statuses()) and have ended in `found`."""
    return [j for j in found if before.get(j.id) in ACTIVE and j.status in DONE]


def elapsed_s(job: Job) -> float:
    """Seconds from the job's start to its end (to now while it runs)."""
    return max(0.0, ((job.finished or now()) - job.created).total_seconds())


def train_loss_text(job: Job) -> str:
    """The job's final train loss to three decimals, "" when it has none (failed or still running)."""
    loss = job.metrics.get("train_loss")
    return "" if loss is None else f"{loss:.3f}"


def outcome(job: Job) -> str:
    """One line on how an ended job ended: status, steps, time, train loss, adapter or error."""
    parts = [f"{job.method.upper()} job {job.id} {job.status}", f"step {job.step}/{job.max_steps}",
             f"{elapsed_s(job):.0f} s"]
    if loss := train_loss_text(job):
        parts.append(f"train loss {loss}")
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


def _with_process(ws: Workspace, job: Job) -> Job:
    found = process(ws, job)
    if found is None:
        return job
    status = "stopping" if processes.stopping(found) else found.status
    return job.model_copy(update={"status": status, "error": found.error, "finished": found.finished})
