"""SIGKILL during task imports, on TinyDB files and on a real PostgreSQL; then count what a fresh open finds.

Each trial starts a process that imports suites of 40 tasks one after another (agentlearn.tasks.import_jsonl,
the same function the CLI and the Suites page call), kills it with SIGKILL at a random moment, then opens
the store in this process and counts:
- partial suites: a suite whose record and 40 tasks are not all there (tasks without their suite count too),
- unreadable stores: the open or a read raised,
- leftover temp files (TinyDB): temp, pending or commit-marker files still there after the open.
Targets: 0, 0, 0. The PostgreSQL server is started as tests/conftest.py does (initdb in a temp folder).
On that server it also counts deadlocks in 300 rounds of an update and a delete of one record at once,
and the writes that fail among the first 10 after a server restart with a full connection pool (targets 0).

    .venv/bin/python -m bench.bench_crash --trials 25
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = 40

IMPORTER = """
import sys
from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.tasks import import_jsonl
from pathlib import Path
from agentlearn.workspace import open_workspace

home, url, prefix, path = sys.argv[1:5]
ws = open_workspace(Settings(home=Path(home), database_url=url), encoder=hash_encode)
print("ready", flush=True)
for k in range(100_000):
    import_jsonl(ws, path, f"{prefix}-{k:04d}")
"""


def _task_file(folder: Path) -> Path:
    path = folder / "suite.jsonl"
    rows = [{"sample_id": f"ticket_{i}", "input": [{"role": "user", "content": f"Please reset account {i}. " * 20}],
             "expected_function_call": {"name": "reset_password", "arguments": {"username": f"user{i}"}}}
            for i in range(TASKS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _inspect(home: Path, url: str) -> tuple[int, int, int, int]:
    """(suites complete, partial suites, unreadable 0/1, leftover files) as a fresh process would see them."""
    from storage import open_repository
    from storage.records import Suite, Task

    try:
        repo = open_repository(str(home / "store"), url)
        suites = {s.id for s in repo.all(Suite)}
        counts: dict[str, int] = {}
        for task in repo.all(Task):
            counts[task.suite] = counts.get(task.suite, 0) + 1
    except Exception as e:  # noqa: BLE001 - counted, and shown
        print(f"  unreadable: {type(e).__name__}: {e}")
        return 0, 0, 1, 0
    names = suites | set(counts)
    partial = sum(1 for name in names if name not in suites or counts.get(name, 0) != TASKS)
    store = home / "store"
    leftover = [p for p in store.rglob("*") if p.is_file() and
                (p.name.endswith((".tmp", ".pending")) or p.parent.name == ".txn")] if store.exists() else []
    return len(names) - partial, partial, 0, len(leftover)


def run(backend: str, trials: int, seed: int, url: str = "") -> dict[str, int]:
    """Kill importers `trials` times on one store; totals over the trials."""
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix=f"bench-crash-{backend}-"))
    task_file = _task_file(folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTLEARN_HOME": str(folder / "home")}
    totals = {"trials": 0, "killed_mid_import": 0, "suites_complete": 0, "partial_suites": 0,
              "unreadable_stores": 0, "leftover_temp_files": 0}
    for trial in range(trials):
        proc = subprocess.Popen([sys.executable, "-c", IMPORTER, str(folder / "home"), url, f"t{trial:02d}",
                                 str(task_file)], stdout=subprocess.PIPE, text=True, env=env)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the importer did not start")
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        complete, partial, unreadable, leftover = _inspect(folder / "home", url)
        totals["trials"] += 1
        totals["killed_mid_import"] += proc.returncode == -signal.SIGKILL
        totals["suites_complete"] = complete  # all suites in the store so far
        totals["partial_suites"] = partial  # a partial suite stays partial: the latest count is the total
        totals["unreadable_stores"] += unreadable
        totals["leftover_temp_files"] = leftover  # files in the store after the latest open
        print(f"  {backend} trial {trial + 1}: {complete} complete suites, {partial} partial, "
              f"{'unreadable' if unreadable else 'readable'}, {leftover} leftover files", flush=True)
    return totals


def postgres_races(server, rounds: int = 300) -> dict[str, int]:  # noqa: ANN001 - tests.conftest.PostgresServer
    """Deadlocks in `rounds` update+delete races on one id; failed writes among 10 right after a restart."""
    import threading

    from storage import StoreError
    from storage.postgres_store import PostgresRepository
    from storage.records import Insight, Label

    db = PostgresRepository(server.url)
    deadlocks = other = 0
    for _ in range(rounds):
        db.put(Insight(id="rule", suite="s", text="r", importance=0))
        start, errors = threading.Barrier(2), []

        def act(fn, start=start, errors=errors) -> None:  # noqa: ANN001
            start.wait()
            try:
                fn()
            except StoreError as e:
                if "no Insight with id" not in str(e):
                    errors.append(str(e))

        workers = [threading.Thread(target=act, args=(lambda: db.update(
                       Insight, "rule", lambda r: r.model_copy(update={"importance": r.importance + 1})),)),
                   threading.Thread(target=act, args=(lambda: db.delete(Insight, "rule"),))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        deadlocks += sum("deadlock" in message for message in errors)
        other += sum("deadlock" not in message for message in errors)

    def hold() -> None:
        with db._transaction() as cur:
            cur.execute("SELECT pg_sleep(0.2)")

    holders = [threading.Thread(target=hold) for _ in range(8)]
    for h in holders:
        h.start()
    for h in holders:
        h.join()
    server.restart()
    failed = 0
    for i in range(10):
        try:
            db.put(Label(id=f"after-restart-{i}", trajectory_id="t", annotator="a", verdict="fail"))
        except StoreError:
            failed += 1
    return {"update_delete_rounds": rounds, "deadlocks": deadlocks, "other_errors": other,
            "pooled_connections_at_restart": 8, "failed_writes_of_10_after_restart": failed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--backend", choices=["tinydb", "postgres", "both"], default="both")
    args = ap.parse_args()
    results = {}
    if args.backend in ("tinydb", "both"):
        results["tinydb"] = run("tinydb", args.trials, args.seed)
    if args.backend in ("postgres", "both"):
        sys.path.insert(0, str(ROOT))
        from tests.conftest import PostgresServer

        server = PostgresServer()
        try:
            results["postgres"] = run("postgres", args.trials, args.seed, server.url)
            results["postgres_races"] = postgres_races(server)
        finally:
            server.remove()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
