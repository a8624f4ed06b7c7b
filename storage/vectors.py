"""Embeddings kept beside the TinyDB files: a float32 matrix plus the ids and text hashes.

Stored outside TinyDB because JSON would make them ten times bigger and slow to load. Updated
incrementally: only ids whose text is new or changed are encoded again.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from storage.errors import CorruptStoreError
from storage.tinydb_store import write_atomic

Encoder = Callable[[Sequence[str]], np.ndarray]


def text_hash(text: str) -> str:
    """A stable fingerprint of a text, to know when it changed."""
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class VectorTable:
    """One named matrix of unit vectors, with the id and text hash of each row."""

    def __init__(self, folder: str | Path, name: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.matrix_path = self.folder / f"{name}.npy"
        self.index_path = self.folder / f"{name}.json"
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(self.folder / f".{name}.lock"))
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._row: dict[str, int] = {}
        self._loaded_key: tuple | None = None

    def _disk_key(self) -> tuple | None:
        try:
            a, b = self.matrix_path.stat(), self.index_path.stat()
        except FileNotFoundError:
            return None
        return (a.st_ino, a.st_mtime_ns, b.st_ino, b.st_mtime_ns)

    def load(self) -> VectorTable:
        """Read the files if they changed since the last load."""
        key = self._disk_key()
        if key is None or key == self._loaded_key:
            return self
        try:
            index = json.loads(self.index_path.read_text())
            matrix = np.load(self.matrix_path)
        except (ValueError, OSError) as e:
            raise CorruptStoreError(f"{self.matrix_path} / {self.index_path} unreadable: {e}") from None
        if len(index["ids"]) != len(matrix):
            raise CorruptStoreError(
                f"{self.index_path} lists {len(index['ids'])} ids but {self.matrix_path} has "
                f"{len(matrix)} rows; left as they are."
            )
        self.ids, self.hashes, self.matrix = index["ids"], index["hashes"], matrix.astype(np.float32)
        self._row = {i: n for n, i in enumerate(self.ids)}
        self._loaded_key = key
        return self

    def sync(self, texts: Mapping[str, str], encode: Encoder) -> int:
        """Make the table hold exactly `texts` (id -> text); encode only what is new or changed."""
        with self._lock, self._file_lock:
            self.load()
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
                new = np.asarray(encode([texts[i] for i in todo]), dtype=np.float32)
                parts.append(new)
                ids += todo
                hashes += [wanted[i] for i in todo]
            matrix = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
            self._save(ids, hashes, matrix)
            return len(todo)

    def _save(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, matrix)
        write_atomic(self.matrix_path, buf.getvalue())
        write_atomic(self.index_path, json.dumps({"ids": ids, "hashes": hashes}).encode())
        self.ids, self.hashes, self.matrix = ids, hashes, matrix
        self._row = {i: n for n, i in enumerate(ids)}
        self._loaded_key = self._disk_key()

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of these ids (they must be present)."""
        return self.matrix[[self._row[i] for i in ids]]
