"""An approximate nearest-neighbour index over a set of unit vectors, kept in files beside a vector table.

Exact search is one matrix-vector product over every row: a few milliseconds at 20k x 384 float32,
about 240 ms at 1M on two busy cores. An HNSW graph (hnswlib, inner product, which on unit vectors is
the cosine) answers a top-k in under a millisecond at 100k and 1M; its recall@5 against exact search
depends on the vectors (figures: bench/bench_retrieval.py, README "Exemplar retrieval").

Parameters and why (measured on bench_retrieval's bank: MiniLM vectors of templated requests, each
with many near copies, a harder case than spread-out vectors):
- M = 32 links per node: with M = 16 the graph of that bank fell apart into islands (recall@5 0.33 at
  100k; hnswlib could not return 36 neighbours at all); 32 gave 0.97 at ef 64 and 0.998 at ef 256 on
  50k, and costs 2 * 32 * 4 = 256 bytes a node beside the 1.5 KB vector.
- ef_construction = 100: the build is what costs at 1M on two cores, and grows with it; 200 did not
  mend M = 16 (recall@5 0.56 at ef 64 on 50k) and built slower than M = 32 at 100.
- ef (search) = EF_SEARCH = 128, raised to the number of candidates asked for when that is larger:
  recall@5 0.985 at 100k, under a millisecond a query.

Updated incrementally: rows whose id is new or whose text hash changed are added (add_items, into the
slots of deleted rows first), rows no longer wanted are marked deleted; the graph is built from scratch
only when there is no readable index, or it was built with another dimension or parameters.

Files, in `<folder>/`: `<name>.<generation>.hnsw` (hnswlib's own format) and `<name>.npz` (the id and
text hash of each label, the index file's name and size, the parameters). The index file is written
under a new name first, then the `.npz` is replaced atomically: it is the commit, so a crash leaves the
old pair or the new one. Anything missing, truncated or inconsistent is rebuilt from the vectors.
"""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from storage.files import remove_stale_temps, temp_name, write_atomic

M = 32
EF_CONSTRUCTION = 100
EF_SEARCH = 128
SPACE = "ip"  # inner product; the vectors are unit length, so this is the cosine


