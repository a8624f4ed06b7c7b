"""Both backends under real crashes and real concurrency: SIGKILL, threads and processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from storage.records import Insight, Label
from tests.conftest import open_store

ROOT = Path(__file__).resolve().parents[1]

# A writer process: puts labels one by one and, only after each put has returned, appends the id to
# a side file (flushed and fsynced). Whatever the side file lists must survive a SIGKILL.
WRITER = """
import os, sys, threading
from storage import is_database_url, open_repository
from storage.records import Label

root, side, prefix, n, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
repo = open_repository(root, root if is_database_url(root) else "")
out = open(side, "a")
out_lock = threading.Lock()
print("ready", flush=True)
sys.stdin.readline()  # the parent says go

def work(t):
    for i in range(t, n, threads):
        lid = f"{prefix}-{i:05d}"
        repo.put(Label(id=lid, trajectory_id=f"traj-{i % 97}", annotator=prefix, verdict="success",
                       score=1 + i % 5, comment="x" * (i % 40)))
        with out_lock:
            out.write(lid + "\\n")
            out.flush()
            os.fsync(out.fileno())

workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print("done", flush=True)
"""


def start_writer(root: str, side: Path, prefix: str, n: int, threads: int = 1) -> subprocess.Popen:
    """Start a writer process and wait until it has opened the store."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, root, str(side), prefix, str(n), str(threads)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def acknowledged(side: Path) -> list[str]:
    """Ids the writer confirmed; a line cut short by the kill was never confirmed."""
    if not side.exists():
        return []
    text = side.read_text()
    lines = text.split("\n")
    return [line for line in lines[:-1] if line]  # the part after the last newline is incomplete


def assert_store_valid(root: str) -> None:
    """Every shard file is a complete JSON object of records (a database keeps its own)."""
    for path in (Path(root) / "labels").glob("*.json"):
        data = json.loads(path.read_bytes())
        assert isinstance(data["records"], dict), path


def test_sigkill_during_writes_never_loses_an_acknowledged_write(tmp_path, store_location):
    root, rng = store_location, random.Random(1234)
    trials = 20 if "://" not in root else 8  # a database write is one commit: fewer trials find the same
    confirmed: set[str] = set()
    killed_mid_run = 0
    for trial in range(trials):
        side = tmp_path / f"acked-{trial}.txt"
        # Far more writes than 0.5 s allows on either backend, so the kill always lands mid-run.
        proc = start_writer(root, side, f"t{trial:02d}", 100_000)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_mid_run += proc.returncode == -signal.SIGKILL
        acked = acknowledged(side)
        confirmed.update(acked)

        repo = open_store(root)  # a fresh process's view: must load, whatever was cut short
        stored = {label.id for label in repo.all(Label)}
        missing = confirmed - stored
        assert not missing, f"trial {trial}: {len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:3]}"
        assert_store_valid(root)
        # At most the one write in flight when the kill came can be stored without an acknowledgement.
        assert len({i for i in stored if i.startswith(f"t{trial:02d}-")} - set(acked)) <= 1
    assert killed_mid_run == trials, "every kill should land in the middle of the writes"
    assert len(confirmed) > trials * 10, "too few writes before the kills to test anything"
    open_store(root).put(Label(id="after", trajectory_id="t", annotator="a", verdict="fail"))
    assert open_store(root).count(Label) >= len(confirmed) + 1


def test_eight_threads_and_a_second_process_lose_nothing(tmp_path, store_location):
    root = store_location
    per_thread, threads, other_n = 1000, 8, 2000  # 10,000 single puts in all
    repo = open_store(root)
    proc = start_writer(root, tmp_path / "other.txt", "proc", other_n, threads=2)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                repo.put(Label(id=f"th{t}-{i:05d}", trajectory_id=f"traj-{i % 97}", annotator=f"th{t}",
                               verdict="fail", score=1 + i % 5))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    proc.stdin.write("go\n")
    proc.stdin.flush()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert proc.stdout.readline().strip() == "done"
    assert proc.wait(timeout=120) == 0
    assert not errors, errors[0]

    expected = {f"th{t}-{i:05d}" for t in range(threads) for i in range(per_thread)}
    expected |= {f"proc-{i:05d}" for i in range(other_n)}
    assert_store_valid(root)
    fresh = open_store(root)
    assert {label.id for label in fresh.all(Label)} == expected
    assert fresh.count(Label) == repo.count(Label) == 10_000  # the writing instance agrees
    assert {label.id for label in repo.all(Label)} == expected
    if "://" not in root:
        assert not list(Path(root).rglob("*.tmp"))


UPDATER = """
import sys
from storage import is_database_url, open_repository
from storage.records import Insight

repo = open_repository(sys.argv[1], sys.argv[1] if is_database_url(sys.argv[1]) else "")
for _ in range(int(sys.argv[2])):
    repo.update(Insight, "rule", lambda r: r.model_copy(update={"importance": r.importance + 1}))
"""


def test_update_is_atomic_across_processes_and_threads(store_location):
    root = store_location
    repo = open_store(root)
    repo.put(Insight(id="rule", suite="s", text="r", importance=0))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", UPDATER, root, "100"], env=env) for _ in range(2)]

    def bump() -> None:
        for _ in range(50):
            repo.update(Insight, "rule", lambda r: r.model_copy(update={"importance": r.importance + 1}))

    workers = [threading.Thread(target=bump) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert open_store(root).get(Insight, "rule").importance == 300
    assert repo.get(Insight, "rule").importance == 300


# A batch writer: puts batches of 120 labels (spread over every label shard) one put_many at a time.
BATCHER = """
import sys
from storage import is_database_url, open_repository
from storage.records import Label

root, prefix = sys.argv[1], sys.argv[2]
repo = open_repository(root, root if is_database_url(root) else "")
print("ready", flush=True)
for b in range(10_000):
    repo.put_many([Label(id=f"{prefix}-b{b:04d}-{i:03d}", trajectory_id="t", annotator="a", verdict="fail",
                         comment="x" * 200) for i in range(120)])
"""


def test_sigkill_during_batches_leaves_each_batch_whole_or_absent(tmp_path, store_location):
    root, rng = store_location, random.Random(99)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    batches_seen = 0
    for trial in range(8):
        proc = subprocess.Popen([sys.executable, "-c", BATCHER, root, f"k{trial}"], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.1, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sizes: dict[str, int] = {}
        for label in open_store(root).all(Label):
            batch = label.id.rsplit("-", 1)[0]
            sizes[batch] = sizes.get(batch, 0) + 1
        partial = {b: n for b, n in sizes.items() if n != 120}
        assert not partial, f"trial {trial}: batches cut short by the kill: {partial}"
        batches_seen += len(sizes)
        if "://" not in root:
            assert_store_valid(root)
            debris = [p for p in Path(root).rglob("*") if p.is_file() and
                      (p.name.endswith((".tmp", ".pending")) or p.parent.name == ".txn")]
            assert debris == [], f"trial {trial}: left over after the next open: {debris[:3]}"
    assert batches_seen > 8, "too few batches landed before the kills to test anything"
