"""Retrieval that adapts to the suite: resolve the "auto" mode, and choose mode, k and tool-awareness per suite.

`choose` picks by leave-one-out over the suite's train split (exemplars.select never returns a task's own
exemplars, so every train task is retrieved for as if it were new), in two stages:

(a) model-free, over every candidate configuration (modes bm25, semantic, hybrid, mmr, fixed, and type
    when at least two of the suite's exemplars share a tag; k in 1, 3, 5; tool-aware off and on). For each train task the shots are
    scored against the task's expected tool:
        task score = (recall + TOP1_BONUS * top1 + SHARE_WEIGHT * share) / (1 + TOP1_BONUS + SHARE_WEIGHT)
    recall: 1 if some shot calls the expected tool; top1: 1 if the best-ranked shot does; share: the
    fraction of shots that do. Recall alone always prefers the largest k; a small model tends to copy the
    tool most shots show, so the share of right shots counts too. A configuration's score is the mean.
(t) model-free too: how many tools to offer (tool_retrieval.shortlist), the shortest list that still holds
    the expected tool as often as the best list does (score_tool_lists);
(b) the best FINALISTS configurations (configurations that retrieve the very same shots for every task
    count once) run through the real agent, with stage t's tool list, on the train split, batched, nothing stored; a task whose shots
    an earlier finalist already ran is not run again. The choice is the best by name accuracy, then call
    accuracy, then the stage-a score, then smaller k.

The choice is stored in Suite.retrieval with the figures behind it. `resolve` turns "auto" into that
choice. A suite with no choice yet gets a model-free one on first use (stages a and t alone, stored like any
choice); `retrieval choose` later confirms it with the model. DEFAULT_CHOICE is only for a suite where even
that cannot be made (fewer than 2 train tasks, or an empty bank).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agentlearn.graders import score
from agentlearn.memory import exemplars
from agentlearn.methods import DEFAULT_RANKER, RETRIEVAL_MODES, RunOptions
from agentlearn.workspace import Workspace
from storage.records import Suite, Task, Trajectory

# Before any choice: fused ranks are the safest single mode when nothing is known about the suite's
# wording, and covering the likely tools helps most where similar requests call different tools.
DEFAULT_CHOICE: dict[str, Any] = {"mode": "hybrid", "k": 3, "tool_aware": True, "tools": None}
TOOL_LIST_SIZES = (1, 2, 3, 5, 8)  # shortlist sizes stage t scores (None, every tool, is always a candidate)
TOOL_RECALL_SLACK = 0.05  # the shortest list whose recall is within this of the best one wins
CANDIDATE_MODES = ("bm25", "semantic", "hybrid", "mmr", "fixed", "type")
CANDIDATE_KS = (1, 3, 5)
FINALISTS = 3
TOP1_BONUS = 0.5
SHARE_WEIGHT = 0.5

Progress = Callable[[int, int, str], None]  # (steps done, steps in all, what was just done)


@dataclass(frozen=True)
class Config:
    """One retrieval configuration: how many shots, chosen how."""

    mode: str
    k: int
    tool_aware: bool

    def options(self, tools: int | None = None, ranker: str = DEFAULT_RANKER) -> RunOptions:
        """The run options of this configuration (`tools`: how many to offer, None every tool)."""
        return RunOptions(method="exemplars", exemplar_mode=self.mode, k=self.k, tool_aware=self.tool_aware,
                          tools=str(tools) if tools else "all", ranker=ranker)

    def label(self) -> str:
        """Its name, as every run's retrieval is named (RunOptions.retrieval_label), e.g. 'hybrid k=3 · tool-aware'."""
        return self.options().retrieval_label()


# (workspace, tasks, configuration, on_task(tasks done so far), tools=N or None, ranker=name) -> each task's
# trials: stage b runs the agent with it (agent.run_with_agent); the package below the agent takes it as given.
Runner = Callable[..., list[list[Trajectory]]]


