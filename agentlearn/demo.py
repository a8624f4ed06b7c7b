"""The demo workspace: the built-in suite plus real runs of the embedded model, made on first start.

Nothing here is canned: the trajectories, verdicts, insight proposals and eval scores come from
running the agent, so the first screen shows what the product does on this machine.
"""

from __future__ import annotations

import sys
from typing import Any

from agentlearn import insights
from agentlearn.agent import RunOptions, run_tasks
from agentlearn.evaluate import evaluate
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
from agentlearn.workspace import Workspace
from storage.records import EvalRun, InsightProposal, Trajectory


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def ensure_demo_workspace(ws: Workspace, runs: int = 24, eval_limit: int = 12) -> dict[str, Any]:
    """Create the demo suite and its first runs if the workspace has none; return what is there."""
    ensure_demo_suite(ws)
    if not ws.repo.find(Trajectory, suite=DEMO_SUITE):
        train = load_tasks(ws, DEMO_SUITE, "train")[:runs]
        # The same tasks without and with exemplars: failures and successes of one task are what
        # ExpeL compares and what the Preferences page pairs.
        for method in ("none", "exemplars"):
            _say(f"running the agent on {len(train)} train tasks, method={method}")
            run_tasks(ws, train, RunOptions(method=method, k=3))
        # Once, right after the first runs: the small model may propose nothing, and a later start
        # should not spend a minute asking again.
        _say("proposing insights from the runs (ExpeL)")
        insights.extract(ws, DEMO_SUITE)
    if not ws.repo.find(EvalRun, suite=DEMO_SUITE):
        for method in ("none", "exemplars"):
            _say(f"evaluating method={method} on {eval_limit} heldout tasks")
            evaluate(ws, DEMO_SUITE, method=method, limit=eval_limit)
    return {
        "home": str(ws.settings.home),
        "suite": DEMO_SUITE,
        "tasks": len(load_tasks(ws, DEMO_SUITE)),
        "trajectories": len(ws.repo.find(Trajectory, suite=DEMO_SUITE)),
        "insight_proposals": len(ws.repo.find(InsightProposal, suite=DEMO_SUITE)),
        "eval_runs": len(ws.repo.find(EvalRun, suite=DEMO_SUITE)),
    }
