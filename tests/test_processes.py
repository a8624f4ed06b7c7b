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
    assert done.status == "succeeded", processes.tail(ws, done)
    assert done.finished is not None and done.error == ""
    assert SUITE in processes.tail(ws, done)
    assert Path(done.log_path).is_relative_to(ws.settings.jobs_dir)
    assert processes.command(done) == "python -m agentlearn tasks list"
    assert processes.fraction(done) == 1.0
    assert processes.running(ws) == []
    assert processes.latest(ws, "tasks").id == started.id


def test_a_failing_child_records_why(ws):
    record = wait(ws, processes.start(ws, "run", ["run", "--suite", "missing"], who=ME).id)
    assert record.status == "failed"
    assert "missing" in record.error and "missing" in processes.tail(ws, record)


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
    cli._TaskProgress()(3, 3, [traj], 1.0)
    assert "[3/3] ok  s:t3" in capsys.readouterr().err
    after = ws.repo.get(Process, record.id)
    assert (after.done, after.total, after.message) == (3, 3, "ok s:t3")


def test_task_progress_moves_on_answers_and_never_goes_back(ws, monkeypatch, capsys):
    from storage.records import Trajectory, Verdict

    record = ws.repo.put(Process(kind="eval", args=["eval"]))
    monkeypatch.setenv(processes.PROCESS_ID_ENV, record.id)
    monkeypatch.setattr(processes, "_own_ws", [ws])
    monkeypatch.setattr(processes, "REPORT_EVERY_S", 0.0)
    progress = cli._TaskProgress(parts=2)  # --ablate: two evaluations of the same 3 tasks, one bar
    trajectory = Trajectory(task_id="s:t", suite="s", split="heldout", verdict=Verdict(success=False, reward=0, reason=""))
    for a in (1, 2, 3):
        progress.answered(a, 3)
    progress(1, 3, [trajectory], 1.0)  # the batch is stored after every task of it was answered
    assert (ws.repo.get(Process, record.id).done, ws.repo.get(Process, record.id).total) == (3, 6)
    progress(3, 3, [trajectory], 1.0)
    progress.answered(1, 3)  # the second evaluation
    assert (ws.repo.get(Process, record.id).done, ws.repo.get(Process, record.id).total) == (4, 6)
    counts = [e.done for e in ws.repo.get(Process, record.id).events]
    assert counts == sorted(counts) and counts[:3] == [1, 2, 3] and counts[-1] == 4