# --- using a choice ---------------------------------------------------------------------------------


def current(ws: Workspace, suite_name: str) -> dict[str, Any]:
    """The suite's stored auto choice with its figures, or {} when none was made (or the suite is unknown)."""
    suite = ws.repo.get(Suite, suite_name)
    if suite is None or suite.retrieval.get("mode") not in RETRIEVAL_MODES:
        return {}
    return dict(suite.retrieval)


def resolve(ws: Workspace, suite_name: str, mode: str, k: int, tool_aware: bool) -> tuple[str, int, bool]:
    """(mode, k, tool_aware) to retrieve with: "auto" becomes the suite's choice (or DEFAULT_CHOICE); others pass."""
    if mode != "auto":
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"unknown exemplar mode {mode!r}; choose auto or one of {', '.join(RETRIEVAL_MODES)}")
        return mode, k, tool_aware
    choice = _choice(ws, suite_name)
    return str(choice["mode"]), int(choice["k"]), bool(choice["tool_aware"])


def resolve_options(ws: Workspace, suite_name: str, options: RunOptions) -> RunOptions:
    """The options a run on the suite uses, every "auto" made concrete: the one place auto is resolved.

    The adapter ("auto": the suite's promoted model, ""/"none": the base model, "" after), decoding (under
    the grammar only where the settings allow it), and with exemplars the mode, k and tool-awareness, how
    many tools to offer ("all" or a number) and the tool ranker, from the suite's choice. The names of the
    fields auto filled in are kept in `auto`, so labels and records can say so.
    """
    from agentlearn import adapters

    auto = list(options.auto)
    changes: dict[str, Any] = {"adapter_id": adapters.resolve(ws, suite_name, options.adapter_id),
                               "constrained": options.constrained and ws.settings.constrained}
    if options.uses_exemplars:
        mode, k, tool_aware = resolve(ws, suite_name, options.exemplar_mode, options.k, options.tool_aware)
        if options.exemplar_mode == "auto":
            auto += ["exemplar_mode", "k", "tool_aware"]
        tools, ranker = options.tools, options.ranker
        if options.bank_size is not None:
            tools = "all"  # a learning curve measures the bank alone: every tool offered
        elif tools == "auto":
            tools, auto = str(_choice(ws, suite_name).get("tools") or "all"), auto + ["tools"]
        if ranker == "auto":
            ranker, auto = str(_choice(ws, suite_name).get("ranker") or DEFAULT_RANKER), auto + ["ranker"]
        changes.update(exemplar_mode=mode, k=k, tool_aware=tool_aware, tools=tools, ranker=ranker)
    return options.replace(**changes, auto=tuple(dict.fromkeys(auto)))


def _choice(ws: Workspace, suite_name: str) -> dict[str, Any]:
    """The suite's stored choice; on first use a model-free one is made and stored (seconds, no model run),
    so a suite adapts from its first run; DEFAULT_CHOICE where even that cannot be made."""
    stored = current(ws, suite_name)
    if stored:
        return stored
    if ws.repo.get(Suite, suite_name) is None:
        return DEFAULT_CHOICE
    try:
        return choose(ws, suite_name, how_many=0)
    except ValueError:  # fewer than 2 train tasks, or nothing in the bank
        return DEFAULT_CHOICE