class AnnIndex:
    """One HNSW index over rows identified by string ids, persisted in `folder` under `name`."""

    def __init__(self, folder: str | Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self.meta_path = self.folder / f"{name}.npz"
        self._lock = threading.RLock()  # hnswlib must not be searched while items are added
        self._file_lock: FileLock | None = None
        self.index = None  # hnswlib.Index once built or loaded
        self.keys: list[str] = []  # label -> id ("" once deleted)
        self.hashes: list[str] = []  # label -> text hash of the row it holds
        self.label_of: dict[str, int] = {}
        self.builds = 0  # full builds by this object (a test counts them: updates must not rebuild)
        self.build_s = 0.0  # seconds the last full build took (the benchmark reports it)

    # --- keeping it equal to the rows -----------------------------------------------------------

    def sync(self, ids: Sequence[str], hashes: Sequence[str], matrix: np.ndarray) -> np.ndarray:
        """Make the index hold exactly these rows; returns each label's row in `ids` (-1: not a row)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        with self._lock, self._files_locked():
            if self.index is None:
                self._load(matrix.shape[1])
            if self.index is None or self.index.dim != matrix.shape[1]:
                self._build(ids, hashes, matrix)
                self._save()
            elif self._update(ids, hashes, matrix):
                self._save()
            rows = np.full(len(self.keys), -1, dtype=np.int64)
            rows[[self.label_of[i] for i in ids]] = np.arange(len(ids))
            return rows

    def _build(self, ids: Sequence[str], hashes: Sequence[str], matrix: np.ndarray) -> None:
        import hnswlib

        started = time.perf_counter()
        index = hnswlib.Index(space=SPACE, dim=matrix.shape[1])
        index.init_index(max_elements=max(len(ids), 1), ef_construction=EF_CONSTRUCTION, M=M,
                         allow_replace_deleted=True)
        if len(ids):
            index.add_items(matrix, np.arange(len(ids)))
        self.index, self.keys, self.hashes = index, list(ids), list(hashes)
        self.label_of = {i: n for n, i in enumerate(ids)}
        self.builds += 1
        self.build_s = time.perf_counter() - started

    def _update(self, ids: Sequence[str], hashes: Sequence[str], matrix: np.ndarray) -> bool:
        """Add new or changed rows, delete gone ones; False when the index already held them all."""
        wanted = dict(zip(ids, hashes, strict=True))
        gone = [i for i, label in self.label_of.items() if wanted.get(i) != self.hashes[label]]
        for i in gone:
            label = self.label_of.pop(i)
            self.index.mark_deleted(label)
            self.keys[label] = ""
        new = [n for n, i in enumerate(ids) if i not in self.label_of]
        if new:
            live = len(self.label_of) + len(new)
            if live > self.index.get_max_elements():
                self.index.resize_index(max(live, self.index.get_max_elements() * 3 // 2))
            labels = np.arange(len(self.keys), len(self.keys) + len(new))
            self.index.add_items(matrix[new], labels, replace_deleted=True)
            for n, label in zip(new, labels.tolist(), strict=True):
                self.keys.append(ids[n])
                self.hashes.append(hashes[n])
                self.label_of[ids[n]] = label
        return bool(gone or new)

    # --- searching ------------------------------------------------------------------------------

    def query(self, q: np.ndarray, k: int) -> np.ndarray | None:
        """Labels of (about) the k rows nearest to q, nearest first; fewer if fewer rows are held.

        None when the graph cannot give k (hnswlib finds fewer than k live rows from where the search
        enters, which happens for a large k when many rows are deleted): the caller searches exactly.
        """
        with self._lock:
            k = min(k, len(self.label_of))
            if self.index is None or k <= 0:
                return np.zeros(0, dtype=np.int64)
            self.index.set_ef(max(EF_SEARCH, k))
            try:
                labels, _ = self.index.knn_query(q.reshape(1, -1), k=k, num_threads=1)
            except RuntimeError:
                return None
            return labels[0].astype(np.int64)

    # --- files ----------------------------------------------------------------------------------

    def _files_locked(self) -> FileLock:
        if self._file_lock is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.folder)
            self._file_lock = FileLock(str(self.folder / f".{self.name}.lock"), thread_local=False)
        return self._file_lock

    def _load(self, dim: int) -> None:
        """Read the stored index if it is whole and was made with these parameters; else leave it unset."""
        import hnswlib

        try:
            with np.load(self.meta_path, allow_pickle=False) as data:
                keys, hashes = data["keys"].tolist(), data["hashes"].tolist()
                file, size = str(data["index_file"]), int(data["size"])
                params = data["params"].tolist()
            path = self.folder / file
            if params != [dim, M, EF_CONSTRUCTION] or path.stat().st_size != size or len(hashes) != len(keys):
                return
            index = hnswlib.Index(space=SPACE, dim=dim)
            index.load_index(str(path), max_elements=max(len(keys), 1), allow_replace_deleted=True)
        except (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile):
            return  # missing, truncated or from another version: rebuilt from the vectors
        self.index, self.keys, self.hashes = index, keys, hashes
        self.label_of = {i: n for n, i in enumerate(keys) if i}

    def _save(self) -> None:
        file = f"{self.name}.{time.time_ns()}.hnsw"  # a new name each save: the stored pair stays whole until the commit
        tmp = temp_name(self.folder / file)
        self.index.save_index(str(tmp))
        os.replace(tmp, self.folder / file)
        buf = io.BytesIO()
        np.savez(buf, keys=np.asarray(self.keys, dtype=str), hashes=np.asarray(self.hashes, dtype=str),
                 index_file=np.asarray(file), size=np.asarray((self.folder / file).stat().st_size),
                 params=np.asarray([self.index.dim, M, EF_CONSTRUCTION]))
        write_atomic(self.meta_path, buf.getvalue())
        for old in self.folder.glob(f"{self.name}.*.hnsw"):
            if old.name != file:
                old.unlink(missing_ok=True)
