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
from tests.seed import ME
from tests.test_datasets import SUITE, mini_suite, prefer, read

INSTRUCTION = "You are the help desk of ACME. Reset or unlock accounts as asked."


def test_rows_use_the_agents_prompt_with_the_suites_instruction(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    update_suite(ws, SUITE, instruction=INSTRUCTION, who=ME)
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
    assert sizing.steps_for("sft", rows=12, effective_batch=2, cap=40) == jc.SFT_MIN_STEPS == 40  # not 18
    assert sizing.steps_for("sft", rows=2, effective_batch=2, cap=300) == jc.SFT_MIN_STEPS
    assert sizing.steps_for("sft", rows=100, effective_batch=2, cap=300) == 150  # 3 epochs above the floor
    assert sizing.steps_for("sft", rows=500, effective_batch=2, cap=40) == 40
    assert sizing.steps_for("sft", rows=2, effective_batch=2, cap=10) == 10  # the cap wins over the floor
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
    assert sized.max_steps == jc.SFT_MIN_STEPS and sized.warmup_steps == 3  # the floor; the preset's warm-up
    kept, _ = sizing.size(small, ws.settings.models_dir, keep=("max_steps",))
    assert kept.max_steps == small.max_steps == 120 and kept.max_length == sized.max_length
    tiny = jc.preset("sft", "cpu-tiny", dataset_path=made.path, base_model=base_model)
    assert sizing.size(tiny, ws.settings.models_dir)[0] == tiny  # the smoke-test preset stays fixed
    huge = Path(made.path).with_name("huge.jsonl")
    row = read(made.path)[0]
    row["messages"][-2]["content"] = "word " * 9000
    huge.write_text(json.dumps(row) + "\n")
    capped, _ = sizing.size(jc.from_dict({**small.to_dict(), "dataset_path": str(huge)}), ws.settings.models_dir)
    assert capped.max_length == sizing.model_context(base_model)


def test_a_validation_slice_is_held_out_the_same_way_every_time(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                            for i in range(20)))
    train, val = sizing.split_rows(path)
    held = read(val)
    assert len(held) == 4 and len(read(train)) == 16 and not {json.dumps(r) for r in held} & {
        json.dumps(r) for r in read(train)}
    assert sizing.split_rows(path) == (train, val) and read(val) == held
    few = tmp_path / "few.jsonl"
    few.write_text("".join(path.read_text().splitlines(keepends=True)[:9]))
    assert sizing.split_rows(few) == (str(few), "")  # too few rows to spare any
    from agentlearn.training import preflight

    missing = jc.preset("sft", "cpu-tiny", dataset_path=train, validation_path=str(tmp_path / "gone.jsonl"))
    assert any("validation_path" in e and "does not exist" in e for e in preflight.setting_problems(missing))


def test_the_adapter_kept_is_the_best_checkpoint_on_the_validation_rows(ws, tmp_path, base_model):
    """A REAL 3-step SFT job in this process, graded by generation on 2 validation rows after every step."""
    from agentlearn.training import jobs
    from storage.records import Adapter

    mini_suite(ws, tmp_path)
    made = datasets.export(ws, "sft", SUITE)
    rows = read(made.path)
    val = Path(made.path).with_name("val.jsonl")
    val.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    config = jc.preset("sft", "cpu-tiny", dataset_path=made.path, base_model=base_model, max_length=384, max_steps=3,
                       validation_path=str(val), validation_every=1, learning_rate=5e-3)
    job = jobs.run_job(ws, jobs.new_job(ws, config).id, config)
    assert job.adapter_id
    assert 1 <= job.metrics["best_step"] <= 3 and job.metrics["val_rows"] == 2
    assert 0.0 <= job.metrics["val_name_accuracy"] <= 1.0
    assert 0.0 <= job.metrics["base_val_name_accuracy"] <= 1.0  # the untrained model answered the rows first
    below = (job.metrics["val_name_accuracy"], job.metrics["val_call_accuracy"]) < (
        job.metrics["base_val_name_accuracy"], job.metrics["base_val_call_accuracy"])
    assert bool(jobs.below_base(job)) == below and ("BELOW BASE" in jobs.validation_text(job)) == below
    adapter = ws.repo.get(Adapter, job.adapter_id)
    assert (Path(adapter.path) / "adapter_config.json").exists() and (Path(adapter.path) / "tokenizer.json").exists()


