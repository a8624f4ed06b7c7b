"""The improve pipeline: stages in order with their outputs kept, a stop and a resume from the stopped stage,
the gate's decision at the end, `improve --json`; and one REAL run on a tiny suite (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import adapters
from agentlearn.training import improve
from storage.records import Adapter, EvalRun, Improvement, Promotion, Suite
from tests.test_datasets import SUITE, mini_suite


def fake_adapter(ws, name: str) -> Adapter:
    folder = ws.settings.adapters_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    return ws.repo.put(Adapter(name=name, path=str(folder), base_model="m", method=name))


def stored_run(ws, names: list[int], adapter_id: str) -> EvalRun:
    results = {f"t{i}": {"name": float(v), "call": float(v), "exact": float(v), "args": 1.0 if v else -1.0}
               for i, v in enumerate(names)}
    return ws.repo.put(EvalRun(suite=SUITE, split="heldout", method="none", adapter=adapter_id, n=len(names),
                               name_accuracy=sum(names) / len(names), call_accuracy=sum(names) / len(names),
                               results=results))


class FakeStages:
    """Training and evaluation stand-ins: a fake adapter per method, heldout runs with set outcomes."""

    def __init__(self, ws, outcomes: dict[str, list[int]], stop_in: str = "") -> None:
        self.ws, self.outcomes, self.stop_in, self.calls = ws, outcomes, stop_in, []

    def train(self, method: str):
        def stage(ctx: improve.Context) -> dict:
            self.calls.append(method)
            if method not in ctx.methods:
                raise improve.Skip("not asked for (--methods)")
            if method == self.stop_in:
                self.stop_in = ""  # stops once, like a person pressing Stop
                raise improve.Stopped("stopped by request")
            return {"adapter_id": fake_adapter(self.ws, method).id, "job_id": f"job-{method}"}
        return stage

    def evaluate(self, ctx: improve.Context) -> dict:
        self.calls.append("evaluate")
        current = adapters.suite_adapter(ctx.ws, ctx.suite)
        out = {"current": current, "current_eval": stored_run(ctx.ws, self.outcomes["current"], current).id,
               "candidates": {}}
        for method in improve.TRAINED:
            made = ctx.output(method).get("adapter_id")
            if made:
                run = stored_run(ctx.ws, self.outcomes[method], made)
                out["candidates"][method] = {"adapter_id": made, "eval_id": run.id, "name_accuracy": run.name_accuracy}
        return out

    def stages(self) -> dict:
        return {"collect": lambda ctx: self.calls.append("collect") or {}, "check": lambda ctx: {"configs": {}},
                **{m: self.train(m) for m in improve.TRAINED}, "evaluate": self.evaluate}


def test_stages_run_in_order_keep_their_output_and_the_gate_promotes(ws, tmp_path):
    mini_suite(ws, tmp_path)
    fakes = FakeStages(ws, {"current": [0] * 10, "sft": [1] * 7 + [0] * 3, "dpo": [1] * 10, "grpo": [1] * 7 + [0] * 3})
    record = improve.run(ws, SUITE, methods=("sft", "dpo", "grpo"), stages=fakes.stages())
    assert record.status == "succeeded", record.error
    assert [s.status for s in record.stages] == ["done"] * 8
    export = next(s for s in record.stages if s.name == "export").output
    assert export["sft"]["rows"] == 4 and "error" in export["dpo"]  # a real export; no DPO pairs here
    decided = improve.summary(record)
    dpo = ws.repo.get(Adapter, next(s for s in record.stages if s.name == "dpo").output["adapter_id"])
    # DPO (10/10) does not beat SFT (7/10) with p < 0.05 (3 discordant pairs: p = 0.25), so SFT is kept.
    assert decided["versus_sft"]["dpo"]["promote"] is False and decided["chosen"] == "sft"
    assert decided["promoted"] == ws.repo.get(Suite, SUITE).adapter != dpo.id
    assert decided["before"] == 0.0 and decided["after"] == 0.7 and decided["p_value"] == pytest.approx(2 / 2**7)
    (promotion,) = ws.repo.all(Promotion)
    assert promotion.decision == "promoted" and promotion.improvement_id == record.id


def test_a_stopped_pipeline_resumes_from_the_stopped_stage(ws, tmp_path):
    mini_suite(ws, tmp_path)
    fakes = FakeStages(ws, {"current": [1] * 5, "sft": [1] * 5}, stop_in="sft")
    record = improve.run(ws, SUITE, stages=fakes.stages())
    assert record.status == "stopped" and "sft" in record.error
    assert {s.name: s.status for s in record.stages}["sft"] == "stopped"
    assert {s.name: s.status for s in record.stages}["export"] == "done" and fakes.calls == ["collect", "sft"]
    with pytest.raises(ValueError, match="no improvement 'nope'"):
        improve.run(ws, SUITE, resume="nope", stages=fakes.stages())
    again = improve.run(ws, SUITE, resume="latest", stages=fakes.stages())
    assert again.id == record.id and again.status == "succeeded"
    assert fakes.calls == ["collect", "sft", "sft", "dpo", "grpo", "evaluate"]  # collect and export not again
    assert [s.status for s in again.stages] == ["done", "done", "done", "done", "skipped", "skipped", "done", "done"]
    summary = improve.summary(again)
    assert summary["promoted"] == "" and "not ahead" in " ".join(summary["reasons"])  # equal: refused
    assert ws.repo.get(Suite, SUITE).adapter == ""
    with pytest.raises(ValueError, match="already finished"):
        improve.run(ws, SUITE, resume=again.id, stages=fakes.stages())


def test_a_failing_stage_is_kept_with_its_error(ws, tmp_path):
    mini_suite(ws, tmp_path)

    def broken(ctx):
        raise RuntimeError("sft job abc failed: out of memory")

    record = improve.run(ws, SUITE, stages={**FakeStages(ws, {}).stages(), "sft": broken})
    assert record.status == "failed" and "out of memory" in record.error
    assert {s.name: s.error for s in record.stages}["sft"] == "RuntimeError: sft job abc failed: out of memory"
    with pytest.raises(ValueError, match="must include sft"):
        improve.run(ws, SUITE, methods=("dpo",))
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['ppo'\]"):
        improve.run(ws, SUITE, methods=("sft", "ppo"))


def test_cli_improve_json(ws, tmp_path, capsys, monkeypatch):
    from agentlearn.cli import main

    mini_suite(ws, tmp_path)
    fakes = FakeStages(ws, {"current": [0] * 10, "sft": [1] * 9 + [0]})
    monkeypatch.setattr(improve, "STAGE_FUNCTIONS", {**improve.STAGE_FUNCTIONS, **fakes.stages()})
    assert main(["improve", "--suite", SUITE, "--json"]) == 0
    printed = capsys.readouterr()
    out = json.loads(printed.out)  # one object; progress went to stderr
    assert "[improve] decide: done" in printed.err
    assert out["promoted"] and out["promoted"] == ws.repo.get(Suite, SUITE).adapter
    assert (out["before"], out["after"]) == (0.0, 0.9) and out["p_value"] < 0.05
    assert [s["status"] for s in out["stages"]][-2:] == ["done", "done"]
    assert main(["improve", "--suite", "nope", "--json"]) == 2
    assert "no suite named 'nope'" in capsys.readouterr().err
    assert ws.repo.count(Improvement) == 1


# --- the real thing ------------------------------------------------------------------------------


@pytest.fixture
def linked_model(ws, tmp_path_factory):
    """The converted SmolLM2 linked into the workspace (converted once per session)."""
    from agentlearn.models import chat_model_dir

    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    model = Path(chat_model_dir(folder))
    ws.settings.models_dir.mkdir(parents=True, exist_ok=True)
    (ws.settings.models_dir / model.name).symlink_to(model)
    return model


@pytest.mark.slow
def test_real_improve_trains_evaluates_and_gates_on_a_tiny_suite(ws, tmp_path, linked_model):
    """SmolLM2, a real 2-step SFT job in its own process, real heldout evaluation of both models, the gate."""
    from agentlearn.workspace import open_workspace

    tasks = mini_suite(ws, tmp_path, heldout=0.5)
    real = open_workspace(ws.settings)  # the embedded model, not the tests' fake chat
    record = improve.run(real, SUITE, preset="cpu-tiny", max_length=384)
    assert record.status == "succeeded", (record.error, [(s.name, s.status, s.error) for s in record.stages])
    stages = {s.name: s for s in record.stages}
    assert stages["collect"].status == "skipped" and stages["dpo"].status == "skipped"
    assert stages["sft"].output["steps"] == 2 and Path(adapters.find(real, stages["sft"].output["job_id"]).path,
                                                       "adapter_config.json").exists()
    evaluated = stages["evaluate"].output
    heldout = sum(t.split == "heldout" for t in tasks.values())
    assert ws.repo.get(EvalRun, evaluated["current_eval"]).n == heldout and evaluated["current"] == ""
    assert ws.repo.get(EvalRun, evaluated["candidates"]["sft"]["eval_id"]).adapter == stages["sft"].output["adapter_id"]
    summary = improve.summary(record)
    # Two heldout tasks cannot reach p < 0.05 (the smallest exact p with 2 discordant pairs is 0.5): refused.
    assert summary["promoted"] == "" and summary["p_value"] >= 0.5
    assert ws.repo.get(Suite, SUITE).adapter == "" and ws.repo.all(Promotion)[0].decision == "refused"


@pytest.mark.slow
def test_real_stop_of_an_improve_process_stops_its_training_job(ws, tmp_path, linked_model):
    """`improve` started as a dashboard child (processes.start), stopped during SFT (SIGTERM to its group):
    the stage reads stopped and the training job obeys its stop request."""
    import time

    from agentlearn import processes
    from agentlearn.training import jobs
    from storage.records import Job

    mini_suite(ws, tmp_path, heldout=0.5)
    started = processes.start(ws, "improve", ["improve", "--suite", SUITE, "--preset", "cpu-small"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not any(j.status == "running" and j.step >= 1 for j in ws.repo.all(Job)):
        assert processes.get(ws, started.id).status == "running", processes.tail(ws, processes.get(ws, started.id))
        time.sleep(1)
    (job,) = ws.repo.all(Job)
    processes.stop(ws, started.id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and improve.latest(ws, SUITE).status == "running":
        time.sleep(0.5)
    record = improve.latest(ws, SUITE)
    assert record.status == "stopped", processes.tail(ws, processes.get(ws, started.id), 60)
    assert {s.name: s.status for s in record.stages}["sft"] == "stopped"
    job = jobs.wait(ws, job.id, timeout=300)
    assert job.status == "stopped" and job.step < job.max_steps  # the job obeyed the stop, not ran to its end
    stages = {s.name: s for s in record.stages}
    assert stages["check"].output["configs"]["sft"]["max_steps"] == 4  # sized: 3 epochs of 2 rows, floor 4
