"""Which SFT sizing helps: heldout tool-name accuracy of the base model against adapters trained with a few
settings, on suites of different sizes, embedded model (SmolLM2-135M) on CPU.

    nice -n 10 python -m bench.bench_training_defaults [--suites demo,it,supply,dpo-it] [--settings ...]
                                                       [--limit N] [--home DIR]

Suites: the built-in demo, the two public-format task files of ../shared/data, and the DPO file there made
into tasks (its prompt, its chosen tool call as the reference). Each is imported into its own workspace
(a temp AGENTLEARN_HOME unless --home), split as the importer splits (half heldout).

Settings (SFT from the cpu-small preset: batch 2, learning rate 5e-4, LoRA r=16), each trained in this
process through the job code (jobs.new_job + jobs.run_job) on the suite's exported SFT rows:
- defaults:         the job as `train sft --suite` and `improve` size it now (sizing.prepare with the
                    defaults of training/config.py)
- old-sized:        the sizing before those defaults: 3 epochs (at least 4 steps, at most 40), linear, warm-up
                    3 capped at a tenth of the steps, a 20% validation slice (>= 10 rows) picking the
                    checkpoint once an epoch
- 40-linear:        a fixed 40 steps over every row, linear schedule, warm-up 3, no validation slice
- 40-cosine:        the same with a cosine schedule
- 40-constant:      the same with a constant learning rate after warm-up
- 40-cosine-val:    40 steps, cosine, the 20% validation slice picks the checkpoint (checked every 10 steps)
Every adapter and the base model are scored zero-shot on the heldout split (greedy, constrained decoding as
the settings allow); each row gives n, name accuracy with its Wilson 95% interval, and the paired
difference with the base (Newcombe interval, exact McNemar p). Results are written after every row to
bench/results/training-defaults.json, so a stopped sweep keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from agentlearn import datasets, stats
from agentlearn.evaluate import evaluate
from agentlearn.methods import RunOptions
from agentlearn.settings import Settings
from agentlearn.tasks import ensure_demo_suite, import_jsonl, load_tasks
from agentlearn.training import config as jc
from agentlearn.training import jobs, sizing
from agentlearn.workspace import open_workspace
from storage.records import Suite

SHARED = Path("/work/shared/data")
FILES = {"it": "it_help_desk_system_administration.jsonl", "supply": "supply_chain_logistics_management.jsonl",
         "dpo-it": "dpo_it_help_desk_training_data.jsonl"}
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {"defaults": True},
    "old-sized": {"old": True},
    "40-linear": {"max_steps": 40, "lr_scheduler_type": "linear", "warmup_steps": 3},
    "40-cosine": {"max_steps": 40, "lr_scheduler_type": "cosine", "warmup_steps": 3},
    "40-constant": {"max_steps": 40, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 3},
    "40-cosine-val": {"max_steps": 40, "lr_scheduler_type": "cosine", "warmup_steps": 3, "validate": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suites", default="demo,it,supply,dpo-it")
    ap.add_argument("--settings", default="defaults,old-sized,40-cosine,40-constant,40-cosine-val")
    ap.add_argument("--limit", type=int, default=None, help="only the first N heldout tasks")
    ap.add_argument("--home", default="", help="folder for the suites' workspaces (default: a temp folder)")
    ap.add_argument("--models", default="", help="a models folder to share (converted SmolLM2); default: convert")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for training")
    args = ap.parse_args()
    root = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-defaults-"))
    out = Path(__file__).parent / "results" / "training-defaults.json"
    out.parent.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = json.loads(out.read_text())["rows"] if out.exists() and args.home else []
    done = {(r["suite"], r["setting"]) for r in rows}
    for key in [s.strip() for s in args.suites.split(",") if s.strip()]:
        ws, suite = _suite(root / key, key, Path(args.models) if args.models else root / "models")
        train, heldout = load_tasks(ws, suite, "train"), load_tasks(ws, suite, "heldout")[: args.limit]
        print(f"suite {key}: {len(train)} train / {len(heldout)} heldout tasks", flush=True)
        base = _base_run(ws, suite, args.limit)
        if (key, "base") not in done:
            rows.append(_row(key, "base", len(train), base, None, {}))
            _save(out, rows)
        exported = datasets.export(ws, "sft", suite)
        for name in [s.strip() for s in args.settings.split(",") if s.strip()]:
            if (key, name) in done:
                continue
            started = time.perf_counter()
            config, facts = _config(ws, exported, SETTINGS[name], args.threads)
            job = jobs.new_job(ws, config)
            job = jobs.run_job(ws, job.id, config)
            trained = time.perf_counter() - started
            if not job.adapter_id:
                print(f"  {name}: job {job.id} saved no adapter", flush=True)
                continue
            run = _heldout(ws, suite, job.adapter_id, args.limit)
            rows.append(_row(key, name, len(train), run, base, {
                "steps": job.step, "train_rows": facts.get("rows"), "val_rows": facts.get("validation_rows", 0),
                "best_step": job.metrics.get("best_step"), "train_s": round(trained),
                "schedule": config.lr_scheduler_type}))
            _save(out, rows)
            print(f"  {name}: {_line(rows[-1])}", flush=True)
    _table(rows)
    print(f"\nwrote {out}")


def _suite(home: Path, key: str, models: Path):
    home.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():  # one converted model for every suite
        (home / "models").symlink_to(models.resolve(), target_is_directory=True)
    ws = open_workspace(Settings.from_env().with_(home=home))
    if key == "demo":
        return ws, ensure_demo_suite(ws).name
    source = SHARED / FILES[key]
    if key == "dpo-it":
        source = _tasks_from_preferences(source, home / "dpo-it-tasks.jsonl")
    if ws.repo.get(Suite, key) is None:
        import_jsonl(ws, source, key)
    return ws, key


def _tasks_from_preferences(path: Path, out: Path) -> Path:
    """Tasks from a DPO file: the prompt as the user's request, the chosen answer's tool call as the reference."""
    lines = []
    for i, line in enumerate(path.read_text().splitlines()):
        row = json.loads(line)
        found = re.search(r"<tool_call>(.*?)</tool_call>", row["chosen"], re.S)
        if not found:
            continue
        call = json.loads(found.group(1))
        lines.append(json.dumps({"sample_id": f"pref_{i}", "input": [{"role": "user", "content": row["prompt"]}],
                                 "expected_function_call": {"name": call["name"],
                                                            "arguments": call.get("arguments", {})}}))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def _config(ws, exported, setting: dict[str, Any], threads: int):
    base = {"dataset_path": exported.path, "export_id": exported.id, "suite": exported.suite, "num_threads": threads}
    if setting.get("defaults"):
        return sizing.prepare(jc.preset("sft", "cpu-small", **base), ws.settings.models_dir)
    if setting.get("old"):
        train, val = sizing.split_rows(exported.path)
        rows = len(sizing.runner.read_jsonl(train))
        steps = max(1, min(40, max(4, -(-3 * rows // 2))))
        setting = {"max_steps": steps, "lr_scheduler_type": "linear", "warmup_steps": min(3, steps // 10),
                   "validate": bool(val), "every": max(1, -(-rows // 2))}
    fixed = {k: v for k, v in setting.items() if k not in ("validate", "every")}
    config = jc.preset("sft", "cpu-small", **base, **fixed)
    if setting.get("validate"):
        train, val = sizing.split_rows(exported.path)
        if val:
            config = jc.from_dict({**config.to_dict(), "dataset_path": train, "validation_path": val,
                                   "validation_every": setting.get("every", 10), "validation_picks": True})
    config, facts = sizing.size(config, ws.settings.models_dir, keep=("max_steps",))
    if config.validation_path:
        facts["validation_rows"] = len(sizing.runner.read_jsonl(config.validation_path))
    return config, facts


def _base_run(ws, suite: str, limit: int | None):
    """The base model's zero-shot heldout run: a stored one of this workspace (a resumed sweep), else a new one."""
    from storage.records import EvalRun

    stored = [r for r in ws.repo.find(EvalRun, suite=suite) if r.split == "heldout" and r.method == "none"
              and not r.tools and not r.adapter and (limit is None or r.n == limit)]
    return max(stored, key=lambda r: r.created) if stored else _heldout(ws, suite, "", limit)


