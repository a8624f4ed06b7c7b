"""Training: configs, pre-launch checks, rewards, and REAL 2-step CPU jobs (SFT, DPO, GRPO) on SmolLM2.

The real jobs train on a 4-task suite with short prompts, 1-2 steps at batch 2, so each takes seconds
of compute; most of a test's time is process start and model loading.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from agentlearn import adapters, datasets, processes
from agentlearn.cli import main
from agentlearn.training import config as jc
from agentlearn.training import jobs, preflight, runner
from storage.records import ALL_RECORDS, Adapter, DatasetExport, Job, Process, Task
from tests.seed import ME
from tests.test_datasets import LINES, SUITE, call_text, mini_suite, prefer


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> str:
    """The converted SmolLM2, shared by the session's real-model tests."""
    from agentlearn.models import chat_model_dir

    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return str(chat_model_dir(folder))


def tiny(method: str, ws, tmp_path, base_model: str, **overrides) -> jc.JobConfig:
    """A cpu-tiny config on an export of the mini suite."""
    tasks = mini_suite(ws, tmp_path)
    if method == "dpo":
        for t in tasks.values():
            prefer(ws, t, call_text("noop"), call_text(t.expected.name, **t.expected.arguments), "B")
    exported = datasets.export(ws, method, SUITE)
    return jc.preset(method, "cpu-tiny", dataset_path=exported.path, export_id=exported.id, suite=SUITE,
                     base_model=base_model, max_length=384, **overrides)


def generate(base_model: str, adapter_dir: str, task: Task) -> str:
    """Greedy answer of base + adapter, loaded the way the agent loads it."""
    import torch

    from agentlearn.llm import load_local

    model, tokenizer = load_local(base_model, adapter_dir)
    ids = tokenizer.apply_chat_template(datasets.prompt_for(task), add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


def store_is_readable(ws) -> dict[str, int]:
    return {kind.__name__: len(ws.repo.all(kind)) for kind in ALL_RECORDS}


# --- configs -----------------------------------------------------------------------------------


def test_config_yaml_round_trip_and_presets(tmp_path):
    cfg = jc.preset("grpo", "cpu-small", dataset_path="d.jsonl", learning_rate=1e-5)
    path = cfg.save(tmp_path / "job.yaml")
    assert yaml.safe_load(path.read_text())["method"] == "grpo"
    again = jc.load(path)
    assert again == cfg and isinstance(again, jc.GRPOJobConfig) and again.preset == "cpu-small"
    assert jc.preset("sft", "cpu-tiny").max_steps == 2 and jc.preset("dpo", "cuda-qlora").quantize_4bit
    path.write_text("method: sft\nlearning_rate: 1e-3\nmax_steps: 3\n")  # YAML 1.1 reads 1e-3 as a string
    assert jc.load(path).learning_rate == 0.001


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match=r"unknown sft setting\(s\) \['num_generations'\]"):
        jc.from_dict({"method": "sft", "num_generations": 4})
    with pytest.raises(ValueError, match="max_steps must be a whole number"):
        jc.from_dict({"method": "dpo", "max_steps": "ten"})
    with pytest.raises(ValueError, match="'method' must be one of sft, dpo, grpo"):
        jc.from_dict({"method": "ppo"})
    with pytest.raises(ValueError, match="unknown preset"):
        jc.preset("sft", "gpu-huge")
    with pytest.raises(FileNotFoundError):
        jc.load(tmp_path / "missing.yaml")


# --- pre-launch checks -------------------------------------------------------------------------


