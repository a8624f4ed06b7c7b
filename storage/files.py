"""Atomic file writes and strict JSON reads: the two file operations every file-backed store uses."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from storage.errors import CorruptStoreError

BACKUP_HINT = "Restore it from a backup made with `python -m agentlearn backup`"


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so that a crash leaves either the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make renames inside a folder durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
