"""The labeling queue: filters over the trajectory index, the order, the next item, and assignment.

Assignment ("needs my label", the default): each suite says how many different people must label each
of its trajectories (Suite.overlap, 1 to 5). A person is offered the items that still need annotators,
that they have not labeled, that no reviewer has resolved, and that nobody else has open (claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.feedback import claims
from agentlearn.feedback.index import TrajectoryIndex, mask_of, task_map, trajectory_index
from agentlearn.feedback.labels import LabelIndex, label_index
from agentlearn.verdicts import human_verdict
from agentlearn.workspace import Workspace
from storage.records import Resolution, Suite

ASSIGNED = "needs my label"
LABEL_STATUSES = ("any", ASSIGNED, "unlabeled", "labeled", "labeled by me", "not labeled by me", "human ≠ verifier")
VERIFIER_RESULTS = ("any", "success", "fail", "none")
ORDERS = ("newest", "oldest", "verifier fail first")


@dataclass(frozen=True)
class Filters:
    """What the labeling queue shows. Empty strings and 'any' mean no restriction."""

    suite: str = ""
    split: str = ""
    verifier: str = "any"  # any | success | fail | none
    status: str = "any"  # one of LABEL_STATUSES
    model: str = ""
    adapter: str = ""  # "" any; "(none)" base model only
    method: str = ""
    source: str = ""  # where the runs came from (feedback.episodes.SOURCES): agent, traces, collect, proxy, replay
    annotator: str = ""  # only trajectories this person labeled
    search: str = ""
    since: datetime | None = None  # only trajectories created at or after this time
    order: str = "newest"

    def __post_init__(self) -> None:
        if self.verifier not in VERIFIER_RESULTS:
            raise ValueError(f"verifier filter must be one of {VERIFIER_RESULTS}, not {self.verifier!r}")
        if self.status not in LABEL_STATUSES:
            raise ValueError(f"label status filter must be one of {LABEL_STATUSES}, not {self.status!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {self.order!r}")


def _human_disagrees(idx: TrajectoryIndex, labels: LabelIndex) -> np.ndarray:
    mask = np.zeros(len(idx), dtype=bool)
    for tid, by in labels.latest.items():
        n = idx.position.get(tid)
        if n is None or idx.verifier[n] < 0:
            continue
        mask[n] = (human_verdict(by.values()) == "success") != bool(idx.verifier[n])
    return mask


@dataclass
class Assignment:
    """What assignment needs besides labels: each suite's overlap and the trajectories a reviewer resolved."""

    version: tuple
    overlap: dict[str, int]  # suite -> distinct annotators each item needs
    resolved: set[str]


def assignment(ws: Workspace) -> Assignment:
    """The cached overlap per suite and resolved trajectories (rebuilt when suites or resolutions change)."""
    version = (ws.repo.version(Suite), ws.repo.version(Resolution))
    return ws.caches.get("assignment", version, lambda: Assignment(
        version, {s.name: s.overlap for s in ws.repo.all(Suite)},
        {r.trajectory_id for r in ws.repo.all(Resolution)}))


def overlap(ws: Workspace, suite: str) -> int:
    """How many different people must label each trajectory of this suite (1 unless set)."""
    return assignment(ws).overlap.get(suite, 1)


def set_overlap(ws: Workspace, suite: str, n: int, *, who: Identity) -> None:
    """Set a suite's annotators per item (1 to 5); `who` needs the edit_suite action (agentlearn.policy)."""
    policy.require(ws.repo, who, "edit_suite")
    if not isinstance(n, int) or not 1 <= n <= 5:
        raise ValueError(f"annotators per item must be a whole number from 1 to 5, not {n!r}")
    found = ws.repo.find(Suite, name=suite)
    if found:
        ws.repo.update(Suite, found[0].id, lambda s: s.model_copy(update={"overlap": n}))
    elif suite in task_suites(ws):  # tasks imported before suites had a record of their own
        ws.repo.put(Suite(name=suite, overlap=n))
    else:
        raise ValueError(f"no suite named {suite!r}: import its tasks first")


def task_suites(ws: Workspace) -> set[str]:
    """Suite names that tasks carry."""
    return {t.suite for t in task_map(ws).values()}


QUEUES_KEPT = 64  # filter combinations whose results are kept per store


