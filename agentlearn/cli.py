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

    # [tasks/run/insights/eval commands]

    # [export/train commands]

    return p


def cmd_demo(args: argparse.Namespace) -> int:
    from agentlearn.demo import ensure_demo_workspace

    ws = open_workspace()
    summary = ensure_demo_workspace(ws, runs=args.runs)
    _print_json(summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors print one clear line, not a traceback."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
