"""The job process: `python -m agentlearn.training --config job.yaml [--job-id ID]`.

The dashboard and the CLI start it through agentlearn.training.jobs.launch, which stores the Job
first and passes its id. Run by hand without --job-id, it stores a new Job for the config itself.
The store is AGENTLEARN_HOME's. Exit status: 0 succeeded or stopped, 1 failed, 2 bad config.
"""

from __future__ import annotations

import argparse
import logging
import sys

from agentlearn import redact
from agentlearn.training import config as job_config
from agentlearn.training import quiet
from agentlearn.training.jobs import new_job, run_job
from agentlearn.workspace import open_workspace
from storage.records import Job


def main(argv: list[str] | None = None) -> int:
    """Run one training job to its end; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m agentlearn.training", description="Run one training job.")
    p.add_argument("--config", required=True, help="the job's YAML config")
    p.add_argument("--job-id", default="", help="the stored Job to run (default: store a new one)")
    args = p.parse_args(argv)
    redact.install()  # the job's output is its log, shown on the Training page: no secrets in it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet.install()
    try:
        config = job_config.load(args.config)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ws = open_workspace()
    job_id = args.job_id or new_job(ws, config).id
    if ws.repo.get(Job, job_id) is None:
        print(f"error: no job with id {job_id!r} in {ws.settings.store_dir}", file=sys.stderr)
        return 2
    print(f"job {job_id}: {config.method} on {config.dataset_path}", flush=True)
    job = run_job(ws, job_id, config)
    print(f"job {job_id}: {job.status}" + (f" ({job.error})" if job.error else ""), flush=True)
    return 1 if job.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
