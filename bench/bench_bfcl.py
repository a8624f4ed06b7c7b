"""BFCL single-turn categories on the embedded models: what zero-shot, exemplars and an SFT adapter score by
BFCL's own rule, beside the leaderboard's small models.

    nice -n 10 python -m bench.bench_bfcl                                  # five categories, both models
    python -m bench.bench_bfcl --category multi_turn_base --model smollm2-135m --methods none,exemplars,reflexion
    python -m bench.bench_bfcl --category simple_python --model smollm2-135m --limit 60 --home DIR

Each category is imported from the installed bfcl-eval package (`tasks import --format bfcl`, split as the
importer splits: half heldout) into its own workspace under --home (a temp folder unless given; a rerun
with the same --home skips what bench/results/bfcl.json already holds, and pairs a new method against the
zero-shot run stored in that workspace instead of running it again). Per model, on the first --limit
heldout tasks, greedy, constrained decoding:
- none:            zero-shot
- exemplars:       exemplars with the suite's auto retrieval (model-free leave-one-out, as the demo sets it)
- sft:             an adapter trained on the category's train split with the job's defaults
                   (jobs.config_for_suite, run in this process), zero-shot
- sft+exemplars:   that adapter with exemplars
- reflexion:       zero-shot with Reflexion, 3 trials (not in the default list; for multi-turn categories)
- shortlist:       zero-shot offered only the tool the description ranker puts first (not in the default list;
                   for categories that offer several functions, e.g. multiple)
- sft+shortlist:   the SFT adapter, offered that one tool
A row gives n, accuracy by BFCL's rule (call accuracy) with its Wilson 95% interval, the paired difference
against the same model's zero-shot with its exact McNemar p, name accuracy, seconds per task, and the
leaderboard's figure for that category beside it (../shared/research/benchmarks-and-traces-2026.md).
A method that cannot run on a category (irrelevance has no call to show as an exemplar or to train on)
says why in its row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from agentlearn import agent, stats
from agentlearn.evaluate import evaluate
from agentlearn.memory import retrieval
from agentlearn.methods import RunOptions
from agentlearn.models import EMBEDDED_MODELS, chat_model_dir
from agentlearn.settings import Settings
from agentlearn.tasks import import_file, load_tasks
from agentlearn.workspace import Workspace, open_workspace
from storage.records import EvalRun, Suite, Trajectory

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
METHODS = ("none", "exemplars", "sft", "sft+exemplars")
EXTRA_METHODS = ("reflexion", "shortlist", "sft+shortlist")
# BFCL v4 board, 2026-04-12 (research note): category -> (Qwen3-0.6B, Granite-4.0-350m); FunctionGemma-270M's
# model card (zero-shot) beside them.
LEADERBOARD = {"simple_python": (64.17, 61.67, 61.6), "multiple": (86.0, 84.5, 63.5), "parallel": (67.5, 70.0, 39.0),
               "parallel_multiple": (69.5, 55.5, 29.5), "irrelevance": (80.84, 60.84, 73.7),
               "live_simple": (61.24, 61.24, 36.2), "live_multiple": (56.13, 42.36, 25.7)}
# Multi-turn (research note): Qwen3-0.6B and xLAM-2-1b on the board's multi-turn overall.
MULTI_TURN_BOARD = (3.62, 36.0)
RESULTS = Path(__file__).parent / "results" / "bfcl.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default=",".join(CATEGORIES), help="BFCL categories, comma-separated")
    ap.add_argument("--model", default=",".join(EMBEDDED_MODELS), help="embedded models, comma-separated")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"of {', '.join(METHODS + EXTRA_METHODS)}")
    ap.add_argument("--limit", type=int, default=60, help="the first N heldout tasks of each category")
    ap.add_argument("--home", default="", help="folder of the categories' workspaces (default: a temp folder)")
    ap.add_argument("--results", default=str(RESULTS), help="the figures' JSON file (read back with --home)")
    args = ap.parse_args()
    root = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-bfcl-"))
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = json.loads(results.read_text())["rows"] if args.home and results.exists() else []
    done = {(r["category"], r["model"], r["method"]) for r in rows}
    for category in _names(args.category):
        ws = _workspace(root, category)
        n_train = len(load_tasks(ws, category, "train"))
        for model in _names(args.model):
            chat_model_dir(ws.settings.models_dir, model)  # converted before anything is timed
            model_ws = open_workspace(ws.settings.with_(local_model=model))
            base, adapter = None, ""
            for method in _names(args.methods):
                key = (category, model, method)
                if method.startswith("sft") and not adapter:
                    adapter = _train(model_ws, category)
                if key in done and method != "none":
                    continue
                if key in done and (stored := _stored_zero_shot(model_ws, category, args.limit)) is not None:
                    base = stored  # what the other methods pair against, without answering every task again
                    print(f"{category} {model} none: the run stored at {stored.created:%Y-%m-%d %H:%M} (n={stored.n})",
                          flush=True)
                    continue
                row = _measure(model_ws, category, model, method, adapter, args.limit, base)
                row["train"] = n_train
                if method == "none":
                    base = row.pop("_run")
                if key not in done:
                    rows.append({k: v for k, v in row.items() if not k.startswith("_")})
                    results.write_text(json.dumps({"rows": rows}, indent=2, default=str))
                print(_line(rows[-1]), flush=True)
    _table(rows)
    print(f"\nwrote {results}")


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _workspace(root: Path, category: str) -> Workspace:
    """The category's workspace (one models folder shared by all), imported and its retrieval chosen once."""
    home, models = root / category, root / "models"
    models.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models.resolve(), target_is_directory=True)
    ws = open_workspace(Settings.from_env().with_(home=home, backend="embedded"))
    if ws.repo.get(Suite, category) is None:
        import_file(ws, category, category, heldout=0.5, fmt="bfcl")
    if not retrieval.current(ws, category):
        try:
            retrieval.choose(ws, category, how_many=0)
        except ValueError as e:  # no exemplars to retrieve (irrelevance): exemplars rows say so
            print(f"{category}: {e}", flush=True)
    return ws


