"""The demo workspace: the built-in suite plus real runs of the embedded model, made on first start.

Nothing here is canned: the trajectories, verdicts, evaluations and the learning curve come from
running the agent, so the first screen shows what the product does on this machine, and that the agent
gets better with experience (zero-shot, then 4, 12 and all exemplars in the bank, on the same heldout
tasks). Every step reports progress: a bar in the terminal, and the Process record the dashboard
draws its own bar from (processes.report).
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from agentlearn import processes
from agentlearn.agent import run_tasks
from agentlearn.curve import learning_curve
from agentlearn.memory import proposals, retrieval
from agentlearn.methods import RunOptions
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, import_file, load_tasks
from agentlearn.workspace import Workspace
from storage.records import EvalRun, InsightProposal, LearningCurve, Suite, Task, Trajectory

CURVE_SIZES = (0, 4, 12, None)  # zero-shot, a few experiences, more, the whole bank
# The first runs: 3 train tasks of each of the 4 most used tools. Error analysis drafts a rule from a pattern
# seen 3 times, so tasks of one tool in threes are what give the Insights page proposals from real failures
# (the first 8 tasks in file order, two tools, gave 1 proposal; 3 x 4 tools gave 7 with 16 tasks).
RUNS, PER_TOOL = 12, 3
EVAL_LIMIT = 10
# Multi-step episodes for every page: a few tasks of BFCL's multi_turn_base, whose tools run in the
# package's own environments (file system, messaging...). Steps per user turn and calls per step are kept
# low so the demo still serves in minutes on 2 cores (each call's tokens cost decoding time); the suite's
# own limits (BFCL's 20 steps, its largest reference turn's calls) are restored afterwards.
# Named to sort after the demo suite, which pages offer first: a first click runs the quick suite, not 100 episodes.
EPISODE_SUITE, EPISODE_CATEGORY, EPISODE_TASKS = "multi-turn-bfcl", "multi_turn_base", 2
EPISODE_LIMITS = {"max_steps": 3, "max_calls": 2}


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


class _Bar:
    """One progress bar over every generation the demo makes, in the terminal and in the store."""

    def __init__(self, ws: Workspace, total: int) -> None:
        self.ws, self.total, self.done = ws, total, 0
        self.bar = tqdm(total=total, desc="[demo]", unit="task", file=sys.stderr, dynamic_ncols=True)

    def step(self, message: str) -> None:
        self.bar.set_description(f"[demo] {message}")
        processes.report(self.ws, self.done, self.total, message)

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)
        processes.report(self.ws, self.done, self.total, self.bar.desc.removeprefix("[demo] "))

    def close(self) -> None:
        self.bar.close()


def first_tasks(train: list[Task], runs: int) -> list[Task]:
    """`runs` train tasks, PER_TOOL of each tool in turn, the most used tools first (file order within a tool)."""
    by_tool: dict[str, list[Task]] = {}
    for task in train:
        by_tool.setdefault(task.expected.name, []).append(task)
    groups = sorted(by_tool.values(), key=len, reverse=True)
    picked = [t for g in groups for t in g[:PER_TOOL]]
    picked += [t for g in groups for t in g[PER_TOOL:]]  # more runs than tools x PER_TOOL: the rest in turn
    return picked[:runs]


def ensure_demo_workspace(ws: Workspace, runs: int = RUNS, eval_limit: int = EVAL_LIMIT) -> dict[str, Any]:
    """Create the demo suite, its first runs and its learning curve if missing; return what is there."""
    ensure_demo_suite(ws)
    need_runs = not ws.repo.find(Trajectory, suite=DEMO_SUITE)
    need_curve = not ws.repo.find(LearningCurve, suite=DEMO_SUITE)
    train = first_tasks(load_tasks(ws, DEMO_SUITE, "train"), runs)
    heldout = len(load_tasks(ws, DEMO_SUITE, "heldout")[:eval_limit])
    need_episodes = not ws.repo.find(Trajectory, suite=EPISODE_SUITE)
    total = (2 * len(train) if need_runs else 0) + (len(CURVE_SIZES) * heldout if need_curve else 0) \
        + (EPISODE_TASKS if need_episodes else 0)
    bar = _Bar(ws, total)
    try:
        if not retrieval.current(ws, DEMO_SUITE):
            # auto, model-free: leave-one-out on the train split scores every retrieval configuration in
            # seconds; running finalists through the model (`retrieval choose`) is left to the user.
            bar.step("choosing retrieval for the demo suite (model-free leave-one-out)")
            retrieval.choose(ws, DEMO_SUITE, how_many=0)
        if need_runs:
            # The same tasks without and with exemplars: failures and successes of one task are what
            # insights compare, what the Preferences page pairs and what people label first.
            for method in ("none", "exemplars"):
                bar.step(f"running the agent on {len(train)} train tasks ({method})")
                run_tasks(ws, train, RunOptions(method=method), progress=lambda *_: bar.advance())
            # Once, right after the first runs, so the Insights queue has something to review. Error
            # analysis needs no model and takes a second; ExpeL and the curator ask the model (minutes, and
            # the embedded one rarely writes a usable rule), so they are left to the Insights page.
            bar.step("proposing playbook rules from the runs")
            proposals.propose(ws, DEMO_SUITE, sources=("errors",))
        if need_episodes:
            bar.step(f"running {EPISODE_TASKS} multi-step BFCL tasks with tools that execute")
            _episodes(ws, bar)
        if need_curve:
            bar.step("measuring the learning curve on heldout tasks")
            learning_curve(ws, DEMO_SUITE, RunOptions(limit=eval_limit or None), sizes=CURVE_SIZES, draws=1,
                           progress=lambda i, n, message: (bar.advance(heldout), bar.step(message)))
    finally:
        bar.close()
    summary_episodes = len(ws.repo.find(Trajectory, suite=EPISODE_SUITE))
    curve = max(ws.repo.find(LearningCurve, suite=DEMO_SUITE), key=lambda c: c.created, default=None)
    summary = {
        "home": str(ws.settings.home),
        "suite": DEMO_SUITE,
        "tasks": len(load_tasks(ws, DEMO_SUITE)),
        "trajectories": len(ws.repo.find(Trajectory, suite=DEMO_SUITE)),
        "insight_proposals": len(ws.repo.find(InsightProposal, suite=DEMO_SUITE)),
        "eval_runs": len(ws.repo.find(EvalRun, suite=DEMO_SUITE)),
        "episodes": summary_episodes,
        "curve": [(p["bank_size"], round(p["name_accuracy"], 3)) for p in curve.points] if curve else [],
    }
    if curve:
        _say("learning curve (bank size: heldout name accuracy): "
             + ", ".join(f"{size}: {acc:.0%}" for size, acc in summary["curve"]))
    return summary


def _episodes(ws: Workspace, bar: _Bar) -> None:
    """Import BFCL's multi-turn tasks and run the agent on a few: real episodes, graded by BFCL's checker."""
    suite = ws.repo.get(Suite, EPISODE_SUITE) or import_file(ws, EPISODE_CATEGORY, EPISODE_SUITE, heldout=0.5,
                                                            fmt="bfcl", source="builtin")
    ws.repo.put(suite.model_copy(update=EPISODE_LIMITS))
    try:
        tasks = load_tasks(ws, EPISODE_SUITE, "train")[:EPISODE_TASKS]
        run_tasks(ws, tasks, RunOptions(method="none"), progress=lambda *_: bar.advance())
    finally:
        ws.repo.put(suite)
