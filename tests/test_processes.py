"""agentlearn.processes: real child `python -m agentlearn ...` processes, watched through Process records."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from agentlearn import cli, processes
from storage.records import Process
from tests.seed import ME, SUITE, seed_workspace


def wait(ws, process_id: str, seconds: float = 120) -> Process:
    deadline = time.time() + seconds
    record = processes.get(ws, process_id)
    while record.status == "running" and time.time() < deadline:
        time.sleep(0.2)
        record = processes.get(ws, process_id)
    return record


def test_a_child_runs_on_the_workspace_logs_and_succeeds(ws):
    seed_workspace(ws.repo)
    started = processes.start(ws, "tasks", ["tasks", "list"], who=ME)
    assert started.status == "running" and started.pid
    assert [p.id for p in processes.running(ws)] in ([started.id], [])  # [] once it already ended
    done = wait(ws, started.id)
    assert done.status == "succeeded", processes.tail(done)
    assert done.finished is not None and done.error == ""
    assert SUITE in processes.tail(done)
    assert Path(done.log_path).is_relative_to(ws.settings.jobs_dir)
    assert processes.command(done) == "python -m agentlearn tasks list"
    assert processes.fraction(done) == 1.0
    assert processes.running(ws) == []
    assert processes.latest(ws, "tasks").id == started.id


def test_a_failing_child_records_why(ws):
    record = wait(ws, processes.start(ws, "run", ["run", "--suite", "missing"], who=ME).id)
    assert record.status == "failed"
    assert "missing" in record.error and "missing" in processes.tail(record)


def test_bad_arguments_fail_the_record(ws):
    record = wait(ws, processes.start(ws, "eval", ["eval", "--no-such-option"], who=ME).id)
    assert record.status == "failed" and "bad arguments" in record.error


def test_a_killed_child_reads_as_failed(ws):
    record = processes.start(ws, "run", ["run", "--suite", SUITE], who=ME)
    os.killpg(record.pid, signal.SIGKILL)
    record = wait(ws, record.id, 30)
    assert record.status == "failed"
    assert "killed or crashed" in record.error
    assert ws.repo.get(Process, record.id).status == "failed"  # written back, not only reported


def test_stop_ends_the_child_and_a_second_stop_changes_nothing(ws):
    record = processes.start(ws, "run", ["run", "--suite", SUITE], who=ME)
    stopped = processes.stop(ws, record.id)
    assert stopped.status == "stopped"
    deadline = time.time() + 30
    while processes.pid_alive(record.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not processes.pid_alive(record.pid)
    assert processes.stop(ws, record.id).status == "stopped"
    assert processes.get(ws, record.id).status == "stopped"  # the child's end did not overwrite it
    with pytest.raises(ValueError, match="no process"):
        processes.stop(ws, "nope")


def test_report_is_throttled_but_the_last_step_is_always_written(ws, monkeypatch):
    record = ws.repo.put(Process(kind="eval", args=["eval"]))
    processes.report(ws, 1, 10)  # not a started child: nothing happens
    assert ws.repo.get(Process, record.id).done == 0
    monkeypatch.setenv(processes.PROCESS_ID_ENV, record.id)
    processes.report(ws, 1, 10, "first")
    processes.report(ws, 2, 10, "too soon")
    assert (ws.repo.get(Process, record.id).done, ws.repo.get(Process, record.id).message) == (1, "first")
    processes.report(ws, 10, 10, "last")
    now = ws.repo.get(Process, record.id)
    assert (now.done, now.total, now.message, processes.fraction(now)) == (10, 10, "last", 1.0)
    processes.finish(ws, result={"eval_id": "e1"})
    assert ws.repo.get(Process, record.id).status == "succeeded"
    assert ws.repo.get(Process, record.id).result == {"eval_id": "e1"}


def test_cli_progress_reports_to_the_record(ws, monkeypatch, capsys):
    from storage.records import Trajectory, Verdict

    record = ws.repo.put(Process(kind="run", args=["run"]))
    monkeypatch.setenv(processes.PROCESS_ID_ENV, record.id)
    monkeypatch.setattr(processes, "_own_ws", [ws])
    traj = Trajectory(task_id="s:t3", suite="s", split="train", verdict=Verdict(success=True, reward=1, reason=""))
    cli._progress(3, 3, [traj], 1.0)
    assert "[3/3] ok  s:t3" in capsys.readouterr().err
    after = ws.repo.get(Process, record.id)
    assert (after.done, after.total, after.message) == (3, 3, "ok s:t3")


def test_a_child_gets_only_the_environment_it_needs(ws, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(processes.PROCESS_ID_ENV, "parent")
    env = processes.child_env(ws)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "OPENAI_API_KEY" not in env
    assert processes.PROCESS_ID_ENV not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["AGENTLEARN_HOME"] == str(ws.settings.home)
    assert env["PATH"] == os.environ["PATH"]
    ws.settings = ws.settings.with_(backend="openai")
    assert processes.child_env(ws)["OPENAI_API_KEY"] == "sk-test"
    assert "AWS_SECRET_ACCESS_KEY" not in processes.child_env(ws)


def test_bad_kind_or_empty_command_is_refused(ws):
    with pytest.raises(ValueError, match="kind"):
        processes.start(ws, "Eval; rm", ["eval"], who=ME)
    with pytest.raises(ValueError, match="command"):
        processes.start(ws, "eval", [], who=ME)
    assert ws.repo.count(Process) == 0


def test_a_record_whose_pid_now_belongs_to_another_program_reads_as_failed(ws):
    record = ws.repo.put(Process(kind="eval", args=["eval"], pid=os.getpid()))  # pytest: alive, not agentlearn's
    assert processes.get(ws, record.id).status == "failed"


def test_training_jobs_never_get_the_endpoint_key(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    openai_ws = type(ws)(settings=ws.settings.with_(backend="openai"), repo=ws.repo)
    assert processes.child_env(openai_ws)["OPENAI_API_KEY"] == "sk-secret"  # an agent run needs it
    assert "OPENAI_API_KEY" not in processes.child_env(openai_ws, model_access=False)
