"""Child processes: the one way to start long work (agent runs, evaluations, curves, the demo, improve,
training jobs) and watch it.

    start(ws, kind, args)   Process record (running) -> `python -m agentlearn <args>`, detached, logged
    the child               beat() keeps its heartbeat; report(ws, done, total) while it works;
                            requested() at its step ends; finish(ws, result | error) at the end
    get / running           read the record; a running record whose process is gone, or whose heartbeat
                            stopped, reads as failed
    stop(ws, id)            SIGTERM to the child's process group; the record reads stopped
    stop(ws, id, save=True) a request the child reads at its next step: it stops there and keeps its
                            work (a training job saves its adapter); the record reads stopped when it ends

The dashboard must not run long work on its own threads (Streamlit's API is not thread-safe and a
rerun would cut it off), and a rerun of any session must find the work again: the state lives in
the store, not in this process. The child gets only the environment it needs, so secrets that the
dashboard happens to hold (cloud keys, tokens) do not reach every child and its log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.paths import inside
from agentlearn.redact import redact
from agentlearn.settings import PROCESS_ID_ENV
from agentlearn.workspace import Workspace, open_workspace
from storage.records import Process, ProgressEvent, now

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEEP_EVENTS = 100  # the first report and the latest ones: enough for the rate and a chart, bounded
REPORT_EVERY_S = 1.0  # at most about one progress write a second: a store write costs an fsync
# Passed to every child as they are. Anything else (cloud credentials, tokens) stays with the parent.
KEEP_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "VIRTUAL_ENV",
              "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
KEEP_PREFIXES = ("AGENTLEARN_", "HF_", "TRANSFORMERS_", "PYTHON", "LC_", "CUDA_")  # CUDA_*: which GPU
KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
STOP_AND_SAVE = "stop_and_save"  # the request stop(save=True) leaves on the record
HEARTBEAT_S = 10.0  # how often a child writes its heartbeat (beat)
STALE_AFTER_S = 180.0  # a running record silent this long is marked failed: its child hangs or runs elsewhere

_children: dict[str, subprocess.Popen] = {}  # started by this process: polled so that none stays a zombie
_lock = threading.Lock()
_reported: dict[str, float] = {}  # process id -> when this child last wrote its progress
_own_ws: list[Workspace] = []  # the child's workspace, opened once when report/finish get none
_asked: dict[str, tuple[float, str]] = {}  # process id -> when its request was last read, and what it was


def child_env(ws: Workspace, extra: dict[str, str] | None = None, model_access: bool = True) -> dict[str, str]:
    """The environment a child needs: the allowlist above, OPENAI_* only for a child that talks to the
    openai backend (`model_access`; training jobs train the local model and never do)."""
    keep_openai = model_access and ws.settings.backend == "openai"
    env = {k: v for k, v in os.environ.items()
           if k in KEEP_NAMES or k.startswith(KEEP_PREFIXES) or (keep_openai and k.startswith("OPENAI_"))}
    env.pop(PROCESS_ID_ENV, None)  # a grandchild is not the process its parent reports for
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    # The child serves and trains the embedded model this workspace selected (the dashboard may choose another).
    env.update(AGENTLEARN_HOME=str(ws.settings.home), AGENTLEARN_LOCAL_MODEL=ws.settings.local_model,
               PYTHONUNBUFFERED="1", PYTHONPATH=pythonpath)
    env.update(extra or {})
    return env


def spawn(ws: Workspace, args: Sequence[str], log_path: Path, extra_env: dict[str, str],
          model_access: bool) -> subprocess.Popen:
    """Start `python -m agentlearn <args>` detached (own session), appending its output to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "agentlearn", *map(str, args)], cwd=str(PROJECT_ROOT),
                                env=child_env(ws, extra_env, model_access), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    with _lock:
        _children[f"pid-{proc.pid}"] = proc
    return proc