def _train(ws: Workspace, suite: str) -> str:
    """An SFT adapter on the suite's train split with the job's defaults; its id, or "" with the reason printed."""
    from agentlearn.training import jobs

    try:
        config = jobs.config_for_suite(ws, "sft", suite)
    except ValueError as e:
        print(f"{suite}: no SFT adapter: {e}", flush=True)
        return ""
    job = jobs.new_job(ws, config)
    started = time.perf_counter()
    try:
        job = jobs.run_job(ws, job.id, config)
    except Exception as e:  # noqa: BLE001 - the row says why and the bench goes on
        print(f"{suite}: SFT failed: {type(e).__name__}: {e}", flush=True)
        return ""
    print(f"{suite}: SFT adapter in {time.perf_counter() - started:.0f} s, {job.step} steps", flush=True)
    return job.adapter_id


def _stored_zero_shot(ws: Workspace, suite: str, limit: int):
    """The newest zero-shot heldout run of this model on the same first `limit` tasks, or None."""
    n = len(load_tasks(ws, suite, "heldout")[:limit])
    stored = [r for r in ws.repo.find(EvalRun, suite=suite) if r.split == "heldout" and r.method == "none"
              and not r.tools and not r.adapter and not r.ablated and r.model == ws.settings.model_label and r.n == n]
    return max(stored, key=lambda r: r.created, default=None)


def _measure(ws: Workspace, suite: str, model: str, method: str, adapter: str, limit: int, base) -> dict[str, Any]:
    board = MULTI_TURN_BOARD if suite.startswith("multi_turn") else LEADERBOARD.get(suite)
    row: dict[str, Any] = {"category": suite, "model": model, "method": method, "leaderboard": board}
    if method.startswith("sft") and not adapter:
        return {**row, "n": 0, "why": "no adapter (nothing to train on)"}
    memory = "exemplars" if method.endswith("exemplars") else "reflexion" if method == "reflexion" else "none"
    options = RunOptions(method=memory, limit=limit, adapter_id=adapter if method.startswith("sft") else "none")
    if method.endswith("shortlist"):
        options = options.replace(tools="1", ranker="description")
    try:
        run = evaluate(ws, suite, options)
    except ValueError as e:
        return {**row, "n": 0, "why": str(e)}
    row.update(_run=run, n=run.n, accuracy=run.call_accuracy, name_accuracy=run.name_accuracy,
               ci=stats.wilson(round(run.call_accuracy * run.n), run.n), seconds_per_task=run.seconds / max(run.n, 1))
    if suite.startswith("multi_turn"):
        row.update(_episode_figures(ws, run))
    if base is not None:
        p = stats.paired(run, base, "call")
        row.update(difference=p.difference, p_value=p.p_value)
    return row


def _episode_figures(ws: Workspace, run) -> dict[str, float]:
    """Share of episodes whose every call was read and ran without an error, and steps per episode."""
    episodes = [t for t in (ws.repo.get(Trajectory, i) for i in run.trajectory_ids) if t is not None]
    clean = sum(all(not r.error for s in t.steps for r in s.results)
                and not any(s.observation.startswith(agent.UNREADABLE) for s in t.steps)
                for t in episodes)
    return {"clean_share": clean / max(len(episodes), 1),
            "steps_per_episode": sum(len(t.steps) for t in episodes) / max(len(episodes), 1)}


def _line(r: dict[str, Any]) -> str:
    if not r.get("n"):
        return f"{r['category']:18} {r['model']:13} {r['method']:14} -- {r.get('why', '')}"
    vs = f" {r['difference']:+.1%} (p={r['p_value']:.3g})" if "p_value" in r else ""
    return (f"{r['category']:18} {r['model']:13} {r['method']:14} n={r['n']:3} {r['accuracy']:6.1%} "
            f"[{r['ci'][0]:.0%}, {r['ci'][1]:.0%}]{vs} ({r['seconds_per_task']:.2f} s/task){_episodes(r)}")


def _episodes(r: dict[str, Any]) -> str:
    if "clean_share" not in r:
        return ""
    return f"; every call read and ran in {r['clean_share']:.0%} of episodes, {r['steps_per_episode']:.1f} steps each"


def _table(rows: list[dict[str, Any]]) -> None:
    print("\n| category | model | method | n | accuracy by BFCL's rule [95% CI] | vs zero-shot (McNemar p) | "
          "name accuracy | s/task | board: Qwen3-0.6B / Granite-350m / FunctionGemma-270M (multi-turn: Qwen3-0.6B / "
          "xLAM-2-1b) |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        board = " / ".join(f"{x:g}" for x in r["leaderboard"]) if r.get("leaderboard") else "-"
        if not r.get("n"):
            print(f"| {r['category']} | {r['model']} | {r['method']} | 0 | {r.get('why', '')} | - | - | - | {board} |")
            continue
        vs = f"{r['difference']:+.1%} (p={r['p_value']:.3g})" if "p_value" in r else "-"
        print(f"| {r['category']} | {r['model']} | {r['method']} | {r['n']} | {r['accuracy']:.1%} "
              f"[{r['ci'][0]:.0%}, {r['ci'][1]:.0%}] | {vs} | {r['name_accuracy']:.1%} | "
              f"{r['seconds_per_task']:.2f}{_episodes(r)} | {board} |")


if __name__ == "__main__":
    main()
