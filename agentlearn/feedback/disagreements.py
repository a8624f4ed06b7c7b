"""The reviewers' queue: trajectories people disagree about, every label on one, and the ruling.

Two kinds, shown separately: people whose latest verdicts differ, and (optional) people's verdict
against the verifier's. A reviewer's Resolution is what learning uses from then on (verdicts.py);
resolved items leave the queue unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.feedback.index import trajectory_index
from agentlearn.feedback.labels import label_index
from agentlearn.verdicts import human_verdict, latest_resolution
from agentlearn.workspace import Workspace
from storage.records import Resolution, Trajectory

KINDS = ("people disagree", "people vs verifier")


@dataclass(frozen=True)
class Disagreement:
    """One item of the reviewers' queue."""

    trajectory_id: str
    suite: str
    votes: dict[str, int]  # verdict -> how many people gave it (latest label per person)
    verifier: str  # "success", "fail" or "" (no verdict)
    resolution: Resolution | None


def _resolutions(ws: Workspace) -> dict[str, list[Resolution]]:
    out: dict[str, list[Resolution]] = {}
    for r in ws.repo.all(Resolution):
        out.setdefault(r.trajectory_id, []).append(r)
    return out


def disagreements(ws: Workspace, kind: str = KINDS[0], suite: str = "", resolved: bool = False) -> list[Disagreement]:
    """Items of the reviewers' queue, most contested first (then newest)."""
    if kind not in KINDS:
        raise ValueError(f"disagreement kind must be one of {KINDS}, not {kind!r}")
    idx = trajectory_index(ws)
    rulings = _resolutions(ws)
    out = []
    for tid, by in label_index(ws).latest.items():
        n = idx.position.get(tid)
        if n is None or (suite and idx.suite[n] != suite):
            continue
        verdicts = [lb.verdict for lb in by.values()]
        verifier = {1: "success", 0: "fail"}.get(int(idx.verifier[n]), "")
        if kind == KINDS[0]:
            contested = len(set(verdicts)) > 1
        else:
            contested = bool(verifier) and human_verdict(by.values()) != verifier
        ruling = latest_resolution(rulings.get(tid, ()))
        if contested and (resolved or ruling is None):
            out.append((Disagreement(tid, str(idx.suite[n]), {v: verdicts.count(v) for v in sorted(set(verdicts))},
                                     verifier, ruling), n))
    # Most contested first: the smaller side's share of the votes, then the newest run.
    out.sort(key=lambda d: (-min(d[0].votes.values(), default=0) / max(sum(d[0].votes.values()), 1), -d[1]))
    return [d for d, _ in out]


def labels_table(ws: Workspace, trajectory_id: str) -> list[dict]:
    """Every person's latest label on an item, for the reviewer to read (plain values only)."""
    return [{"annotator": lb.annotator, "verdict": lb.verdict, "score": lb.score, "categories": ", ".join(lb.categories),
             "comment": lb.comment, "flagged steps": ", ".join(str(i + 1) for i in lb.step_flags),
             "when": lb.created.strftime("%Y-%m-%d %H:%M")}
            for lb in sorted(label_index(ws).latest.get(trajectory_id, {}).values(), key=lambda lb: lb.created)]


def resolve(ws: Workspace, trajectory_id: str, who: Identity, verdict: str, note: str = "") -> Resolution:
    """Write a reviewer's ruling: from now on the verdict that exemplars, insights and datasets use.

    `who` needs the review action (agentlearn.policy) and is recorded as the reviewer.
    """
    reviewer = policy.require(ws.repo, who, "review").name
    if verdict not in ("success", "fail"):
        raise ValueError(f"a resolution's verdict must be 'success' or 'fail', not {verdict!r}")
    if ws.repo.get(Trajectory, trajectory_id) is None:
        raise ValueError(f"no trajectory with id {trajectory_id!r}")
    return ws.repo.put(Resolution(trajectory_id=trajectory_id, reviewer=reviewer, verdict=verdict, note=note.strip()))


def resolution_of(ws: Workspace, trajectory_id: str) -> Resolution | None:
    """The ruling in force on an item, if any."""
    return latest_resolution(ws.repo.find(Resolution, trajectory_id=trajectory_id))