def start(ws: Workspace, kind: str, args: Sequence[str], *, who: Identity, env: dict[str, str] | None = None,
          model_access: bool = True) -> Process:
    """Store a Process record and start `python -m agentlearn <args>` for it; returns the record with its pid.

    `who` must be allowed what the kind does (policy.PROCESS_ACTIONS); the child acts for them. `env` and
    `model_access` are child_env's.
    """
    if not KIND.match(kind):
        raise ValueError(f"a process kind is a short lower-case word (run, eval, demo, curve), not {kind!r}")
    if not args:
        raise ValueError("give the agentlearn command to run, e.g. ['eval', '--suite', 'NAME']")
    who = policy.require(ws.repo, who, policy.PROCESS_ACTIONS.get(kind, "run"))
    record = Process(kind=kind, args=[str(a) for a in args], by="" if who.local else who.name)
    log_path = ws.settings.jobs_dir / "processes" / f"{kind}-{record.id}.log"
    record = ws.repo.put(record.model_copy(update={"log_path": str(log_path), "heartbeat": now()}))
    try:
        proc = spawn(ws, record.args, log_path, {**(env or {}), PROCESS_ID_ENV: record.id}, model_access)
    except OSError as e:
        return _end(ws, record.id, "failed", error=f"the process could not start: {e}")
    return ws.repo.update(Process, record.id, lambda p: p.model_copy(update={"pid": proc.pid}))


def get(ws: Workspace, process_id: str) -> Process | None:
    """The process record, None if unknown; a running one whose process is gone, or whose heartbeat
    stopped, is marked failed first."""
    record = ws.repo.get(Process, process_id)
    if record is None or record.status != "running":
        return record
    return _check(ws, record)


def running(ws: Workspace, kind: str | None = None) -> list[Process]:
    """Processes still running (optionally of one kind), newest first."""
    found = [p for p in ws.repo.all(Process) if p.status == "running" and (kind is None or p.kind == kind)]
    alive = [p for p in (_check(ws, p) for p in found) if p.status == "running"]
    return sorted(alive, key=lambda p: p.created, reverse=True)


def latest(ws: Workspace, kind: str) -> Process | None:
    """The newest process of a kind, whatever its status (a page shows the last one it started)."""
    found = [p for p in ws.repo.all(Process) if p.kind == kind]
    newest = max(found, key=lambda p: p.created, default=None)
    return None if newest is None else get(ws, newest.id)


def stop(ws: Workspace, process_id: str, save: bool = False) -> Process:
    """End a running child and everything it started (its process group); the record reads stopped.

    With save=True the child is asked instead to stop at its next step and keep its work (a child that
    reads requested(), as training does); the record stays running, with the request, until it ends.
    """
    record = get(ws, process_id)
    if record is None:
        raise ValueError(f"no process with id {process_id!r}")
    if record.status != "running":
        return record
    if save:
        return ws.repo.update(Process, process_id, lambda p: p.model_copy(update={"request": STOP_AND_SAVE})
                              if p.status == "running" else p)
    if record.pid is not None and pid_alive(record.pid):
        try:
            os.killpg(record.pid, signal.SIGTERM)  # start_new_session made its pid the group id
        except ProcessLookupError:
            pass
    return _end(ws, process_id, "stopped", error="stopped by request")


def tail(ws: Workspace, record: Any, lines: int = 30) -> str:
    """The last lines of a child's log (a record with a log_path; "" before it wrote any).

    Only a file inside this workspace's jobs folder is read (symlinks resolved): a record from a shared
    database, a restored backup or a store made elsewhere may name any file on the machine, and the log
    is shown to whoever opens the page. Anything else raises ValueError saying why.
    """
    if not record.log_path:
        return ""
    path = Path(record.log_path).resolve()
    if not inside(ws.settings.jobs_dir, path):
        raise ValueError(f"the log of {record.id} is outside the workspace's jobs folder ({path} is not under "
                         f"{ws.settings.jobs_dir.resolve()}): not shown, a record from elsewhere must not "
                         "reach other files")
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    # Progress bars redraw with carriage returns; keep only what the last redraw shows.
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return redact("\n".join(shown[-lines:]))  # the child redacts its own output; this catches what bypassed it


