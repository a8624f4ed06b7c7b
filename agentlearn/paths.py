"""Paths that come from data: a suite name made safe for a file name, paths kept inside the workspace, and
the one check of where an export may write (`check_out`).

A record names files (a job's log, an adapter folder, an export). A store prepared elsewhere could name
any file on the machine, so such a path is used only when it lies inside the workspace folder.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentlearn.settings import Settings

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


# An export folder carries this file; --force replaces a folder only when it is there, so that it never
# removes anything an export did not write.
EXPORT_MARKER = ".agentlearn-export"


def check_out(settings: Settings, out: str | Path, force: bool = False, folder: bool = False,
              suffixes: tuple[str, ...] = ()) -> Path:
    """The resolved --out path, or a ValueError saying why writing there could lose data.

    Refused always: a filesystem root, the user's home folder or a folder above it, the workspace or any
    folder that holds it, and anything inside the workspace other than its output folders (exports,
    label-exports, backups). An existing target is replaced only with `force`, and even then only if an
    export wrote it: a folder that carries EXPORT_MARKER, or a file whose name ends in one of `suffixes`.
    """
    path = Path(out).expanduser().resolve()
    home = settings.home.resolve()
    if path == Path(path.anchor) or Path.home().resolve().is_relative_to(path):
        raise ValueError(f"--out {path}: a filesystem root or your home folder is never an output; name a new "
                         "folder or file")
    if home.is_relative_to(path):
        raise ValueError(f"--out {path} holds the workspace {home}; an export must never replace it. Name a "
                         "new folder or file outside it")
    if path.is_relative_to(home) and not any(path.is_relative_to(d.resolve()) and path != d.resolve()
                                             for d in settings.output_dirs):
        raise ValueError(f"--out {path} is inside the workspace {home}, where the store, models and adapters "
                         "live; write inside its exports folder or outside the workspace")
    if folder:
        if path.is_file():
            raise ValueError(f"--out {path} is a file; a Hugging Face dataset is a folder")
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise ValueError(f"--out {path} exists and is not empty; pass --force to replace it, or name "
                                 "another folder")
            if not (path / EXPORT_MARKER).is_file():
                raise ValueError(f"--out {path} is not empty and no export wrote it (no {EXPORT_MARKER} file); "
                                 "--force replaces only an earlier export. Name a new folder")
        return path
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; name a file")
    if path.exists():
        if not force:
            raise ValueError(f"--out {path} exists; pass --force to replace it, or name another file")
        if suffixes and path.suffix not in suffixes:
            raise ValueError(f"--out {path} exists and --force replaces only a file ending in "
                             f"{' or '.join(suffixes)} (an earlier export); name another file")
    return path
