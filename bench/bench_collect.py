"""Spans a second through `collect` into the store, with every trace assembled into its episode on the way.

    .venv/bin/python -m bench.bench_collect [--traces 600] [--batch 50] [--store postgres|tinydb]

Makes `--traces` agent runs of 6 spans each with the OpenTelemetry SDK (tests.test_collect.run_agent:
invoke_agent > chat > execute_tool > chat > execute_tool > chat), serves `collect` on a free port and sends
them with the real OTLPSpanExporter (protobuf), `--batch` runs per export, one export after another. It
prints the rate over the whole run and over its first and last fifth (the store grows as it goes), checks
that every run became one episode, and writes bench/results/collect.json. On a busy machine the CPU
time (this process: exporter and collector; PostgreSQL's own work is not in it) says more than the wall rate. PostgreSQL is a fresh local
server (as the tests start one); TinyDB a temporary folder.
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
        cpu_start = time.process_time()
        with serving(collect.create_app(ws, quiet_s=3600)) as url:
            exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=120)
            for start in range(0, len(runs), args.batch):
                batch = [s for run in runs[start:start + args.batch] for s in run]
                t = time.perf_counter()
                if exporter.export(batch) != SpanExportResult.SUCCESS:
                    raise RuntimeError("an export failed")
                times.append(time.perf_counter() - t)
                sizes.append(len(batch))
        cpu_s = time.process_time() - cpu_start  # this process: the exporter and the collector together
        episodes = len(ws.repo.find(Trajectory, source=collect.SOURCE))
    finally:
        if server is not None:
            server.remove()
    fifth = max(1, len(times) // 5)
    result = {"store": args.store, "traces": args.traces, "spans": sum(sizes), "spans_per_export": args.batch * 6,
              "episodes": episodes, "spans_per_s": round(sum(sizes) / sum(times)),
              "first_fifth_spans_per_s": round(sum(sizes[:fifth]) / sum(times[:fifth])),
              "last_fifth_spans_per_s": round(sum(sizes[-fifth:]) / sum(times[-fifth:])),
              "cpu_s": round(cpu_s, 1), "spans_per_cpu_s": round(sum(sizes) / cpu_s),
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
