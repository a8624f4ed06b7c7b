"""Evaluation on held-out tasks: what each learning method (and adapter) buys, with the same graders.

Every run reports, over its n tasks (a task counts by its last trial):
- name_accuracy: the right tool was called;
- call_accuracy: the right tool with every argument right under its kind's rule (graders.py);
- args_score: the mean per-argument score over the calls that named the right tool;
- exact_accuracy: the right tool with exactly the expected arguments (JSON equality).
Per-task outcomes are stored (EvalRun.results) so that two runs on the same tasks compare as a paired
difference (stats.paired), and per-argument accuracy (EvalRun.per_argument) shows which arguments fail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from agentlearn.agent import run_tasks
from agentlearn.methods import DEFAULT_K, DEFAULT_MODE, USES_REFLEXION, RunOptions
from agentlearn.tasks import load_tasks
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Trajectory

REPEAT_TEMPERATURE = 0.7  # `--repeats` samples, so that the spread says how much a result moves


def task_result(t: Trajectory) -> dict[str, float]:
    """One task's outcome: name, call and exact as 0/1, args the argument score (-1 when the name was wrong)."""
    scores = t.verdict.scores if t.verdict else {}
    name = float(scores.get("name_match", 0.0) >= 1.0)
    call = float(scores.get("call_match", float(bool(t.verdict and t.verdict.success))) >= 1.0)
    exact = float(name == 1.0 and scores.get("args_exact", 0.0) >= 1.0)
    return {"name": name, "call": call, "exact": exact, "args": float(scores.get("args_score", 0.0)) if name else -1.0}


def score(finals: list[Trajectory]) -> dict[str, Any]:
    """The run's figures from each task's last trial (see the module docstring)."""
    results = {t.task_id: task_result(t) for t in finals}
    n = len(results)
    named = [r["args"] for r in results.values() if r["name"] == 1.0]
    per_argument: dict[str, list[int]] = {}
    for t in finals:
        if not t.verdict or t.verdict.scores.get("name_match", 0.0) < 1.0:
            continue
        for arg in t.verdict.arguments:
            if arg.status == "unexpected":
                continue  # an argument the reference does not have is not one of the suite's arguments
            cell = per_argument.setdefault(f"{t.tool_call.name if t.tool_call else '?'}.{arg.name}", [0, 0])
            cell[0] += int(arg.status == "right")
            cell[1] += 1
    mean = (lambda key: sum(r[key] for r in results.values()) / n) if n else (lambda key: 0.0)
    return {"n": n, "name_accuracy": mean("name"), "call_accuracy": mean("call"), "exact_accuracy": mean("exact"),
            "args_score": sum(named) / len(named) if named else 0.0, "results": results,
            "per_argument": per_argument}


def evaluate(ws: Workspace, suite: str, split: str = "heldout", method: str = "none", k: int = DEFAULT_K,
             exemplar_mode: str = DEFAULT_MODE, trials: int = 3, limit: int | None = None, adapter_id: str = "auto",
             progress: Callable | None = None, constrained: bool | None = None, temperature: float = 0.0,
             seed: int | None = None, tool_aware: bool = False, bank_size: int | None = None, bank_seed: int = 0,
             shot_seed: int | None = None, group: str = "", tools: str = "auto", ranker: str = "auto",
             ablate: Sequence[str] = (), answered: Callable | None = None) -> EvalRun:
    """Run every task of a split once (Reflexion: up to `trials`), store and return the scores.

    `progress` after each task, `answered(a, n)` as each gets its answer inside a batch (agent.run_tasks).
    """
    tasks = load_tasks(ws, suite, split)
    if not tasks:
        raise ValueError(f"suite {suite!r} has no {split} tasks; import one with `python -m agentlearn tasks import`")
    tasks = tasks[:limit] if limit else tasks
    from agentlearn import adapters

    # "auto": the suite's promoted model; "" / "none": the base model; else an adapter's id, job id or folder.
    adapter_id = adapters.resolve(ws, suite, adapter_id)
    options = RunOptions(method=method, k=k, exemplar_mode=exemplar_mode, tool_aware=tool_aware,
                         trials=trials if method in USES_REFLEXION else 1, adapter_id=adapter_id, source="eval",
                         temperature=temperature, seed=seed,
                         constrained=ws.settings.constrained if constrained is None else constrained,
                         bank_size=bank_size, bank_seed=bank_seed, shot_seed=shot_seed, tools=tools,
                         ranker=ranker, ablate=tuple(ablate))
    started = time.perf_counter()
    runs = run_tasks(ws, tasks, options, progress=progress, answered=answered)
    finals = [trials_[-1] for trials_ in runs]
    figures = score(finals)
    used_mode, used_k, used_tool_aware, used_tools, used_ranker = "", 0, False, 0, ""
    if options.uses_exemplars:
        from agentlearn import retrieval

        used_mode, used_k, used_tool_aware = retrieval.resolve(ws, suite, exemplar_mode, k, tool_aware)
        used_tools = 0 if bank_size is not None else (retrieval.resolve_tools(ws, suite, options.tools) or 0)
        if used_tools:
            used_ranker = retrieval.resolve_ranker(ws, suite, ranker)
        if exemplar_mode == "auto":
            used_mode = f"auto:{used_mode}"
    run = EvalRun(
        suite=suite, split=split, method=method, exemplar_mode=used_mode, k=used_k, tool_aware=used_tool_aware,
        tools=used_tools, ranker=used_ranker,
        adapter=adapter_id, model=ws.settings.model_label, ablated=list(ablate),
        constrained=any(t.constrained for t in finals), temperature=temperature, group=group, bank_size=bank_size,
        trajectory_ids=[t.id for trials_ in runs for t in trials_], seconds=time.perf_counter() - started,
        **figures,
    )
    ws.repo.put(run)
    return run