def command(process: Process) -> str:
    """The command line the process runs, for people to read or copy."""
    return "python -m agentlearn " + " ".join(process.args)


def option(process: Process, name: str) -> str:
    """The value given to an option of the command (e.g. "--suite"), "" if it was not given."""
    args = process.args
    return args[args.index(name) + 1] if name in args[:-1] else ""


def stopping(process: Process) -> bool:
    """True while a child asked to stop and save has not ended yet."""
    return process.status == "running" and bool(process.request)


def fraction(process: Process) -> float:
    """How far it is, 0 to 1 (1 once it succeeded)."""
    if process.status == "succeeded":
        return 1.0
    return min(1.0, process.done / process.total) if process.total else 0.0


@dataclass(frozen=True)
class Mark:
    """How many steps were done at a moment."""

    done: float
    at: datetime


def eta_s(first: Mark, last: Mark, total: float, at: datetime) -> float | None:
    """Seconds left, from the steps done between two marks and their rate (None before any rate is known).

    The rate is measured up to the last step done, not to now: dividing the time elapsed by the steps
    done made a slow step raise the ETA (a job read 207 s left at 207 s, then 305 s at 320 s). Time
    spent on the current step comes off, down to the steps that follow it. Every kind of long work
    (agent runs, evaluations, curves, training) reads its ETA here.
    """
    if last.done >= total > 0:
        return 0.0
    steps, seconds = last.done - first.done, (last.at - first.at).total_seconds()
    if steps <= 0 or seconds <= 0 or total <= 0:
        return None
    per_step = seconds / steps
    left = per_step * (total - last.done) - max(0.0, (at - last.at).total_seconds())
    return max(per_step * max(0.0, total - last.done - 1), left)


def eta(process: Process, at: datetime | None = None) -> float | None:
    """Seconds left for a running process, from its progress events (None when unknown or not running)."""
    if process.status != "running" or not process.events:
        return None
    first, last = process.events[0], process.events[-1]
    # Counting starts at the first report (loading a model is not a step); one report alone counts from the start.
    start = Mark(first.done, first.at) if len(process.events) > 1 else Mark(0, process.created)
    return eta_s(start, Mark(last.done, last.at), last.total, at or now())


def elapsed_s(process: Process, at: datetime | None = None) -> float:
    """Seconds since the process started, to its end if it ended."""
    return max(0.0, ((process.finished or at or now()) - process.created).total_seconds())


def counted(process: Process, what: str = "tasks") -> str:
    """"3 of 17 tasks · 42 s · ETA 180 s": how far, how long so far, how long still (eta)."""
    if not process.total:
        return f"starting… · {elapsed_s(process):.0f} s"
    return line(process.done, process.total, what, elapsed_s(process), eta(process))


def line(done: int, total: int, what: str, elapsed: float, eta_left: float | None) -> str:
    """The one wording of progress on every page and terminal: training steps, tasks, points, stages."""
    left = f" · ETA {eta_left:.0f} s" if eta_left is not None else ""
    return f"{done} of {total} {what} · {elapsed:.0f} s{left}"


# --- the child's side ----------------------------------------------------------------------------


def current_id() -> str:
    """The id of the Process record this process reports for ("" when it was not started by start())."""
    return os.environ.get(PROCESS_ID_ENV, "")


def report(ws: Workspace | None, done: int, total: int, message: str = "") -> None:
    """Record progress (done of total); a no-op outside a started child, about one write a second."""
    process_id = current_id()
    if not process_id:
        return
    moment = time.monotonic()
    if done < total and moment - _reported.get(process_id, -REPORT_EVERY_S) < REPORT_EVERY_S:
        return
    _reported[process_id] = moment
    event = ProgressEvent(done=int(done), total=int(total))
    change = {"done": event.done, "total": event.total, "message": str(message)[:500], "heartbeat": event.at}

    def record(p: Process) -> Process:
        kept = p.events[:1] + p.events[1:][-(KEEP_EVENTS - 2):] if p.total == event.total else []
        return p.model_copy(update={**change, "events": [*kept, event]})

    _workspace(ws).repo.update(Process, process_id, record)


