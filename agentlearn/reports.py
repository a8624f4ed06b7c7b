"""What the Evaluate, Run and Overview pages show about evaluations, as tables: the pages only draw them.

- A configuration is what a run was asked to do: method, retrieval mode and k, tool-aware shots,
  constrained decoding, temperature, adapter, and the tools offered (every one, or the ranker's N). Per configuration the run with the largest n is
  shown (the newest among equals), so a quick run on 3 tasks never silently replaces one on 40; a
  newer smaller run is counted in the row's note.
- Every accuracy comes with n and a Wilson 95% interval; a comparison with a baseline is paired on
  the tasks both runs have (stats.paired: exact McNemar p, Newcombe interval of the difference).
- Runs that belong to a learning curve are points of that curve, not configurations of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from agentlearn import stats
from agentlearn.evaluate import baseline_for
from agentlearn.methods import METHODS, USES_EXEMPLARS, options_of
from agentlearn.workspace import Workspace
from storage.records import Adapter, EvalRun, LearningCurve, Task, Trajectory

ACCURACIES = {"name accuracy": "name_accuracy", "call accuracy": "call_accuracy", "exact accuracy": "exact_accuracy"}
SUMMARY_COLUMNS = ["configuration", "method", "exemplar mode", "k", "tool-aware", "constrained", "temperature",
                   "adapter", "n", "name accuracy", "name low", "name high", "call accuracy", "call low", "call high",
                   "args score", "exact accuracy", "exact low", "exact high", "when", "note", "id"]
COMPARISON_COLUMNS = ["configuration", "baseline", "metric", "paired n", "accuracy", "baseline accuracy",
                      "difference", "95% low", "95% high", "only this right", "only baseline right", "McNemar p"]


def adapter_names(ws: Workspace) -> dict[str, str]:
    """Trained adapters: id -> name."""
    return {a.id: a.name for a in ws.repo.all(Adapter)}


def split_size(ws: Workspace, suite: str, split: str) -> int:
    """How many tasks a suite has in a split."""
    return sum(1 for t in ws.repo.find(Task, suite=suite) if t.split == split)


def configuration(run: EvalRun) -> tuple:
    """The key of what a run was asked to do (see the module docstring)."""
    uses = run.method in USES_EXEMPLARS
    return (run.method, run.exemplar_mode if uses else "", run.k if uses else 0, run.tool_aware and uses,
            run.constrained, round(run.temperature, 3), run.adapter, run.tools, run.ranker if run.tools else "")


def label(run: EvalRun, adapters: dict[str, str] | None = None) -> str:
    """A short readable name of a run's configuration (RunOptions.label, the adapter by its name)."""
    return options_of(run).replace(limit=None).label((adapters or {}).get(run.adapter, run.adapter))


def latest_episode(ws: Workspace, task_id: str, source: str = "agent") -> list[Trajectory]:
    """The trials of a task's newest episode the agent ran (Run page), in order; [] if it has none."""
    found = [t for t in ws.repo.find(Trajectory, task_id=task_id) if t.source == source]
    newest = max(found, key=lambda t: t.created, default=None)
    if newest is None:
        return []
    if not newest.episode_id:
        return [newest]
    return sorted((t for t in found if t.episode_id == newest.episode_id), key=lambda t: t.trial)


def memory_label(trajectory: Trajectory) -> str:
    """What a run was given, named as configurations are (RunOptions.label)."""
    return options_of(trajectory).label()


def runs(ws: Workspace, suite: str, split: str = "heldout") -> list[EvalRun]:
    """The suite's evaluation runs on a split, oldest first, without the cut-bank points of learning curves.

    A curve's two ends (zero-shot, and the whole bank) are ordinary evaluations and count as such.
    """
    return [r for r in ws.repo.find(EvalRun, suite=suite) if r.split == split and r.bank_size is None]


@dataclass(frozen=True)
class Chosen:
    """The run shown for a configuration, and what it stands in for."""

    run: EvalRun
    runs: int  # runs of this configuration in all
    newer_smaller: int  # runs of it made later on fewer tasks, not shown