@pytest.mark.slow
def test_a_real_evaluation_reports_each_answer_before_its_batch_is_stored_and_stops(real_ws, monkeypatch):
    """A child evaluation on the real model: its total is known before the first answer, progress arrives per
    answer inside a batch, and Stop ends it."""
    from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite
    from storage.records import Trajectory

    ws = real_ws
    ensure_demo_suite(ws)
    monkeypatch.setenv("AGENTLEARN_BATCH_SIZE", "8")
    record = processes.start(ws, "eval", ["eval", "--suite", DEMO_SUITE, "--limit", "16"], who=ME)
    deadline = time.time() + 300
    while not any(e.done for e in record.events) and record.status == "running" and time.time() < deadline:
        time.sleep(0.2)
        record = processes.get(ws, record.id)
    assert record.status == "running" and record.events, (record.error, processes.tail(ws, record))
    assert (record.events[0].done, record.events[0].total) == (0, 16)  # the total, before any answer
    first = next(e for e in record.events if e.done)
    assert 1 <= first.done < first.total == 16
    stored = [t.created for t in ws.repo.find(Trajectory, suite=DEMO_SUITE)]
    assert all(first.at < at for at in stored)  # reported before its batch was stored, not after
    assert processes.stop(ws, record.id).status == "stopped"
    deadline = time.time() + 30
    while processes.pid_alive(record.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not processes.pid_alive(record.pid)
    assert len(ws.repo.find(Trajectory, suite=DEMO_SUITE)) < 16  # it did not run on after Stop


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


def test_a_process_log_outside_the_jobs_folder_is_never_read(ws, tmp_path):
    """A record from a shared store or a restored backup may name any file: only the jobs folder is read."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    record = ws.repo.put(Process(kind="run", args=["run"], log_path=str(secret)))
    with pytest.raises(ValueError, match="outside the workspace's jobs folder"):
        processes.tail(ws, record)
    # A symlink inside the jobs folder that points out is refused the same way.
    link = ws.settings.jobs_dir / "processes" / "run-x.log"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    with pytest.raises(ValueError, match="outside the workspace's jobs folder"):
        processes.tail(ws, record.model_copy(update={"log_path": str(link)}))
    # Elsewhere in the workspace (not a log) is refused too.
    other = ws.settings.home / "settings.txt"
    other.write_text("token=abc\n")
    with pytest.raises(ValueError, match="outside"):
        processes.tail(ws, record.model_copy(update={"log_path": str(other)}))
    inside = ws.settings.jobs_dir / "processes" / "run-y.log"
    inside.write_text("one\ntwo\r2b\n")
    assert processes.tail(ws, record.model_copy(update={"log_path": str(inside)}), 1) == "2b"
    assert processes.tail(ws, record.model_copy(update={"log_path": ""})) == ""


def test_eta_comes_from_the_steps_done_and_their_rate():
    """Not from the time elapsed: a step that takes long brings the ETA down, never up (the SFT job's grew)."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    start, half = processes.Mark(0, t0), processes.Mark(5, t0 + timedelta(seconds=200))  # 40 s a step
    assert processes.eta_s(start, half, 10, t0 + timedelta(seconds=200)) == pytest.approx(200)
    later = [processes.eta_s(start, half, 10, t0 + timedelta(seconds=s)) for s in (207, 250, 320)]
    assert later == sorted(later, reverse=True) and later[0] < 200
    assert later[-1] == pytest.approx(160)  # no fewer than the 4 steps after the current one
    assert processes.eta_s(start, processes.Mark(0, t0), 10, t0) is None  # no step done: no rate yet
    assert processes.eta_s(start, processes.Mark(10, t0 + timedelta(seconds=9)), 10, t0) == 0


def test_a_training_job_eta_falls_while_a_step_runs_long(ws):
    """The SFT job read 207 s left at 207 s and 305 s at 320 s: a job's ETA is its Process's, from its steps'
    rate (the first report is when training began, the last when step 5 was reached)."""
    from datetime import timedelta

    from storage.records import ProgressEvent, now

    t = now()
    begun, reached = t - timedelta(seconds=320), t - timedelta(seconds=120)  # 5 of 10 steps in 200 s
    job = Process(kind="train", created=begun - timedelta(seconds=60), done=5, total=10, heartbeat=t,
                  events=[ProgressEvent(done=0, total=10, at=begun), ProgressEvent(done=5, total=10, at=reached)])
    assert processes.eta(job) == pytest.approx(160, abs=2)  # 4 steps after the current one, 40 s each
    at_the_step = job.model_copy(update={"events": [ProgressEvent(done=0, total=10, at=t - timedelta(seconds=200)),
                                                    ProgressEvent(done=5, total=10, at=t)]})
    assert processes.eta(at_the_step) == pytest.approx(200, abs=2)
    assert processes.counted(job, "steps").startswith("5 of 10 steps · 380 s · ETA 16")


def test_stop_and_save_is_a_request_the_child_reads_and_its_end_reads_stopped(ws, monkeypatch):
    record = ws.repo.put(Process(kind="train", args=["train"]))
    assert processes.stop(ws, record.id, save=True).request == processes.STOP_AND_SAVE
    asked = processes.get(ws, record.id)
    assert asked.status == "running" and processes.stopping(asked)  # until the child ends
    assert processes.requested(ws) == ""  # not a started child: nothing to read
    monkeypatch.setenv(processes.PROCESS_ID_ENV, record.id)
    assert processes.requested(ws) == processes.STOP_AND_SAVE
    processes.finish(ws, result={"adapter_id": "a1"})
    ended = processes.get(ws, record.id)
    assert (ended.status, ended.error, ended.result) == ("stopped", "stopped by request and saved", {"adapter_id": "a1"})
    assert processes.stop(ws, record.id, save=True).status == "stopped"  # an ended one is left as it is


def test_a_silent_process_is_marked_failed_and_a_child_keeps_its_heartbeat(ws, monkeypatch):
    from datetime import timedelta

    from storage.records import now

    silent = ws.repo.put(Process(kind="train", heartbeat=now() - timedelta(seconds=processes.STALE_AFTER_S + 5)))
    assert processes.running(ws) == []
    assert processes.get(ws, silent.id).status == "failed" and "no heartbeat" in processes.get(ws, silent.id).error
    beating = ws.repo.put(Process(kind="eval", heartbeat=now() - timedelta(seconds=60)))
    monkeypatch.setenv(processes.PROCESS_ID_ENV, beating.id)
    processes.beat(ws, every=0.05)
    deadline = time.time() + 10
    while ws.repo.get(Process, beating.id).heartbeat < now() - timedelta(seconds=5) and time.time() < deadline:
        time.sleep(0.05)
    assert ws.repo.get(Process, beating.id).heartbeat > now() - timedelta(seconds=5)
    assert processes.get(ws, beating.id).status == "running"
    processes.finish(ws)  # the beat ends with the record
