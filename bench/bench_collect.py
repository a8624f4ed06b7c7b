"""Spans a second through `collect` into the store, with every trace assembled into its episode on the way.

    .venv/bin/python -m bench.bench_collect [--traces 600] [--batch 50] [--store postgres|tinydb]

Makes `--traces` agent runs of 6 spans each with the OpenTelemetry SDK (tests.test_collect.run_agent:
invoke_agent > chat > execute_tool > chat > execute_tool > chat), serves `collect` on a free port and sends
them with the real OTLPSpanExporter (protobuf), `--batch` runs per export, one export after another. It
prints the rate over the whole run and over its first and last fifth (the store grows as it goes), checks
that every run became one episode, and writes bench/results/collect.json. On a busy machine the CPU
time per span says more than the wall rate: the collector's (this process's threads but the main one,
which runs the exporter) and PostgreSQL's (its server and backend processes, read from /proc).
PostgreSQL is a fresh local server (as the tests start one); TinyDB a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.traces import collect
from agentlearn.workspace import open_workspace
from storage.records import Trajectory
from tests.asgi_server import serving
from tests.conftest import PostgresServer
from tests.test_collect import _recorded_spans


def _ticks(stat: Path, children: bool = False) -> int:
    """CPU clock ticks of a process from /proc/PID/stat (with its reaped children's, if asked)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if children else 13])


def postgres_cpu_s(data: Path) -> float:
    """CPU seconds PostgreSQL has used so far: the postmaster, its live processes and those that ended."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    ticks = _ticks(Path(f"/proc/{postmaster}/stat"), children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                ticks += _ticks(stat)
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while it was read
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=600)
    ap.add_argument("--batch", type=int, default=50, help="agent runs per export")
    ap.add_argument("--store", choices=["postgres", "tinydb"], default="postgres")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "collect.json"))
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    runs = [_recorded_spans(f"Run {i}: check the weather in Lyon and book a train if it is dry.")
            for i in range(args.traces)]
    server = PostgresServer() if args.store == "postgres" else None
    try:
        home = Path(tempfile.mkdtemp(prefix="agentlearn-bench-collect-"))
        ws = open_workspace(Settings(home=home, database_url=server.url if server else ""), encoder=hash_encode)
        times, sizes = [], []
        with serving(collect.create_app(ws, quiet_s=3600)) as url:
            exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=120)
            cpu_start, exporter_start = time.process_time(), time.thread_time()  # the server has started
            pg_start = postgres_cpu_s(server.data) if server else 0.0
            for start in range(0, len(runs), args.batch):
                batch = [s for run in runs[start:start + args.batch] for s in run]
                t = time.perf_counter()
                if exporter.export(batch) != SpanExportResult.SUCCESS:
                    raise RuntimeError("an export failed")
                times.append(time.perf_counter() - t)
                sizes.append(len(batch))
            collector_cpu_s = (time.process_time() - cpu_start) - (time.thread_time() - exporter_start)
            pg_cpu_s = postgres_cpu_s(server.data) - pg_start if server else 0.0
        episodes = len(ws.repo.find(Trajectory, source=collect.SOURCE))
    finally:
        if server is not None:
            server.remove()
    fifth = max(1, len(times) // 5)
    result = {"store": args.store, "traces": args.traces, "spans": sum(sizes), "spans_per_export": args.batch * 6,
              "episodes": episodes, "spans_per_s": round(sum(sizes) / sum(times)),
              "first_fifth_spans_per_s": round(sum(sizes[:fifth]) / sum(times[:fifth])),
              "last_fifth_spans_per_s": round(sum(sizes[-fifth:]) / sum(times[-fifth:])),
              "collector_cpu_s": round(collector_cpu_s, 2),
              "collector_cpu_ms_per_span": round(1000 * collector_cpu_s / sum(sizes), 3),
              "postgres_cpu_s": round(pg_cpu_s, 2), "postgres_cpu_ms_per_span": round(1000 * pg_cpu_s / sum(sizes), 3),
              "load_avg_start": load_start, "load_avg_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))
    if episodes != args.traces:
        print(f"error: {episodes} episodes for {args.traces} runs", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
