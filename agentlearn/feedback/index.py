"""Column indices over the store that every labeling view reads: the trajectory index and the task map.

At 100k trajectories, building Python objects per request is too slow, so a lightweight column index
(one NumPy array per field) is built once per change of the trajectory table and filters run on the
arrays. Each index is kept in the workspace's caches (agentlearn.caches) beside a version tuple from
the store, so a write by another process or workspace (its version changes) makes the next read rebuild.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agentlearn import verdicts
from agentlearn.tasks import request_text
from agentlearn.workspace import Workspace
from storage.files import write_atomic
from storage.records import Task, Trajectory


def task_map(ws: Workspace) -> dict[str, Task]:
    """Every task by id (cached until the task table changes)."""
    return ws.caches.get("tasks", ws.repo.version(Task), lambda: {t.id: t for t in ws.repo.all(Task)})


def trajectory(ws: Workspace, trajectory_id: str | None) -> Trajectory | None:
    """One stored run by id (None when there is none: a stale link, a run removed meanwhile)."""
    return ws.repo.get(Trajectory, trajectory_id) if trajectory_id else None


@dataclass
class TrajectoryIndex:
    """Column arrays over all trajectories in the store's order (oldest first)."""

    version: tuple
    ids: np.ndarray
    task_id: np.ndarray
    suite: np.ndarray
    split: np.ndarray
    created: np.ndarray  # seconds since the epoch (UTC), float64
    verifier: np.ndarray  # 1 success, 0 fail, -1 no verdict
    category: np.ndarray  # the error category the verifier's fail implies ("" otherwise: verdicts.verifier_category)
    model: np.ndarray
    adapter: np.ndarray
    method: np.ndarray
    source: np.ndarray
    output_hash: np.ndarray  # to tell equal answers apart without keeping them
    text: np.ndarray  # lower-cased request + output + call (and an episode's calls and answers), for search
    facets: dict[str, list[str]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)
    unsaved: int = 0  # rows changed since the index file was written

    def __len__(self) -> int:
        return len(self.ids)


FIELDS = ("ids", "task_id", "suite", "split", "created", "verifier", "category", "model", "adapter", "method",
          "source", "output_hash", "text")
DTYPES = {"created": np.float64, "verifier": np.int8, "output_hash": np.int64}
FACETS = ("suite", "split", "model", "adapter", "method", "source")
INDEX_FORMAT = 4  # bump when the columns or facets change, so an old file on disk is not used
SAVE_INDEX_FROM = 5000  # trajectories; smaller stores rebuild faster than they load from the file
RESAVE_SHARE = 0.05  # write the file again once this share of its rows changed since it was written


def _steps_text(t: Trajectory) -> str:
    """The tools an episode called and the answers it gave on the way, so that a search finds them too."""
    if len(t.steps) < 2:
        return ""
    said = [c.name for s in t.steps for c in s.calls] + [s.answer for s in t.steps if s.answer and s.answer != t.output]
    return "\n" + " ".join(said)


def _columns(ws: Workspace, trajectories: Iterable[Trajectory]) -> dict[str, np.ndarray]:
    """The index's columns for these trajectories, in their order (read once, each dropped after its row)."""
    tasks = task_map(ws)
    requests = {tid: request_text(t.input) for tid, t in tasks.items()}
    rows = [(t.id, t.task_id, t.suite, t.split, t.created.timestamp(),
             -1 if t.verdict is None else int(t.verdict.success),
             verdicts.verifier_category(t, tasks.get(t.task_id)) if t.verdict is not None and not t.verdict.success
             else "",
             t.model, t.adapter, t.memory.method, t.source,
             int.from_bytes(hashlib.blake2b(t.output.encode(), digest_size=8).digest(), "little", signed=True),
             f"{requests.get(t.task_id, '')}\n{t.output}\n{t.tool_call.name if t.tool_call else ''}"
             f"{_steps_text(t)}".lower())
            for t in trajectories]
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(FIELDS)
    return {name: np.array(col, dtype=DTYPES.get(name, object)) for name, col in zip(FIELDS, cols, strict=True)}


def _positions(ids: np.ndarray) -> dict[str, int]:
    return dict(zip(ids.tolist(), range(len(ids)), strict=True))  # twice as fast as a comprehension at 1M


def _facets(columns: dict[str, np.ndarray]) -> dict[str, list[str]]:
    return {name: sorted(str(v) for v in pd.unique(columns[name]) if v) for name in FACETS}


def _index(version: tuple, columns: dict[str, np.ndarray], unsaved: int) -> TrajectoryIndex:
    index = TrajectoryIndex(version=version, unsaved=unsaved, **columns)
    index.position = _positions(index.ids)
    index.facets = _facets(columns)
    return index


def _build_trajectory_index(ws: Workspace, version: tuple) -> TrajectoryIndex:
    """Every trajectory read once: without keeping the parsed records where the store can list them all
    with the version they are at (PostgreSQL), else from the store's own records (read after `version`
    was taken, so that a write in between makes the next read update again rather than be missed)."""
    every = ws.repo.changes_since(Trajectory, ())
    runs, at = every if every is not None else (ws.repo.all(Trajectory), version[0])
    columns = _columns(ws, runs)
    return _index((at, version[1]), columns, unsaved=len(columns["ids"]))