def test_preflight_catches_bad_settings_before_loading_a_model(ws, tmp_path, base_model):
    sft = tiny("sft", ws, tmp_path, base_model)
    assert preflight.check(sft, ws.settings.models_dir).ok
    problems = {
        "max_steps must be from 1 to 1,000,000, not 0": sft.__class__(**{**vars(sft), "max_steps": 0}),
        "does not exist": sft.__class__(**{**vars(sft), "dataset_path": str(tmp_path / "gone.jsonl")}),
        "needs a CUDA GPU": sft.__class__(**{**vars(sft), "quantize_4bit": True, "device": "cpu"}),
        "all 4 rows need more than max_length=100": sft.__class__(**{**vars(sft), "max_length": 100}),
    }
    for message, cfg in problems.items():
        errors = preflight.validate(cfg, ws.settings.models_dir)
        assert any(message in e for e in errors), (message, errors)
    dpo_on_sft_file = jc.preset("dpo", "cpu-tiny", dataset_path=sft.dataset_path, base_model=base_model)
    assert "not a dpo row: prompt must be a non-empty list" in preflight.validate(dpo_on_sft_file, Path())[0]
    grpo = jc.preset("grpo", "cpu-tiny", dataset_path=sft.dataset_path, per_device_train_batch_size=3,
                     num_generations=2, base_model=base_model)
    assert "must be divisible by num_generations=2" in preflight.validate(grpo, Path())[0]
    with pytest.raises(ValueError, match="the job cannot start:\n- max_steps must be from 1 to 1,000,000"):
        jobs.launch(ws, problems["max_steps must be from 1 to 1,000,000, not 0"], who=ME)
    assert ws.repo.count(Job) == 0


def test_preflight_warns_about_rows_it_will_leave_out(ws, tmp_path, base_model):
    sft = tiny("sft", ws, tmp_path, base_model)
    longest = preflight.check(sft, ws.settings.models_dir).longest
    shortest = min(runner.row_tokens(sft, r, _tokenizer(sft)) for r in runner.read_jsonl(sft.dataset_path))
    report = preflight.check(sft.__class__(**{**vars(sft), "max_length": shortest}), ws.settings.models_dir)
    assert report.ok and 0 < report.too_long < report.rows and "will be left out, not truncated" in report.warnings[0]
    assert longest > shortest


def _tokenizer(config):
    tok = runner.load_tokenizer(config, config.base_model)
    runner.add_special_tokens(tok)
    return tok


# --- rewards -----------------------------------------------------------------------------------


def test_rewards_grade_tool_calls_and_format():
    good = call_text("reset_password", username="akhan")
    completions = [[{"role": "assistant", "content": c}] for c in
                   (good, call_text("reset_password", username="x"), '{"name": "reset_password", "arguments": '
                    '{"username": "akhan"}}', "I can't help", call_text("unlock_account", username="akhan"))]
    n = len(completions)
    cols = {"expected_name": ["reset_password"] * n, "expected_arguments": ['{"username": "akhan"}'] * n,
            "tools": [json.dumps([{"name": "reset_password", "parameters": {"type": "object"}}])] * n}
    # The wrong tool earns nothing for its arguments: they are graded against the expected tool's only.
    assert runner.call_reward(completions, **cols, trainer_state=None) == [1.0, 0.5, 1.0, 0.0, 0.0]
    assert runner.format_reward(completions, **cols) == [1.0, 1.0, 0.5, 0.0, 1.0]


def test_call_reward_grades_each_argument_by_its_kind():
    want = {"username": "akhan", "reason": "locked out after the password change"}
    close = call_text("reset_password", username="akhan", reason="locked out after a password change")
    cols = {"expected_name": ["reset_password"] * 2, "expected_arguments": [json.dumps(want)] * 2,
            "tools": [json.dumps([{"name": "reset_password", "parameters": {"type": "object"}}])] * 2}
    free = json.dumps({"username": "extractive", "reason": "free_text"})
    strict = json.dumps({"username": "extractive", "reason": "categorical"})
    by_kind = runner.call_reward([close, close], **cols, arg_kinds=[free, strict])
    assert by_kind[0] == pytest.approx(0.5 + 0.5 * (1 + 5 / 6) / 2, abs=1e-3)  # free text: token F1 of the reason
    assert by_kind[1] == 0.75  # the same words as a category: wrong unless equal


