"""The suite a learning benchmark measures: its command-line arguments and its workspace, said once."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from agentlearn.settings import Settings
from agentlearn.tasks import ensure_demo_suite, import_jsonl, load_tasks
from agentlearn.workspace import Workspace, open_workspace


def add_suite_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--file", help="a JSONL task file to import (default: the built-in demo suite)")
    ap.add_argument("--suite", default="", help="suite name for --file")
    ap.add_argument("--home", default="", help="AGENTLEARN_HOME to use (default: a new temp folder)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N heldout tasks")


def open_suite(args: argparse.Namespace, **settings: str) -> tuple[Path, Workspace, str]:
    """The benchmark's home, its workspace and the suite's name: --file imported once (a rerun on the same
    --home reuses it), or the demo suite."""
    home = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-bench-"))
    ws = open_workspace(Settings.from_env().with_(home=home, **settings))
    if not args.file:
        return home, ws, ensure_demo_suite(ws).name
    suite = args.suite or Path(args.file).stem.replace("_", "-")
    if not load_tasks(ws, suite):
        import_jsonl(ws, args.file, suite)
    return home, ws, suite
