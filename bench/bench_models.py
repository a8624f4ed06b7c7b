"""The embedded models side by side: heldout tool-name accuracy zero-shot and with exemplars, per model.

    python -m bench.bench_models                                   # the built-in demo suite, every embedded model
    python -m bench.bench_models --file tasks.jsonl --limit 20     # a suite in the public JSONL format
    python -m bench.bench_models --models gemma3-270m --home DIR   # one model; DIR/models keeps conversions

One AGENTLEARN_HOME (a temp folder unless --home is given) holds the suite; each model sees it through
its own settings (AGENTLEARN_LOCAL_MODEL's choices, agentlearn.models.EMBEDDED_MODELS), constrained
decoding, greedy, the suite's retrieval as the demo sets it (model-free leave-one-out). Each row: n, name
accuracy with its Wilson 95% interval, call accuracy, the paired difference against the same model's
zero-shot with its exact McNemar p, and seconds per task (conversion excluded: each model is converted
before it is timed). Prints a Markdown table and writes bench/results/models-<suite>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agentlearn import stats
from agentlearn.evaluate import evaluate
from agentlearn.memory import retrieval
from agentlearn.methods import RunOptions
from agentlearn.models import EMBEDDED_MODELS, chat_model_dir
from agentlearn.tasks import load_tasks
from agentlearn.workspace import open_workspace
from bench.suite_args import add_suite_arguments, open_suite

METHODS = ("none", "exemplars")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_suite_arguments(ap)
    ap.add_argument("--models", default=",".join(EMBEDDED_MODELS), help="embedded models to compare")
    args = ap.parse_args()

    home, ws, suite = open_suite(args, backend="embedded")
    if not retrieval.current(ws, suite):
        retrieval.choose(ws, suite, how_many=0)
    train, heldout = load_tasks(ws, suite, "train"), load_tasks(ws, suite, "heldout")[: args.limit]
    print(f"suite {suite}: {len(train)} train / {len(heldout)} heldout tasks; home {home}", flush=True)

    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        chat_model_dir(ws.settings.models_dir, name)  # converted before anything is timed
        model_ws = open_workspace(ws.settings.with_(local_model=name))
        base = None
        for method in METHODS:
            run = evaluate(model_ws, suite, RunOptions(method=method, limit=args.limit))
            rows.append(_row(EMBEDDED_MODELS[name].label, method, run, base))
            base = base or run

    print("\n| model | method | n | name accuracy [95% CI] | call accuracy | name vs zero-shot (McNemar p) | "
          "s/task |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['method']} | {r['n']} | {r['name_accuracy']:.1%} "
              f"[{r['name_ci'][0]:.0%}, {r['name_ci'][1]:.0%}] | {r['call_accuracy']:.1%} | "
              + (f"{r['difference']:+.1%} (p={r['p_value']:.3g})" if "p_value" in r else "-")
              + f" | {r['seconds_per_task']:.2f} |")
    out = Path(__file__).parent / "results" / f"models-{suite}-{args.models.replace(',', '+')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"suite": suite, "train": len(train), "heldout": len(heldout), "rows": rows},
                              indent=2, default=str))
    print(f"\nwrote {out}")


def _row(model: str, method: str, run, base) -> dict:
    row = {"model": model, "method": method, "n": run.n, "name_accuracy": run.name_accuracy,
           "call_accuracy": run.call_accuracy, "name_ci": stats.wilson(round(run.name_accuracy * run.n), run.n),
           "seconds_per_task": run.seconds / max(run.n, 1), "mode": run.exemplar_mode, "k": run.k}
    if base is not None:
        p = stats.paired(run, base, "name")
        row.update(difference=p.difference, p_value=p.p_value)
    print(f"{model:24} {method:10} name {run.name_accuracy:6.1%} call {run.call_accuracy:6.1%} "
          f"({row['seconds_per_task']:.2f} s/task)", flush=True)
    return row


if __name__ == "__main__":
    main()
