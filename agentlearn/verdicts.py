"""Did a run succeed? The one home of the rule that exemplars, insights, datasets and reports use.

A reviewer's resolution wins; then people: the latest label of each annotator, then the majority, a tie
is a fail; then the verifier. A tie counts as a fail so that a disputed trajectory never becomes an
exemplar or training data until a reviewer resolves it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from storage.records import Label, Resolution, Task, Trajectory


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


def people_succeeded(labels: Iterable[Label] = (), resolutions: Iterable[Resolution] = ()) -> bool | None:
    """What people said: a reviewer's resolution, else the labels' majority; None when nobody judged."""
    ruling = latest_resolution(resolutions)
    if ruling is not None:
        return ruling.verdict == "success"
    people = human_verdict(labels)
    return None if people is None else people == "success"


def succeeded(trajectory: Trajectory, labels: Iterable[Label] = (),
              resolutions: Iterable[Resolution] = ()) -> bool | None:
    """The verdict learning uses; None when nobody and no verifier has judged the run."""
    return _or_verifier(people_succeeded(labels, resolutions), trajectory)


def _or_verifier(people: bool | None, trajectory: Trajectory) -> bool | None:
    """People's verdict where there is one, else the verifier's."""
    if people is not None:
        return people
    return trajectory.verdict.success if trajectory.verdict is not None else None


def verifier_category(trajectory: Trajectory, task: Task | None = None) -> str:
    """The error category a failed run's verifier verdict (and its task's expected tool) implies ('' when none)."""
    if trajectory.tool_call is None:
        return "format"
    if task is not None and trajectory.tool_call.name != task.expected.name:
        return "wrong tool"
    verdict = trajectory.verdict
    if verdict is None:
        return ""
    if verdict.scores.get("name_match", 1.0) < 1.0:
        return "wrong tool"
    statuses = {a.status for a in verdict.arguments}
    if "missing" in statuses:
        return "missing argument"
    if statuses & {"wrong", "unexpected"}:
        return "wrong argument"
    if verdict.scores.get("valid_json", 1.0) < 1.0 or verdict.scores.get("schema_valid", 1.0) < 1.0:
        return "format"
    return ""


class Judge:
    """Every label and resolution read once; `succeeded` for many trajectories without more reads."""

    def __init__(self, labels: Iterable[Label], resolutions: Iterable[Resolution] = (), version: tuple = ()) -> None:
        self.version = version  # the store's (labels, resolutions) versions it was read at, where known
        self.labels: dict[str, list[Label]] = defaultdict(list)
        self.resolutions: dict[str, list[Resolution]] = defaultdict(list)
        for label in labels:
            self.labels[label.trajectory_id].append(label)
        for r in resolutions:
            self.resolutions[r.trajectory_id].append(r)
        self._people: dict[str, bool | None] = {}
        self._said: dict[str, str | None] = {}

    def with_labels(self, labels: Iterable[Label], version: tuple) -> Judge:
        """A new Judge that also knows these labels; what it worked out for other runs is kept (at 100k
        labels, working every verdict out again took a second after each label)."""
        new = Judge((), (), version)
        new.labels = defaultdict(list, self.labels)
        new.resolutions = self.resolutions
        touched = set()
        for label in labels:
            if label.trajectory_id not in touched:
                touched.add(label.trajectory_id)
                new.labels[label.trajectory_id] = list(new.labels[label.trajectory_id])  # the old Judge's stays
            new.labels[label.trajectory_id].append(label)
        # Copied in one step first: another thread may be working verdicts out on the old Judge meanwhile.
        new._people, new._said = dict(self._people), dict(self._said)
        for tid in touched:
            new._people.pop(tid, None)
            new._said.pop(tid, None)
        return new

    def succeeded(self, trajectory: Trajectory) -> bool | None:
        return _or_verifier(self.people_succeeded(trajectory.id), trajectory)

    def judged(self) -> set[str]:
        """The runs people judged: labeled by someone or resolved by a reviewer."""
        return set(self.labels) | set(self.resolutions)

    def people_succeeded(self, trajectory_id: str) -> bool | None:
        """People's verdict on a run (a resolution, then labels) without reading the run; None if not judged."""
        if trajectory_id not in self._people:
            self._people[trajectory_id] = people_succeeded(self.labels.get(trajectory_id, ()),
                                                           self.resolutions.get(trajectory_id, ()))
        return self._people[trajectory_id]

    def people_said(self, trajectory_id: str) -> str | None:
        """The labels' verdict alone (human_verdict: a reviewer's resolution not counted); None if unlabeled."""
        if trajectory_id not in self._said:
            self._said[trajectory_id] = human_verdict(self.labels.get(trajectory_id, ()))
        return self._said[trajectory_id]


def judge(ws) -> Judge:
    """A Judge over everything the workspace's store holds now, kept until a label or resolution is written
    (at 100k labels building one takes a second, and Overview asks for it in several tables). Labels added
    since are folded into the kept one where the store can list them (PostgreSQL); a resolution, a
    deletion or a store without write order reads everything again."""
    version = (ws.repo.version(Label), ws.repo.version(Resolution))

    def build() -> Judge:
        old = ws.caches.previous("judge")
        if old is not None and old.version and old.version[1] == version[1]:
            changes = ws.repo.changes_since(Label, old.version[0])
            if changes is not None:
                return old.with_labels(changes[0], (changes[1], version[1]))
        return Judge(ws.repo.all(Label), ws.repo.all(Resolution), version)

    return ws.caches.get("judge", version, build)
