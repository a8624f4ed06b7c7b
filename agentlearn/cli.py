"""The command line: `python -m agentlearn ...`. Same functions as the dashboard, AGENTLEARN_HOME as the store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from agentlearn.workspace import open_workspace


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=None, default=str))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentlearn",
                                description="Make an LLM agent learn from experience, with people in the loop.")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="create the demo workspace (suite, runs, labels) if it is missing")
    demo.add_argument("--runs", type=int, default=24, help="agent runs to store on first creation")
    demo.set_defaults(func=cmd_demo)

    tasks = sub.add_parser("tasks", help="import and list task suites").add_subparsers(dest="action", required=True)
    imp = tasks.add_parser("import", help="import tool-calling tasks from a JSONL file")
    imp.add_argument("file")
    imp.add_argument("--suite", required=True)
    imp.add_argument("--heldout", type=float, default=0.5, help="fraction held out for evaluation (default 0.5)")
    imp.set_defaults(func=cmd_tasks_import)
    ls = tasks.add_parser("list", help="list suites and their task counts")
    ls.set_defaults(func=cmd_tasks_list)

    run = sub.add_parser("run", help="run the agent on a suite split and store the trajectories")
    _add_run_options(run)
    run.add_argument("--split", default="train", choices=["train", "heldout"])
    run.set_defaults(func=cmd_run)

    ins = sub.add_parser("insights", help="ExpeL insights").add_subparsers(dest="action", required=True)
    ext = ins.add_parser("extract", help="propose insight operations from the suite's train trajectories")
    ext.add_argument("--suite", required=True)
    ext.add_argument("--approve", action="store_true", help="apply every proposal at once (reviewer: cli)")
    ext.set_defaults(func=cmd_insights_extract)
    lsi = ins.add_parser("list", help="active insights, by importance")
    lsi.add_argument("--suite", required=True)
    lsi.set_defaults(func=cmd_insights_list)

    ev = sub.add_parser("eval", help="evaluate a method (or adapter) on held-out tasks and store the result")
    _add_run_options(ev)
    ev.add_argument("--split", default="heldout", choices=["train", "heldout"])
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_eval)

    ad = sub.add_parser("adapters", help="list trained LoRA adapters")
    ad.set_defaults(func=cmd_adapters)

    exp = sub.add_parser("export", help="write a training file (SFT, DPO, GRPO, OpenAI JSONL) from a suite's train split")
    exp.add_argument("kind", choices=["sft", "dpo", "grpo", "openai-sft", "openai-dpo"])
    exp.add_argument("--suite", required=True, help="suite name")
    exp.add_argument("--out", default="", help="output file (default: a new file in the exports folder)")
    exp.add_argument("--pairs-from", default="preferences",
                     help="DPO pair sources, comma separated: preferences,ratings,verifier")
    exp.set_defaults(func=cmd_export)

    train = sub.add_parser("train", help="train a LoRA adapter (runs the job process and waits for it)")
    train.add_argument("method", choices=["sft", "dpo", "grpo"])
    train.add_argument("--config", default="", help="a job YAML config (then --suite/--preset are not used)")
    train.add_argument("--suite", default="", help="export this suite's train split and train on it")
    train.add_argument("--preset", default="", help="cpu-tiny, cpu-small or cuda-qlora (default: by hardware)")
    train.add_argument("--max-steps", type=int, default=None, help="override the preset's number of steps")
    train.add_argument("--pairs-from", default="preferences", help="DPO pair sources (see export)")
    train.add_argument("--init-adapter", default="", help="start from this adapter (id or folder)")
    train.add_argument("--json", action="store_true", help="print one JSON object with the result")
    train.set_defaults(func=cmd_train)

    return p


def cmd_demo(args: argparse.Namespace) -> int:
    from agentlearn.demo import ensure_demo_workspace

    ws = open_workspace()
    summary = ensure_demo_workspace(ws, runs=args.runs)
    _print_json(summary)
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from agentlearn.agent import METHODS
    from agentlearn.exemplars import MODES

    p.add_argument("--suite", required=True)
    p.add_argument("--method", default="none", choices=METHODS)
    p.add_argument("--k", type=int, default=3, help="exemplars per prompt")
    p.add_argument("--mode", dest="exemplar_mode", default="semantic", choices=MODES, help="exemplar retrieval")
    p.add_argument("--trials", type=int, default=3, help="Reflexion trials per task")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument("--adapter", default="", help="id of a trained LoRA adapter to run with")


def _progress(i: int, n: int, trials: list, seconds: float) -> None:
    """After each task: a line on stderr for people, a progress record for the dashboard (processes)."""
    from agentlearn import processes

    last = trials[-1]
    mark = "ok " if last.verdict and last.verdict.success else "FAIL"
    print(f"[{i}/{n}] {mark} {last.task_id} trials={len(trials)} ({seconds:.0f}s)", file=sys.stderr, flush=True)
    processes.report(None, i, n, f"{mark.strip()} {last.task_id}")


def cmd_tasks_import(args: argparse.Namespace) -> int:
    from agentlearn.tasks import import_jsonl, load_tasks

    ws = open_workspace()
    suite = import_jsonl(ws, args.file, args.suite, heldout=args.heldout)
    tasks = load_tasks(ws, suite.name)
    train = sum(1 for t in tasks if t.split == "train")
    print(f"imported {len(tasks)} tasks into suite {suite.name!r}: {train} train, {len(tasks) - train} heldout, "
          f"{len(suite.tools)} tools")
    return 0


def cmd_tasks_list(args: argparse.Namespace) -> int:
    from agentlearn.tasks import load_tasks, suites

    ws = open_workspace()
    for suite in suites(ws):
        tasks = load_tasks(ws, suite.name)
        train = sum(1 for t in tasks if t.split == "train")
        print(f"{suite.name}\t{len(tasks)} tasks ({train} train, {len(tasks) - train} heldout)\t{len(suite.tools)} tools")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agentlearn.agent import RunOptions, run_tasks
    from agentlearn.tasks import load_tasks

    ws = open_workspace()
    tasks = load_tasks(ws, args.suite, args.split)[: args.limit or None]
    if not tasks:
        raise ValueError(f"suite {args.suite!r} has no {args.split} tasks")
    options = RunOptions(method=args.method, k=args.k, exemplar_mode=args.exemplar_mode,
                         trials=args.trials if args.method in ("reflexion", "all") else 1, adapter_id=args.adapter)
    runs = run_tasks(ws, tasks, options, progress=_progress)
    solved = sum(1 for r in runs if r[-1].verdict and r[-1].verdict.success)
    print(f"stored {sum(len(r) for r in runs)} trajectories; solved {solved}/{len(runs)} tasks")
    return 0


def cmd_insights_extract(args: argparse.Namespace) -> int:
    from agentlearn import insights

    ws = open_workspace()
    proposals = insights.extract(ws, args.suite)
    for p in proposals:
        note = ""
        if args.approve and p.status == "pending":
            try:
                insights.approve(ws, p.id, reviewer="cli")
            except ValueError as e:  # e.g. an earlier proposal removed its target: leave it for a person
                note = f"  (left pending: {e})"
        print(f"{p.operation:6} {p.text}{note}")
    print(f"{len(proposals)} proposals" + (" applied" if args.approve else " waiting for review on the Insights page"))
    return 0


def cmd_insights_list(args: argparse.Namespace) -> int:
    from agentlearn import insights

    for rule in insights.active(open_workspace(), args.suite):
        print(f"{rule.importance:3d}  {rule.text}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from agentlearn.evaluate import evaluate

    ws = open_workspace()
    run = evaluate(ws, args.suite, split=args.split, method=args.method, k=args.k, exemplar_mode=args.exemplar_mode,
                   trials=args.trials, limit=args.limit, adapter_id=args.adapter,
                   progress=_progress)  # progress goes to stderr, so --json output stays one object
    if args.json:
        _print_json({"id": run.id, "suite": run.suite, "split": run.split, "method": run.method,
                     "exemplar_mode": run.exemplar_mode, "k": run.k, "adapter": run.adapter, "n": run.n,
                     "name_accuracy": run.name_accuracy, "call_accuracy": run.call_accuracy,
                     "seconds": round(run.seconds, 1)})
    else:
        print(f"{run.method} on {run.suite}/{run.split}: name accuracy {run.name_accuracy:.1%}, "
              f"call accuracy {run.call_accuracy:.1%} (n={run.n}, {run.seconds:.0f}s)")
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from storage.records import Adapter

    for a in open_workspace().repo.all(Adapter):
        print(f"{a.id}\t{a.method}\t{a.name}\t{a.path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from agentlearn.datasets import export

    pairs = tuple(p.strip() for p in args.pairs_from.split(",") if p.strip())
    record = export(open_workspace(), args.kind, args.suite, out_path=args.out or None, pairs_from=pairs)
    _print_json({"id": record.id, "kind": record.kind, "suite": record.suite, "path": record.path,
                 "rows": record.rows, "trajectories": len(record.trajectory_ids), "labels": len(record.label_ids),
                 "preferences": len(record.preference_ids), "exemplars": len(record.exemplar_ids)})
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from agentlearn.training import config as job_config
    from agentlearn.training import jobs
    from storage.records import Adapter

    ws = open_workspace()
    overrides: dict = {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.init_adapter:
        known = ws.repo.get(Adapter, args.init_adapter)
        overrides["init_adapter"] = known.path if known else args.init_adapter
    if args.config:
        config = job_config.load(args.config)
        if config.method != args.method:
            raise ValueError(f"{args.config} is a {config.method} config, not {args.method}")
        config = job_config.from_dict({**config.to_dict(), **overrides})
    elif args.suite:
        pairs = tuple(p.strip() for p in args.pairs_from.split(",") if p.strip())
        config = jobs.config_for_suite(ws, args.method, args.suite, args.preset, pairs_from=pairs, **overrides)
    else:
        raise ValueError("give --config FILE or --suite NAME")
    job = jobs.launch(ws, config)
    print(f"job {job.id} started (pid {job.pid}); log: {job.log_path}", file=sys.stderr)
    seen = [-1]

    def report(j) -> None:
        if j.step != seen[0] and j.max_steps:
            seen[0] = j.step
            p = jobs.progress(j)
            eta = f", ETA {p.eta_s:.0f} s" if p.eta_s is not None else ""
            loss = j.metrics.get("loss", j.metrics.get("reward"))
            print(f"  step {j.step}/{j.max_steps} ({j.status}{eta})" + (f" {loss:.4f}" if loss is not None else ""),
                  file=sys.stderr)

    job = jobs.wait(ws, job.id, poll=2.0, on_progress=report)
    adapter = ws.repo.get(Adapter, job.adapter_id) if job.adapter_id else None
    result = {"job_id": job.id, "status": job.status, "adapter_id": job.adapter_id,
              "adapter": adapter.path if adapter else "", "metrics": job.metrics, "error": job.error,
              "export_id": config.export_id, "dataset": config.dataset_path, "log": job.log_path,
              "seconds": round(jobs.progress(job).elapsed_s, 1)}
    if args.json:
        _print_json(result)
    else:
        print(f"{job.status}: adapter {result['adapter'] or '-'}" + (f"; error: {job.error}" if job.error else ""))
    return 0 if job.status in ("succeeded", "stopped") else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors print one clear line, not a traceback.

    Started by the dashboard (processes.start), it also records how it ended on its Process record;
    a crash that gets no further than this still leaves a reason there.
    """
    from agentlearn import processes

    try:
        args = _parser().parse_args(argv)
        code = int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        processes.finish(None, error=str(e))
        return 2
    except SystemExit as e:  # argparse refused the arguments (or --help): it printed why
        processes.finish(None, error="" if e.code in (0, None) else f"bad arguments (exit status {e.code}); see the log")
        raise
    except BaseException as e:
        processes.finish(None, error=f"{type(e).__name__}: {e}")
        raise
    processes.finish(None, error="" if code == 0 else f"the command ended with exit status {code}; see the log")
    return code


if __name__ == "__main__":
    sys.exit(main())