def _tools_label(run: EvalRun) -> str:
    if run.tools == 1:
        return f", the tool chosen by the {run.ranker or 'fused'} ranker"
    return f", {run.tools} tools offered" if run.tools else ""


def evaluate_repeats(ws: Workspace, suite: str, repeats: int, temperature: float = REPEAT_TEMPERATURE,
                     progress: Callable | None = None, answered: Callable | None = None,
                     **kwargs: Any) -> list[EvalRun]:
    """The same evaluation `repeats` times with sampling and a shuffled shot order (seeds 0..repeats-1)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    group = uuid.uuid4().hex[:12]
    runs: list[EvalRun] = []

    def overall(i: int, n: int, trials: list[Trajectory], seconds: float) -> None:
        if progress:  # one count over every repeat, so a progress bar never starts again
            progress(len(runs) * n + i, repeats * n, trials, seconds)

    def overall_answered(a: int, n: int) -> None:
        if answered:
            answered(len(runs) * n + a, repeats * n)

    for i in range(repeats):
        runs.append(evaluate(ws, suite, temperature=temperature, seed=i, shot_seed=i, group=group,
                             progress=overall, answered=overall_answered, **kwargs))
    return runs


METRICS = ("name_accuracy", "call_accuracy", "args_score", "exact_accuracy")
_RESULT_KEY = {"name_accuracy": "name", "call_accuracy": "call", "exact_accuracy": "exact"}


def baseline_for(ws: Workspace, run: EvalRun, method: str = "none") -> EvalRun | None:
    """The newest `method` run on the same suite and split, under the same decoding (grammar, temperature)
    and adapter, with the whole bank, that covers the run's tasks: what `run` is compared with."""
    if not method or (run.method == method and not run.ablated):
        return None
    candidates = [r for r in ws.repo.find(EvalRun, suite=run.suite)
                  if r.method == method and not r.ablated and r.split == run.split and r.constrained == run.constrained
                  and round(r.temperature, 3) == round(run.temperature, 3) and r.adapter == run.adapter
                  and r.id != run.id and r.bank_size is None and r.results and set(run.results) <= set(r.results)]
    return max(candidates, key=lambda r: r.created, default=None)


def summary(ws: Workspace, runs: list[EvalRun], baseline: str = "none") -> dict[str, Any]:
    """Figures of one evaluation (or its repeats) with n, Wilson 95% intervals, the spread of repeats and a
    paired comparison with the baseline method (exact McNemar p), plus readable lines for the CLI."""
    from agentlearn import stats

    first = runs[0]
    out: dict[str, Any] = {"id": first.id, "ids": [r.id for r in runs], "suite": first.suite, "split": first.split,
                           "method": first.method, "exemplar_mode": first.exemplar_mode, "k": first.k,
                           "tool_aware": first.tool_aware, "tools": first.tools, "ranker": first.ranker,
                           "constrained": first.constrained, "adapter": first.adapter,
                           "n": first.n, "repeats": len(runs), "seconds": round(sum(r.seconds for r in runs), 1),
                           "per_argument": first.per_argument}
    label = first.method + (f" ({first.exemplar_mode}, k={first.k}{', tool-aware' if first.tool_aware else ''}"
                            f"{_tools_label(first)})" if first.exemplar_mode else "")
    lines = [f"{label} on {first.suite}/{first.split}, n={first.n}, "
             f"{'constrained' if first.constrained else 'free'} decoding, {out['seconds']:.0f}s"]
    for metric in METRICS:
        values = [getattr(r, metric) for r in runs]
        out[metric] = values[0] if len(runs) == 1 else stats.spread(values).mean
        if metric in _RESULT_KEY:
            low, high = stats.wilson(round(values[0] * first.n), first.n)
            out[f"{metric}_ci"] = [round(low, 4), round(high, 4)]
            text = f"  {metric.replace('_', ' ')}: {values[0]:.1%} [95% CI {low:.1%}-{high:.1%}]"
        else:
            text = f"  {metric.replace('_', ' ')}: {values[0]:.3f}"
        if len(runs) > 1:
            sp = stats.spread(values)
            out[f"{metric}_spread"] = {"mean": sp.mean, "std": sp.std, "min": sp.min, "max": sp.max, "n": sp.n}
            text += f"; over {sp.n} repeats mean {sp.mean:.1%}, sd {sp.std:.1%}, range {sp.min:.1%}-{sp.max:.1%}"
        lines.append(text)
    base = baseline_for(ws, first, baseline)
    if base is not None:
        comparison = {}
        for metric in ("name", "call"):
            p = stats.paired(first, base, metric)
            comparison[metric] = {"n": p.n, "difference": p.difference, "ci": [p.low, p.high],
                                  "p_value": p.p_value, "only_this": p.only_a, "only_baseline": p.only_b,
                                  "baseline_accuracy": p.accuracy_b}
            lines.append(f"  vs {baseline} ({base.id}): {metric} {p.difference:+.1%} "
                         f"[{p.low:+.1%}, {p.high:+.1%}], exact McNemar p={p.p_value:.3g} (n={p.n} paired)")
        out["baseline"] = {"id": base.id, "method": baseline, **comparison}
    elif baseline and baseline != first.method:
        lines.append(f"  (no {baseline} run on these tasks with the same decoding to compare with: "
                     f"run `eval --suite {first.suite} --method {baseline}` first)")
    out["lines"] = lines
    return out