def chosen_runs(all_runs: Iterable[EvalRun]) -> list[Chosen]:
    """Per configuration, the run with the largest n (newest among equals), in METHODS order."""
    groups: dict[tuple, list[EvalRun]] = {}
    for run in all_runs:
        groups.setdefault(configuration(run), []).append(run)
    chosen = []
    for group in groups.values():
        best = max(group, key=lambda r: (r.n, r.created))
        newer_smaller = sum(1 for r in group if r.created > best.created and r.n < best.n)
        chosen.append(Chosen(best, len(group), newer_smaller))
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(chosen, key=lambda c: (c.run.adapter, order.get(c.run.method, len(order)), configuration(c.run)))


def _note(c: Chosen) -> str:
    notes = []
    if c.newer_smaller:
        notes.append(f"{c.newer_smaller} newer run{'s' if c.newer_smaller > 1 else ''} on fewer tasks not shown")
    if c.runs > 1 and not c.newer_smaller:
        notes.append(f"largest of {c.runs} runs")
    return "; ".join(notes)


def eval_summary(ws: Workspace, suite: str, split: str = "heldout") -> pd.DataFrame:
    """One row per configuration: the run with the largest n, its accuracies with Wilson 95% intervals."""
    adapters = adapter_names(ws)
    rows = []
    for c in chosen_runs(runs(ws, suite, split)):
        r = c.run
        row = {"configuration": label(r, adapters), "method": r.method, "exemplar mode": configuration(r)[1],
               "k": configuration(r)[2], "tool-aware": configuration(r)[3], "constrained": r.constrained,
               "temperature": r.temperature, "adapter": adapters.get(r.adapter, r.adapter) or "(base)", "n": r.n,
               "args score": round(r.args_score, 3), "when": r.created.strftime("%Y-%m-%d %H:%M"), "note": _note(c),
               "id": r.id}
        for name, field in ACCURACIES.items():
            value = getattr(r, field)
            low, high = stats.wilson(round(value * r.n), r.n)
            short = name.split()[0]
            row.update({name: round(value, 3), f"{short} low": round(low, 3), f"{short} high": round(high, 3)})
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def accuracy_chart_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary in long form for a bar chart: bar label with n, metric, value, error bar below/above."""
    rows = []
    for _, r in summary.iterrows():
        bar = f"{r['configuration']} (n={r['n']})"
        for name in ACCURACIES:
            short = name.split()[0]
            rows.append({"configuration": bar, "metric": name, "accuracy": r[name],
                         "minus": r[name] - r[f"{short} low"], "plus": r[f"{short} high"] - r[name]})
        rows.append({"configuration": bar, "metric": "args score", "accuracy": r["args score"],
                     "minus": 0.0, "plus": 0.0})  # a mean similarity, not a proportion: no Wilson interval
    return pd.DataFrame(rows, columns=["configuration", "metric", "accuracy", "minus", "plus"])


def baseline_choices(ws: Workspace, suite: str, split: str = "heldout") -> dict[str, str]:
    """Baselines to compare with: '' (zero-shot with the same decoding, per run) and each shown run by id."""
    adapters = adapter_names(ws)
    choices = {"": "zero-shot (none) with the same decoding"}
    for c in chosen_runs(runs(ws, suite, split)):
        choices[c.run.id] = f"{label(c.run, adapters)} (n={c.run.n})"
    return choices


def default_baseline(ws: Workspace, run: EvalRun) -> EvalRun | None:
    """The zero-shot run `run` is compared with (evaluate.baseline_for owns the rule)."""
    return baseline_for(ws, run, "none")


def comparison(ws: Workspace, suite: str, baseline_id: str = "", metric: str = "name",
               split: str = "heldout") -> pd.DataFrame:
    """Each configuration against the baseline on the tasks both have: difference, 95% interval, exact p."""
    adapters = adapter_names(ws)
    fixed = ws.repo.get(EvalRun, baseline_id) if baseline_id else None
    if baseline_id and fixed is None:
        raise ValueError(f"no evaluation run with id {baseline_id!r} to compare with")
    rows = []
    for c in chosen_runs(runs(ws, suite, split)):
        base = fixed or default_baseline(ws, c.run)
        if base is None or base.id == c.run.id or not c.run.results or not base.results:
            continue
        p = stats.paired(c.run, base, metric)
        rows.append({"configuration": label(c.run, adapters), "baseline": f"{label(base, adapters)} (n={base.n})",
                     "metric": metric, "paired n": p.n, "accuracy": round(p.accuracy_a, 3),
                     "baseline accuracy": round(p.accuracy_b, 3), "difference": round(p.difference, 3),
                     "95% low": round(p.low, 3), "95% high": round(p.high, 3), "only this right": p.only_a,
                     "only baseline right": p.only_b, "McNemar p": round(p.p_value, 4)})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def per_argument(ws: Workspace, run_id: str) -> pd.DataFrame:
    """Per-argument accuracy over the name-correct calls of a run, with Wilson 95% intervals."""
    run = ws.repo.get(EvalRun, run_id)
    if run is None:
        raise ValueError(f"no evaluation run with id {run_id!r}")
    rows = []
    for argument, (right, graded) in sorted(run.per_argument.items()):
        low, high = stats.wilson(right, graded)
        rows.append({"argument": argument, "right": right, "graded": graded,
                     "accuracy": round(right / graded, 3) if graded else None,
                     "95% low": round(low, 3), "95% high": round(high, 3)})
    return pd.DataFrame(rows, columns=["argument", "right", "graded", "accuracy", "95% low", "95% high"])


def latest_curve(ws: Workspace, suite: str) -> LearningCurve | None:
    """The suite's newest learning curve, if one was measured."""
    return max(ws.repo.find(LearningCurve, suite=suite), key=lambda c: c.created, default=None)


