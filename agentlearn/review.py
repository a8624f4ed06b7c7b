"""Human review of trajectories: the labeling queue, filters, search, labels, agreement and progress.

Pages call these functions and only render. At 100k trajectories, building Python objects per
request is too slow, so a lightweight column index (one NumPy array per field) is built once per
change of the trajectory table and filters run on the arrays. Labels get the same treatment, and a
label written through `submit_label` is folded into the cached index without a rebuild.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from agentlearn.verdicts import human_verdict
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Label, Task, Trajectory
from storage.tinydb_store import write_atomic

LABEL_STATUSES = ("any", "unlabeled", "labeled", "labeled by me", "not labeled by me", "human ≠ verifier")
VERIFIER_RESULTS = ("any", "success", "fail", "none")
ORDERS = ("newest", "oldest", "verifier fail first")
SIMILAR_TABLE = "trajectories"

_lock = threading.RLock()
_cache: dict[tuple[int, str], tuple[tuple, object]] = {}


def _cached(ws: Workspace, name: str, version: tuple, build):
    """Return build() cached per repository and name until `version` changes."""
    key = (id(ws.repo), name)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
    value = build()
    with _lock:
        _cache[key] = (version, value)
    return value


def clear_caches() -> None:
    """Forget every cached index (tests; another repository opened at the same address)."""
    with _lock:
        _cache.clear()
        _queues.clear()


# --- indices -------------------------------------------------------------------------------------


def task_map(ws: Workspace) -> dict[str, Task]:
    """Every task by id (cached until the task table changes)."""
    return _cached(ws, "tasks", ws.repo.version(Task), lambda: {t.id: t for t in ws.repo.all(Task)})


def task_text(task: Task | None) -> str:
    """The request a person reads first: the last user message of the task."""
    if task is None:
        return ""
    users = [m.content for m in task.input if m.role == "user"]
    return users[-1] if users else (task.input[-1].content if task.input else "")


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
    text: np.ndarray  # lower-cased request + output + call, for search
    facets: dict[str, list[str]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


FIELDS = ("ids", "task_id", "suite", "split", "created", "verifier", "model", "adapter", "method", "source",
          "output_hash", "text")
INDEX_FORMAT = 1  # bump when the columns change, so an old file on disk is not used
SAVE_INDEX_FROM = 5000  # trajectories; smaller stores rebuild faster than they load from the file


def _build_trajectory_index(ws: Workspace, version: tuple) -> TrajectoryIndex:
    tasks = task_map(ws)
    requests = {tid: task_text(t) for tid, t in tasks.items()}
    rows = [(t.id, t.task_id, t.suite, t.split, t.created.timestamp(),
             -1 if t.verdict is None else int(t.verdict.success), t.model, t.adapter, t.memory.method, t.source,
             hashlib.blake2b(t.output.encode(), digest_size=8).digest(),
             f"{requests.get(t.task_id, '')}\n{t.output}\n{t.tool_call.name if t.tool_call else ''}".lower())
            for t in ws.repo.all(Trajectory)]
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(FIELDS)
    dtypes = {"created": np.float64, "verifier": np.int8}
    arrays = {name: np.array(col, dtype=dtypes.get(name, object)) for name, col in zip(FIELDS, cols, strict=True)}
    arrays["output_hash"] = np.array([int.from_bytes(b, "little", signed=True) for b in arrays["output_hash"]],
                                     dtype=np.int64)
    index = TrajectoryIndex(version=version, **arrays)
    index.position = {i: n for n, i in enumerate(index.ids)}
    index.facets = {name: sorted(str(v) for v in pd.unique(getattr(index, name)) if v)
                    for name in ("suite", "split", "model", "adapter", "method")}
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
        pd.DataFrame({name: getattr(index, name) for name in FIELDS}).to_parquet(table.with_suffix(".tmp"))
        os.replace(table.with_suffix(".tmp"), table)
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

    return _cached(ws, "trajectories", version, build)


@dataclass
class LabelIndex:
    """The latest label of each annotator on each trajectory, plus everyone who labeled."""

    version: tuple
    latest: dict[str, dict[str, Label]]  # trajectory id -> annotator -> latest label
    by_annotator: dict[str, set[str]]  # annotator -> trajectory ids
    count: int

    def add(self, label: Label) -> None:
        """Fold one label in (it is newer than everything already seen)."""
        self.latest.setdefault(label.trajectory_id, {})[label.annotator] = label
        self.by_annotator.setdefault(label.annotator, set()).add(label.trajectory_id)
        self.count += 1


def _build_label_index(labels: Sequence[Label], version: tuple) -> LabelIndex:
    index = LabelIndex(version=version, latest={}, by_annotator={}, count=0)
    for label in labels:  # oldest first, so later labels replace earlier ones
        index.add(label)
    return index


def label_index(ws: Workspace) -> LabelIndex:
    """The cached label index (rebuilt when another writer changed the label table)."""
    version = ws.repo.version(Label)
    return _cached(ws, "labels", version, lambda: _build_label_index(ws.repo.all(Label), version))


# --- the queue -----------------------------------------------------------------------------------


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


def _isin(ids: np.ndarray, wanted: Iterable[str]) -> np.ndarray:
    wanted = list(wanted)
    if not wanted:
        return np.zeros(len(ids), dtype=bool)
    return pd.Index(ids).isin(wanted)


def _human_disagrees(idx: TrajectoryIndex, labels: LabelIndex) -> np.ndarray:
    mask = np.zeros(len(idx), dtype=bool)
    for tid, by in labels.latest.items():
        n = idx.position.get(tid)
        if n is None or idx.verifier[n] < 0:
            continue
        mask[n] = (human_verdict(by.values()) == "success") != bool(idx.verifier[n])
    return mask


_queues: dict[tuple, tuple[tuple, list[str]]] = {}


def queue(ws: Workspace, filters: Filters, me: str = "") -> list[str]:
    """Trajectory ids that match the filters, in queue order (cached until trajectories or labels change)."""
    idx = trajectory_index(ws)
    labels = label_index(ws)
    key, versions = (id(ws.repo), filters, me), (idx.version, labels.version)
    with _lock:
        hit = _queues.get(key)
    if hit is not None and hit[0] == versions:
        return hit[1]
    ids = _queue(idx, labels, filters, me)
    with _lock:
        if len(_queues) > 64:
            _queues.clear()
        _queues[key] = (versions, ids)
    return ids


def _queue(idx: TrajectoryIndex, labels: LabelIndex, filters: Filters, me: str) -> list[str]:
    mask = np.ones(len(idx), dtype=bool)
    for column, value in (("suite", filters.suite), ("split", filters.split), ("model", filters.model),
                          ("method", filters.method)):
        if value:
            mask &= getattr(idx, column) == value
    if filters.adapter:
        mask &= idx.adapter == ("" if filters.adapter == "(none)" else filters.adapter)
    if filters.verifier != "any":
        mask &= idx.verifier == {"success": 1, "fail": 0, "none": -1}[filters.verifier]
    if filters.status != "any":
        labeled = _isin(idx.ids, labels.latest.keys())
        mine = _isin(idx.ids, labels.by_annotator.get(me, ()))
        mask &= {
            "unlabeled": ~labeled, "labeled": labeled, "labeled by me": mine, "not labeled by me": ~mine,
            "human ≠ verifier": _human_disagrees(idx, labels) if labels.latest else np.zeros(len(idx), bool),
        }[filters.status]
    if filters.annotator:
        mask &= _isin(idx.ids, labels.by_annotator.get(filters.annotator, ()))
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
    return idx.ids[hits].tolist()


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


# --- labels --------------------------------------------------------------------------------------


def submit_label(ws: Workspace, trajectory_id: str, annotator: str, verdict: str, score: int | None = None,
                 comment: str = "", step_flags: Sequence[int] = ()) -> Label:
    """Store one person's label (a new record each time: nothing is overwritten)."""
    annotator = annotator.strip()
    if not annotator:
        raise ValueError("annotator name is empty: choose a name in the sidebar before labeling")
    if verdict not in ("success", "fail"):
        raise ValueError(f"verdict must be 'success' or 'fail', not {verdict!r}")
    traj = ws.repo.get(Trajectory, trajectory_id)
    if traj is None:
        raise ValueError(f"no trajectory with id {trajectory_id!r}")
    bad = [i for i in step_flags if not 0 <= i < len(traj.steps)]
    if bad:
        raise ValueError(f"step flags {bad} are outside the trajectory's {len(traj.steps)} steps")
    label = Label(trajectory_id=trajectory_id, annotator=annotator, verdict=verdict, score=score,
                  comment=comment, step_flags=sorted(set(step_flags)))
    _write_labels(ws, [label])
    return label


