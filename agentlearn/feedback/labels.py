"""People's labels: writing them, the latest label per annotator, bulk accept, and the label index.

A label written through `submit_label` is folded into the cached index without a rebuild, so
submit-and-next stays fast on a big store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agentlearn.feedback import rubric
from agentlearn.feedback.index import trajectory_index
from agentlearn.workspace import Workspace
from storage.records import Label, Trajectory, store_order


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


def _folded(index: LabelIndex, labels: Iterable[Label], version: tuple) -> LabelIndex:
    """`index` with newer labels folded in, as a new index (readers may hold the old one)."""
    latest, by_annotator, count = dict(index.latest), dict(index.by_annotator), index.count
    copied: set[str] = set()
    for label in labels:
        by = latest.get(label.trajectory_id, {})
        mine = by.get(label.annotator)
        if mine is None or store_order(mine) <= store_order(label):
            latest[label.trajectory_id] = {**by, label.annotator: label}
        if label.annotator not in copied:
            copied.add(label.annotator)
            by_annotator[label.annotator] = set(by_annotator.get(label.annotator, ()))
        by_annotator[label.annotator].add(label.trajectory_id)
        count += 1
    return LabelIndex(version=version, latest=latest, by_annotator=by_annotator, count=count)


def label_index(ws: Workspace) -> LabelIndex:
    """The cached label index: the labels another writer added are folded in where the store can list
    them (PostgreSQL: 100k labels parsed again took 1-2 s on every visit after anyone labeled); rebuilt
    after a deletion, or from every label where the store keeps no write order."""
    version = ws.repo.version(Label)

    def build() -> LabelIndex:
        old = ws.caches.previous("labels")
        changes = ws.repo.changes_since(Label, old.version) if old is not None and old.version else None
        if changes is not None:
            return _folded(old, changes[0], changes[1])
        return _build_label_index(ws.repo.all(Label), version)

    return ws.caches.get("labels", version, build)


def submit_label(ws: Workspace, trajectory_id: str, annotator: str, verdict: str, score: int | None = None,
                 comment: str = "", step_flags: Sequence[int] = (), categories: Sequence[str] = (),
                 seconds: float | None = None) -> Label:
    """Store one person's label (a new record each time: nothing is overwritten).

    `seconds` is how long the person had the item open (feedback.claims.held_for), for time per item.

    `categories` are error categories of the run's suite (feedback.rubric); only a fail may carry them.
    """
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
    if categories and verdict != "fail":
        raise ValueError("error categories describe a failure: choose fail, or untick the categories")
    ticked = rubric.check_label_categories(ws, traj.suite, categories) if categories else []
    label = Label(trajectory_id=trajectory_id, annotator=annotator, verdict=verdict, score=score,
                  comment=comment, step_flags=sorted(set(step_flags)), categories=ticked, seconds=seconds)
    write_labels(ws, [label])
    return label


def write_labels(ws: Workspace, labels: list[Label]) -> None:
    """Store labels and fold them into the cached index."""
    before = label_index(ws)
    ws.repo.put_many(labels)
    after = ws.repo.version(Label)
    # Fold the new labels into a copy of the index instead of re-reading every label. An unchanged
    # total proves nobody else wrote meanwhile; otherwise the next read rebuilds from the store.
    if ws.repo.count(Label) != before.count + len(labels):
        return
    ws.caches.put("labels", after, _folded(before, labels, after))


def undo(ws: Workspace, label_id: str, annotator: str) -> Label:
    """Delete one of `annotator`'s own labels (undo of the last submit); the item is back in their queue.

    Returns the removed label, so the page can reopen the item with its verdict as a draft.
    """
    label = ws.repo.get(Label, label_id)
    if label is None:
        raise ValueError("nothing to undo: that label is not in the store any more")
    if label.annotator != annotator.strip():
        raise ValueError(f"that label is {label.annotator}'s; only they can undo it")
    before = label_index(ws)
    ws.repo.delete(Label, label_id)
    after = ws.repo.version(Label)
    if ws.repo.count(Label) != before.count - 1:
        return label  # someone else wrote meanwhile: the next read rebuilds the index
    tid = label.trajectory_id
    remaining = _build_label_index(ws.repo.find(Label, trajectory_id=tid), ()).latest.get(tid, {})
    latest = dict(before.latest)
    if remaining:
        latest[tid] = remaining
    else:
        latest.pop(tid, None)
    by_annotator = dict(before.by_annotator)
    if label.annotator not in remaining:
        by_annotator[label.annotator] = set(by_annotator.get(label.annotator, ())) - {tid}
    ws.caches.put("labels", after, LabelIndex(version=after, latest=latest, by_annotator=by_annotator,
                                               count=before.count - 1))
    return label


def latest_label(ws: Workspace, trajectory_id: str, annotator: str | None = None) -> Label | None:
    """The newest label on a trajectory (by this annotator, if given)."""
    by = label_index(ws).latest.get(trajectory_id, {})
    if annotator is not None:
        return by.get(annotator)
    return max(by.values(), key=lambda lb: lb.created) if by else None


def labels_of(ws: Workspace, trajectory_id: str) -> dict[str, Label]:
    """Each annotator's latest label on one trajectory."""
    return dict(label_index(ws).latest.get(trajectory_id, {}))


def people_count(ws: Workspace, trajectory_ids: Sequence[str]) -> dict[str, int]:
    """How many people labeled each of these trajectories (one read of the index for a whole table)."""
    latest = label_index(ws).latest
    return {tid: len(latest.get(tid, ())) for tid in trajectory_ids}


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
        write_labels(ws, labels[start:start + 5000])
    return len(labels)


def bulk_accept_count(ws: Workspace, trajectory_ids: Sequence[str], annotator: str,
                      overwrite_mine: bool = False) -> list[str]:
    """The trajectories a bulk accept would label (to say how many before asking to confirm)."""
    idx = trajectory_index(ws)
    mine = label_index(ws).by_annotator.get(annotator.strip(), set())
    return [tid for tid in trajectory_ids
            if (n := idx.position.get(tid)) is not None and idx.verifier[n] >= 0
            and (overwrite_mine or tid not in mine)]
