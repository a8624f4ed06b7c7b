"""Atomic file writes and strict JSON reads: the two file operations every file-backed store uses."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from storage.errors import CorruptStoreError, StoreWriteError

BACKUP_HINT = "Restore it from a backup made with `python -m agentlearn backup`"
TEMP_SUFFIX = ".tmp"


def os_reason(e: OSError) -> str:
    """What the operating system said, without Python's '[Errno 28]' prefix."""
    return e.strerror or str(e)


def write_durable(path: Path, data: bytes) -> None:
    """Write bytes to `path` and fsync them; a StoreError naming the path if the disk refuses.

    Not atomic by itself: callers write to a name nobody reads yet (a temp or pending file). A file
    left half-written by a failure is removed, so that a full disk leaves no debris behind.
    """
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        path.unlink(missing_ok=True)
        raise StoreWriteError(f"cannot write {path}: {os_reason(e)}; nothing was changed") from None


def temp_name(path: Path) -> Path:
    """The temp file a write of `path` goes through: hidden, named after its process (see remove_stale_temps)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that a crash leaves either the old file or the new one, never a mix."""
    tmp = temp_name(path)
    write_durable(tmp, data)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(f"cannot write {path}: {os_reason(e)}; nothing was changed") from None
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make renames inside a folder durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temps(folder: Path) -> int:
    """Remove temp files that a killed writer left in `folder`; returns how many.

    A temp file is named after the process writing it: one whose process is gone can never be
    renamed into place, while a live process may still be writing its own (that one is kept).
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
            continue
        parts = name[: -len(TEMP_SUFFIX)].split(".")
        pid = parts[-2] if len(parts) >= 3 else ""
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass  # a read-only store: nothing to do about it here
    return removed


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a store file, or raise CorruptStoreError naming it. Never changes the file."""
    raw = path.read_bytes()
    if not raw.strip():
        # We never write an empty file; TinyDB's in-place writes can leave one after a crash, and
        # reading it as "no records" would let the next write replace everything that was there.
        raise CorruptStoreError(f"{path} is empty; the file was left as it is. {BACKUP_HINT}.")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if isinstance(e, json.JSONDecodeError):
            where = f" ({e.msg} at line {e.lineno}, column {e.colno})"
        else:
            where = f" (byte {e.start} is not UTF-8)"
        raise CorruptStoreError(f"{path} is not valid JSON{where}; the file was left as it is. {BACKUP_HINT}.") from None
    except RecursionError:
        raise CorruptStoreError(f"{path} is nested too deeply to read; the file was left as it is. "
                                f"{BACKUP_HINT}.") from None
    if not isinstance(data, dict):
        raise CorruptStoreError(f"{path} does not hold a JSON object; left as it is. {BACKUP_HINT}.")
    return data
