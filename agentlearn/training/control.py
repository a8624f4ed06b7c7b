"""Stop requests: a small file in the job folder that the job reads at the end of every step."""

from __future__ import annotations

from pathlib import Path

from storage.files import write_atomic

CONTROL_FILE = "control"  # holds "stop" or "stop_and_save"
STOP, STOP_AND_SAVE = "stop", "stop_and_save"


def read_control(job_dir: Path) -> str:
    """The pending stop request in a job folder ("" if none)."""
    try:
        return (Path(job_dir) / CONTROL_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def request(job_dir: Path, what: str) -> None:
    """Leave a stop request (written atomically) for the job to find."""
    if what not in (STOP, STOP_AND_SAVE):
        raise ValueError(f"a request is {STOP!r} or {STOP_AND_SAVE!r}, not {what!r}")
    folder = Path(job_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / CONTROL_FILE, what.encode())
