"""Train where the GPUs are: `train --bundle DIR` writes a self-contained job, its run.sh trains it with
`accelerate launch` (here on CPU, for real), `adapters import DIR` registers the adapter with its lineage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentlearn import adapters
from agentlearn.evaluate import evaluate
from agentlearn.methods import RunOptions
from agentlearn.training import bundle
from agentlearn.training import config as jc
from storage.records import Adapter, DatasetExport, Job, Task
from tests.test_datasets import SUITE, mini_suite
from tests.test_improve import linked_model  # noqa: F401 - the fixture
from tests.test_training import generate

ROOT = Path(__file__).resolve().parents[1]


def test_a_bundle_refuses_a_used_folder_and_an_unfinished_import(ws, tmp_path):
    mini_suite(ws, tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": []}\n')
    config = jc.preset("sft", "cpu-tiny", dataset_path=str(data), suite=SUITE)
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty"):
        bundle.write(ws, config, used)
    folder = bundle.write(ws, config, tmp_path / "b")
    with pytest.raises(ValueError, match="has no result.json: run its run.sh first"):
        bundle.import_bundle(ws, folder)
    (folder / "result.json").write_text(json.dumps({"status": "failed", "error": "CUDA out of memory"}))
    with pytest.raises(ValueError, match="did not produce an adapter: CUDA out of memory"):
        bundle.import_bundle(ws, folder)
    assert ws.repo.count(Adapter) == 0 and (used / "notes.txt").read_text() == "mine"


def test_a_bundle_trains_with_accelerate_on_cpu_and_imports_like_a_local_adapter(ws, tmp_path, capsys,
                                                                                  linked_model):  # noqa: F811
    from agentlearn.cli import main

    mini_suite(ws, tmp_path)
    folder = tmp_path / "bundle"
    assert main(["train", "sft", "--suite", SUITE, "--preset", "cpu-tiny", "--max-steps", "1",
                 "--bundle", str(folder)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["launch"] == str(folder / "run.sh") and ws.repo.count(Job) == 0  # nothing trained here
    job_yaml = yaml.safe_load((folder / "job.yaml").read_text())
    assert job_yaml["dataset_path"] == "dataset.jsonl" and job_yaml["device"] == "auto"
    assert "accelerate launch" in (folder / "run.sh").read_text()
    env = {**os.environ, "ACCELERATE_ARGS": "--cpu", "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(folder / "run.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "succeeded" and result["steps"] == 1 and result["rows"] == 4
    assert main(["adapters", "import", str(folder)]) == 0
    imported = json.loads(capsys.readouterr().out)
    adapter = adapters.find(ws, imported["job_id"])  # named by the job record the import made
    job = ws.repo.get(Job, adapter.job_id)
    assert job.status == "succeeded" and job.metrics["train_loss"] > 0
    assert ws.repo.get(DatasetExport, job.export_id).suite == SUITE  # lineage back to the exported rows
    assert Path(adapter.path).parent == ws.settings.adapters_dir
    assert generate(str(linked_model), adapter.path, ws.repo.find(Task, suite=SUITE)[0])
    assert evaluate(ws, SUITE, RunOptions(adapter_id=adapter.path), split="train").adapter == adapter.id  # like a local one
