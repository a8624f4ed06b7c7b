"""Evaluation on held-out tasks: what each learning method (and adapter) buys, with the same graders."""

from __future__ import annotations

import time
from collections.abc import Callable

from agentlearn.agent import RunOptions, run_tasks
from agentlearn.tasks import load_tasks
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Trajectory


def evaluate(ws: Workspace, suite: str, split: str = "heldout", method: str = "none", k: int = 3,
             exemplar_mode: str = "semantic", trials: int = 3, limit: int | None = None, adapter_id: str = "",
             progress: Callable | None = None) -> EvalRun:
    """Run every task of a split once (Reflexion: up to `trials`), store and return the scores.

    A task counts as solved when its last trial is; name accuracy asks only for the right tool,
    call accuracy for the right tool with the right (normalised) arguments.
    """
    tasks = load_tasks(ws, suite, split)
    if not tasks:
        raise ValueError(f"suite {suite!r} has no {split} tasks; import one with `python -m agentlearn tasks import`")
    tasks = tasks[:limit] if limit else tasks
    options = RunOptions(method=method, k=k, exemplar_mode=exemplar_mode,
                         trials=trials if method in ("reflexion", "all") else 1, adapter_id=adapter_id, source="eval")
    started = time.perf_counter()
    runs = run_tasks(ws, tasks, options, progress=progress)
    finals: list[Trajectory] = [trials_[-1] for trials_ in runs]
    n = len(finals)
    name_ok = sum(1 for t in finals if t.verdict and t.verdict.scores.get("name_match", 0) >= 1)
    call_ok = sum(1 for t in finals if t.verdict and t.verdict.success)
    run = EvalRun(
        suite=suite, split=split, method=method, exemplar_mode=exemplar_mode if options.uses_exemplars else "",
        k=k if options.uses_exemplars else 0, adapter=adapter_id, model=ws.settings.model_label, n=n,
        name_accuracy=name_ok / n, call_accuracy=call_ok / n,
        trajectory_ids=[t.id for trials_ in runs for t in trials_], seconds=time.perf_counter() - started,
    )
    ws.repo.put(run)
    return run