def queue(ws: Workspace, filters: Filters, me: str = "") -> list[str]:
    """Trajectory ids that match the filters, in queue order (cached until trajectories or labels change).

    With status "needs my label", items someone else has open now are left out (claims expire, so this
    part is worked out on every call, on top of the cached rest).
    """
    idx = trajectory_index(ws)
    labels = label_index(ws)
    plan = assignment(ws)
    results = ws.caches.table("queues")
    key, versions = (filters, me), (idx.version, labels.version, plan.version)
    with ws.caches.lock:
        hit = results.get(key)
    if hit is not None and hit[0] == versions:
        _, hits, ids = hit
    else:
        hits = _queue(ws, idx, labels, filters, me, plan)
        ids = idx.ids[hits].tolist()
        with ws.caches.lock:
            if len(results) >= QUEUES_KEPT:
                results.clear()
            results[key] = (versions, hits, ids)
    if filters.status == ASSIGNED:
        others = [n for tid in claims.held_by_others(ws, me) if (n := idx.position.get(tid)) is not None]
        if others:
            # On row numbers, not ids: a few claims against a queue of 100k costs a millisecond.
            ids = idx.ids[hits[~np.isin(hits, others)]].tolist()
    return ids


def _annotators_needed(ws: Workspace, idx: TrajectoryIndex, plan: Assignment) -> np.ndarray:
    """Per trajectory, its suite's overlap (kept until trajectories or suites change: labels do not matter)."""
    def build() -> np.ndarray:
        need = np.ones(len(idx), dtype=np.int16)
        for suite, n in plan.overlap.items():
            if n != 1:
                need[idx.suite == suite] = n
        return need

    return ws.caches.get("annotators needed", (idx.version, plan.version), build)


def _needs_annotators(ws: Workspace, idx: TrajectoryIndex, labels: LabelIndex, plan: Assignment) -> np.ndarray:
    position = idx.position
    rows, people = [], []
    for tid, by in labels.latest.items():
        n = position.get(tid)
        if n is not None:
            rows.append(n)
            people.append(len(by))
    count = np.zeros(len(idx), dtype=np.int16)
    count[rows] = people
    return (count < _annotators_needed(ws, idx, plan)) & ~mask_of(idx, plan.resolved)


def _queue(ws: Workspace, idx: TrajectoryIndex, labels: LabelIndex, filters: Filters, me: str,
           plan: Assignment) -> np.ndarray:
    """Row numbers of the index that match, in queue order."""
    mask = np.ones(len(idx), dtype=bool)
    for column, value in (("suite", filters.suite), ("split", filters.split), ("model", filters.model),
                          ("method", filters.method), ("source", filters.source)):
        if value:
            mask &= getattr(idx, column) == value
    if filters.adapter:
        mask &= idx.adapter == ("" if filters.adapter == "(none)" else filters.adapter)
    if filters.verifier != "any":
        mask &= idx.verifier == {"success": 1, "fail": 0, "none": -1}[filters.verifier]
    if filters.status != "any":
        labeled = mask_of(idx, labels.latest.keys())
        mine = mask_of(idx, labels.by_annotator.get(me, ()))
        if filters.status == ASSIGNED:
            mask &= ~mine & _needs_annotators(ws, idx, labels, plan)
        else:
            mask &= {
                "unlabeled": ~labeled, "labeled": labeled, "labeled by me": mine, "not labeled by me": ~mine,
                "human ≠ verifier": _human_disagrees(idx, labels) if labels.latest else np.zeros(len(idx), bool),
            }[filters.status]
    if filters.annotator:
        mask &= mask_of(idx, labels.by_annotator.get(filters.annotator, ()))
    if filters.since is not None:
        since = filters.since if filters.since.tzinfo else filters.since.replace(tzinfo=UTC)
        mask &= idx.created >= since.timestamp()
    if filters.search.strip():
        mask &= pd.Series(idx.text, dtype=object).str.contains(filters.search.strip().lower(), regex=False).to_numpy()
    hits = np.flatnonzero(mask)
    if filters.order == "newest":
        hits = hits[::-1]
    elif filters.order == "verifier fail first":
        hits = hits[np.argsort(idx.verifier[hits] != 0, kind="stable")]
    return hits


def next_after(ids: Sequence[str], current: str | None, step: int = 1) -> str | None:
    """The id `step` places after `current` in `ids` (wraps; the first one if current is gone)."""
    if not ids:
        return None
    try:
        n = list(ids).index(current) if current is not None else -step
    except ValueError:
        return ids[0]
    return ids[(n + step) % len(ids)]


def facets(ws: Workspace) -> dict[str, list[str]]:
    """Distinct values for each filter's select box."""
    return {**trajectory_index(ws).facets, "annotator": sorted(label_index(ws).by_annotator)}
