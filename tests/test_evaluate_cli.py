"""Evaluation and the command line: stored eval runs, JSON output, clear errors, a real end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentlearn.cli import main
from agentlearn.evaluate import evaluate
from agentlearn.methods import RunOptions
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
from agentlearn.toolcall import format_tool_call
from storage.records import EvalRun
from tests.conftest import link_shared_models

ROOT = Path(__file__).resolve().parents[1]


def test_evaluate_scores_name_and_call_accuracy_separately(ws, make_fake_chat):
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:4]
    right = format_tool_call(tasks[0].expected)
    wrong_args = format_tool_call(tasks[1].expected.model_copy(update={"arguments": {"x": "y"}}))
    ws.chat_factory = make_fake_chat([right, wrong_args, "no call", "no call"])
    run = evaluate(ws, DEMO_SUITE, RunOptions(method="none", limit=4))
    assert run.n == 4
    assert run.call_accuracy == pytest.approx(1 / 4)
    assert run.name_accuracy == pytest.approx(2 / 4)
    assert ws.repo.get(EvalRun, run.id).trajectory_ids == run.trajectory_ids


def test_requests_without_a_known_answer_are_left_out_of_scores(ws, make_fake_chat):
    """A request imported from traces ("no-reference" until a person answers it) is labeled, not scored:
    evaluations and the retrieval choice leave it out instead of counting it as a failure."""
    from agentlearn.memory import retrieval
    from storage.records import Task, ToolCall

    ensure_demo_suite(ws)
    heldout = load_tasks(ws, DEMO_SUITE, "heldout")
    unknown = [Task(id=f"{DEMO_SUITE}:traced-{split}", suite=DEMO_SUITE, sample_id=f"traced-{split}", split=split,
                    input=heldout[0].input,
                    tools=heldout[0].tools, expected=ToolCall(name=""), tags=["no-reference"])
               for split in ("train", "heldout")]
    ws.repo.put_many(unknown)
    ws.chat_factory = make_fake_chat([format_tool_call(t.expected) for t in heldout])
    run = evaluate(ws, DEMO_SUITE, RunOptions(method="none"))
    assert run.n == len(heldout) and run.call_accuracy == 1.0
    choice = retrieval.choose(ws, DEMO_SUITE, how_many=0)
    assert choice["n_train"] == len(load_tasks(ws, DEMO_SUITE, "train")) - 1


def test_evaluate_an_unknown_suite_says_what_to_do(ws):
    with pytest.raises(ValueError, match="no suite named .nope."):
        evaluate(ws, "nope")


def test_cli_import_reports_the_bad_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "tasks.jsonl"
    good = {"sample_id": "a", "input": [{"role": "user", "content": "hi"}],
            "expected_function_call": {"name": "greet", "arguments": {}}}
    bad.write_text(json.dumps(good) + "\n{not json\n")
    assert main(["tasks", "import", str(bad), "--suite", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 2" in err


def test_cli_import_and_list(tmp_path, capsys):
    ok = tmp_path / "tasks.jsonl"
    lines = [{"sample_id": f"s{i}", "input": [{"role": "user", "content": f"greet user u{i}"}],
              "expected_function_call": {"name": "greet", "arguments": {"user": f"u{i}"}}} for i in range(10)]
    ok.write_text("\n".join(json.dumps(x) for x in lines))
    assert main(["tasks", "import", str(ok), "--suite", "mini"]) == 0
    assert "imported 10 tasks into suite 'mini'" in capsys.readouterr().out
    assert main(["tasks", "list"]) == 0
    assert "mini\t10 tasks" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_eval_json_with_the_real_model(tmp_path, shared_models):
    home = link_shared_models(tmp_path / "home", shared_models)
    env = {**os.environ, "AGENTLEARN_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    demo = ROOT / "agentlearn" / "data" / "demo_suite.jsonl"
    subprocess.run([sys.executable, "-m", "agentlearn", "tasks", "import", str(demo), "--suite", "demo"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-m", "agentlearn", "eval", "--suite", "demo", "--method", "exemplars",
                          "--limit", "3", "--json"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    assert {"n", "name_accuracy", "call_accuracy", "method"} <= result.keys()
    assert result["n"] == 3 and result["method"] == "exemplars"
    assert 0.0 <= result["name_accuracy"] <= 1.0


def test_repeats_report_one_running_count(ws, make_fake_chat):
    from agentlearn.evaluate import evaluate_repeats
    from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite

    ensure_demo_suite(ws)
    seen = []
    runs = evaluate_repeats(ws, DEMO_SUITE, 2, RunOptions(limit=3), progress=lambda i, n, trials, s: seen.append((i, n)))
    assert seen == [(i, 6) for i in range(1, 7)]
    assert len({r.group for r in runs}) == 1 and [r.temperature for r in runs] == [0.7, 0.7]