def _heldout(ws, suite: str, adapter: str, limit: int | None):
    return evaluate(ws, suite, RunOptions(method="none", adapter_id=adapter or "none", limit=limit), "heldout")


def _row(suite: str, setting: str, train: int, run, base, extra: dict[str, Any]) -> dict[str, Any]:
    right = round(run.name_accuracy * run.n)
    row = {"suite": suite, "setting": setting, "train_tasks": train, "n": run.n, "name_accuracy": run.name_accuracy,
           "name_ci": stats.wilson(right, run.n), "seconds_eval": round(run.seconds), **extra}
    if base is not None:
        p = stats.paired(run, base, "name")
        row.update(base_accuracy=p.accuracy_b, difference=p.difference, diff_ci=[p.low, p.high], p_value=p.p_value)
    return row


def _line(r: dict[str, Any]) -> str:
    lo, hi = r["name_ci"]
    text = f"n={r['n']} name {r['name_accuracy']:.1%} [{lo:.0%}, {hi:.0%}]"
    if "difference" in r:
        text += (f", vs base {r['difference']:+.1%} [{r['diff_ci'][0]:+.0%}, {r['diff_ci'][1]:+.0%}] "
                 f"p={r['p_value']:.3g}, {r.get('steps')} steps (best {r.get('best_step')}), {r.get('train_s')} s")
    return text


def _save(out: Path, rows: list[dict[str, Any]]) -> None:
    out.write_text(json.dumps({"rows": rows}, indent=2, default=str))


def _table(rows: list[dict[str, Any]]) -> None:
    print("\n| suite | train tasks | setting | steps (val rows, best step) | n | name accuracy [95% CI] | "
          "vs base [95% CI] | McNemar p | train s |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["name_ci"]
        steps = f"{r['steps']} ({r.get('val_rows') or 0}, {r.get('best_step') or '-'})" if "steps" in r else "-"
        vs = (f"{r['difference']:+.1%} [{r['diff_ci'][0]:+.0%}, {r['diff_ci'][1]:+.0%}]", f"{r['p_value']:.3g}") \
            if "difference" in r else ("-", "-")
        print(f"| {r['suite']} | {r['train_tasks']} | {r['setting']} | {steps} | {r['n']} | "
              f"{r['name_accuracy']:.1%} [{lo:.0%}, {hi:.0%}] | {vs[0]} | {vs[1]} | {r.get('train_s', '-')} |")


if __name__ == "__main__":
    main()
