"""Column indices over the store that every labeling view reads: the trajectory index and the task map.

At 100k trajectories, building Python objects per request is too slow, so a lightweight column index
(one NumPy array per field) is built once per change of the trajectory table and filters run on the
arrays. Each index is kept in the workspace's caches (agentlearn.caches) beside a version tuple from
the store, so a write by another process or workspace (its version changes) makes the next read rebuild.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
    model: np.ndarray
    adapter: np.ndarray
    method: np.ndarray
    source: np.ndarray
    output_hash: np.ndarray  # to tell equal answers apart without keeping them
    text: np.ndarray  # lower-cased request + output + call (and an episode's calls and answers), for search
    facets: dict[str, list[str]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


FIELDS = ("ids", "task_id", "suite", "split", "created", "verifier", "model", "adapter", "method", "source",
          "output_hash", "text")
INDEX_FORMAT = 3  # bump when the columns or facets change, so an old file on disk is not used
SAVE_INDEX_FROM = 5000  # trajectories; smaller stores rebuild faster than they load from the file


def _steps_text(t: Trajectory) -> str:
    """The tools an episode called and the answers it gave on the way, so that a search finds them too."""
    if len(t.steps) < 2:
        return ""
    said = [c.name for s in t.steps for c in s.calls] + [s.answer for s in t.steps if s.answer and s.answer != t.output]
    return "\n" + " ".join(said)


def _build_trajectory_index(ws: Workspace, version: tuple) -> TrajectoryIndex:
    tasks = task_map(ws)
    requests = {tid: request_text(t.input) for tid, t in tasks.items()}
    rows = [(t.id, t.task_id, t.suite, t.split, t.created.timestamp(),
             -1 if t.verdict is None else int(t.verdict.success), t.model, t.adapter, t.memory.method, t.source,
             hashlib.blake2b(t.output.encode(), digest_size=8).digest(),
             f"{requests.get(t.task_id, '')}\n{t.output}\n{t.tool_call.name if t.tool_call else ''}"
             f"{_steps_text(t)}".lower())
            for t in ws.repo.all(Trajectory)]
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(FIELDS)
    dtypes = {"created": np.float64, "verifier": np.int8}
    arrays = {name: np.array(col, dtype=dtypes.get(name, object)) for name, col in zip(FIELDS, cols, strict=True)}
    arrays["output_hash"] = np.array([int.from_bytes(b, "little", signed=True) for b in arrays["output_hash"]],
                                     dtype=np.int64)
    index = TrajectoryIndex(version=version, **arrays)
    index.position = {i: n for n, i in enumerate(index.ids)}
    index.facets = {name: sorted(str(v) for v in pd.unique(getattr(index, name)) if v)
                    for name in ("suite", "split", "model", "adapter", "method", "source")}
    return index


def _index_files(ws: Workspace) -> tuple[Path, Path]:
    folder = ws.settings.home / "cache"
    return folder / "trajectory-index.parquet", folder / "trajectory-index.json"


def _load_index_file(ws: Workspace, version: tuple) -> TrajectoryIndex | None:
    """The index saved by an earlier process, if the store has not changed since (restarts stay fast)."""
    table, meta = _index_files(ws)
    try:
        saved = json.loads(meta.read_text())
        if saved.get("format") != INDEX_FORMAT or saved.get("version") != json.loads(json.dumps(version)):
            return None
        df = pd.read_parquet(table)
    except (OSError, ValueError, KeyError):
        return None
    dtypes = {"created": np.float64, "verifier": np.int8, "output_hash": np.int64}
    index = TrajectoryIndex(version=version, **{name: df[name].to_numpy(dtype=dtypes.get(name, object))
                                                for name in FIELDS})
    index.position = {i: n for n, i in enumerate(index.ids)}
    index.facets = saved["facets"]
    return index


def _save_index_file(ws: Workspace, index: TrajectoryIndex) -> None:
    table, meta = _index_files(ws)
    try:
        table.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(table, pd.DataFrame({name: getattr(index, name) for name in FIELDS}).to_parquet())
        write_atomic(meta, json.dumps({"format": INDEX_FORMAT, "version": index.version,
                                       "facets": index.facets}).encode())
    except (OSError, ValueError):
        pass  # only a cache: the next start rebuilds it


def trajectory_index(ws: Workspace) -> TrajectoryIndex:
    """The cached column index of all trajectories (rebuilt when the trajectory or task table changes)."""
    version = (ws.repo.version(Trajectory), ws.repo.version(Task))

    def build() -> TrajectoryIndex:
        index = _load_index_file(ws, version)
        if index is None:
            index = _build_trajectory_index(ws, version)
            if len(index) >= SAVE_INDEX_FROM:
                _save_index_file(ws, index)
            # The parsed store is millions of long-lived objects; left to the cyclic garbage collector,
            # every full collection walks them again and a page run takes seconds instead of 0.1 s.
            gc.collect()
            gc.freeze()
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
