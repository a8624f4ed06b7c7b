"""Exemplar retrieval at scale: top-5 semantic search through exemplars.select vs NumPy brute force.

    .venv/bin/python -m bench.bench_retrieval [--n 100000] [--real 2000] [--queries 200]
    .venv/bin/python -m bench.bench_retrieval --n 1000000 [--real 10000] [--bank noise|mix]

Builds a bank of `--n` varied help-desk exemplars (templates filled with random words) in a temporary
AGENTLEARN_HOME. `--real` texts are embedded with the real MiniLM; the other vectors are made from those
(`--bank`: noisy copies, the worst case for a neighbour graph, or mixtures of two real vectors, which
vary only in the real vectors' own directions; see build_vectors). Encoding 10,000 texts with MiniLM
on 2 cores takes ~4 min, so 1M real vectors would take ~6 hours.
`--real` equal to `--n` encodes every text for real. Then it measures, in the same process:
  - the index build of a cold start (records parsed, vectors read, and from exemplars.ANN_MIN_VECTORS
    on the HNSW graph built, its own time shown);
  - select(mode="semantic", k=5) given a precomputed query vector, against exact search, matrix @ q +
    argpartition, query by query in turn; recall@5 of select's top 5 against the exact top 5;
  - the MiniLM query embedding alone, and select including it;
  - the other modes (hybrid and tool-aware too, and a half-bank draw), for information, up to 200k
    exemplars (BM25 over 1M texts is its own benchmark).
It prints a table and writes bench/results/retrieval.json; exit status 1 if recall@5 < 0.95.

`--direct` (the default above 200k) leaves the store out: TinyDB keeps every record in one JSON file,
which peaked at 2.1 GB of memory at 100k, so 1M records would not fit this machine. The exemplars are
then put straight into the suite index select uses (exemplars._Index, its HNSW index attached by
exemplars._attach_ann, files and all) and each query runs select's vector search (exemplars._nearest,
with the per-query mask select builds), against exact search over the same matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from agentlearn import caches, embeddings
from agentlearn.embeddings import encode
from agentlearn.memory import exemplars
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import ann
from storage.records import Exemplar, Message, Task, ToolCall

SUITE = "bench"
CATEGORIES = {
    "printer": ("troubleshoot_printer", [
        "The {adj} printer on floor {num} is {problem} again, {name} says the {thing} is stuck",
        "{name} cannot print from the {place}: the queue shows {problem} for the {thing}",
    ]),
    "network": ("troubleshoot_network", [
        "Internet in the {place} is {adj} and {problem} since {day}, {name} noticed it first",
        "VPN keeps {problem} for {name} when working from the {place} near the {thing}",
    ]),
    "access": ("provision_user_access", [
        "{name} joined the {team} team and needs access to the {thing} and the {place} share",
        "Please grant {name} {adj} rights on the {thing} for the {team} project by {day}",
    ]),
    "password": ("reset_password", [
        "{name} is locked out after the password expired on {day}, the {thing} login is {problem}",
        "I forgot my {thing} password and the reset mail from {team} never arrived, it is {adj}",
    ]),
    "hardware": ("diagnose_hardware_issue", [
        "My {adj} laptop {thing} is {problem} since {day}, {name} in the {place} has the same",
        "The monitor in the {place} flickers and the {thing} makes a {adj} noise, says {name}",
    ]),
    "server": ("diagnose_system_issue", [
        "Server {thing}-{num} shows {problem} and the {team} service is {adj} for everyone",
        "Alert from {thing}-{num}: disk {problem} in the {place} rack, {name} is on call",
    ]),
}
SLOTS = {
    "adj": "slow broken old new shared noisy flaky urgent strange loud blue central remote main spare".split(),
    "problem": "jammed offline failing timing-out dropping overheating crashing frozen stuck unreachable "
               "rejecting erroring blinking".split(),
    "name": "Ana Ben Chen Dara Eli Farah Gus Hana Ivo Jules Kai Lena Mo Nia Omar Pia Raj Sol Tom Uma".split(),
    "thing": "tray toner badge drive wiki crm erp mail calendar keyboard battery fan db01 web02 cache "
             "ledger portal scanner dock".split(),
    "place": "lobby lab annex warehouse kitchen boardroom studio basement library atrium".split(),
    "team": "finance marketing legal design sales support research payroll logistics".split(),
    "day": "monday tuesday wednesday thursday friday yesterday morning tonight".split(),
}
FILLER = ("alpha bravo cobalt delta ember fjord garnet harbor indigo jasper kelvin lumen marble nectar onyx "
          "pylon quartz raven sierra tundra umber vortex willow xenon yarrow zephyr").split()


def make_text(rng: random.Random) -> tuple[str, str, str]:
    """A random help-desk message: (text, tool, category)."""
    category = rng.choice(list(CATEGORIES))
    tool, templates = CATEGORIES[category]
    fill = {k: rng.choice(v) for k, v in SLOTS.items()}
    fill["num"] = str(rng.randint(1, 99))
    text = rng.choice(templates).format(**fill)
    return f"{text} ({' '.join(rng.sample(FILLER, 2))} {rng.randint(0, 9999)})", tool, category


BANKS = {
    "noise": "noisy copies of them (sigma 0.03 per dimension, renormalised)",
    "mix": "mixtures of two of them (w a + (1 - w) b, w uniform in [0.5, 1], renormalised)",
}


def build_vectors(texts: list[str], real: int, seed: int, bank: str = "noise") -> tuple[np.ndarray, float]:
    """Real MiniLM vectors for the first `real` texts; the rest are made from them (see BANKS).

    "noise" adds isotropic noise: every synthetic row varies in all 384 directions, which real sentence
    vectors do not (they lie near a low-dimensional set), so a neighbour graph has little to follow: a
    worst case. "mix" keeps the variation inside the real vectors' own directions: each row lies on the
    segment between a real vector and another, nearer the first."""
    started = time.perf_counter()
    base = encode(texts[:real])
    n = len(texts)
    if real >= n:
        return base, time.perf_counter() - started
    rng = np.random.default_rng(seed)
    first = np.arange(real, n) % real
    if bank == "noise":
        rest = base[first] + rng.normal(0, 0.03, size=(n - real, base.shape[1])).astype(np.float32)
    elif bank == "mix":
        w = rng.uniform(0.5, 1.0, size=(n - real, 1)).astype(np.float32)
        rest = w * base[first] + (1 - w) * base[rng.integers(0, real, size=n - real)]
    else:
        raise ValueError(f"unknown bank {bank!r}: choose one of {', '.join(BANKS)}")
    rest /= np.linalg.norm(rest, axis=1, keepdims=True)
    return np.concatenate([base, rest]).astype(np.float32), time.perf_counter() - started


def pct(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def timed(fn, args_list) -> tuple[list[float], list]:
    times, outs = [], []
    for args in args_list:
        t = time.perf_counter()
        outs.append(fn(*args))
        times.append(time.perf_counter() - t)
    return times, outs


def direct(args, home: Path, records: list[Exemplar], texts: list[str], vectors: np.ndarray, rng: random.Random,
           load_start: float, encode_s: float) -> int:
    """Select's index and vector search on `--n` exemplars without the store (see the module's docstring)."""
    n = len(records)
    index = exemplars._Index(key=(), exemplars=records, texts=texts, matrix=vectors,
                             group=np.arange(n, dtype=np.int64), group_of_task={})
    t = time.perf_counter()
    exemplars._attach_ann(index, ann.AnnIndex(home / "vectors" / "ann", "bench"))
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    exemplars._attach_ann(index, ann.AnnIndex(home / "vectors" / "ann", "bench"))  # a new process: loads it
    load_s = time.perf_counter() - t
    queries = [make_text(rng)[0] for _ in range(args.queries)]
    encode(["warm up the single-query path"])
    t_enc, qvecs = timed(lambda x: encode([x])[0], [(q,) for q in queries])

    def exact(q: np.ndarray) -> list[int]:
        scores = vectors @ q
        top = np.argpartition(-scores, args.k - 1)[:args.k]
        return top[np.argsort(-scores[top])].tolist()

    def search(q: np.ndarray) -> list[int]:
        return exemplars._nearest(index, q, np.zeros(n, dtype=np.float32), args.k)[0]

    t_exact, t_ann, found = [], [], 0
    for q in qvecs:  # interleaved, so that both see the same machine state
        a, want = timed(exact, [(q,)])
        b, have = timed(search, [(q,)])
        t_exact += a
        t_ann += b
        found += len(set(want[0]) & set(have[0]))
    recall = found / (args.k * len(qvecs))
    sweep = {}  # recall and time at other search widths (ef), for choosing storage.ann.EF_SEARCH
    wanted = [exact(q) for q in qvecs]
    chosen_ef = ann.EF_SEARCH
    for ef in (256, 512, 1024):
        ann.EF_SEARCH = ef
        times, got = timed(search, [(q,) for q in qvecs])
        sweep[ef] = {"recall": round(sum(len(set(w) & set(g)) for w, g in zip(wanted, got, strict=True))
                                     / (args.k * len(qvecs)), 4), **pct(times)}
    ann.EF_SEARCH = chosen_ef
    summary = {
        "n": n, "k": args.k, "queries": len(qvecs), "dim": int(vectors.shape[1]), "store": "none (--direct)",
        "vectors": f"real MiniLM for {min(args.real, n)} texts, {BANKS[args.bank]} for the rest",
        "encode_s": round(encode_s, 1), "hnsw": {"M": ann.M, "ef_construction": ann.EF_CONSTRUCTION,
                                                 "ef_search": ann.EF_SEARCH},
        "index_build_s": round(build_s, 1), "index_load_s": round(load_s, 1),
        "recall_at_k_vs_exact": round(recall, 4), "target_recall_0_95": recall >= 0.95,
        "hnsw_search": pct(t_ann), "exact_search": pct(t_exact), "query_embedding": pct(t_enc),
        "target_under_10ms": pct(t_ann)["p95_ms"] <= 10, "ef_sweep": sweep,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "load_average_1min_at_start_end": [load_start, round(os.getloadavg()[0], 2)],
    }
    print(f"\nExemplar vector search, {n:,} exemplars x {summary['dim']}, top-{args.k}, {len(qvecs)} queries "
          f"(no store: --direct)")
    print(f"vectors: {summary['vectors']} (encode {summary['encode_s']} s); HNSW {summary['hnsw']}: build "
          f"{summary['index_build_s']} s, load from its files {summary['index_load_s']} s; load average "
          f"{load_start} -> {summary['load_average_1min_at_start_end'][1]} on {os.cpu_count()} cpus")
    print(f"\n{'measurement':34} {'p50':>9} {'p95':>9}")
    for name, key in [("select's HNSW search", "hnsw_search"), ("exact search (matrix @ q)", "exact_search"),
                      ("MiniLM query embedding", "query_embedding")]:
        print(f"{name:34} {summary[key]['p50_ms']:>7.2f}ms {summary[key]['p95_ms']:>7.2f}ms")
    for ef, r in sweep.items():
        print(f"{'  at ef ' + str(ef) + ': recall ' + str(r['recall']):34} {r['p50_ms']:>7.2f}ms {r['p95_ms']:>7.2f}ms")
    print(f"\nrecall@{args.k} against exact search: {recall:.4f} (target >= 0.95: "
          f"{'met' if summary['target_recall_0_95'] else 'NOT met'}); HNSW p95 <= 10 ms: "
          f"{'met' if summary['target_under_10ms'] else 'NOT met'}")
    return _written(summary, args.out)


def _written(summary: dict, path: str) -> int:
    """Write the summary; the exit status says whether recall met its target."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    return 0 if summary["target_recall_0_95"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="exemplars in the bank")
    ap.add_argument("--real", type=int, default=2000, help="texts embedded with real MiniLM (the rest: see --bank)")
    ap.add_argument("--bank", choices=sorted(BANKS), default="noise",
                    help="how the vectors beyond --real are made from the real ones")
    ap.add_argument("--queries", type=int, default=200, help="queries per measurement")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "retrieval.json"))
    ap.add_argument("--direct", action=argparse.BooleanOptionalAction, default=None,
                    help="leave the store out (default: above 200k exemplars)")
    args = ap.parse_args()
    if args.direct is None:
        args.direct = args.n > 200_000
    real = min(args.real, args.n)
    load_start = round(os.getloadavg()[0], 2)  # other work on the machine inflates every figure alike
    rng = random.Random(args.seed)

    home = Path(tempfile.mkdtemp(prefix="agentlearn-bench-"))
    os.environ["AGENTLEARN_HOME"] = str(home)
    ws = open_workspace(Settings(home=home), encoder=encode)

    rows = [make_text(rng) for _ in range(args.n)]
    texts = [t for t, _, _ in rows]
    vectors, encode_s = build_vectors(texts, real, args.seed, args.bank)
    t = time.perf_counter()
    records = [Exemplar(id=f"ex{i:07d}", suite=SUITE, task_id=f"task{i:07d}", kind="reference",
                        input=[Message(role="user", content=text)], call=ToolCall(name=tool), tool=tool, tags=[cat])
               for i, (text, tool, cat) in enumerate(rows)]
    if args.direct:
        return direct(args, home, records, texts, vectors, rng, load_start, encode_s)
    ws.repo.put_many(records)
    store_s = time.perf_counter() - t
    # Prefill the vector table with the vectors made above, so the index build does not re-encode.
    by_text = dict(zip(texts, vectors, strict=True))
    ws.vectors(exemplars.VECTOR_TABLE).sync({r.id: texts[i] for i, r in enumerate(records)},
                                            lambda batch: np.stack([by_text[x] for x in batch]))

    queries = [make_text(rng) for _ in range(args.queries)]
    tasks = [Task(id=f"query{i}", suite=SUITE, sample_id=f"q{i}", split="heldout",
                  input=[Message(role="user", content=q)], expected=ToolCall(name="hidden"), tags=[cat])
             for i, (q, _, cat) in enumerate(queries)]
    qvecs = encode([q for q, _, _ in queries])

    # A cold start, as in a fresh process: new repository (parses the store), vectors read from disk.
    caches.clear_all()
    t = time.perf_counter()
    ws = open_workspace(Settings(home=home), encoder=encode)
    exemplars.select(ws, tasks[0], "semantic", k=args.k, query_vector=qvecs[0])  # builds the index
    build_s = time.perf_counter() - t
    index = exemplars._index(ws, SUITE)
    ann_build_s = index.ann.build_s if index.ann is not None else None
    matrix = ws.vectors(exemplars.VECTOR_TABLE).matrix  # the same rows select ranks
    assert matrix.shape == (args.n, vectors.shape[1])

    def reference(q: np.ndarray) -> list[int]:
        scores = matrix @ q
        top = np.argpartition(-scores, args.k - 1)[:args.k]
        return top[np.argsort(-scores[top])].tolist()

    def reference_with_query(text: str) -> list[int]:
        return reference(encode([text])[0])

    encode(["warm up the single-query path"])
    exemplars.select(ws, tasks[1], "semantic", k=args.k)  # warm: index built, model loaded
    ids = [(tasks[i], qvecs[i]) for i in range(len(tasks))]
    results: dict[str, dict] = {}

    # Interleave the two so that both see the same machine state.
    t_ref, t_sel, mismatches, found = [], [], 0, 0
    for task, q in ids:
        a, ref = timed(reference, [(q,)])
        b, got = timed(lambda t, v: exemplars.select(ws, t, "semantic", k=args.k, query_vector=v), [(task, q)])
        t_ref += a
        t_sel += b
        want, have = [records[i].id for i in ref[0]], [s.exemplar.id for s in got[0]]
        mismatches += want != have
        found += len(set(want) & set(have))
    recall = found / (args.k * len(ids))
    results["semantic, query vector given"] = {"select": pct(t_sel), "reference": pct(t_ref)}

    t_ref, t_sel, t_enc = [], [], []
    for task, _ in ids:
        text = task.input[0].content
        # Each measure embeds the text afresh: encode keeps the vectors of single texts it has seen.
        embeddings._encode_one.cache_clear()
        a, _r = timed(reference_with_query, [(text,)])
        embeddings._encode_one.cache_clear()
        b, _s = timed(lambda t: exemplars.select(ws, t, "semantic", k=args.k), [(task,)])
        embeddings._encode_one.cache_clear()
        c, _e = timed(lambda x: encode([x]), [(text,)])
        t_ref += a
        t_sel += b
        t_enc += c
    results["semantic, with MiniLM query"] = {"select": pct(t_sel), "reference": pct(t_ref)}
    query_embedding = pct(t_enc)

    other = {}
    for mode, aware in [] if args.n > 200_000 else [("fixed", False), ("type", False), ("mmr", False), ("bm25", False), ("hybrid", False),
                        ("hybrid", True), ("semantic", True)]:
        name = mode + (" tool-aware" if aware else "")
        n_q = 20 if mode in ("bm25", "hybrid") else len(ids)
        first = time.perf_counter()
        exemplars.select(ws, tasks[0], mode, k=args.k, query_vector=qvecs[0])  # bm25 builds its index here
        other_build = time.perf_counter() - first
        times, _ = timed(lambda t, v, m=mode, a=aware: exemplars.select(ws, t, m, k=args.k, query_vector=v,
                                                                       tool_aware=a), ids[:n_q])
        other[name] = {**pct(times), "queries": n_q, "first_call_s": round(other_build, 2)}
    # A learning curve's bank: the draw is made once per seed, then each query costs as on the whole bank.
    first = time.perf_counter()
    exemplars.select(ws, tasks[0], "semantic", k=args.k, query_vector=qvecs[0], bank_size=args.n // 2)
    draw_build = time.perf_counter() - first
    times, _ = timed(lambda t, v: exemplars.select(ws, t, "semantic", k=args.k, query_vector=v, bank_size=args.n // 2),
                     ids)
    other[f"semantic, bank_size {args.n // 2}"] = {**pct(times), "queries": len(ids), "first_call_s": round(draw_build, 2)}

    sel = results["semantic, query vector given"]
    withq = results["semantic, with MiniLM query"]
    ratio = sel["select"]["p50_ms"] / sel["reference"]["p50_ms"]
    summary = {
        "n": args.n, "k": args.k, "queries": len(ids), "dim": int(vectors.shape[1]),
        "vectors": "real MiniLM for all" if real >= args.n else
                   f"real MiniLM for {real} texts, {BANKS[args.bank]} for {args.n - real}",
        "encode_s": round(encode_s, 1), "store_s": round(store_s, 1), "index_build_s": round(build_s, 2),
        "search": "HNSW (hnswlib)" if ann_build_s is not None else "exact",
        "hnsw": None if ann_build_s is None else {"M": ann.M, "ef_construction": ann.EF_CONSTRUCTION,
                                                  "ef_search": ann.EF_SEARCH, "build_s": round(ann_build_s, 1)},
        "recall_at_k_vs_exact": round(recall, 4), "target_recall_0_95": recall >= 0.95,
        "target_under_10ms": sel["select"]["p95_ms"] <= 10, "query_embedding": query_embedding,
        "top5_differing_from_exact": mismatches, "results": results, "other_modes": other,
        "p50_ratio_vs_reference": round(ratio, 3),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "load_average_1min_at_start_end": [load_start, round(os.getloadavg()[0], 2)],
    }
    print(f"\nExemplar retrieval, {args.n:,} exemplars x {summary['dim']}, top-{args.k}, {len(ids)} queries")
    print(f"vectors: {summary['vectors']} (encode {summary['encode_s']} s); store {summary['store_s']} s; "
          f"cold-start index build {summary['index_build_s']} s (of which HNSW graph: "
          f"{summary['hnsw']['build_s'] if summary['hnsw'] else 'none, exact search'} s); load average {load_start} -> "
          f"{summary['load_average_1min_at_start_end'][1]} on {os.cpu_count()} cpus")
    print(f"\n{'measurement':34} {'select p50':>11} {'p95':>8} {'reference p50':>14} {'p95':>8}")
    for name, r in results.items():
        print(f"{name:34} {r['select']['p50_ms']:>9.2f}ms {r['select']['p95_ms']:>6.2f}ms "
              f"{r['reference']['p50_ms']:>12.2f}ms {r['reference']['p95_ms']:>6.2f}ms")
    for mode, r in other.items():
        print(f"{mode + ' (select only)':34} {r['p50_ms']:>9.2f}ms {r['p95_ms']:>6.2f}ms "
              f"   first call {r['first_call_s']} s, {r['queries']} queries")
    print(f"{'MiniLM query embedding alone':34} {query_embedding['p50_ms']:>9.2f}ms {query_embedding['p95_ms']:>6.2f}ms")
    print(f"\nsearch: {summary['search']} {summary['hnsw'] or ''}")
    print(f"recall@{args.k} against exact search: {recall:.4f} (target >= 0.95: "
          f"{'met' if summary['target_recall_0_95'] else 'NOT met'}); top-{args.k} lists differing: "
          f"{mismatches}/{len(ids)}")
    print(f"select / exact (p50, vector given): {ratio:.2f}x; select p95 {sel['select']['p95_ms']:.2f} ms "
          f"(target <= 10 ms: {'met' if summary['target_under_10ms'] else 'NOT met'}); with query p50 "
          f"{withq['select']['p50_ms']:.1f} ms")
    return _written(summary, args.out)


if __name__ == "__main__":
    sys.exit(main())