def curve_table(curve: LearningCurve) -> pd.DataFrame:
    """A learning curve per bank size and metric: mean, sd, min and max over draws, draws, n."""
    rows = []
    for size in sorted({int(p["bank_size"]) for p in curve.points}):
        points = [p for p in curve.points if int(p["bank_size"]) == size]
        for metric in ("name_accuracy", "call_accuracy"):
            s = stats.spread([float(p.get(metric, 0.0)) for p in points])
            rows.append({"bank size": size, "metric": metric.replace("_", " "), "mean": round(s.mean, 3),
                         "sd": round(s.std, 3), "min": round(s.min, 3), "max": round(s.max, 3), "draws": s.n,
                         "n": int(points[0].get("n", 0))})
    return pd.DataFrame(rows, columns=["bank size", "metric", "mean", "sd", "min", "max", "draws", "n"])


def repeat_spreads(ws: Workspace, suite: str, split: str = "heldout") -> pd.DataFrame:
    """Runs made together as repeats (same group and configuration): the spread of their accuracies."""
    adapters = adapter_names(ws)
    groups: dict[tuple, list[EvalRun]] = {}
    for run in runs(ws, suite, split):
        if run.group:
            groups.setdefault((run.group, configuration(run)), []).append(run)
    rows = []
    for members in groups.values():
        if len(members) < 2:
            continue
        row = {"configuration": label(members[0], adapters), "repeats": len(members), "n": members[0].n,
               "when": members[0].created.strftime("%Y-%m-%d %H:%M")}
        for name, field in ACCURACIES.items():
            s = stats.spread([getattr(r, field) for r in members])
            row.update({f"{name} mean": round(s.mean, 3), f"{name} sd": round(s.std, 3),
                        f"{name} range": f"{s.min:.3f}-{s.max:.3f}"})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Gain:
    """A method's latest run against its zero-shot baseline on the same tasks."""

    run: EvalRun
    baseline: EvalRun
    paired: stats.Paired  # on the metric asked for (tool name by default)
    label: str
    call: stats.Paired  # on whole calls (name and arguments): a name gain alone can hide 0% right calls


def latest_gain(ws: Workspace, suite: str, method: str = "exemplars", metric: str = "name",
                split: str = "heldout") -> Gain | None:
    """The newest shown run of `method` (largest n of its configuration) that has a zero-shot baseline, against it."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    shown = [c.run for c in chosen_runs(runs(ws, suite, split)) if c.run.method == method and c.run.results]
    for run in sorted(shown, key=lambda r: r.created, reverse=True):
        base = default_baseline(ws, run)
        if base is not None:
            return Gain(run, base, stats.paired(run, base, metric), label(run, adapter_names(ws)),
                        stats.paired(run, base, "call"))
    return None


def runs_since(ws: Workspace, suite: str, since: datetime) -> list[EvalRun]:
    """Evaluation runs of a suite made at or after `since`, oldest first (what a finished child stored)."""
    return [r for r in ws.repo.find(EvalRun, suite=suite) if r.created >= since]


def trajectories(ws: Workspace, ids: Iterable[str]) -> list[Trajectory]:
    """The stored trajectories with these ids, in that order (ids no longer stored are left out)."""
    found = (ws.repo.get(Trajectory, i) for i in ids)
    return [t for t in found if t is not None]
