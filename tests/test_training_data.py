"""Training rows and their sizes: the suite's instruction in every prompt, the argument kinds with GRPO rows,
max_length and steps from the data (real tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import datasets
from agentlearn.tasks import update_suite
from agentlearn.training import config as jc
from agentlearn.training import sizing
from tests.test_datasets import SUITE, mini_suite, prefer, read

INSTRUCTION = "You are the help desk of ACME. Reset or unlock accounts as asked."


def test_rows_use_the_agents_prompt_with_the_suites_instruction(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    update_suite(ws, SUITE, instruction=INSTRUCTION)
    prefer(ws, tasks["a1"], "no", '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}'
           '</tool_call>', "B")
    rows = {kind: read(datasets.export(ws, kind, SUITE).path) for kind in ("sft", "dpo", "grpo")}
    system = [rows["sft"][0]["messages"][0], rows["dpo"][0]["prompt"][0], rows["grpo"][0]["prompt"][0]]
    assert all(m["role"] == "system" and m["content"].startswith(INSTRUCTION) for m in system)
    assert "- reset_password(username: string)" in system[0]["content"]  # tools as signatures, not schemas
    assert '"properties"' not in system[0]["content"]
    kinds = {r["expected_name"]: json.loads(r["arg_kinds"]) for r in rows["grpo"]}
    assert kinds["reset_password"] == {"username": "extractive"}


def test_steps_come_from_epochs_over_the_rows_within_a_floor_and_a_cap():
    assert sizing.steps_for("sft", rows=12, effective_batch=2, cap=40) == 18  # 3 epochs
    assert sizing.steps_for("sft", rows=2, effective_batch=2, cap=40) == sizing.MIN_STEPS
    assert sizing.steps_for("sft", rows=500, effective_batch=2, cap=40) == 40
    assert sizing.steps_for("grpo", rows=12, effective_batch=4, cap=20) == 4


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> str:
    from agentlearn.models import chat_model_dir

    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return str(chat_model_dir(folder))


def test_max_length_comes_from_the_longest_row_within_the_models_context(ws, tmp_path, base_model):
    mini_suite(ws, tmp_path)
    made = datasets.export(ws, "sft", SUITE)
    small = jc.preset("sft", "cpu-small", dataset_path=made.path, base_model=base_model, max_length=64)
    sized, facts = sizing.size(small, ws.settings.models_dir)
    assert facts["rows"] == 4 and facts["context"] == sizing.model_context(base_model) >= 2048
    assert facts["longest"] + sizing.LENGTH_MARGIN <= sized.max_length < facts["longest"] + 2 * sizing.LENGTH_STEP
    assert sized.max_steps == sizing.MIN_STEPS + 2 and sized.warmup_steps == 0  # 3 epochs of 4 rows at batch 2
    kept, _ = sizing.size(small, ws.settings.models_dir, keep=("max_steps",))
    assert kept.max_steps == 40 and kept.max_length == sized.max_length
    tiny = jc.preset("sft", "cpu-tiny", dataset_path=made.path, base_model=base_model)
    assert sizing.size(tiny, ws.settings.models_dir)[0] == tiny  # the smoke-test preset stays fixed
    huge = Path(made.path).with_name("huge.jsonl")
    row = read(made.path)[0]
    row["messages"][-2]["content"] = "word " * 9000
    huge.write_text(json.dumps(row) + "\n")
    capped, _ = sizing.size(jc.from_dict({**small.to_dict(), "dataset_path": str(huge)}), ws.settings.models_dir)
    assert capped.max_length == sizing.model_context(base_model)