def score_tool_lists(ws: Workspace, tasks: Sequence[Task], sizes: Sequence[int] = TOOL_LIST_SIZES) -> dict[str, Any]:
    """Stage t: leave-one-out recall of each task's expected tool in shortlists of each size, for each ranker;
    the chosen ranker and size.

    Model-free (tool_retrieval.rank_tools with the task's own exemplars left out, as select always does).
    The ranker is the one whose first tool is right most often (`top1`, ties in RANKERS order); its
    shortest list whose recall is within TOOL_RECALL_SLACK of its best wins; every tool (None) when no list
    is shorter than the suite's tool set.
    """
    from agentlearn.memory import tool_retrieval

    vectors = ws.encoder([exemplars.text_of(t.input) for t in tasks]) if tasks else []
    n_tools = max((len(t.tools) for t in tasks), default=0)
    rows, top1 = [], {}
    for ranker in tool_retrieval.RANKERS:
        ranks = [[name for name, _ in tool_retrieval.rank_tools(ws, task, v, ranker)]
                 for task, v in zip(tasks, vectors, strict=True)]
        top1[ranker] = round(float(np.mean([bool(r) and r[0] == t.expected.name for t, r in zip(tasks, ranks,
                                                                                                 strict=True)])), 4) \
            if tasks else 0.0
        for m in [s for s in sizes if s < n_tools]:
            hits = [task.expected.name in r[:m] for task, r in zip(tasks, ranks, strict=True)]
            rows.append({"ranker": ranker, "tools": m, "recall": round(float(np.mean(hits)), 4) if hits else 0.0})
    ranker = max(tool_retrieval.RANKERS, key=lambda r: (top1[r], -tool_retrieval.RANKERS.index(r)))
    own = [r for r in rows if r["ranker"] == ranker]
    best = max((r["recall"] for r in own), default=1.0)
    chosen = next((r["tools"] for r in own if r["recall"] >= min(best, 1.0) - TOOL_RECALL_SLACK), None)
    return {"tools": chosen, "ranker": ranker, "top1": top1, "rows": rows, "n_tools": n_tools}


# --- stage a: retrieval alone -----------------------------------------------------------------------


def candidates(with_type: bool) -> list[Config]:
    """Every configuration stage a scores, in the order that breaks its ties."""
    modes = [m for m in CANDIDATE_MODES if with_type or m != "type"]
    return [Config(m, k, ta) for k in CANDIDATE_KS for m in modes for ta in (False, True)]


def _task_score(tools: list[str], expected: str) -> tuple[float, float, float]:
    if not tools:
        return 0.0, 0.0, 0.0
    right = [t == expected for t in tools]
    return float(any(right)), float(right[0]), sum(right) / len(right)


def score_retrieval(ws: Workspace, tasks: Sequence[Task], configs: Sequence[Config],
                    progress: Progress | None = None, total: int | None = None) -> list[dict[str, Any]]:
    """Stage a: for each configuration, how well its leave-one-out shots point at each task's expected tool."""
    vectors = ws.encoder([exemplars.text_of(t.input) for t in tasks]) if tasks else np.zeros((0, 0))
    out = []
    for n, config in enumerate(configs, 1):
        recall, top1, share, picks = [], [], [], []
        for task, vector in zip(tasks, vectors, strict=True):
            shots = exemplars.select(ws, task, config.mode, k=config.k, tool_aware=config.tool_aware,
                                     query_vector=vector)
            r, f, s = _task_score([x.exemplar.tool for x in shots], task.expected.name)
            recall.append(r)
            top1.append(f)
            share.append(s)
            picks.append(tuple(x.exemplar.id for x in shots))
        per_task = (np.asarray(recall) + TOP1_BONUS * np.asarray(top1) + SHARE_WEIGHT * np.asarray(share)) \
            / (1 + TOP1_BONUS + SHARE_WEIGHT)
        out.append({**asdict(config), "score": round(float(per_task.mean()), 4),
                    "recall": round(float(np.mean(recall)), 4), "top1": round(float(np.mean(top1)), 4),
                    "share": round(float(np.mean(share)), 4), "_picks": tuple(picks)})
        if progress:
            progress(n, total or len(configs), f"stage a: {config.label()} score {out[-1]['score']:.3f}")
    return out