def requested(ws: Workspace | None = None) -> str:
    """The request left for this child by stop(save=True) ("" if none, or outside a started child); read
    from the store at most about once a second, so a child may ask at every step."""
    process_id = current_id()
    if not process_id:
        return ""
    moment = time.monotonic()
    at, asked = _asked.get(process_id, (-REPORT_EVERY_S, ""))
    if not asked and moment - at >= REPORT_EVERY_S:
        record = _workspace(ws).repo.get(Process, process_id)
        asked = record.request if record is not None else ""
        _asked[process_id] = (moment, asked)
    return asked


def beat(ws: Workspace | None = None, every: float = HEARTBEAT_S) -> None:
    """Write this child's heartbeat every `every` seconds from a daemon thread, while its record runs, so
    that a child that loads, generates or trains for minutes between reports is not taken for hung."""
    process_id = current_id()
    if not process_id:
        return
    workspace = _workspace(ws)

    def run() -> None:
        while True:
            time.sleep(every)
            try:
                after = workspace.repo.update(Process, process_id, lambda p: p.model_copy(
                    update={"heartbeat": now()}) if p.status == "running" else p)
            except Exception:  # noqa: BLE001 - a missed beat is not worth ending the work for
                continue
            if after.status != "running":
                return

    threading.Thread(target=run, name=f"heartbeat-{process_id}", daemon=True).start()


def finish(ws: Workspace | None, result: dict[str, Any] | None = None, error: str = "") -> None:
    """Record the end: succeeded with `result`, or failed with `error`; a no-op outside a started child.
    A child that ends without error after stop(save=True) asked it to reads stopped."""
    process_id = current_id()
    if not process_id:
        return
    _end(_workspace(ws), process_id, "failed" if error else "succeeded", result=result, error=error)


# --- internals -----------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    _reap()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _reap() -> None:
    with _lock:
        for key, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[key]


def _runs_agentlearn(pid: int) -> bool:
    """False when the pid now belongs to some other program (pids are reused after a reboot or a long time)."""
    try:
        return b"\0-m\0agentlearn" in Path(f"/proc/{pid}/cmdline").read_bytes()  # python -m agentlearn...
    except OSError:
        return True  # no /proc here: trust the pid


def _check(ws: Workspace, record: Process, stale_after: float = STALE_AFTER_S) -> Process:
    if record.pid is not None and not (pid_alive(record.pid) and _runs_agentlearn(record.pid)):
        return _end(ws, record.id, "failed", error=f"the process (pid {record.pid}) ended without reporting a "
                    "result: it was killed or crashed (out of memory?); see its log")
    silent = (now() - (record.heartbeat or record.created)).total_seconds()
    if silent > stale_after:
        return _end(ws, record.id, "failed", error=f"no heartbeat for {silent:.0f} s: the process hangs or runs "
                    "elsewhere; marked failed")
    return record


def _end(ws: Workspace, process_id: str, status: str, result: dict[str, Any] | None = None,
         error: str = "") -> Process:
    def change(p: Process) -> Process:
        if p.status != "running":  # the first end wins: a stopped child's own exit changes nothing
            return p
        ended, why = ("stopped", "stopped by request and saved") if status == "succeeded" and p.request else (
            status, error)
        # An endpoint may quote the API key in its error: nothing secret is stored or shown.
        return p.model_copy(update={"status": ended, "error": redact(why)[:2000], "finished": now(), "heartbeat": now(),
                                    "result": {**p.result, **(result or {})}})

    return ws.repo.update(Process, process_id, change)


def _workspace(ws: Workspace | None) -> Workspace:
    if ws is not None:
        return ws
    if not _own_ws:
        _own_ws.append(open_workspace())
    return _own_ws[0]