def test_a_small_slice_reports_base_vs_adapter_but_does_not_pick(ws, tmp_path, base_model):
    """sizing.prepare on real exports: 12 rows give a 2-row slice that only reports; 60 rows a 12-row one that picks."""
    lines = [(f"r{i}", f"Reset the password of user u{i}.", "reset_password", {"username": f"u{i}"}) for i in range(60)]
    mini_suite(ws, tmp_path, lines=lines[:12])
    made = datasets.export(ws, "sft", SUITE)
    config = jc.preset("sft", "cpu-small", dataset_path=made.path, base_model=base_model)
    small, facts = sizing.prepare(config, ws.settings.models_dir)
    assert facts["validation_rows"] == 2 and not small.validation_picks and small.max_steps == jc.SFT_MIN_STEPS
    assert "base vs adapter; the last checkpoint is kept" in sizing.describe(small, facts)
    mini_suite(ws, tmp_path, lines=lines)
    made = datasets.export(ws, "sft", SUITE)
    large, facts = sizing.prepare(jc.from_dict({**config.to_dict(), "dataset_path": made.path}), ws.settings.models_dir)
    assert facts["validation_rows"] == 12 >= jc.VALIDATION_PICKS_FROM and large.validation_picks
    assert large.max_steps == 72  # 3 epochs of 48 rows, under the preset's cap of 120


def test_without_picking_only_the_base_and_the_end_are_graded_and_nothing_is_saved(tmp_path):
    from agentlearn.training import jobs
    from agentlearn.training.validation import BestOnValidation
    from storage.records import Job

    rows = [{"messages": [{"role": "user", "content": "reset akhan"}, {"role": "assistant", "content":
             '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'}]}]
    answers = iter([[rows[0]["messages"][1]["content"]], ["no call"]])  # the base right, the end wrong

    class Scripted(BestOnValidation):
        def answers(self, model):
            return next(answers)

    class Model:
        def save_pretrained(self, *args, **kwargs):
            raise AssertionError("a slice that does not pick saves nothing")

    class State:
        global_step = 5

    best = Scripted(rows, None, tmp_path / "adapter", every=1, picks=False)
    best.on_train_begin(None, State(), None, model=Model())
    best.on_step_end(None, State(), None, model=Model())  # not graded: it does not pick
    best.on_train_end(None, State(), None, model=Model())
    metrics = best.metrics()
    assert [h["step"] for h in best.history] == [5] and metrics["best_step"] == 5
    assert (metrics["base_val_name_accuracy"], metrics["val_name_accuracy"]) == (1.0, 0.0)
    job = Job(method="sft", config={}, status="succeeded", step=5, max_steps=5, metrics=metrics, adapter_id="a1")
    assert jobs.below_base(job)["base_name"] == 1.0 and "not offered as an improvement" in jobs.outcome(job)
    assert jobs.validation_text(job) == "base 100% -> 0% on 1 rows · BELOW BASE"
    fine = job.model_copy(update={"metrics": {**metrics, "val_name_accuracy": 1.0, "val_call_accuracy": 1.0}})
    assert not jobs.below_base(fine) and "BELOW" not in jobs.outcome(fine) + jobs.validation_text(fine)


def test_the_best_checkpoint_is_chosen_by_name_then_call_accuracy_and_a_later_tie_wins(tmp_path):
    from agentlearn.training.validation import BestOnValidation

    def row(name: str, user: str) -> dict:
        return {"messages": [{"role": "user", "content": f"reset {user}"}, {"role": "assistant", "content":
                f'<tool_call>{{"name": "{name}", "arguments": {{"username": "{user}"}}}}</tool_call>'}]}

    rows = [row("reset_password", "akhan"), row("unlock_account", "bnovak")]
    right, wrong_arg = rows[0]["messages"][1]["content"], rows[1]["messages"][1]["content"].replace("bnovak", "x")
    script = {1: ["no call", "no call"], 2: [right, wrong_arg], 3: [right, "no call"], 4: [right, wrong_arg]}

    class Scripted(BestOnValidation):
        step = 0

        def answers(self, model):
            return script[self.step]

    class Model:
        saved: list[int] = []

        def save_pretrained(self, folder, **kwargs):
            Model.saved.append(best.step)

    class Tok:
        def save_pretrained(self, folder):
            pass

    best = Scripted(rows, Tok(), tmp_path / "adapter", every=1)
    for step in script:
        best.step = step
        best.check(Model(), step)
    assert Model.saved == [1, 2, 4]  # step 3 (one name right, no call right) is worse than step 2; 4 ties 2
    assert best.best_step == 4 and best.metrics()["val_name_accuracy"] == 1.0
    assert best.metrics()["val_call_accuracy"] == 0.5 and [h["step"] for h in best.history] == [1, 2, 3, 4]