def finalists(stage_a: Sequence[dict[str, Any]], how_many: int = FINALISTS) -> list[Config]:
    """The best stage-a configurations (smaller k first on a tie); ones that pick the same shots count once."""
    order = sorted(range(len(stage_a)), key=lambda i: (-stage_a[i]["score"], stage_a[i]["k"], i))
    chosen, seen = [], set()
    for i in order:
        row = stage_a[i]
        if row["_picks"] in seen:
            continue
        seen.add(row["_picks"])
        chosen.append(Config(row["mode"], row["k"], row["tool_aware"]))
        if len(chosen) == how_many:
            break
    return chosen


# --- stage b: the real agent ------------------------------------------------------------------------


def _agent_figures(runs: list[list[Trajectory]]) -> dict[str, Any]:
    """Name and call accuracy and args_score of each task's last trial, by the same rule as evaluations."""
    figures = score([trials[-1] for trials in runs if trials])
    return {"n": figures["n"], **{key: round(figures[key], 4) for key in ("name_accuracy", "call_accuracy",
                                                                          "args_score")}}


def _reporter(progress: Progress | None, step: int, total: int, config: Config, reused: int,
              n_tasks: int) -> Callable[[int], None]:
    """on_task for one finalist: `step` steps were done before it, `reused` of its tasks need no run."""
    def on_task(done: int) -> None:
        if progress and reused + done < n_tasks:  # the last task is reported with the figures
            progress(step + reused + done, total, f"stage b: {config.label()}, {reused + done} of {n_tasks} tasks")
    return on_task


def run_finalists(ws: Workspace, tasks: list[Task], stage_a: Sequence[dict[str, Any]], best: Sequence[Config],
                  runner: Runner, progress: Progress | None, total: int, tools: int | None = None,
                  ranker: str = DEFAULT_RANKER) -> list[dict[str, Any]]:
    """Stage b: each finalist through the agent; a task whose shots an earlier finalist already ran is not run again.

    The same shots make the same prompt, and greedy decoding gives the same answer to the same prompt, so
    the earlier trajectory counts for both: configurations that differ only on some tasks cost only those.
    """
    row_of = {(r["mode"], r["k"], r["tool_aware"]): r for r in stage_a}
    answered: dict[tuple[str, tuple[str, ...]], list[Trajectory]] = {}
    out = []
    for n, config in enumerate(best):
        row = row_of[(config.mode, config.k, config.tool_aware)]
        keys = [(task.id, picks) for task, picks in zip(tasks, row["_picks"], strict=True)]
        todo = [i for i, key in enumerate(keys) if key not in answered]
        step = len(stage_a) + n * len(tasks)
        on_task = _reporter(progress, step, total, config, len(tasks) - len(todo), len(tasks))
        started = time.perf_counter()
        runs = runner(ws, [tasks[i] for i in todo], config, on_task, tools=tools, ranker=ranker) if todo else []
        answered.update({keys[i]: trials for i, trials in zip(todo, runs, strict=True)})
        figures = _agent_figures([answered[key] for key in keys])
        out.append({**asdict(config), **figures, "stage_a_score": row["score"], "ran": len(todo),
                    "seconds": round(time.perf_counter() - started, 1)})
        if progress:
            progress(step + len(tasks), total, f"stage b: {config.label()} name accuracy "
                     f"{figures['name_accuracy']:.1%}")
    return out


# --- choosing ---------------------------------------------------------------------------------------


def type_is_usable(ws: Workspace, suite_name: str, train: Sequence[Task]) -> bool:
    """True if retrieval by tag can find anything: a tag only one exemplar carries is never shared."""
    return any(t.tags for t in train) and max(exemplars.tag_counts(ws, suite_name).values(), default=0) > 1