def _updated(ws: Workspace, old: TrajectoryIndex, version: tuple) -> TrajectoryIndex | None:
    """`old` brought up to the store with only the trajectories written since it was built (a dashboard
    beside collectors that keep adding runs, or a restart after them); None when that cannot be done (the
    tasks changed, a run was deleted, or the store keeps no write order)."""
    if old.version[1] != version[1]:
        return None
    changes = ws.repo.changes_since(Trajectory, old.version[0])
    if changes is None:
        return None
    written, trajectories_at = list(changes[0]), changes[1]
    if not written:
        return dataclasses.replace(old, version=(trajectories_at, version[1]))
    new = _columns(ws, written)
    at = np.array([old.position.get(i, -1) for i in new["ids"]], dtype=np.int64)
    replaced, added = at >= 0, at < 0
    columns = {}
    for name in FIELDS:
        column = getattr(old, name)
        if replaced.any():
            column = column.copy()  # readers may hold the old index (and a file's arrays are read-only)
            column[at[replaced]] = new[name][replaced]
        columns[name] = np.concatenate([column, new[name][added]])
    version = (trajectories_at, version[1])
    unsaved = old.unsaved + len(written)
    moved = replaced.any() and (new["created"][replaced] != old.created[at[replaced]]).any()
    if moved or (added.any() and len(old) and new["created"][added].min() < old.created[-1]):
        order = np.lexsort((columns["ids"].astype(str), columns["created"]))  # the store's order: oldest first
        return _index(version, {name: column[order] for name, column in columns.items()}, unsaved)
    # Appended after the old rows (runs arrive newest last): the old positions and facets still hold.
    index = TrajectoryIndex(version=version, unsaved=unsaved, **columns)
    index.position = dict(old.position)
    index.position.update((i, len(old) + n) for n, i in enumerate(new["ids"][added]))
    index.facets = {name: sorted(set(old.facets.get(name, [])) | set(values))
                    for name, values in _facets(new).items()}
    return index


def _index_files(ws: Workspace) -> tuple[Path, Path]:
    folder = ws.settings.home / "cache"
    return folder / "trajectory-index.parquet", folder / "trajectory-index.json"


def _load_index_file(ws: Workspace) -> TrajectoryIndex | None:
    """The index saved by an earlier process (restarts stay fast), at the store version it was saved at."""
    table, meta = _index_files(ws)
    try:
        saved = json.loads(meta.read_text())
        if saved.get("format") != INDEX_FORMAT or saved.get("store") != _store_key(ws):
            return None
        df = pd.read_parquet(table)
        version = _tuples(saved["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    index = TrajectoryIndex(version=version, **{name: df[name].to_numpy(dtype=DTYPES.get(name, object))
                                                for name in FIELDS})
    index.position = _positions(index.ids)
    index.facets = saved["facets"]
    return index


def _tuples(value):
    """A version read back from JSON: its lists as the tuples the store reported."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _store_key(ws: Workspace) -> str:
    """Which store an index file was built from: a folder or a database URL, hashed (the file never holds
    a password)."""
    return hashlib.sha256((ws.settings.database_url or str(ws.settings.home)).encode()).hexdigest()[:16]


def _save_index_file(ws: Workspace, index: TrajectoryIndex) -> None:
    table, meta = _index_files(ws)
    try:
        table.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(table, pd.DataFrame({name: getattr(index, name) for name in FIELDS}).to_parquet())
        write_atomic(meta, json.dumps({"format": INDEX_FORMAT, "store": _store_key(ws), "version": index.version,
                                       "facets": index.facets}).encode())
        index.unsaved = 0
    except (OSError, ValueError):
        pass  # only a cache: the next start rebuilds it


def trajectory_index(ws: Workspace) -> TrajectoryIndex:
    """The cached column index of all trajectories: brought up to date with the runs written since it was
    built where the store can list them, rebuilt when that cannot be done."""
    version = (ws.repo.version(Trajectory), ws.repo.version(Task))

    def build() -> TrajectoryIndex:
        old = ws.caches.previous("trajectories")  # this process's index, else the one a restart left
        if old is None:
            old = _load_index_file(ws)
        index = None if old is None else old if old.version == version else _updated(ws, old, version)
        if index is None:
            index = _build_trajectory_index(ws, version)
            # The parsed store is millions of long-lived objects; left to the cyclic garbage collector,
            # every full collection walks them again and a page run takes seconds instead of 0.1 s.
            gc.collect()
            gc.freeze()
        if len(index) >= SAVE_INDEX_FROM and index.unsaved > RESAVE_SHARE * len(index):
            _save_index_file(ws, index)
        return index

    return ws.caches.get("trajectories", version, build)


def mask_of(idx: TrajectoryIndex, wanted) -> np.ndarray:
    """A boolean mask over the index: which trajectories are in `wanted` (ids not in the index are ignored).

    Looks each wanted id up in `position` instead of hashing all ids (pd.Index.isin): labels cover a
    small part of a big store, and this runs on every submit.
    """
    mask = np.zeros(len(idx), dtype=bool)
    position = idx.position
    rows = [n for tid in wanted if (n := position.get(tid)) is not None]
    if rows:
        mask[rows] = True
    return mask
