"""What the playbook and Reflexion buy on a suite: heldout accuracy with n, intervals and paired p-values.

    python -m bench.bench_playbook --file tasks.jsonl --suite NAME [--home DIR]
    python -m bench.bench_playbook --home DIR --suite NAME           # a workspace that has the suite

In its own AGENTLEARN_HOME (a temp folder unless --home is given), embedded model, default settings:
1. the agent runs zero-shot on the train split unless the suite already has train runs (what proposals
   are drawn from);
2. `insights propose` (error analysis, ExpeL, curator), then every pending proposal approved, as a
   person in a hurry would;
3. heldout: zero-shot, exemplars (auto), the playbook alone, exemplars + playbook, Reflexion (3 trials);
4. paired comparisons (exact McNemar on name accuracy): playbook vs zero-shot, playbook vs exemplars,
   exemplars + playbook vs exemplars, Reflexion 3 trials vs 1 trial (zero-shot is trial 1);
5. attribution of each bullet (shown vs not shown) over every run stored.
Prints a Markdown table and writes bench/results/playbook-<suite>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agentlearn import stats
from agentlearn.agent import run_tasks
from agentlearn.evaluate import evaluate
from agentlearn.memory import attribution, insights, proposals
from agentlearn.methods import RunOptions
from agentlearn.settings import Settings
from agentlearn.tasks import import_jsonl, load_tasks
from agentlearn.workspace import open_workspace
from storage.records import Trajectory

ROWS = [("none", "zero-shot (1 trial)"), ("exemplars", "exemplars (auto)"), ("insights", "playbook"),
        ("exemplars+insights", "exemplars + playbook"), ("reflexion", "Reflexion, 3 trials")]
PAIRS = [("insights", "none"), ("insights", "exemplars"), ("exemplars+insights", "exemplars"),
         ("reflexion", "none")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", help="a JSONL task file to import")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--home", default="", help="AGENTLEARN_HOME to use (default: a new temp folder)")
    args = ap.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="bench-playbook-"))
    ws = open_workspace(Settings.from_env().with_(home=home))
    if args.file:
        import_jsonl(ws, args.file, suite=args.suite)
    started = time.perf_counter()
    if not ws.repo.find(Trajectory, suite=args.suite, split="train"):
        run_tasks(ws, load_tasks(ws, args.suite, "train"), RunOptions(method="none"))
    made = proposals.propose(ws, args.suite)
    print(f"proposals: {made.summary()}")
    approved = 0
    for p in insights.pending(ws, args.suite):
        try:
            insights.approve(ws, p.id, "hurried reviewer")
            approved += 1
        except ValueError as e:
            print(f"left pending: {e}")
    bullets = insights.active(ws, args.suite)
    print(f"approved {approved}; the playbook has {len(bullets)} bullets:")
    for b in bullets:
        print(f"  [{b.section}] {b.text}")

    runs = {}
    for method, _ in ROWS:
        runs[method] = evaluate(ws, args.suite, RunOptions(method=method, trials=3))
        print(f"{method}: name {runs[method].name_accuracy:.1%} ({runs[method].seconds:.0f}s)", flush=True)

    lines = ["| method | n | name accuracy [95% CI] | call accuracy | args_score |", "|---|---|---|---|---|"]
    for method, label in ROWS:
        r = runs[method]
        lo, hi = stats.wilson(round(r.name_accuracy * r.n), r.n)
        lines.append(f"| {label} | {r.n} | {r.name_accuracy:.1%} [{lo:.0%}, {hi:.0%}] | {r.call_accuracy:.1%} | "
                     f"{r.args_score:.2f} |")
    lines += ["", "| comparison (name accuracy) | n paired | difference [95% CI] | exact McNemar p |",
              "|---|---|---|---|"]
    compared = []
    for a, b in PAIRS:
        p = stats.paired(runs[a], runs[b], "name")
        compared.append({"a": a, "b": b, "n": p.n, "difference": p.difference, "ci": [p.low, p.high],
                         "p_value": p.p_value})
        lines.append(f"| {dict(ROWS)[a]} vs {dict(ROWS)[b]} | {p.n} | {p.difference:+.1%} "
                     f"[{p.low:+.0%}, {p.high:+.0%}] | {p.p_value:.3g} |")
    table = attribution.bullets(ws, args.suite)
    flagged = table[table["flag"] != ""]
    lines += ["", f"bullets: {len(bullets)} active; flagged by attribution: {len(flagged)}"]
    lines += [f"- {row.text[:90]}: {row.flag}" for row in flagged.itertuples()]
    print("\n".join(lines))
    out = Path(__file__).parent / "results" / f"playbook-{args.suite}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "suite": args.suite, "home": str(home), "seconds": round(time.perf_counter() - started, 1),
        "proposals": made.summary(), "bullets": [b.text for b in bullets],
        "runs": {m: {"id": r.id, "n": r.n, "name_accuracy": r.name_accuracy, "call_accuracy": r.call_accuracy,
                     "args_score": r.args_score} for m, r in runs.items()},
        "comparisons": compared, "flagged": flagged[["id", "text", "flag"]].to_dict("records"),
    }, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