# --- real training -----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_sft_job_runs_detached_and_its_adapter_loads(ws, tmp_path, base_model):
    cfg = tiny("sft", ws, tmp_path, base_model)
    job = jobs.launch(ws, cfg, who=ME)
    process = jobs.process(ws, job)
    assert process.kind == "train" and process.pid and process.args == ["train", "--run-job", job.id]
    assert Path(job.config_path).name == "job.yaml" and jc.load(job.config_path) == cfg
    job = jobs.wait(ws, job.id, timeout=600)
    process = jobs.process(ws, job)
    assert job.status == "succeeded", processes.tail(ws, process)
    assert job.step == 2 and job.max_steps == 2 and job.finished and job.error == ""
    assert (process.done, process.total) == (2, 2) and process.result["adapter_id"] == job.adapter_id
    assert [e.step for e in job.events if "loss" in e.values] == [1, 2]
    assert job.metrics["train_loss"] > 0 and job.metrics["rows"] == 4
    adapter = ws.repo.get(Adapter, job.adapter_id)
    assert adapter.job_id == job.id and adapter.method == "sft"
    assert Path(adapter.path).parent == ws.settings.adapters_dir
    saved = json.loads((Path(adapter.path) / "adapter_config.json").read_text())
    assert saved["trainable_token_indices"]  # the added <tool_call> tokens' rows travel with the adapter
    assert "<tool_call>" in (Path(adapter.path) / "tokenizer.json").read_text()
    task = ws.repo.find(Task, suite=SUITE)[0]
    answer = generate(base_model, adapter.path, task)
    assert isinstance(answer, str)
    # Exported merged into its base, the folder answers alone as base + adapter did, with the prompt format's files
    # (which `transformers serve` reads to render and return tool calls).
    assert main(["adapters", "export", job.id, "--out", str(tmp_path / "merged")]) == 0
    merged = tmp_path / "merged"
    assert not (merged / "adapter_config.json").exists() and (merged / "model.safetensors").exists()
    assert generate(str(merged), "", task) == answer
    assert json.loads((merged / "tokenizer_config.json").read_text())["response_template"]["fields"]["tool_calls"]
    assert "<tool_call>" in (merged / "chat_template.jinja").read_text()
    with pytest.raises(ValueError, match="is not an empty folder; name a new one"):
        adapters.export_merged(ws, job.id, merged)
    log = processes.tail(ws, process, 200)
    assert "train_runtime" in log
    assert "gemm_4bit" not in log and "pip install kernels" not in log  # no optional-kernel notice on CPU
    assert processes.fraction(process) == 1.0


def test_real_dpo_continues_an_sft_adapter_into_one_self_contained_adapter(ws, tmp_path, base_model):
    sft = tiny("sft", ws, tmp_path, base_model, max_steps=1)
    sft_adapter = ws.repo.get(Adapter, jobs.run_job(ws, jobs.new_job(ws, sft).id, sft).adapter_id)
    dpo = tiny("dpo", ws, tmp_path, base_model, init_adapter=sft_adapter.path)
    job = jobs.run_job(ws, jobs.new_job(ws, dpo).id, dpo)
    assert job.adapter_id and job.step == 2
    margins = [e.values["rewards/margins"] for e in job.events if "rewards/margins" in e.values]
    assert len(margins) == 2 and margins[0] == pytest.approx(0.0, abs=1e-4)  # the reference is the SFT adapter
    adapter = ws.repo.get(Adapter, job.adapter_id)
    saved = json.loads((Path(adapter.path) / "adapter_config.json").read_text())
    assert saved["trainable_token_indices"]  # the added tokens' rows came along from the SFT adapter
    assert generate(base_model, adapter.path, ws.repo.find(Task, suite=SUITE)[0])


def test_real_grpo_run_in_process_with_grader_rewards(ws, tmp_path, base_model):
    cfg = tiny("grpo", ws, tmp_path, base_model, max_completion_length=16)
    assert preflight.check(cfg, ws.settings.models_dir).ok
    job = jobs.run_job(ws, jobs.new_job(ws, cfg).id, cfg)
    assert job.adapter_id
    logged = {k for e in job.events for k in e.values}
    assert {"reward", "rewards/call_reward/mean", "rewards/format_reward/mean"} <= logged
    assert generate(base_model, ws.repo.get(Adapter, job.adapter_id).path, ws.repo.find(Task, suite=SUITE)[0])


