"""Storage benchmark: the sharded, atomic TinyDB store against one plain TinyDB file.

For each size: insert that many realistic trajectories (~1.5 KB of JSON each) with put_many in
batches, read them all back with a fresh repository, then time single labeled writes (put one Label,
put one Trajectory) into the full store, p50/p95 over --writes writes. The baseline is plain TinyDB
(one JSON file holding the same trajectories, default storage) timing single `insert` calls.

    .venv/bin/python -m bench.bench_storage --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from storage import TinyDBRepository
from storage.records import Label, MemoryUsed, Message, Step, ToolCall, Trajectory, Verdict

TOOLS = ["lookup_order", "reset_password", "create_ticket", "refund_payment", "schedule_visit"]
WORDS = ("account order refund ticket password customer device printer invoice delivery address "
         "warranty email network laptop screen billing update cancel status").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_trajectory(i: int, rng: random.Random) -> Trajectory:
    """A trajectory shaped like the agent's: prompt with an exemplar, a step, a verdict."""
    tool = rng.choice(TOOLS)
    args = {"order_id": f"A{rng.randrange(10**6):06d}", "reason": sentence(rng, 2)}
    call = json.dumps({"name": tool, "arguments": args})
    success = rng.random() < 0.6
    return Trajectory(
        task_id=f"task-{i % 500:04d}", suite="helpdesk-demo", split="train" if i % 2 else "heldout",
        prompt=[
            Message(role="system", content="You are a helpdesk agent. Call exactly one tool. Tools: "
                    + ", ".join(TOOLS) + ". " + sentence(rng, 4)),
            Message(role="user", content=sentence(rng, 10)),
            Message(role="assistant", content=f"<tool_call>{call}</tool_call>"),
            Message(role="user", content=sentence(rng, 10)),
        ],
        steps=[Step(thought=sentence(rng, 6), action=f"<tool_call>{call}</tool_call>",
                    observation="schema ok" if success else "wrong arguments: " + sentence(rng, 5))],
        output=f"<think>{sentence(rng, 5)}</think><tool_call>{call}</tool_call>",
        tool_call=ToolCall(name=tool, arguments=args),
        verdict=Verdict(success=success, reward=float(success), reason="name and arguments match" if success
                        else "arguments differ", scores={"name_match": 1.0, "required_args": 1.0,
                                                         "args_exact": float(success), "valid_json": 1.0,
                                                         "schema_valid": 1.0, "args_normalised": float(success)}),
        model="SmolLM2-135M-Instruct",
        memory=MemoryUsed(method="exemplars", exemplar_ids=[f"ex-{rng.randrange(900):04d}" for _ in range(3)],
                          exemplar_mode="semantic"),
        trial=0,
    )


def make_label(i: int, rng: random.Random, trajectory_id: str) -> Label:
    return Label(trajectory_id=trajectory_id, annotator=rng.choice(["ana", "ben", "chen"]),
                 verdict=rng.choice(["success", "fail"]), score=rng.randint(1, 5), comment=sentence(rng, 6))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def ms_stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(pct(ms, 0.5), 2), "p95_ms": round(pct(ms, 0.95), 2), "mean_ms": round(statistics.mean(ms), 2),
            "n": len(ms)}


