"""What each learning method buys on a suite: heldout accuracy of the embedded model, with n, intervals, p.

    python -m bench.bench_learning                                  # the built-in demo suite
    python -m bench.bench_learning --file tasks.jsonl               # a suite in the public JSONL format
    python -m bench.bench_learning --file tasks.jsonl --reflexion   # also Reflexion (1 and 3 trials)

Runs in its own AGENTLEARN_HOME (a temp folder unless --home is given), default settings:
1. `retrieval choose` (auto: leave-one-out on the train split picks mode, k, tool-awareness, the tool ranker
   and how many tools to offer);
2. for constrained decoding on and off: zero-shot, then exemplars with every retrieval mode and auto (each
   with auto's k, tool-awareness and tool list), and auto with every tool offered;
3. with --reflexion, Reflexion with 3 trials (constrained).
Every row gives n, name accuracy with its Wilson 95% interval, call accuracy, args_score, exact accuracy,
and the paired difference in name accuracy against zero-shot under the same decoding with its exact
McNemar p. Also printed: how many heldout tasks call a tool that some train task calls (what exemplars
alone can reach). Prints a Markdown table and writes bench/results/learning-<suite>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agentlearn import agent, prompts, stats
from agentlearn.evaluate import evaluate
from agentlearn.memory import retrieval
from agentlearn.methods import RETRIEVAL_MODES, RunOptions
from agentlearn.tasks import load_tasks
from bench.suite_args import add_suite_arguments, open_suite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_suite_arguments(ap)
    ap.add_argument("--modes", default=",".join(RETRIEVAL_MODES), help="retrieval modes to measure")
    ap.add_argument("--decoding", default="constrained,free", help="constrained, free, or both")
    ap.add_argument("--reflexion", action="store_true", help="also Reflexion with 3 trials")
    ap.add_argument("--shot-order", action="store_true",
                    help="also auto with the other shot order (prompts.SHOT_ORDERS), constrained")
    args = ap.parse_args()

    home, ws, suite = open_suite(args)
    train, heldout = load_tasks(ws, suite, "train"), load_tasks(ws, suite, "heldout")[: args.limit]
    train_tools = {t.expected.name for t in train}
    reachable = sum(1 for t in heldout if t.expected.name in train_tools)
    print(f"suite {suite}: {len(train)} train / {len(heldout)} heldout tasks; {reachable} of {len(heldout)} heldout "
          f"tasks call a tool that some train task calls; home {home}", flush=True)

    choice = retrieval.choose(ws, suite, runner=agent.run_with_agent)
    print(f"auto: {retrieval.summary(choice)}", flush=True)

    rows = []
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    has_tags = retrieval.type_is_usable(ws, suite, train)
    for decoding in [d.strip() for d in args.decoding.split(",") if d.strip()]:
        constrained = decoding == "constrained"
        base = evaluate(ws, suite, RunOptions(method="none", limit=args.limit, constrained=constrained))
        rows.append(_row("none (zero-shot)", decoding, base, None))
        configs = [("auto", "auto")] + [(m, m) for m in modes if m != "type" or has_tags]
        for label, mode in configs:
            run = evaluate(ws, suite, RunOptions(method="exemplars", exemplar_mode=mode, limit=args.limit,
                                                 constrained=constrained, k=choice["k"],
                                                 tool_aware=choice["tool_aware"]))
            rows.append(_row(f"exemplars, {label}", decoding, run, base))
        if choice.get("tools"):  # what the tool shortlist (or the ranker's one tool) adds over exemplars alone
            run = evaluate(ws, suite, RunOptions(method="exemplars", limit=args.limit, constrained=constrained,
                                                 tools="all"))
            rows.append(_row("exemplars, auto, every tool offered", decoding, run, base))
        if args.shot_order and constrained:
            default = prompts.SHOT_ORDER
            for order in (o for o in prompts.SHOT_ORDERS if o != default):
                prompts.SHOT_ORDER = order
                run = evaluate(ws, suite, RunOptions(method="exemplars", limit=args.limit))
                rows.append(_row(f"exemplars, auto, {order}", decoding, run, base))
            prompts.SHOT_ORDER = default
        if args.reflexion and constrained:
            run = evaluate(ws, suite, RunOptions(method="reflexion", trials=3, limit=args.limit))
            rows.append(_row("reflexion, 3 trials", decoding, run, base))

    print("\n| method | decoding | n | name accuracy [95% CI] | call accuracy [95% CI] | args_score | exact | "
          "name vs zero-shot (McNemar p) | s |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['decoding']} | {r['n']} | {r['name_accuracy']:.1%} "
              f"[{r['name_ci'][0]:.0%}, {r['name_ci'][1]:.0%}] | {r['call_accuracy']:.1%} "
              f"[{r['call_ci'][0]:.0%}, {r['call_ci'][1]:.0%}] | {r['args_score']:.2f} | {r['exact_accuracy']:.1%} | "
              + (f"{r['difference']:+.1%} (p={r['p_value']:.3g})" if "p_value" in r else "-")
              + f" | {r['seconds']:.0f} |")
    out = Path(__file__).parent / "results" / f"learning-{suite}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"suite": suite, "train": len(train), "heldout": len(heldout),
                               "heldout_reachable": reachable, "auto": choice, "rows": rows}, indent=2, default=str))
    print(f"\nwrote {out}")


def _row(label: str, decoding: str, run, base) -> dict:
    row = {"method": label, "decoding": decoding, "n": run.n, "name_accuracy": run.name_accuracy,
           "call_accuracy": run.call_accuracy, "args_score": run.args_score, "exact_accuracy": run.exact_accuracy,
           "name_ci": stats.wilson(round(run.name_accuracy * run.n), run.n),
           "call_ci": stats.wilson(round(run.call_accuracy * run.n), run.n), "seconds": round(run.seconds, 1),
           "mode": run.exemplar_mode, "k": run.k, "tools": run.tools, "ranker": run.ranker}
    if base is not None:
        p = stats.paired(run, base, "name")
        row.update(difference=p.difference, p_value=p.p_value, diff_ci=(p.low, p.high))
    print(f"{label:24} {decoding:11} name {run.name_accuracy:6.1%} call {run.call_accuracy:6.1%} "
          f"args {run.args_score:.2f}" + (f"  {row['difference']:+.1%} p={row['p_value']:.3g}" if base else "")
          + f" ({run.seconds:.0f}s)", flush=True)
    return row


if __name__ == "__main__":
    main()