def _write_labels(ws: Workspace, labels: list[Label]) -> None:
    before = label_index(ws)
    ws.repo.put_many(labels)
    after = ws.repo.version(Label)
    # Fold the new labels into a copy of the index instead of re-reading every label. Labels are
    # only ever added, so an unchanged total proves nobody else wrote meanwhile; otherwise the next
    # read rebuilds from the store.
    if ws.repo.count(Label) != before.count + len(labels):
        return
    latest = dict(before.latest)
    by_annotator = dict(before.by_annotator)
    for label in labels:
        latest[label.trajectory_id] = {**latest.get(label.trajectory_id, {}), label.annotator: label}
    for name in {lb.annotator for lb in labels}:
        by_annotator[name] = set(by_annotator.get(name, ())) | {lb.trajectory_id for lb in labels
                                                                if lb.annotator == name}
    index = LabelIndex(version=after, latest=latest, by_annotator=by_annotator, count=before.count + len(labels))
    with _lock:
        _cache[(id(ws.repo), "labels")] = (after, index)


def latest_label(ws: Workspace, trajectory_id: str, annotator: str | None = None) -> Label | None:
    """The newest label on a trajectory (by this annotator, if given)."""
    by = label_index(ws).latest.get(trajectory_id, {})
    if annotator is not None:
        return by.get(annotator)
    return max(by.values(), key=lambda lb: lb.created) if by else None


