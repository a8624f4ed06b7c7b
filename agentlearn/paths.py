"""Paths that come from data: a suite name made safe for a file name, and paths kept inside the workspace.

A record names files (a job's log, an adapter folder, an export). A store prepared elsewhere could name
any file on the machine, so such a path is used only when it lies inside the workspace folder.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r"[^\w.-]+")


def file_part(text: str, what: str = "name") -> str:
    """`text` as one safe file-name part: no separators, no '..', no leading dot; ValueError if nothing is left."""
    part = _UNSAFE.sub("_", unicodedata.normalize("NFKC", str(text))).strip("._")
    part = re.sub(r"\.{2,}", ".", part)[:80]
    if not part:
        raise ValueError(f"{what} {text!r} has no letters or digits to name a file with")
    return part


def inside(folder: Path, path: str | Path) -> bool:
    """True if `path` (symlinks resolved) is `folder` or lies under it."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def confined(home: Path, path: str | Path, what: str) -> Path:
    """The resolved path, if it lies inside the workspace `home`; ValueError naming `what` otherwise."""
    if not str(path).strip():
        raise ValueError(f"{what} names no file")
    resolved = Path(path).resolve()
    if not inside(home, resolved):
        raise ValueError(f"{what} is outside the workspace ({resolved} is not under {Path(home).resolve()}): "
                         "refused, a store prepared elsewhere must not reach other files")
    return resolved
