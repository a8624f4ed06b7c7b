"""Trace import speed: an OTLP JSON file of --spans spans made by the OpenTelemetry SDK, read and stored.

The file holds traces shaped like tests/trace_samples.py's GenAI one (invoke_agent > chat > execute_tool
> chat: 4 spans, 2 steps each), every trace a different request, encoded by the OTLP exporter's encoder.
It reports the wall and CPU time (CPU says more on a shared machine) of reading the file into episodes
(JSON parse, text checks, spans, episodes) and of importing it into a fresh TinyDB workspace (read, then
one put_many), then the time of importing the same file again (every trajectory updated in place).

    .venv/bin/python -m bench.bench_trace_import --spans 10000
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from agentlearn.accounts import local_identity
from agentlearn.settings import Settings
from agentlearn.traces.formats import import_file, read_episodes
from agentlearn.workspace import open_workspace
from tests import trace_samples

CITIES = ("Paris", "Oslo", "Rome", "Lisbon", "Quito", "Hanoi", "Accra", "Lima")


def make_file(path: Path, spans: int) -> int:
    """Write an OTLP JSON file of at least `spans` spans (4 per trace); returns how many traces it holds."""
    provider, exporter = trace_samples._provider(seed=1)
    tracer = provider.get_tracer("bench")
    traces = max(1, spans // 4)
    for i in range(traces):
        trace_samples._genai_trace(tracer, trace_samples.T0 + i * 1000 * trace_samples.MS,
                                   f"{CITIES[i % len(CITIES)]} {i}", f"{i % 30} C")
    path.write_text(json.dumps(trace_samples.encode(exporter.get_finished_spans())), encoding="utf-8")
    return traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-traces-") as folder:
        path = Path(folder) / "spans.json"
        start = time.perf_counter()
        traces = make_file(path, args.spans)
        made = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        start, cpu = time.perf_counter(), time.process_time()
        _, episodes = read_episodes(path)
        read, read_cpu = time.perf_counter() - start, time.process_time() - cpu
        ws = open_workspace(Settings(home=Path(folder) / "home"))
        start, cpu = time.perf_counter(), time.process_time()
        counts = import_file(ws, path, "bench", who=local_identity())
        first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        again = import_file(ws, path, "bench", who=local_identity())
        second = time.perf_counter() - start
    spans = traces * 4
    print(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}", "spans": spans, "traces": traces,
        "file_mb": round(size_mb, 2),
        "sdk_make_s": round(made, 2), "read_s": round(read, 2), "read_cpu_s": round(read_cpu, 2), "read_spans_per_s": round(spans / read),
        "episodes": len(episodes), "steps": counts["steps"], "import_s": round(first, 2), "import_cpu_s": round(first_cpu, 2),
        "import_spans_per_s": round(spans / first), "reimport_s": round(second, 2),
        "reimport_updated": again["trajectories_updated"],
    }))


if __name__ == "__main__":
    main()