def bench_ours(folder: Path, size: int, batch: int, writes: int, rng: random.Random) -> dict:
    repo = TinyDBRepository(folder)
    t0 = time.perf_counter()
    ids = []
    for start in range(0, size, batch):
        records = [make_trajectory(i, rng) for i in range(start, min(size, start + batch))]
        ids += [r.id for r in records]
        repo.put_many(records)
    insert_s = time.perf_counter() - t0
    labels = [make_label(i, rng, rng.choice(ids)) for i in range(size // 10)]
    repo.put_many(labels)

    t0 = time.perf_counter()
    fresh = TinyDBRepository(folder)
    n_read = len(fresh.all(Trajectory))
    read_s = time.perf_counter() - t0
    assert n_read == size, (n_read, size)
    t0 = time.perf_counter()
    fresh.all(Trajectory)
    warm_read_s = time.perf_counter() - t0

    label_times, traj_times = [], []
    for i in range(writes):
        lab = make_label(i, rng, rng.choice(ids))
        t0 = time.perf_counter()
        fresh.put(lab)
        label_times.append(time.perf_counter() - t0)
        traj = make_trajectory(size + i, rng)
        t0 = time.perf_counter()
        fresh.put(traj)
        traj_times.append(time.perf_counter() - t0)
    return {
        "insert_seconds": round(insert_s, 2), "inserts_per_s": round(size / insert_s),
        "read_back_cold_s": round(read_s, 2), "read_back_warm_s": round(warm_read_s, 3),
        "put_label": ms_stats(label_times), "put_trajectory": ms_stats(traj_times),
        "labels_in_store": len(labels),
        "bytes_on_disk": sum(p.stat().st_size for p in folder.rglob("*.json")),
    }


def bench_plain_tinydb(folder: Path, size: int, inserts: int, rng: random.Random) -> dict:
    """One TinyDB file with the same trajectories (written directly to save setup time)."""
    from tinydb import TinyDB

    path = folder / "plain.json"
    docs = {str(i + 1): make_trajectory(i, rng).model_dump(mode="json") for i in range(size)}
    path.write_text(json.dumps({"trajectories": docs, "labels": {}}))
    db = TinyDB(path)
    label_times, traj_times = [], []
    for i in range(inserts):
        t0 = time.perf_counter()
        db.table("labels").insert(make_label(i, rng, "x").model_dump(mode="json"))
        label_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        db.table("trajectories").insert(make_trajectory(size + i, rng).model_dump(mode="json"))
        traj_times.append(time.perf_counter() - t0)
    db.close()
    return {"insert_label": ms_stats(label_times), "insert_trajectory": ms_stats(traj_times),
            "file_bytes": path.stat().st_size}


def main() -> None:
    """Run the benchmark, print a table and write bench/results/storage.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated trajectory counts")
    ap.add_argument("--batch", type=int, default=5000, help="put_many batch size while filling the store")
    ap.add_argument("--writes", type=int, default=50, help="single writes timed per size")
    ap.add_argument("--plain-inserts", type=int, default=5, help="single plain TinyDB inserts timed per size")
    ap.add_argument("--dir", default="", help="where to build the stores (default: a temporary folder)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "storage.json"))
    args = ap.parse_args()

    rng = random.Random(0)
    sample = make_trajectory(0, rng).model_dump_json()
    results = {"machine": platform.platform(), "python": platform.python_version(),
               "trajectory_json_bytes": len(sample), "batch": args.batch, "sizes": {}}
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            folder = base / f"ours-{size}"
            shutil.rmtree(folder, ignore_errors=True)
            ours = bench_ours(folder, size, args.batch, args.writes, rng)
            shutil.rmtree(folder, ignore_errors=True)
            plain_dir = base / f"plain-{size}"
            plain_dir.mkdir(parents=True, exist_ok=True)
            plain = bench_plain_tinydb(plain_dir, size, args.plain_inserts, rng)
            shutil.rmtree(plain_dir, ignore_errors=True)
            results["sizes"][str(size)] = {"ours": ours, "plain_tinydb": plain}
            print_size(size, ours, plain)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n~{results['trajectory_json_bytes']} bytes per trajectory; wrote {out}")


def print_size(size: int, ours: dict, plain: dict) -> None:
    print(f"\n== {size:,} trajectories (+{ours['labels_in_store']:,} labels), "
          f"{ours['bytes_on_disk'] / 1e6:.0f} MB on disk ==")
    print(f"fill with put_many: {ours['inserts_per_s']:,} trajectories/s ({ours['insert_seconds']} s); "
          f"read all back: {ours['read_back_cold_s']} s cold (fresh repository), {ours['read_back_warm_s']} s warm")
    print(f"{'one write':<32}{'p50 ms':>10}{'p95 ms':>10}{'n':>6}")
    for name, s in [("ours: put(Label)", ours["put_label"]), ("ours: put(Trajectory)", ours["put_trajectory"]),
                    ("plain TinyDB: insert label", plain["insert_label"]),
                    ("plain TinyDB: insert trajectory", plain["insert_trajectory"])]:
        print(f"{name:<32}{s['p50_ms']:>10.1f}{s['p95_ms']:>10.1f}{s['n']:>6}")


if __name__ == "__main__":
    main()
