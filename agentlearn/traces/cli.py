"""`python -m agentlearn traces import|list`: trace files in, stored episodes out (agentlearn.cli adds these)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from storage.records import Step, Trajectory


def add_parser(sub: Any) -> None:
    """Add the `traces` command and its subcommands to the top-level subparsers."""
    traces = sub.add_parser("traces", help="import another agent's traces; list stored episodes").add_subparsers(
        dest="action", required=True)
    imp = traces.add_parser("import", help="import episodes from a trace file (all or nothing)")
    imp.add_argument("file")
    imp.add_argument("--suite", required=True, help="the suite the episodes go to (created if missing)")
    imp.add_argument("--format", default="auto", help="auto (the default: told from the file), otlp-json, openai, "
                                                      "langsmith or langfuse")
    imp.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    imp.set_defaults(func=cmd_import)
    ls = traces.add_parser("list", help="a suite's episodes with their steps: calls, results, answer, source")
    ls.add_argument("--suite", required=True)
    ls.add_argument("--source", default="", help="only episodes from this source (e.g. traces, collect, proxy, agent)")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(func=cmd_list)


def cmd_import(args: argparse.Namespace) -> int:
    from agentlearn import policy
    from agentlearn.traces.formats import import_file
    from agentlearn.workspace import open_workspace

    ws = open_workspace()
    counts = import_file(ws, args.file, args.suite, args.format,
                         who=policy.command_line_identity(ws.repo, os.environ))
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"imported {counts['episodes']} episodes ({counts['steps']} steps, {counts['calls']} calls) from "
              f"{args.file} as {counts['format']} into suite {args.suite!r}: {counts['trajectories_new']} new and "
              f"{counts['trajectories_updated']} updated trajectories, {counts['tasks_new']} new tasks"
              + (f"; {counts['skipped']} runs without a user request left out" if counts["skipped"] else ""))
    return 0


def episodes(ws: Any, suite: str, source: str = "") -> list[Trajectory]:
    """The suite's stored episodes (trajectories), oldest first, optionally of one source."""
    from agentlearn.tasks import get_suite

    get_suite(ws, suite)
    found = ws.repo.find(Trajectory, suite=suite)
    return [t for t in found if not source or t.source == source]


def describe(t: Trajectory, request: str) -> dict[str, Any]:
    """One episode as plain data: where it came from, what was asked, and each step's calls, results, answer."""
    return {"id": t.id, "source": t.source, "trace_id": t.trace_id, "task_id": t.task_id, "request": request,
            "model": t.model, "created": t.created.isoformat(), "tools": [tool.get("name", "") for tool in t.tools],
            "output": t.output, "steps": [_step(s) for s in t.steps]}


def _step(s: Step) -> dict[str, Any]:
    return {"turn": s.turn, "user": s.user, "calls": [c.model_dump() for c in s.calls],
            "results": [r.model_dump() for r in s.results], "answer": s.answer, "seconds": s.seconds,
            "tokens_in": s.tokens_in, "tokens_out": s.tokens_out}


def cmd_list(args: argparse.Namespace) -> int:
    from agentlearn.tasks import request_text
    from agentlearn.workspace import open_workspace
    from storage.records import Task

    ws = open_workspace()
    found = episodes(ws, args.suite, args.source)
    requests = {t.id: request_text(t.input) for t in ws.repo.find(Task, suite=args.suite)}
    rows = [describe(t, requests.get(t.task_id, "")) for t in found]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        print(f"{row['id']}\t{row['source']}\t{row['trace_id'] or '-'}\t{row['model'] or '-'}\t"
              f"{len(row['steps'])} steps\t{_short(row['request'])}")
        for n, step in enumerate(row["steps"], start=1):
            for call, result in zip(step["calls"], step["results"] + [None] * len(step["calls"]), strict=False):
                shown = "(no result)" if result is None or not (result["content"] or result["error"]) else \
                    ("error: " if result["error"] else "") + _short(result["content"])
                print(f"  {n}. {call['name']}({_short(json.dumps(call['arguments'], ensure_ascii=False))}) -> {shown}")
            if step["answer"]:
                print(f"  {n}. answer: {_short(step['answer'])}")
    if not rows:
        print(f"no episodes in suite {args.suite!r}" + (f" from {args.source!r}" if args.source else ""), file=sys.stderr)
    return 0


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