def choose(ws: Workspace, suite_name: str, progress: Progress | None = None, *, runner: Runner | None = None,
           how_many: int = FINALISTS) -> dict[str, Any]:
    """Choose the suite's retrieval mode, k and tool-awareness by leave-one-out on its train split; store and return it."""
    from agentlearn.tasks import get_suite, gradable_tasks

    if how_many < 0:
        raise ValueError(f"the number of configurations run through the agent cannot be negative ({how_many})")
    get_suite(ws, suite_name)
    train = gradable_tasks(ws, suite_name, "train")
    if len(train) < 2:
        raise ValueError(f"suite {suite_name!r} has {len(train)} train task(s) with a known right answer; choosing "
                         "retrieval by leave-one-out needs at least 2")
    exemplars.sync_bank(ws, suite_name)  # the bank the agent's runs will retrieve from
    if not exemplars.bank(ws, suite_name):
        raise ValueError(f"suite {suite_name!r} has no active exemplars to retrieve; import its train split or add "
                         "exemplars first")
    configs = candidates(type_is_usable(ws, suite_name, train))
    total = len(configs) + how_many * len(train)  # stage b counts every task it runs: it takes the time
    stage_a = score_retrieval(ws, train, configs, progress, total)
    stage_t = score_tool_lists(ws, train)
    if how_many and runner is None:
        raise ValueError("running finalists through the agent needs a runner (agent.run_with_agent)")
    stage_b = run_finalists(ws, train, stage_a, finalists(stage_a, how_many), runner, progress, total,
                            tools=stage_t["tools"], ranker=stage_t["ranker"]) if how_many else []
    tools = stage_t["tools"]
    if stage_b:
        winner = min(stage_b, key=lambda r: (-r["name_accuracy"], -r["call_accuracy"], -r["stage_a_score"], r["k"]))
        # With one tool offered the ranker's first tool is the answer's name, so its leave-one-out top-1 is
        # that setting's name accuracy, known without running the model: it decides when it beats the model.
        if stage_t["top1"][stage_t["ranker"]] > winner["name_accuracy"] and stage_t["n_tools"] > 1:
            tools = 1
    else:  # model-free: stage a alone decides (how_many=0, e.g. the demo on first start)
        best = finalists(stage_a, 1)[0]
        winner = {"mode": best.mode, "k": best.k, "tool_aware": best.tool_aware}
    choice = {"mode": winner["mode"], "k": winner["k"], "tool_aware": winner["tool_aware"],
              "tools": tools, "ranker": stage_t["ranker"], "ranker_top1": stage_t["top1"],
              "stage_t": stage_t["rows"],
              "chosen_at": datetime.now(UTC).isoformat(timespec="seconds"), "n_train": len(train),
              "stage_a": [{k: v for k, v in r.items() if k != "_picks"} for r in stage_a], "stage_b": stage_b,
              "model": ws.settings.model_label}
    ws.repo.update(Suite, suite_name, lambda s: s.model_copy(update={"retrieval": choice}))
    return choice


def summary(choice: dict[str, Any]) -> str:
    """One line that says what was chosen and on what evidence."""
    if not choice:
        return ("no choice yet: the first run with auto makes a model-free one, and `retrieval choose` "
                "checks the best configurations with the model")
    config = Config(choice["mode"], choice["k"], choice["tool_aware"])
    row = next((r for r in choice.get("stage_b", []) if (r["mode"], r["k"], r["tool_aware"]) ==
                (config.mode, config.k, config.tool_aware)), {})
    figures = f": name accuracy {row['name_accuracy']:.1%}, call accuracy {row['call_accuracy']:.1%}" if row else ""
    ranker = choice.get("ranker") or DEFAULT_RANKER
    top1 = (choice.get("ranker_top1") or {}).get(ranker)
    if choice.get("tools") == 1 and row and top1 is not None:
        figures = (f": the ranker's first tool right on {top1:.1%} of them, the model choosing among the "
                   f"likeliest tools {row['name_accuracy']:.1%}")
    how = "" if choice.get("stage_b") else " (model-free)"
    return (f"{config.options(choice.get('tools'), ranker).retrieval_label()}{how}, chosen "
            f"{choice.get('chosen_at', '?')} by leave-one-out on {choice.get('n_train', '?')} "
            f"train tasks with {choice.get('model', '?')}{figures}")
