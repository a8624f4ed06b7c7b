"""What each learning method buys: held-out accuracy of the embedded model, one row per method.

    .venv/bin/python bench/bench_learning.py                       # the built-in demo suite
    .venv/bin/python bench/bench_learning.py --file tasks.jsonl    # a suite in the public JSONL format

Runs in its own AGENTLEARN_HOME (a temp folder unless --home is given):
1. none, then exemplars with each retrieval mode (k=3), on the heldout split;
2. Reflexion on the heldout split (up to 3 trials a task, success if the last trial succeeds);
3. experience for ExpeL: the train split run with Reflexion, insights extracted from it and all
   approved, then the heldout split with those insights in the prompt.
Prints a Markdown table and writes bench/results/learning-<suite>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agentlearn import insights
from agentlearn.agent import RunOptions, run_tasks
from agentlearn.evaluate import evaluate
from agentlearn.settings import Settings
from agentlearn.tasks import ensure_demo_suite, import_jsonl, load_tasks
from agentlearn.workspace import open_workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", help="a JSONL task file to import (default: the built-in demo suite)")
    ap.add_argument("--suite", default="", help="suite name for --file")
    ap.add_argument("--home", default="", help="AGENTLEARN_HOME to use (default: a new temp folder)")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N heldout tasks")
    ap.add_argument("--train-limit", type=int, default=None, help="only the first N train tasks gather experience")
    args = ap.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-bench-"))
    ws = open_workspace(Settings(home=home))
    if args.file:
        suite = args.suite or Path(args.file).stem
        import_jsonl(ws, args.file, suite)
    else:
        suite = ensure_demo_suite(ws).name
    n_train, n_heldout = len(load_tasks(ws, suite, "train")), len(load_tasks(ws, suite, "heldout"))
    print(f"suite {suite}: {n_train} train / {n_heldout} heldout tasks; home {home}", flush=True)

    rows = []

    def row(label: str, **kw) -> None:
        run = evaluate(ws, suite, limit=args.limit, k=args.k, **kw)
        rows.append({"method": label, "n": run.n, "name_accuracy": run.name_accuracy,
                     "call_accuracy": run.call_accuracy, "seconds": round(run.seconds, 1)})
        print(f"{label:28} name {run.name_accuracy:6.1%}  call {run.call_accuracy:6.1%}  ({run.seconds:.0f}s)",
              flush=True)

    row("none (zero-shot)", method="none")
    for mode in ("fixed", "type", "bm25", "semantic", "mmr"):
        row(f"exemplars, {mode}", method="exemplars", exemplar_mode=mode)
    row("reflexion, 3 trials", method="reflexion", trials=3)

    started = time.perf_counter()
    train = load_tasks(ws, suite, "train")[: args.train_limit]
    run_tasks(ws, train, RunOptions(method="reflexion", trials=3))
    proposals = insights.extract(ws, suite)
    for p in proposals:
        try:
            insights.approve(ws, p.id, reviewer="bench")
        except ValueError as e:  # e.g. an earlier proposal removed its target
            print(f"left pending: {p.operation} {p.text!r}: {e}")
    active = insights.active(ws, suite)
    print(f"ExpeL: {len(proposals)} proposals from {len(train)} train tasks, {len(active)} active insights "
          f"({time.perf_counter() - started:.0f}s)", flush=True)
    for rule in active:
        print(f"  [{rule.importance}] {rule.text}")
    row("insights (ExpeL)", method="insights")
    row("all (exemplars+insights+reflexion)", method="all", trials=3)

    print("\n| method | n | name accuracy | call accuracy |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['n']} | {r['name_accuracy']:.1%} | {r['call_accuracy']:.1%} |")
    out = Path(__file__).parent / "results" / f"learning-{suite}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"suite": suite, "train": n_train, "heldout": n_heldout, "k": args.k,
                               "insights": [r.text for r in active], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
