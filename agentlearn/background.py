"""Long work (a split of agent runs, an evaluation) runs as a child `python -m agentlearn ...` process.

The dashboard must not run long work on its own threads (Streamlit's API is not thread-safe and a
rerun would cut it off), so it starts the CLI, writes its output to a log file in the workspace and
watches the store. Handles are kept per process so that any rerun of any session can find them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from storage.records import new_id, now

_procs: dict[str, subprocess.Popen] = {}
_lock = threading.Lock()


@dataclass
class Child:
    """A started CLI command: what it runs, where it logs, when it began."""

    id: str
    args: list[str]
    log_path: str
    started: datetime = field(default_factory=now)

    @property
    def command(self) -> str:
        return "python -m agentlearn " + " ".join(self.args)


def start(home: str | Path, args: list[str], name: str = "run") -> Child:
    """Start `python -m agentlearn <args>` on workspace `home`; output goes to a log file under jobs/."""
    logs = Path(home) / "jobs" / "dashboard"
    logs.mkdir(parents=True, exist_ok=True)
    child = Child(id=new_id(), args=[str(a) for a in args], log_path=str(logs / f"{name}-{new_id()}.log"))
    env = dict(os.environ, AGENTLEARN_HOME=str(home), PYTHONUNBUFFERED="1")
    with open(child.log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "agentlearn", *child.args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=str(Path(__file__).resolve().parent.parent),
                                start_new_session=True)
    with _lock:
        _procs[child.id] = proc
    return child


def returncode(child: Child) -> int | None:
    """None while running; the exit status once finished (-1 if this process does not know it)."""
    with _lock:
        proc = _procs.get(child.id)
    if proc is None:
        return -1
    return proc.poll()


def stop(child: Child) -> bool:
    """Ask the child (and only it) to stop; True if it was running."""
    with _lock:
        proc = _procs.get(child.id)
    if proc is None or proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGTERM)
    return True


def tail(child: Child, lines: int = 30) -> str:
    """The last lines of the child's output."""
    try:
        text = Path(child.log_path).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def last_json(child: Child) -> dict | list | None:
    """The last line of the output that parses as JSON (the CLI's --json result), if any."""
    try:
        text = Path(child.log_path).read_text(errors="replace")
    except FileNotFoundError:
        return None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None
