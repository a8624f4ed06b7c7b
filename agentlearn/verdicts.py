"""Did a run succeed? The one home of the rule that exemplars, insights, datasets and reports use.

A reviewer's resolution wins; then people: the latest label of each annotator, then the majority, a tie
is a fail; then the verifier. A tie counts as a fail so that a disputed trajectory never becomes an
exemplar or training data until a reviewer resolves it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from storage.records import Label, Resolution, Trajectory


def human_verdict(labels: Iterable[Label]) -> str | None:
    """People's verdict ("success" or "fail"), or None when nobody labeled it."""
    latest: dict[str, Label] = {}
    for label in sorted(labels, key=lambda lab: (lab.created, lab.id)):
        latest[label.annotator] = label
    if not latest:
        return None
    votes = Counter(lab.verdict for lab in latest.values())
    return "success" if votes["success"] > votes["fail"] else "fail"


def latest_resolution(resolutions: Iterable[Resolution]) -> Resolution | None:
    ordered = sorted(resolutions, key=lambda r: (r.created, r.id))
    return ordered[-1] if ordered else None


def succeeded(trajectory: Trajectory, labels: Iterable[Label] = (),
              resolutions: Iterable[Resolution] = ()) -> bool | None:
    """The verdict learning uses; None when nobody and no verifier has judged the run."""
    ruling = latest_resolution(resolutions)
    if ruling is not None:
        return ruling.verdict == "success"
    people = human_verdict(labels)
    if people is not None:
        return people == "success"
    return trajectory.verdict.success if trajectory.verdict is not None else None


class Judge:
    """Every label and resolution read once; `succeeded` for many trajectories without more reads."""

    def __init__(self, labels: Iterable[Label], resolutions: Iterable[Resolution] = ()) -> None:
        self.labels: dict[str, list[Label]] = defaultdict(list)
        self.resolutions: dict[str, list[Resolution]] = defaultdict(list)
        for label in labels:
            self.labels[label.trajectory_id].append(label)
        for r in resolutions:
            self.resolutions[r.trajectory_id].append(r)

    def succeeded(self, trajectory: Trajectory) -> bool | None:
        return succeeded(trajectory, self.labels.get(trajectory.id, ()), self.resolutions.get(trajectory.id, ()))

    def judged_by_people(self, trajectory_id: str) -> bool:
        return bool(self.labels.get(trajectory_id) or self.resolutions.get(trajectory_id))


def judge(ws) -> Judge:
    """A Judge over everything the workspace's store holds now."""
    return Judge(ws.repo.all(Label), ws.repo.all(Resolution))
