"""Train where the GPUs are: a self-contained job folder, run anywhere agentlearn is installed, imported back.

    write(ws, config, folder)   dataset (and validation) files, job.yaml, bundle.json (lineage) and run.sh
    run.sh                      `accelerate launch -m agentlearn.training.bundle --bundle .`: one GPU or
                                several (NUM_PROCESSES), CPU with ACCELERATE_ARGS=--cpu; the same
                                runner.train as a local job, writing adapter/ and result.json
    import_bundle(ws, folder)   copies adapter/ into the workspace and registers it with a Job record that
                                carries the config, metrics and export id, so it is evaluated and gated
                                like a local adapter (`eval --adapter`, `adapters use`, the gate)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.training import config as jc
from agentlearn.workspace import Workspace
from storage.records import Adapter, Job, new_id, now

LAUNCH = """#!/bin/sh
# Train this bundle's LoRA adapter: needs agentlearn (and its requirements) installed here.
#   NUM_PROCESSES=4 ./run.sh           four GPUs on this machine
#   ACCELERATE_ARGS=--cpu ./run.sh     no GPU
# Then, on the machine with the store: python -m agentlearn adapters import THIS_FOLDER
set -e
cd "$(dirname "$0")"
exec accelerate launch --num_processes "${NUM_PROCESSES:-1}" --num_machines 1 --mixed_precision no \\
    --dynamo_backend no ${ACCELERATE_ARGS:-} -m agentlearn.training.bundle --bundle .
"""


def write(ws: Workspace, config: jc.JobConfig, folder: str | Path, force: bool = False) -> Path:
    """Write the bundle for `config` into `folder` (new or empty, unless `force`); returns the folder."""
    folder = Path(folder).expanduser()
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ValueError(f"--bundle {folder} exists and is not empty; name a new folder or pass --force")
    if config.init_adapter:
        raise ValueError("a bundle starts from the base model; train on top of an adapter locally")
    folder.mkdir(parents=True, exist_ok=True)
    settings = config.to_dict()
    shutil.copyfile(config.dataset_path, folder / "dataset.jsonl")
    settings["dataset_path"] = "dataset.jsonl"
    if getattr(config, "validation_path", ""):
        shutil.copyfile(config.validation_path, folder / "validation.jsonl")
        settings["validation_path"] = "validation.jsonl"
    settings["device"] = "auto"  # where it runs decides, not where it was written
    jc.from_dict(settings).save(folder / "job.yaml")
    lineage = {"suite": config.suite, "method": config.method, "export_id": config.export_id,
               "written": now().isoformat(), "from_home": str(ws.settings.home)}
    (folder / "bundle.json").write_text(json.dumps(lineage, indent=1))
    script = folder / "run.sh"
    script.write_text(LAUNCH)
    script.chmod(0o755)
    return folder


def run(folder: str | Path) -> dict[str, Any]:
    """Train the bundle in this process (each accelerate process runs this); rank 0 writes the result."""
    from agentlearn.settings import Settings
    from agentlearn.training import runner

    folder = Path(folder).resolve()
    settings = jc.load(folder / "job.yaml").to_dict()
    for key in ("dataset_path", "validation_path"):
        if settings.get(key):
            settings[key] = str(folder / settings[key])
    config = jc.from_dict(settings)
    rank = int(os.environ.get("RANK", "0"))
    adapter_dir = folder / "adapter"
    outcome: dict[str, Any] = {"status": "failed"}
    try:
        result = runner.train(config, Settings.from_env().models_dir, folder / "trainer", adapter_dir, [],
                              should_save=lambda: rank == 0)
        outcome = {"status": "succeeded", "metrics": result.metrics, "steps": result.steps, "rows": result.rows,
                   "rows_left_out": result.dropped, "adapter": "adapter" if result.saved else "",
                   "base_model": runner.base_model_dir(config, Settings.from_env().models_dir)}
    except Exception as e:  # noqa: BLE001 - the result file says what happened, for the import to report
        outcome = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000]}
        raise
    finally:
        if rank == 0:
            (folder / "result.json").write_text(json.dumps({**outcome, "finished": now().isoformat()}, indent=1))
    return outcome


def import_bundle(ws: Workspace, folder: str | Path, *, who: Identity) -> Adapter:
    """Register a trained bundle's adapter (copied into the workspace) with a Job record of its lineage.

    `who` needs the import action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "import")
    folder = Path(folder).expanduser()
    result_file = folder / "result.json"
    if not result_file.exists():
        raise ValueError(f"{folder} has no result.json: run its run.sh first (or it is not a bundle)")
    result = json.loads(result_file.read_text())
    if result.get("status") != "succeeded" or not result.get("adapter"):
        raise ValueError(f"the bundle in {folder} did not produce an adapter: {result.get('error', result.get('status'))}")
    source = folder / result["adapter"]
    if not (source / "adapter_config.json").exists():
        raise ValueError(f"{source} is not an adapter folder (no adapter_config.json)")
    config = jc.load(folder / "job.yaml")
    lineage = json.loads((folder / "bundle.json").read_text()) if (folder / "bundle.json").exists() else {}
    adapter_id = new_id()
    target = ws.settings.adapters_dir / adapter_id
    shutil.copytree(source, target)
    metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float))}
    job = ws.repo.put(Job(method=config.method, config={**config.to_dict(), "bundle": str(folder.resolve())},
                          export_id=lineage.get("export_id", ""), status="succeeded", step=int(result.get("steps", 0)),
                          max_steps=config.max_steps, metrics=metrics, adapter_id=adapter_id, finished=now()))
    suite = lineage.get("suite", "")
    from agentlearn.models import EMBEDDED_MODELS, converted_dir

    # The base model as this machine names it: the remote path means nothing here.
    named = config.base_model in EMBEDDED_MODELS or not config.base_model
    base = (str(converted_dir(ws.settings.models_dir, config.base_model or ws.settings.local_model)) if named
            else config.base_model)
    return ws.repo.put(Adapter(id=adapter_id, name=f"{config.method}-{suite or 'data'}-{job.id[:6]}-bundle",
                               path=str(target), base_model=base, job_id=job.id, method=config.method))


def main(argv: list[str] | None = None) -> int:
    """`python -m agentlearn.training.bundle --bundle DIR`: what run.sh starts in each process."""
    p = argparse.ArgumentParser(prog="python -m agentlearn.training.bundle", description="Train a job bundle.")
    p.add_argument("--bundle", required=True, help="the bundle folder (job.yaml, dataset.jsonl)")
    args = p.parse_args(argv)
    outcome = run(args.bundle)
    print(f"bundle {args.bundle}: {outcome['status']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