def test_a_stop_and_save_request_ends_the_run_at_the_next_step_saved(ws, tmp_path, base_model, monkeypatch):
    """The job process's own code (`train --run-job`, in this process): asked before it began, it trains one
    step, saves, and its Process reads stopped."""

    cfg = tiny("sft", ws, tmp_path, base_model, max_steps=50)
    job = jobs.new_job(ws, cfg)
    process = ws.repo.put(Process(kind="train", args=["train", "--run-job", job.id], request=processes.STOP_AND_SAVE))
    ws.repo.update(Job, job.id, lambda j: j.model_copy(update={"process_id": process.id}))
    monkeypatch.setenv(processes.PROCESS_ID_ENV, process.id)
    monkeypatch.setattr(processes, "_own_ws", [ws])
    monkeypatch.setattr("agentlearn.cli.open_workspace", lambda: ws)
    assert main(["train", "--run-job", job.id]) == 0
    job = jobs.get(ws, job.id)
    assert job.status == "stopped" and job.step == 1 and job.adapter_id
    assert ws.repo.get(Adapter, job.adapter_id).job_id == job.id
    assert jobs.process(ws, job).done == 1


def _wait_for_step(ws, job_id: str, timeout: float = 300) -> Job:
    """The job once its process reported a step done (or ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get(ws, job_id)
        if jobs.process(ws, job).done >= 1 or job.status not in jobs.ACTIVE:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} made no step in {timeout} s")


def test_stop_and_save_writes_a_usable_adapter(ws, tmp_path, base_model):
    cfg = tiny("sft", ws, tmp_path, base_model, max_steps=500)
    job = jobs.launch(ws, cfg, who=ME)
    assert _wait_for_step(ws, job.id).status == "running"
    assert jobs.stop(ws, job.id, save=True, who=ME).status == "stopping"
    job = jobs.wait(ws, job.id, timeout=300)
    assert job.status == "stopped", processes.tail(ws, jobs.process(ws, job))
    assert 1 <= job.step < 500 and job.adapter_id
    adapter = ws.repo.get(Adapter, job.adapter_id)
    assert generate(base_model, adapter.path, ws.repo.find(Task, suite=SUITE)[0])
    with pytest.raises(ValueError, match="only a queued or running job can be stopped"):
        jobs.stop(ws, job.id, who=ME)


def test_sigkill_marks_the_job_failed_and_leaves_the_store_intact(ws, tmp_path, base_model):
    cfg = tiny("sft", ws, tmp_path, base_model, max_steps=500)
    before = store_is_readable(ws)
    job = jobs.launch(ws, cfg, who=ME)
    _wait_for_step(ws, job.id)
    os.kill(jobs.process(ws, job).pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while jobs.get(ws, job.id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    job = jobs.get(ws, job.id)
    assert job.status == "failed" and "killed or crashed" in job.error and job.finished
    after = store_is_readable(ws)
    assert after == {**before, "Job": before["Job"] + 1, "Process": before["Process"] + 1}
    assert ws.repo.get(DatasetExport, cfg.export_id).rows == 4
    assert [j.status for j in jobs.list_jobs(ws)] == ["failed"]


def test_cli_export_and_train_json(ws, tmp_path, base_model, capsys):

    mini_suite(ws, tmp_path)
    out = tmp_path / "sft.jsonl"
    assert main(["export", "sft", "--suite", SUITE, "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 4 and out.exists()
    (ws.settings.models_dir).mkdir(parents=True, exist_ok=True)
    (ws.settings.models_dir / Path(base_model).name).symlink_to(base_model)  # the converted model, not again
    assert main(["train", "sft", "--suite", SUITE, "--preset", "cpu-tiny", "--max-steps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "succeeded" and result["metrics"]["train_loss"] > 0
    assert Path(result["adapter"], "adapter_config.json").exists()
    assert ws.repo.get(Job, result["job_id"]).adapter_id == result["adapter_id"]
    assert main(["train", "dpo", "--suite", SUITE, "--preset", "cpu-tiny"]) == 2  # no pairs: a clear error
    assert "no preference pairs" in capsys.readouterr().err


# --- the Training page -------------------------------------------------------------------------


@pytest.fixture
def page_ws(ws, monkeypatch, base_model, _navigation_like_a_server):
    """The test workspace opened by the app, with the converted model linked in (not converted again)."""
    from agentlearn.embeddings import hash_encode
    from pages import _ui

    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    ws.settings.models_dir.mkdir(parents=True, exist_ok=True)
    (ws.settings.models_dir / Path(base_model).name).symlink_to(base_model)
    _ui.clear()
    yield ws
    _ui.clear()


def open_training():
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    at = AppTest.from_file(str(root / "app.py"), default_timeout=120)
    at.query_params["annotator"] = "alice"
    at.run()
    at.switch_page("pages/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _button(at, key: str):
    return next(b for b in at.button if b.key == key)


def test_training_page_exports_checks_launches_and_shows_history(page_ws, tmp_path):
    ws = page_ws
    mini_suite(ws, tmp_path)
    at = open_training()
    assert at.title[0].value == "Training"
    at.selectbox(key="tr_suite").set_value(SUITE)
    at.selectbox(key="tr_preset").set_value("cpu-tiny").run()
    _button(at, "tr_do_export").click().run()
    assert not at.exception and ws.repo.count(DatasetExport) == 1
    _button(at, "tr_check").click().run()
    assert "Ready: 4 rows" in at.success[0].value
    _button(at, "tr_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (job,) = ws.repo.all(Job)
    assert job.config["preset"] == "cpu-tiny" and job.config["suite"] == SUITE
    job = jobs.wait(ws, job.id, timeout=600)
    assert job.status == "succeeded", processes.tail(ws, jobs.process(ws, job))
    at.run()
    assert not at.exception
    assert job.id in at.dataframe[0].value["job"].tolist()
    assert at.dataframe[0].value["status"].tolist() == ["succeeded"]
    assert at.dataframe[0].value["train loss"].tolist() == [f"{job.metrics['train_loss']:.3f}"]  # text, never "None"
    assert len(at.get("plotly_chart")) >= 1  # the finished job's loss curve


def test_training_page_sizes_the_job_from_the_data(page_ws, tmp_path):
    """Rows longer than the preset's max_length (1,024) are not refused: the page sizes the job as
    `train --suite` does, and says what it will use."""
    ws = page_ws
    long = "Please help, here is the whole story. " + "My account is locked again. " * 160
    mini_suite(ws, tmp_path, lines=[(sid, long + text, name, args) for sid, text, name, args in LINES])
    at = open_training()
    at.selectbox(key="tr_suite").set_value(SUITE)
    at.selectbox(key="tr_preset").set_value("cpu-small").run()
    _button(at, "tr_do_export").click().run()
    _button(at, "tr_check").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Ready: 4 rows" in at.success[0].value
    longest = int(at.success[0].value.split("the longest needs ")[1].split()[0])
    assert longest > jc.preset("sft", "cpu-small").max_length  # the preset alone would refuse every row
    (said,) = [t.value for t in at.text if "from the data" in t.value]
    assert f"the longest needs {longest} tokens" in said and f"{jc.SFT_MIN_STEPS} steps (from the data)" in said  # the floor: 4 rows are few
    at.number_input(key="tr_steps_sft_cpu-small").set_value(3)
    _button(at, "tr_check").click().run()
    assert any("3 steps (as given), max_length" in t.value and "(from the data)" in t.value for t in at.text)


def test_training_page_stop_and_save_writes_the_request(page_ws, tmp_path):
    """The job is watched with the panel every process has; Stop and save leaves the request on its Process."""
    from datetime import timedelta

    from storage.records import ProgressEvent, now

    ws = page_ws
    mini_suite(ws, tmp_path)
    # No pid: a fresh heartbeat alone keeps the record running. 3 steps in 30 s.
    process = ws.repo.put(Process(kind="train", args=["train", "--run-job", "j"], heartbeat=now(), done=3, total=10,
                                  events=[ProgressEvent(done=0, total=10, at=now() - timedelta(seconds=30)),
                                          ProgressEvent(done=3, total=10)]))
    job = ws.repo.put(Job(method="sft", config={"suite": SUITE}, max_steps=10, process_id=process.id))
    at = open_training()
    assert "3 of 10 steps" in at.get("progress")[0].proto.text and "ETA" in at.get("progress")[0].proto.text
    _button(at, f"tr_save_{process.id}").click().run()
    assert not at.exception
    assert ws.repo.get(Process, process.id).request == processes.STOP_AND_SAVE
    assert jobs.get(ws, job.id).status == "stopping"
    ws.repo.update(Process, process.id, lambda p: p.model_copy(update={"status": "failed", "error": "boom: out of memory"}))
    at.run()
    assert any("failed" in e.value for e in at.error)
    assert any("boom: out of memory" in c.value for c in at.code)  # the error itself is shown as plain text
