"""An adapter is named by its id, the id of the job that made it, or its folder."""

from __future__ import annotations

import pytest

from agentlearn import adapters
from storage.records import Adapter, Job


def test_an_adapter_is_found_by_id_job_id_or_folder(ws, tmp_path):
    folder = ws.settings.adapters_dir / "sft-1"
    folder.mkdir(parents=True)
    adapter = ws.repo.put(Adapter(name="sft-1", path=str(folder), base_model="m", method="sft"))
    job = ws.repo.put(Job(method="sft", config={}, status="succeeded", adapter_id=adapter.id))
    assert adapters.find(ws, adapter.id) == adapter
    assert adapters.find(ws, job.id) == adapter
    assert adapters.find(ws, str(folder)) == adapter
    failed = ws.repo.put(Job(method="sft", config={}, status="failed", error="out of memory"))
    with pytest.raises(ValueError, match="made no adapter: out of memory"):
        adapters.find(ws, failed.id)
    with pytest.raises(ValueError, match=f"adapters: {adapter.id}"):
        adapters.find(ws, "nope")
