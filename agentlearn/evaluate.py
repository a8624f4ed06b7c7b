"""Evaluation on held-out tasks: what each learning method (and adapter) buys, with the same graders.

Every run reports, over its n tasks (a task counts by its last trial):
- name_accuracy: the right tool was called;
- call_accuracy: the right tool with every argument right under its kind's rule (graders.py); on a
  suite whose tasks carry references (BFCL's), the answer right by BFCL's AST rule: every acceptable
  value, several calls in any order, or none (agentlearn.suites.references); `call_rule` says which;
- args_score: the mean per-argument score over the calls that named the right tool;
- exact_accuracy: the right tool with exactly the expected arguments (JSON equality).
Per-task outcomes are stored (EvalRun.results) so that two runs on the same tasks compare as a paired
difference (stats.paired), and per-argument accuracy (EvalRun.per_argument) shows which arguments fail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from agentlearn.agent import run_tasks
from agentlearn.graders import score
from agentlearn.memory.retrieval import resolve_options
from agentlearn.methods import USES_EXEMPLARS, RunOptions, options_of
from agentlearn.tasks import gradable_tasks, load_tasks
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Trajectory

REPEAT_TEMPERATURE = 0.7  # `--repeats` samples, so that the spread says how much a result moves


def evaluate(ws: Workspace, suite: str, options: RunOptions | None = None, split: str = "heldout",
             progress: Callable | None = None, group: str = "", answered: Callable | None = None) -> EvalRun:
    """Run every task of a split once (Reflexion: up to `options.trials`), store and return the scores.

    The stored run keeps the options it used with every "auto" resolved (EvalRun.options).
    `progress` after each task, `answered(a, n, message)` as each gets its answer inside a batch, and before
    each generation with what it is doing (agent.run_tasks).
    """
    options = options or RunOptions()
    tasks = gradable_tasks(ws, suite, split)
    if not tasks:
        raise ValueError(f"suite {suite!r} has no {split} tasks with a known right answer; import tasks with "
                         "`python -m agentlearn tasks import`, or correct imported runs to give them one")
    tasks = tasks[:options.limit] if options.limit else tasks
    used = resolve_options(ws, suite, options.replace(source="eval"))
    started = time.perf_counter()
    runs = run_tasks(ws, tasks, used, progress=progress, answered=answered)
    finals = [trials_[-1] for trials_ in runs]
    figures = score(finals)
    used = used.replace(constrained=any(t.constrained for t in finals))  # what the model could do, not what was asked
    exemplars_ = used.uses_exemplars
    tools = used.tools if used.narrows_tools else ""  # any method: zero-shot may be offered a shortlist too
    run = EvalRun(
        suite=suite, split=split, method=used.method,
        exemplar_mode=(f"auto:{used.exemplar_mode}" if "exemplar_mode" in used.auto else used.exemplar_mode)
        if exemplars_ else "", k=used.k if exemplars_ else 0, tool_aware=used.tool_aware and exemplars_,
        tools=int(tools or 0), ranker=used.ranker if tools else "",
        adapter=used.adapter_id, model=ws.settings.model_label, ablated=list(used.ablate),
        constrained=used.constrained, temperature=used.temperature, group=group,
        bank_size=used.bank_size, trajectory_ids=[t.id for trials_ in runs for t in trials_],
        seconds=time.perf_counter() - started, options=used.to_dict(), **figures,
    )
    ws.repo.put(run)
    return run


def evaluate_repeats(ws: Workspace, suite: str, repeats: int, options: RunOptions | None = None,
                     temperature: float = REPEAT_TEMPERATURE, progress: Callable | None = None,
                     split: str = "heldout", answered: Callable | None = None) -> list[EvalRun]:
    """The same evaluation `repeats` times with sampling and a shuffled shot order (seeds 0..repeats-1)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    group = uuid.uuid4().hex[:12]
    runs: list[EvalRun] = []

    def overall(i: int, n: int, trials: list[Trajectory], seconds: float) -> None:
        if progress:  # one count over every repeat, so a progress bar never starts again
            progress(len(runs) * n + i, repeats * n, trials, seconds)

    def overall_answered(a: int, n: int, message: str = "") -> None:
        if answered:
            answered(len(runs) * n + a, repeats * n, message)

    for i in range(repeats):
        sampled = (options or RunOptions()).replace(temperature=temperature, seed=i, shot_seed=i)
        runs.append(evaluate(ws, suite, sampled, split=split, group=group, progress=overall,
                             answered=overall_answered))
    return runs


METRICS = ("name_accuracy", "call_accuracy", "args_score", "exact_accuracy")
_RESULT_KEY = {"name_accuracy": "name", "call_accuracy": "call", "exact_accuracy": "exact"}


def baseline_for(ws: Workspace, run: EvalRun, method: str = "none") -> EvalRun | None:
    """The newest `method` run on the same suite and split, under the same decoding (grammar, temperature)
    and adapter, with the whole bank, that covers the run's tasks: what `run` is compared with. A run without
    exemplars that was offered a shortlist is not plain zero-shot: it is compared with one offered every tool."""
    if not method or (run.method == method and not run.ablated and not _shortlist_only(run)):
        return None
    candidates = [r for r in ws.repo.find(EvalRun, suite=run.suite)
                  if r.method == method and not r.ablated and not _shortlist_only(r) and r.split == run.split
                  and r.constrained == run.constrained
                  and round(r.temperature, 3) == round(run.temperature, 3) and r.adapter == run.adapter
                  and r.id != run.id and r.bank_size is None and r.results and set(run.results) <= set(r.results)]
    return max(candidates, key=lambda r: r.created, default=None)


def _shortlist_only(run: EvalRun) -> bool:
    """A run offered only the ranker's likeliest tools without exemplars (`--tools N` with another method)."""
    return bool(run.tools) and run.method not in USES_EXEMPLARS


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
    out["label"] = options_of(first).label()
    referenced = any(t.reference is not None for t in load_tasks(ws, first.suite, first.split))
    out["call_rule"] = "bfcl" if referenced else "argument kinds"
    lines = [f"{out['label']} on {first.suite}/{first.split}, n={first.n}, {out['seconds']:.0f}s; call accuracy "
             f"by {'BFCL' if referenced else 'each argument kind'}'s rule"]
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
