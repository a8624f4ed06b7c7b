"""The promotion gate: refuses an adapter that is not better, promotes one that is (and the agent then runs
with it by default), refuses one that loses an argument kind; use, rollback and their CLI."""

from __future__ import annotations

import json

import pytest

from agentlearn import adapters
from agentlearn.agent import run_tasks
from agentlearn.evaluate import evaluate
from agentlearn.methods import RunOptions
from agentlearn.training import gate
from storage.records import Adapter, EvalRun, Job, Promotion, Suite, Task
from tests.seed import ME, as_
from tests.test_datasets import SUITE, mini_suite


def adapter(ws, name: str) -> Adapter:
    folder = ws.settings.adapters_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    return ws.repo.put(Adapter(name=name, path=str(folder), base_model="m", method="sft"))


def eval_run(names: list[int], adapter_id: str = "", per_argument: dict | None = None) -> EvalRun:
    """A heldout run with known per-task name outcomes (1 right, 0 wrong) on tasks t0, t1, ..."""
    results = {f"t{i}": {"name": float(v), "call": float(v), "exact": float(v), "args": 1.0 if v else -1.0}
               for i, v in enumerate(names)}
    return EvalRun(suite=SUITE, split="heldout", method="none", adapter=adapter_id, n=len(names),
                   name_accuracy=sum(names) / len(names), call_accuracy=sum(names) / len(names), results=results,
                   per_argument=per_argument or {})


def test_the_gate_refuses_an_adapter_that_is_not_better(ws, tmp_path):
    mini_suite(ws, tmp_path)
    new = adapter(ws, "new")
    current = ws.repo.put(eval_run([1, 1, 0, 0, 1, 0, 1, 0, 0, 0]))
    candidate = ws.repo.put(eval_run([1, 1, 1, 0, 1, 0, 1, 0, 0, 0], new.id))  # one more right: p = 1.0
    said = gate.judge(ws, candidate, current)
    assert not said.promote and said.p_value == 1.0 and (said.before, said.after) == (0.4, 0.5)
    assert any("may be chance" in r for r in said.reasons)
    stored = gate.apply(ws, SUITE, new.id, said, candidate, current)
    assert stored.decision == "refused" and ws.repo.get(Suite, SUITE).adapter == ""
    assert gate.history(ws, SUITE)[0].eval_after == candidate.id
    worse = eval_run([0] * 10, new.id)
    assert not gate.decide(worse, current).promote  # behind: refused whatever the p-value


def test_the_gate_refuses_a_model_that_loses_an_argument_kind(ws, tmp_path):
    mini_suite(ws, tmp_path)
    current = eval_run([0] * 8 + [1, 1], per_argument={"reset_password.username": [2, 2]})
    candidate = eval_run([1] * 10, per_argument={"reset_password.username": [4, 10]})  # names up, ids garbled
    said = gate.judge(ws, candidate, current)
    assert said.p_value < 0.05 and not said.promote
    assert said.per_kind["extractive"]["before"] == 1.0 and said.per_kind["extractive"]["after"] == 0.4
    assert any("extractive arguments fell from 100.0% to 40.0%" in r for r in said.reasons)
    within = eval_run([1] * 10, per_argument={"reset_password.username": [19, 20]})  # 95%: within the margin
    assert gate.judge(ws, within, current).promote
    assert not gate.decide(within, current, margin=0.0).promote


