"""Pairwise preferences: pick two responses to the same task, show them in random order, store the choice.

A pair comes from two stored trajectories of one task (with different outputs) or from two fresh
agent runs with different settings (memory method, adapter, sampling temperature). Two episodes that
share their first steps (an original and its replay from a corrected step) are compared from the step
where they part: the shared steps are shown once and each side is its continuation (Preference.step). Which source was
shown on the left is random and stored (`swapped`), so position bias can be measured and undone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from agentlearn.feedback.corrections import CorrectionError, check_response
from agentlearn.feedback.episodes import is_episode, shared_steps, transcript
from agentlearn.feedback.index import task_map, trajectory_index
from agentlearn.methods import DEFAULT_MODE
from agentlearn.workspace import Workspace
from storage.records import Message, Preference, Task, Trajectory

CHOICES = ("A", "B", "tie", "both_bad")


@dataclass(frozen=True)
class Pair:
    """Two responses to one task, in display order. `swapped`: the first source is on the right."""

    task_id: str
    prompt: list[Message]
    first: Trajectory
    second: Trajectory
    swapped: bool
    step: int = 0  # episodes: the steps both share; each side is shown (and stored) from here on

    @property
    def left(self) -> Trajectory:
        return self.second if self.swapped else self.first

    @property
    def right(self) -> Trajectory:
        return self.first if self.swapped else self.second

    @property
    def heldout(self) -> bool:
        """The task is held out for evaluation: its choice is stored, but no training export uses it."""
        return self.first.split == "heldout"

    def response(self, traj: Trajectory) -> str:
        """One side as the preference stores it: the whole output, or an episode's continuation as text."""
        if is_episode(traj):
            return transcript(traj.steps[self.step:]) or traj.output
        return traj.output


@dataclass(frozen=True)
class RunSpec:
    """How to produce one side of a fresh pair."""

    method: str = "none"
    adapter_id: str = ""
    temperature: float = 0.0
    k: int = 3
    exemplar_mode: str = DEFAULT_MODE

    def describe(self) -> str:
        """A short human-readable summary."""
        parts = [self.method, self.adapter_id or "base"]
        if self.temperature:
            parts.append(f"T={self.temperature:g}")
        return " / ".join(parts)


def make_pair(ws: Workspace, first: Trajectory, second: Trajectory, rng: random.Random | None = None) -> Pair:
    """A pair of two trajectories of the same task, sides chosen at random; two episodes are compared from
    the first step where they differ (`Pair.step`)."""
    if first.task_id != second.task_id:
        raise ValueError(f"a pair needs two runs of one task, got {first.task_id!r} and {second.task_id!r}")
    if first.id == second.id:
        raise ValueError(f"a pair needs two different trajectories, got {first.id!r} twice")
    task = task_map(ws).get(first.task_id)
    prompt = list(task.input) if task is not None else [m for m in first.prompt if m.role != "system"]
    step = shared_steps(first, second) if is_episode(first) and is_episode(second) else 0
    return Pair(task_id=first.task_id, prompt=prompt, first=first, second=second,
                swapped=(rng or random).random() < 0.5, step=step)


def pair_key(pair: Pair) -> str:
    """The pair as one short text (first id, second id, 1 if the first is on the right), for a link."""
    return f"{pair.first.id}.{pair.second.id}.{int(pair.swapped)}"


def pair_from_key(ws: Workspace, key: str) -> Pair:
    """The pair that pair_key wrote, with the same sides; a clear error if the text or its runs are wrong."""
    parts = str(key).split(".")
    if len(parts) != 3 or not all(parts[:2]) or parts[2] not in ("0", "1"):
        raise ValueError(f"the pair {key!r} is not FIRST.SECOND.SIDE (two trajectory ids, then 0 or 1)")
    found = [ws.repo.get(Trajectory, i) for i in parts[:2]]
    missing = [i for i, t in zip(parts[:2], found, strict=True) if t is None]
    if missing:
        raise ValueError(f"the pair {key!r} names trajectory {', '.join(missing)}, which is not in the store")
    return replace(make_pair(ws, found[0], found[1]), swapped=parts[2] == "1")


