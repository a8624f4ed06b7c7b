"""The improve pipeline: stages in order with their outputs kept, a stop and a resume from the stopped stage,
the gate's decision at the end, `improve --json`; and one REAL run on a tiny suite (slow)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentlearn import adapters
from agentlearn.toolcall import format_tool_call
from agentlearn.training import improve
from storage.records import Adapter, EvalRun, Improvement, Promotion, Suite, Task, ToolCall
from tests.seed import ME
from tests.test_datasets import SUITE, mini_suite, retire_references


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

    def __init__(self, ws, outcomes: dict[str, list[int]], stop_in: str = "", below: dict | None = None) -> None:
        self.ws, self.outcomes, self.stop_in, self.calls, self.below = ws, outcomes, stop_in, [], below or {}

    def train(self, method: str):
        def stage(ctx: improve.Context) -> dict:
            self.calls.append(method)
            if method not in ctx.methods:
                raise improve.Skip("not asked for (--methods)")
            if method == self.stop_in:
                self.stop_in = ""  # stops once, like a person pressing Stop
                raise improve.Stopped("stopped by request")
            return {"adapter_id": fake_adapter(self.ws, method).id, "job_id": f"job-{method}",
                    "below_base": self.below.get(method, {})}
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
    record = improve.run(ws, SUITE, methods=("sft", "dpo", "grpo"), stages=fakes.stages(), who=ME)
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
    record = improve.run(ws, SUITE, stages=fakes.stages(), who=ME)
    assert record.status == "stopped" and "sft" in record.error
    assert {s.name: s.status for s in record.stages}["sft"] == "stopped"
    assert {s.name: s.status for s in record.stages}["export"] == "done" and fakes.calls == ["collect", "sft"]
    with pytest.raises(ValueError, match="no improvement 'nope'"):
        improve.run(ws, SUITE, resume="nope", stages=fakes.stages(), who=ME)
    again = improve.run(ws, SUITE, resume="latest", stages=fakes.stages(), who=ME)
    assert again.id == record.id and again.status == "succeeded"
    assert fakes.calls == ["collect", "sft", "sft", "dpo", "grpo", "evaluate"]  # collect and export not again
    assert [s.status for s in again.stages] == ["done", "done", "done", "done", "skipped", "skipped", "done", "done"]
    summary = improve.summary(again)
    assert summary["promoted"] == "" and "not ahead" in " ".join(summary["reasons"])  # equal: refused
    assert ws.repo.get(Suite, SUITE).adapter == ""
    with pytest.raises(ValueError, match="already finished"):
        improve.run(ws, SUITE, resume=again.id, stages=fakes.stages(), who=ME)


def test_a_failing_stage_is_kept_with_its_error(ws, tmp_path):
    mini_suite(ws, tmp_path)

    def broken(ctx):
        raise RuntimeError("sft job abc failed: out of memory")

    record = improve.run(ws, SUITE, stages={**FakeStages(ws, {}).stages(), "sft": broken}, who=ME)
    assert record.status == "failed" and "out of memory" in record.error
    assert {s.name: s.error for s in record.stages}["sft"] == "RuntimeError: sft job abc failed: out of memory"
    with pytest.raises(ValueError, match="must include sft"):
        improve.run(ws, SUITE, methods=("dpo",), who=ME)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['ppo'\]"):
        improve.run(ws, SUITE, methods=("sft", "ppo"), who=ME)


def test_an_adapter_below_its_base_on_validation_is_not_promoted(ws, tmp_path):
    mini_suite(ws, tmp_path)
    below = {"base_name": 0.75, "base_call": 0.5, "adapter_name": 0.5, "adapter_call": 0.25, "rows": 4.0}
    fakes = FakeStages(ws, {"current": [0] * 10, "sft": [1] * 10}, below={"sft": below})
    record = improve.run(ws, SUITE, stages=fakes.stages(), who=ME)
    summary = improve.summary(record)
    assert summary["promoted"] == "" and ws.repo.get(Suite, SUITE).adapter == ""
    assert summary["p_value"] < 0.05  # the gate alone would have promoted it
    assert any("below its base model on the training job's validation slice (name accuracy base 75% vs adapter "
               "50%" in r for r in summary["reasons"]) and not any(r.startswith("promoted:") for r in summary["reasons"])
    assert "below its base on validation" in dict((r["stage"], r["detail"]) for r in improve.stage_rows(record))["sft"]


# Requests that name their tool's action, so a scripted model can answer right or wrong on purpose.
SERVED_LINES = [(f"s{i}", f"Please reset the password of user u{i}." if i % 2 else f"The account of user u{i} is locked.",
                 "reset_password" if i % 2 else "unlock_account", {"username": f"u{i}"}) for i in range(16)]


class ByConfiguration(BaseChatModel):
    """Right where `right(adapter, with_exemplars)` says, else the other tool: exemplars come as extra turns."""

    adapter_dir: str = ""
    right: Any = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        request = str(messages[-1].content)
        tool = "reset_password" if "password" in request else "unlock_account"
        if not self.right(bool(self.adapter_dir), len(messages) > 2):
            tool = "unlock_account" if tool == "reset_password" else "reset_password"
        user = re.search(r"user (\w+)", request).group(1)
        call = format_tool_call(ToolCall(name=tool, arguments={"username": user}))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=call))])


def scripted_ws(ws, right):
    from agentlearn.embeddings import hash_encode
    from agentlearn.workspace import open_workspace

    def factory(settings, adapter_dir="", temperature=0.0, seed=None):
        return ByConfiguration(adapter_dir=adapter_dir, right=right)

    return open_workspace(ws.settings, encoder=hash_encode, chat_factory=factory)


def test_improve_compares_the_candidate_with_what_the_suite_serves(ws, tmp_path):
    """Real evaluate and decide stages (scripted model): the suite serves the base model with exemplars, which
    gets every heldout task right; the adapter alone also does, but with exemplars gets every one wrong."""
    mini_suite(ws, tmp_path, heldout=0.75, lines=SERVED_LINES)
    real = scripted_ws(ws, lambda adapter, exemplars: adapter != exemplars)
    assert improve.serving(real, SUITE) == ("", "exemplars")
    assert improve.serving_text(real, SUITE) == "the base model with exemplars from its bank"
    fakes = FakeStages(real, {})
    record = improve.run(real, SUITE, stages={**fakes.stages(), "evaluate": improve.evaluate}, who=ME)
    assert record.status == "succeeded", record.error
    summary = improve.summary(record)
    evaluated = next(s for s in record.stages if s.name == "evaluate").output
    served = real.repo.get(EvalRun, evaluated["current_eval"])
    assert served.method == "exemplars" and served.adapter == "" and served.name_accuracy == 1.0
    n = served.n
    assert n >= 6 and summary["promoted"] == "" and (summary["before"], summary["after"]) == (1.0, 0.0)
    rows = {r["configuration"]: r for r in summary["comparison"]}
    assert list(rows) == ["serving", "candidate", "candidate + memory"]
    assert rows["serving"]["what"] == "base model + exemplars" and "p_value" not in rows["serving"]
    assert rows["candidate"]["accuracy"] == 1.0 and rows["candidate"]["metric"] == "name"  # no references: names
    assert rows["candidate"]["p_value"] == 1.0
    assert rows["candidate + memory"]["difference"] == -1.0 and rows["candidate + memory"]["n"] == n
    assert rows["candidate + memory"]["p_value"] == pytest.approx(2 / 2**n)
    assert rows["serving"]["interval"][0] > 0.5 and rows["candidate + memory"]["interval"][1] < 0.5  # Wilson
    assert any(line.strip().startswith("candidate + memory (SFT + exemplars): name 0.0% [") for line in summary["lines"])


def test_without_a_bank_the_suite_serves_zero_shot_and_the_gate_compares_with_that(ws, tmp_path):
    mini_suite(ws, tmp_path, heldout=0.75, lines=SERVED_LINES)
    retire_references(ws)
    real = scripted_ws(ws, lambda adapter, exemplars: adapter)
    assert improve.serving(real, SUITE) == ("", "none")
    stages = {**FakeStages(real, {}).stages(), "export": lambda ctx: {}, "evaluate": improve.evaluate}  # no rows
    record = improve.run(real, SUITE, stages=stages, who=ME)
    assert record.status == "succeeded", record.error
    summary = improve.summary(record)
    assert [r["configuration"] for r in summary["comparison"]] == ["serving", "candidate"]  # no memory to add
    assert summary["promoted"] and (summary["before"], summary["after"]) == (0.0, 1.0) and summary["p_value"] < 0.05


def test_the_heldout_split_is_judged_before_training(ws, tmp_path):
    mini_suite(ws, tmp_path, heldout=0.75, lines=SERVED_LINES)
    power = improve.heldout_power(ws, SUITE)
    assert power["too_small"] and power["n"] == len([t for t in ws.repo.find(Task, suite=SUITE) if t.split == "heldout"])
    assert "too small for the gate to pass a plausible gain" in power["message"]
    assert f"80% needs about {power['needed']} heldout tasks" in power["message"] and power["needed"] > 100
    assert "wins 15% of the tasks and loses 5%" in power["message"]
    assert improve.heldout_power(ws, SUITE, limit=2)["n"] == 2


def test_heldout_tasks_calling_tools_no_train_task_calls_are_named_before_training(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path, heldout=0.5)
    heldout = sorted((t for t in tasks.values() if t.split == "heldout"), key=lambda t: t.sample_id)
    assert improve.unseen_tools(ws, SUITE)["tools"] == ["unlock_account"]  # the mini suite's heldout-only tool
    trained = next(t.expected for t in tasks.values() if t.split == "train")
    for task in heldout:  # every heldout task calls a tool some train task calls: nothing to say
        ws.repo.update(Task, task.id, lambda t: t.model_copy(update={"expected": trained}))
    assert improve.unseen_tools(ws, SUITE) == {}
    ws.repo.update(Task, heldout[0].id, lambda t: t.model_copy(update={
        "expected": ToolCall(name="escalate_ticket", arguments={}),
        "tools": t.tools + [{"name": "escalate_ticket", "parameters": {"type": "object", "properties": {}}}]}))
    unseen = improve.unseen_tools(ws, SUITE)
    assert (unseen["tasks"], unseen["of"], unseen["tools"]) == (1, len(heldout), ["escalate_ticket"])
    assert unseen["message"] == (f"1 of {len(heldout)} heldout tasks call tools that no train task calls "
                                 "(escalate_ticket): training cannot teach those names, and an adapter may call the "
                                 "train split's tools instead.")
    offered = ws.repo.get(Task, heldout[0].id).tools
    ws.repo.update(Task, heldout[0].id, lambda t: t.model_copy(update={"tools": offered[-1:]}))
    assert improve.unseen_tools(ws, SUITE) == {}  # offered alone, its name is given: nothing to teach
    ws.repo.update(Task, heldout[0].id, lambda t: t.model_copy(update={"tools": offered}))
    fakes = FakeStages(ws, {"current": [0] * 10, "sft": [1] * 9 + [0]})
    # The check stage's output carries it (the real stage: test_real_improve_...); the summary says it.
    check = lambda ctx: {"configs": {}, "unseen_tools": improve.unseen_tools(ctx.ws, ctx.suite)}  # noqa: E731
    record = improve.run(ws, SUITE, stages={**fakes.stages(), "check": check}, who=ME)
    assert f"  before training: {unseen['message']}" in improve.summary(record)["lines"]


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
    record = improve.run(real, SUITE, preset="cpu-tiny", max_length=384, who=ME)
    assert record.status == "succeeded", (record.error, [(s.name, s.status, s.error) for s in record.stages])
    stages = {s.name: s for s in record.stages}
    assert stages["collect"].status == "skipped" and stages["dpo"].status == "skipped"
    assert stages["sft"].output["steps"] == 2 and Path(adapters.find(real, stages["sft"].output["job_id"]).path,
                                                       "adapter_config.json").exists()
    evaluated = stages["evaluate"].output
    heldout = sum(t.split == "heldout" for t in tasks.values())
    assert ws.repo.get(EvalRun, evaluated["current_eval"]).n == heldout and evaluated["current"] == ""
    assert evaluated["memory"] == "exemplars" and ws.repo.get(EvalRun, evaluated["current_eval"]).method == "exemplars"
    assert stages["check"].output["power"]["too_small"]
    assert stages["check"].output["unseen_tools"] == improve.unseen_tools(real, SUITE)
    assert ws.repo.get(EvalRun, evaluated["candidates"]["sft"]["eval_id"]).adapter == stages["sft"].output["adapter_id"]
    summary = improve.summary(record)
    # Two heldout tasks cannot reach p < 0.05 (the smallest exact p with 2 discordant pairs is 0.5): refused.
    assert summary["promoted"] == "" and summary["p_value"] >= 0.5
    assert [r["configuration"] for r in summary["comparison"]] == ["serving", "candidate", "candidate + memory"]
    assert ws.repo.get(Suite, SUITE).adapter == "" and ws.repo.all(Promotion)[0].decision == "refused"


@pytest.mark.slow
def test_real_stop_of_an_improve_process_stops_its_training_job(ws, tmp_path, linked_model):
    """`improve` started as a dashboard child (processes.start), stopped during SFT (SIGTERM to its group):
    the stage reads stopped and the training job's process is stopped too (it runs in its own session)."""
    import time

    from agentlearn import processes
    from agentlearn.training import jobs
    from storage.records import Job

    mini_suite(ws, tmp_path, heldout=0.5)
    started = processes.start(ws, "improve", ["improve", "--suite", SUITE, "--preset", "cpu-small"], who=ME)
    deadline = time.monotonic() + 600
    def training() -> bool:  # a job whose process reported a step done
        found = [jobs.process(ws, j) for j in ws.repo.all(Job) if j.process_id]
        return any(p.status == "running" and p.done >= 1 for p in found)

    while time.monotonic() < deadline and not training():
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
    process = jobs.process(ws, job)
    assert job.status == "stopped" and process.done < process.total  # the job was stopped, not ran to its end
    deadline = time.monotonic() + 30
    while processes.pid_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes.pid_alive(process.pid)  # the job process itself ended, not only its record
    stages = {s.name: s for s in record.stages}
    assert stages["check"].output["configs"]["sft"]["max_steps"] == 40  # sized: 3 epochs of 2 rows, floor 40