def labels_of(ws: Workspace, trajectory_id: str) -> dict[str, Label]:
    """Each annotator's latest label on one trajectory."""
    return dict(label_index(ws).latest.get(trajectory_id, {}))


def bulk_accept_verifier(ws: Workspace, trajectory_ids: Sequence[str], annotator: str,
                         overwrite_mine: bool = False) -> int:
    """Label each trajectory with its verifier verdict, as `annotator`; returns how many labels were written.

    Skips trajectories without a verdict and (unless overwrite_mine) those this annotator already labeled.
    """
    annotator = annotator.strip()
    if not annotator:
        raise ValueError("annotator name is empty: choose a name in the sidebar before a bulk action")
    todo = bulk_accept_count(ws, trajectory_ids, annotator, overwrite_mine)
    idx = trajectory_index(ws)
    labels = [Label(trajectory_id=tid, annotator=annotator,
                    verdict="success" if idx.verifier[idx.position[tid]] == 1 else "fail",
                    comment="accepted the verifier's verdict (bulk)") for tid in todo]
    for start in range(0, len(labels), 5000):
        _write_labels(ws, labels[start:start + 5000])
    return len(labels)


def bulk_accept_count(ws: Workspace, trajectory_ids: Sequence[str], annotator: str,
                      overwrite_mine: bool = False) -> list[str]:
    """The trajectories a bulk accept would label (to say how many before asking to confirm)."""
    idx = trajectory_index(ws)
    mine = label_index(ws).by_annotator.get(annotator.strip(), set())
    return [tid for tid in trajectory_ids
            if (n := idx.position.get(tid)) is not None and idx.verifier[n] >= 0
            and (overwrite_mine or tid not in mine)]


# --- find similar --------------------------------------------------------------------------------