def _judged(ws: Workspace, annotator: str) -> set[frozenset[str]]:
    return {frozenset((p.trajectory_a, p.trajectory_b)) for p in ws.repo.find(Preference, annotator=annotator)}


def pairable_tasks(ws: Workspace, suite: str = "") -> dict[str, list[str]]:
    """Task id -> trajectory ids with distinct outputs, for tasks that have at least two."""
    idx = trajectory_index(ws)
    df = pd.DataFrame({"id": idx.ids, "task": idx.task_id, "suite": idx.suite, "out": idx.output_hash})
    if suite:
        df = df[df["suite"] == suite]
    df = df.drop_duplicates(["task", "out"])
    sizes = df.groupby("task")["id"].transform("size")
    df = df[sizes >= 2]
    return {t: list(g) for t, g in df.groupby("task")["id"]}


def sample_stored_pair(ws: Workspace, annotator: str = "", suite: str = "", task_id: str = "",
                       rng: random.Random | None = None, tries: int = 200) -> Pair | None:
    """Two stored trajectories of one task with different outputs, not yet judged by this annotator."""
    rng = rng or random.Random()
    groups = pairable_tasks(ws, suite)
    if task_id:
        groups = {task_id: groups[task_id]} if task_id in groups else {}
    if not groups:
        return None
    judged = _judged(ws, annotator) if annotator else set()
    tasks = list(groups)
    for _ in range(tries):
        ids = groups[rng.choice(tasks)]
        a, b = rng.sample(ids, 2)
        if frozenset((a, b)) not in judged:
            return make_pair(ws, ws.repo.get(Trajectory, a), ws.repo.get(Trajectory, b), rng)
    return None


def fresh_pair(ws: Workspace, task: Task, first: RunSpec, second: RunSpec,
               rng: random.Random | None = None) -> Pair:
    """Run the agent twice on a task with two settings (both runs are stored) and pair the results."""
    from agentlearn.agent import run_task

    runs = [run_task(ws, task, method=spec.method, k=spec.k, exemplar_mode=spec.exemplar_mode,
                     adapter_id=spec.adapter_id, temperature=spec.temperature, trials=2)[-1]
            for spec in (first, second)]
    return make_pair(ws, runs[0], runs[1], rng)


def record_choice(ws: Workspace, pair: Pair, choice: str, annotator: str, corrected: str = "") -> Preference:
    """Store one person's choice on a pair (a new record each time: nothing is overwritten).

    `choice` is about the sides as shown: A = left, B = right. `corrected` ("edit to fix") becomes the
    chosen response in DPO exports, so it must make a call that fits the task's tool schema, as a
    correction on Trajectories must (CorrectionError names each problem; nothing is stored then).
    """
    annotator = annotator.strip()
    if not annotator:
        raise ValueError("annotator name is empty: choose a name in the sidebar before judging pairs")
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, not {choice!r}")
    if corrected.strip():
        task = task_map(ws).get(pair.task_id)
        if task is None:
            raise CorrectionError([f"the pair's task {pair.task_id!r} is not in the store; there is nothing to "
                                   "check the corrected response against"])
        check_response(task, corrected)
    left, right = pair.left, pair.right
    pref = Preference(task_id=pair.task_id, prompt=pair.prompt, response_a=pair.response(left),
                      response_b=pair.response(right), trajectory_a=left.id, trajectory_b=right.id,
                      swapped=pair.swapped, choice=choice, corrected=corrected.strip(), annotator=annotator,
                      step=pair.step)
    return ws.repo.put(pref)


def preference_summary(ws: Workspace) -> pd.DataFrame:
    """Choices per annotator (counts), to watch progress and position bias."""
    prefs = ws.repo.all(Preference)
    if not prefs:
        return pd.DataFrame(columns=["annotator", "pairs", "A", "B", "tie", "both_bad", "corrected"])
    df = pd.DataFrame({"annotator": [p.annotator for p in prefs], "choice": [p.choice for p in prefs],
                       "corrected": np.array([bool(p.corrected) for p in prefs])})
    out = pd.crosstab(df["annotator"], df["choice"]).reindex(columns=list(CHOICES), fill_value=0)
    out.insert(0, "pairs", out.sum(axis=1))
    out["corrected"] = df.groupby("annotator")["corrected"].sum()
    return out.reset_index()
