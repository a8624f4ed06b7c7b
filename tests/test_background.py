"""agentlearn.background: the dashboard's child `python -m agentlearn ...` processes."""

from __future__ import annotations

import time
from pathlib import Path

from agentlearn import background
from tests.seed import SUITE, seed_workspace


def wait(child, seconds: float = 120) -> int | None:
    deadline = time.time() + seconds
    while background.returncode(child) is None and time.time() < deadline:
        time.sleep(0.2)
    return background.returncode(child)


def test_a_child_runs_on_the_workspace_and_logs(ws):
    seed_workspace(ws.repo)
    child = background.start(ws.settings.home, ["tasks", "list"], name="list")
    assert wait(child) == 0
    assert SUITE in background.tail(child)
    assert Path(child.log_path).is_relative_to(ws.settings.home)
    assert background.last_json(child) is None
    assert child.command == "python -m agentlearn tasks list"


def test_a_failing_child_says_why(ws):
    child = background.start(ws.settings.home, ["run", "--suite", "missing"], name="run")
    assert wait(child) not in (0, None)
    assert "missing" in background.tail(child)


def test_stop_ends_only_that_child(ws):
    seed_workspace(ws.repo)
    child = background.start(ws.settings.home, ["run", "--suite", SUITE, "--limit", "1"], name="run")
    assert background.stop(child) is True
    assert wait(child, 30) not in (0, None)
    assert background.stop(child) is False


def test_last_json_reads_the_result_line(tmp_path):
    log = tmp_path / "x.log"
    log.write_text('[1/2] ok\nnot json {\n{"n": 2, "call_accuracy": 0.5}\n')
    child = background.Child(id="x", args=[], log_path=str(log))
    assert background.last_json(child) == {"n": 2, "call_accuracy": 0.5}
    assert background.returncode(child) == -1  # not started by this process