def similar(ws: Workspace, trajectory_id: str, k: int = 10, among: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """The k trajectories whose request and output read most like this one's (cosine, embeddings).

    Embeds trajectories not seen before (incrementally), so the first call on a big store takes longer.
    """
    idx = trajectory_index(ws)
    if trajectory_id not in idx.position:
        raise ValueError(f"no trajectory with id {trajectory_id!r}")
    table = ws.vectors(SIMILAR_TABLE)
    if len(table.ids) != len(idx) or trajectory_id not in set(table.ids):
        # sync() only encodes ids that are new or whose text changed.
        table.sync(dict(zip(idx.ids.tolist(), idx.text.tolist(), strict=True)), ws.encoder)
    query = table.rows([trajectory_id])[0]
    scores = table.matrix @ query
    ids = np.array(table.ids, dtype=object)
    if among is not None:
        keep = pd.Index(ids).isin(list(among))
        ids, scores = ids[keep], scores[keep]
    order = np.argsort(-scores)
    out = [(str(ids[n]), float(scores[n])) for n in order if ids[n] != trajectory_id]
    return out[:k]


# --- agreement and progress ----------------------------------------------------------------------


@dataclass
class Agreement:
    """Cohen's kappa with how many items it rests on (kappa is None when undefined)."""

    kappa: float | None
    n: int
    agree: float | None  # raw fraction of agreement


def _kappa(a: list[str], b: list[str]) -> Agreement:
    from sklearn.metrics import cohen_kappa_score

    if not a:
        return Agreement(None, 0, None)
    agree = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    if len(set(a) | set(b)) < 2:
        return Agreement(None, len(a), agree)  # one class only: kappa is undefined
    return Agreement(float(cohen_kappa_score(a, b, labels=["success", "fail"])), len(a), agree)


def kappa_human_verifier(ws: Workspace, suite: str = "") -> Agreement:
    """Agreement between the people's verdict and the automatic verifier on labeled trajectories."""
    idx = trajectory_index(ws)
    human, machine = [], []
    for tid, by in label_index(ws).latest.items():
        n = idx.position.get(tid)
        if n is None or idx.verifier[n] < 0 or (suite and idx.suite[n] != suite):
            continue
        human.append(human_verdict(by.values()))
        machine.append("success" if idx.verifier[n] == 1 else "fail")
    return _kappa(human, machine)


def kappa_between_people(ws: Workspace, suite: str = "") -> Agreement:
    """Agreement between pairs of people on trajectories both labeled (pooled over all pairs)."""
    idx = trajectory_index(ws)
    a, b = [], []
    for tid, by in label_index(ws).latest.items():
        n = idx.position.get(tid)
        if len(by) < 2 or (suite and (n is None or idx.suite[n] != suite)):
            continue
        people = sorted(by)
        for i, p in enumerate(people):
            for q in people[i + 1:]:
                a.append(by[p].verdict)
                b.append(by[q].verdict)
    return _kappa(a, b)


def progress_by_suite(ws: Workspace) -> pd.DataFrame:
    """Per suite: trajectories, how many are labeled, the share, and the verifier's success rate."""
    idx = trajectory_index(ws)
    labeled = _isin(idx.ids, label_index(ws).latest.keys())
    df = pd.DataFrame({"suite": idx.suite, "labeled": labeled, "verified": idx.verifier >= 0,
                       "success": idx.verifier == 1})
    if df.empty:
        return pd.DataFrame(columns=["suite", "trajectories", "labeled", "labeled %", "verifier success %"])
    g = df.groupby("suite")
    out = pd.DataFrame({"trajectories": g.size(), "labeled": g["labeled"].sum()})
    out["labeled %"] = (100 * out["labeled"] / out["trajectories"]).round(1)
    out["verifier success %"] = (100 * g["success"].sum() / g["verified"].sum().clip(lower=1)).round(1)
    return out.reset_index()


def progress_by_annotator(ws: Workspace) -> pd.DataFrame:
    """Per annotator: trajectories labeled, labels written, share judged success, last label time."""
    rows = []
    latest = label_index(ws).latest
    per: dict[str, list[Label]] = {}
    for by in latest.values():
        for name, label in by.items():
            per.setdefault(name, []).append(label)
    total = len(trajectory_index(ws))
    for name, labels in sorted(per.items()):
        rows.append({"annotator": name, "trajectories labeled": len(labels),
                     "% of store": round(100 * len(labels) / max(total, 1), 1),
                     "success %": round(100 * sum(lb.verdict == "success" for lb in labels) / len(labels), 1),
                     "last label": max(lb.created for lb in labels).strftime("%Y-%m-%d %H:%M")})
    return pd.DataFrame(rows, columns=["annotator", "trajectories labeled", "% of store", "success %", "last label"])


def success_over_time(ws: Workspace, freq: str = "D") -> pd.DataFrame:
    """Verifier success rate per period and learning method (columns: period, method, runs, success %)."""
    idx = trajectory_index(ws)
    ok = idx.verifier >= 0
    if not ok.any():
        return pd.DataFrame(columns=["period", "method", "runs", "success %"])
    df = pd.DataFrame({"created": pd.to_datetime(idx.created[ok], unit="s"), "method": idx.method[ok],
                       "success": idx.verifier[ok] == 1})
    df["period"] = df["created"].dt.to_period(freq).dt.start_time
    g = df.groupby(["period", "method"])["success"]
    out = pd.DataFrame({"runs": g.size(), "success %": (100 * g.mean()).round(1)}).reset_index()
    return out


def success_by_method(ws: Workspace) -> pd.DataFrame:
    """Verifier and human success rates per learning method."""
    idx = trajectory_index(ws)
    latest = label_index(ws).latest
    human = np.array([(-1 if (by := latest.get(t)) is None else int(human_verdict(by.values()) == "success"))
                      for t in idx.ids], dtype=np.int8) if latest else np.full(len(idx), -1, np.int8)
    df = pd.DataFrame({"method": idx.method, "verifier": idx.verifier, "human": human})
    rows = []
    for method, part in df.groupby("method"):
        v, h = part["verifier"], part["human"]
        rows.append({"method": method or "(none)", "runs": len(part),
                     "verifier success %": round(100 * (v == 1).sum() / max((v >= 0).sum(), 1), 1),
                     "labeled": int((h >= 0).sum()),
                     "human success %": round(100 * (h == 1).sum() / (h >= 0).sum(), 1) if (h >= 0).any() else None})
    return pd.DataFrame(rows, columns=["method", "runs", "verifier success %", "labeled", "human success %"])


def eval_table(ws: Workspace, suite: str = "", limit: int | None = None) -> pd.DataFrame:
    """Stored evaluation runs, newest first, as a table."""
    runs = [r for r in ws.repo.all(EvalRun) if not suite or r.suite == suite][::-1]
    if limit is not None:
        runs = runs[:limit]
    rows = [{"when": r.created.strftime("%Y-%m-%d %H:%M"), "suite": r.suite, "split": r.split,
             "method": r.method, "exemplar mode": r.exemplar_mode, "k": r.k, "adapter": r.adapter or "(base)",
             "n": r.n, "name accuracy": round(r.name_accuracy, 3), "call accuracy": round(r.call_accuracy, 3),
             "seconds": round(r.seconds, 1), "id": r.id} for r in runs]
    return pd.DataFrame(rows, columns=["when", "suite", "split", "method", "exemplar mode", "k", "adapter", "n",
                                       "name accuracy", "call accuracy", "seconds", "id"])


def counts(ws: Workspace) -> dict[str, int]:
    """Headline counts for the overview."""
    from storage.records import Insight, InsightProposal, Preference

    idx = trajectory_index(ws)
    labels = label_index(ws)
    return {"trajectories": len(idx), "labeled": sum(1 for t in labels.latest if t in idx.position),
            "labels": labels.count, "preferences": ws.repo.count(Preference),
            "insights": sum(1 for i in ws.repo.all(Insight) if i.status == "active"),
            "pending proposals": len(ws.repo.find(InsightProposal, status="pending")),
            "tasks": len(task_map(ws))}


def text_diff(old: str, new: str) -> str:
    """A line diff from old to new ('-' removed, '+' added, '?' marks the changed characters)."""
    import difflib

    if old == new:
        return "  " + old if old else "(no text)"
    if not old.strip():
        return "\n".join("+ " + line for line in new.splitlines())
    if not new.strip():
        return "\n".join("- " + line for line in old.splitlines())
    return "\n".join(difflib.ndiff(old.splitlines(), new.splitlines()))
