"""Embedding tables: a float32 matrix plus the id and text hash of each row, kept beside the records.

Not stored as records because JSON would make them ten times bigger and slow to load. Updated
incrementally: only ids whose text is new or changed are encoded again. `VectorTableBase` holds what
every backend shares (the in-memory table, sync, rows); `VectorTable` keeps one table in one file, and
storage.postgres_store has a variant in a database table.

The file is one `.npz` (matrix, ids and hashes together) replaced atomically: a crash leaves the old
table or the new one, and a reader that opens the file reads one consistent table without a lock.
A table that cannot be read is rebuilt by the next sync from the texts it is given (the store), with
the unreadable file kept aside as `<name>.npz.corrupt`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock

from storage.errors import CorruptStoreError
from storage.files import remove_stale_temps, write_atomic

Encoder = Callable[[Sequence[str]], np.ndarray]


def text_hash(text: str) -> str:
    """A stable fingerprint of a text, to know when it changed."""
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _empty() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float32)


class VectorTableBase:
    """One named matrix of unit vectors, with the id and text hash of each row (backend-neutral part)."""

    name: str

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.matrix = _empty()
        self._row: dict[str, int] = {}

    # --- what a backend provides ----------------------------------------------------------------

    def load(self) -> VectorTableBase:
        """Read the stored table if it changed since the last load; CorruptStoreError names what is wrong."""
        raise NotImplementedError

    def version(self) -> tuple:
        """A value that changes whenever the stored table changes (cheap: no vectors are read)."""
        raise NotImplementedError

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the stored table against other writers (threads and processes)."""
        raise NotImplementedError

    def _store(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        """Replace the stored table (loaded under `_exclusive` just before) by these rows, and adopt them."""
        raise NotImplementedError

    def _set_aside(self) -> None:
        """Move an unreadable stored table out of the way before it is rebuilt."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------

    def _adopt(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        if len(ids) != len(matrix) or len(hashes) != len(ids):
            raise ValueError(f"vector table {self.name!r}: {len(ids)} ids, {len(hashes)} hashes, {len(matrix)} rows")
        self.ids, self.hashes, self.matrix = list(ids), list(hashes), matrix
        self._row = {i: n for n, i in enumerate(self.ids)}

    def sync(self, texts: Mapping[str, str], encode: Encoder) -> int:
        """Make the table hold exactly `texts` (id -> text); encode only what is new or changed."""
        with self._lock, self._exclusive():
            self._load_or_reset()
            wanted = {i: text_hash(t) for i, t in texts.items()}
            keep = [n for n, i in enumerate(self.ids) if wanted.get(i) == self.hashes[n]]
            have = {self.ids[n] for n in keep}
            todo = [i for i in texts if i not in have]
            if not todo and len(keep) == len(self.ids):
                return 0
            ids = [self.ids[n] for n in keep]
            hashes = [self.hashes[n] for n in keep]
            parts = [self.matrix[keep]] if keep else []
            if todo:
                parts.append(np.asarray(encode([texts[i] for i in todo]), dtype=np.float32))
                ids += todo
                hashes += [wanted[i] for i in todo]
            matrix = np.concatenate(parts) if parts else _empty()
            self._store(ids, hashes, matrix)
            return len(todo)

    def _load_or_reset(self) -> None:
        try:
            self.load()
        except CorruptStoreError:
            self._set_aside()  # derived data: rebuilt from the store's texts, the bad copy kept aside
            self._adopt([], [], _empty())

    def replace(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        """Make the stored table exactly these rows (copying a workspace, restoring a backup)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        with self._lock, self._exclusive():
            self._load_or_reset()
            self._store(list(ids), list(hashes), matrix)

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of these ids (they must be present)."""
        return self.matrix[[self._row[i] for i in ids]]


class VectorTable(VectorTableBase):
    """A vector table in one file, `<folder>/<name>.npz`, replaced atomically on every change."""

    def __init__(self, folder: str | Path, name: str) -> None:
        super().__init__()
        self.name = name
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # a read-only home: reading finds no table; a write names the folder (write_atomic)
        remove_stale_temps(self.folder)  # what a writer killed mid-save left behind
        self.path = self.folder / f"{name}.npz"
        # Written by versions before one file held the whole table; read once, replaced on the next sync.
        self.legacy_paths = (self.folder / f"{name}.npy", self.folder / f"{name}.json")
        self._file_lock = FileLock(str(self.folder / f".{name}.lock"), thread_local=False)
        self._loaded_key: tuple | None = None

    def version(self) -> tuple:
        """The file's identity (inode, mtime, size), or that of the legacy pair."""
        out = []
        for path in (self.path, *self.legacy_paths):
            try:
                st = path.stat()
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def load(self) -> VectorTable:
        """Read the file if it changed since the last load."""
        with self._lock:
            if not self.path.exists() and all(p.exists() for p in self.legacy_paths):
                with self._file_lock:  # the legacy pair is two files: read them as one under the lock
                    self._load_legacy()
                return self
            try:
                f = open(self.path, "rb")
            except FileNotFoundError:
                return self
            with f:
                st = os.fstat(f.fileno())  # the identity of the file actually read, not of a later one
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                if key != self._loaded_key:
                    self._adopt(*self._parse(f, st.st_size))
                    self._loaded_key = key
            return self

    def _parse(self, f: io.BufferedReader, size: int) -> tuple[list[str], list[str], np.ndarray]:
        if size == 0:
            raise CorruptStoreError(f"{self.path} is empty (0 bytes); it is rebuilt from the store on the next sync.")
        try:
            with np.load(f, allow_pickle=False) as data:
                ids, hashes, matrix = data["ids"].tolist(), data["hashes"].tolist(), data["matrix"]
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise CorruptStoreError(f"{self.path} is unreadable ({e or type(e).__name__}); it is rebuilt from "
                                    "the store on the next sync.") from None
        if len(ids) != len(matrix) or len(hashes) != len(ids):
            raise CorruptStoreError(f"{self.path} holds {len(ids)} ids, {len(hashes)} hashes and {len(matrix)} "
                                    "rows; it is rebuilt from the store on the next sync.")
        return ids, hashes, matrix.astype(np.float32, copy=False)

    def _load_legacy(self) -> None:
        key = self.version()
        if key == self._loaded_key:
            return
        matrix_path, index_path = self.legacy_paths
        try:
            index = json.loads(index_path.read_bytes())
            with open(matrix_path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise ValueError("0 bytes")
                matrix = np.load(f, allow_pickle=False)
            ids, hashes = index["ids"], index["hashes"]
        except (ValueError, OSError, EOFError, KeyError, TypeError) as e:
            raise CorruptStoreError(f"{matrix_path} / {index_path} unreadable ({e}); they are rebuilt from the "
                                    "store on the next sync.") from None
        if len(ids) != len(matrix) or len(hashes) != len(ids):
            raise CorruptStoreError(f"{index_path} lists {len(ids)} ids but {matrix_path} has {len(matrix)} rows; "
                                    "they are rebuilt from the store on the next sync.")
        self._adopt(ids, hashes, matrix.astype(np.float32, copy=False))
        self._loaded_key = key

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._file_lock:
            yield

    def _store(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, matrix=matrix, ids=np.asarray(ids, dtype=str), hashes=np.asarray(hashes, dtype=str))
        write_atomic(self.path, buf.getvalue())
        for legacy in self.legacy_paths:
            legacy.unlink(missing_ok=True)  # the new file holds all of it
        self._adopt(ids, hashes, matrix)
        self._loaded_key = self._file_key()

    def _file_key(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _set_aside(self) -> None:
        for path in (self.path, *self.legacy_paths):
            if path.exists():
                os.replace(path, path.with_name(path.name + ".corrupt"))

    def copy_to(self, dest: Path) -> None:
        """Copy the table's file into folder `dest` as it is at this moment (for backups)."""
        with self._lock, self._file_lock:
            for path in (self.path, *self.legacy_paths):
                if path.exists():
                    write_atomic(dest / path.name, path.read_bytes())


def file_table_names(folder: str | Path) -> list[str]:
    """Names of the vector tables kept in a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = {p.stem for p in folder.glob("*.npz")}
    names |= {p.stem for p in folder.glob("*.npy") if p.with_suffix(".json").exists()}
    return sorted(names)