def test_a_promoted_adapter_is_what_the_agent_runs_by_default(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    new = adapter(ws, "better")
    current = eval_run([0] * 10)
    candidate = eval_run([1] * 8 + [0, 0], new.id)
    said = gate.judge(ws, candidate, current)
    assert said.promote and said.p_value == pytest.approx(2 / 2**8) and said.after == 0.8
    assert gate.apply(ws, SUITE, new.id, said, candidate, current).decision == "promoted"
    assert ws.repo.get(Suite, SUITE).adapter == new.id
    ws.chat_factory.seen.clear()
    made: list[str] = []
    factory = ws.chat_factory

    def recording(settings, adapter_dir="", temperature=0.0, seed=None):
        made.append(adapter_dir)
        return factory(settings, adapter_dir=adapter_dir, temperature=temperature, seed=seed)

    ws.chat_factory = recording
    (trials,) = run_tasks(ws, [tasks["a1"]], RunOptions())  # no adapter named: the suite's model
    assert trials[0].adapter == new.id and made[-1] == new.path
    (trials,) = run_tasks(ws, [tasks["a1"]], RunOptions(adapter_id="none"))  # the base model, on request
    assert trials[0].adapter == "" and made[-1] == ""
    run = evaluate(ws, SUITE, split="train")  # evaluations record the model they used
    assert run.adapter == new.id and made[-1] == new.path
    assert evaluate(ws, SUITE, RunOptions(adapter_id=""), split="train").adapter == ""


def test_use_by_job_id_and_rollback_step_back_through_the_models(ws, tmp_path):
    mini_suite(ws, tmp_path)
    first, second = adapter(ws, "first"), adapter(ws, "second")
    job = ws.repo.put(Job(method="sft", config={}, status="succeeded", adapter_id=second.id))
    gate.use(ws, SUITE, first.id, who=as_("alice"))
    change = gate.use(ws, SUITE, job.id, who=as_("alice"))  # named by the job that made it
    assert (change.adapter_id, change.previous) == (second.id, first.id)
    assert gate.rollback(ws, SUITE, who=as_("bob")).adapter_id == first.id
    assert adapters.suite_adapter(ws, SUITE) == first.id
    assert gate.rollback(ws, SUITE, who=ME).adapter_id == ""  # before the first one: the base model
    with pytest.raises(ValueError, match="already runs on the base model"):
        gate.rollback(ws, SUITE, who=ME)
    with pytest.raises(ValueError, match="no adapter, job or adapter folder 'nope'"):
        gate.use(ws, SUITE, "nope", who=ME)
    with pytest.raises(ValueError, match="no suite named 'other'"):
        gate.use(ws, "other", first.id, who=ME)
    assert [p.decision for p in gate.history(ws, SUITE)] == ["rollback", "rollback", "use", "use"]


def test_a_deleted_adapter_reads_as_the_base_model(ws, tmp_path):
    mini_suite(ws, tmp_path)
    ws.repo.update(Suite, SUITE, lambda s: s.model_copy(update={"adapter": "gone"}))
    assert adapters.resolve(ws, SUITE, "auto") == ""
    (trials,) = run_tasks(ws, [ws.repo.find(Task, suite=SUITE)[0]], RunOptions())
    assert trials[0].adapter == ""


def test_cli_adapters_use_rollback_and_history(ws, tmp_path, capsys):
    from agentlearn.cli import main

    mini_suite(ws, tmp_path)
    new = adapter(ws, "cli")
    assert main(["adapters", "use", str(new.path), "--suite", SUITE, "--by", "carol"]) == 0  # named by its folder
    assert f"now runs on {new.id}" in capsys.readouterr().out
    assert main(["adapters"]) == 0
    assert f"model of {SUITE}" in capsys.readouterr().out
    assert main(["adapters", "rollback", "--suite", SUITE]) == 0
    assert "rolled back to the base model" in capsys.readouterr().out
    assert main(["adapters", "history", "--suite", SUITE, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [h["decision"] for h in history] == ["rollback", "use"] and history[1]["by"] == "carol"
    assert main(["adapters", "use", "missing", "--suite", SUITE]) == 2
    assert "no adapter, job or adapter folder" in capsys.readouterr().err
    assert ws.repo.count(Promotion) == 2  # the refused command stored nothing


def test_on_a_suite_graded_by_references_the_gate_compares_call_accuracy(ws):
    """A BFCL suite offers one tool per simple task: names are all right, the calls are what differ."""
    from agentlearn.tasks import import_suite
    from tests.seed import ME

    import_suite(ws, "simple_python", SUITE, heldout=1.0, fmt="bfcl", who=ME)
    assert gate.metric_for(ws, SUITE) == "call"
    results = lambda calls: {f"t{i}": {"name": 1.0, "call": float(c)} for i, c in enumerate(calls)}  # noqa: E731
    current = EvalRun(suite=SUITE, split="heldout", method="none", n=10, name_accuracy=1.0, call_accuracy=0.1,
                      results=results([1] + [0] * 9))
    candidate = EvalRun(suite=SUITE, split="heldout", method="none", n=10, name_accuracy=1.0, call_accuracy=1.0,
                        results=results([1] * 10))
    said = gate.judge(ws, candidate, current)
    assert said.promote and said.metric == "call" and (said.before, said.after) == (0.1, 1.0)
    assert said.reasons[0].startswith("call accuracy 10.0% -> 100.0%")
    assert gate.decide(candidate, current).reasons[-1].startswith("refused: the new model is not ahead on name")
