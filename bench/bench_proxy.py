"""What the proxy adds to a request's latency, beyond the upstream's own: p50 and p95, retrieval apart.

    .venv/bin/python -m bench.bench_proxy [--n 2000] [--requests 200]

Builds a suite of `--n` help-desk exemplars (bench_retrieval's texts; the first 500 embedded with the
real MiniLM, the rest noisy copies of those vectors) and one playbook bullet in a temporary
AGENTLEARN_HOME, starts a local OpenAI-compatible fake upstream (canned answer, no work) in this process
and the real `python -m agentlearn proxy` as a child process in front of it, then sends `--requests`
chat completions with the OpenAI-style body, each direct to the upstream and then through the proxy:
half open a conversation, half are its next step (the model's tool call and the tool's result added;
the request retrieved for is the same user message, whose vector the proxy has kept). Overhead =
proxied minus direct latency of each pair. Retrieval (the playbook read, the query embedding,
exemplar selection) is the proxy's own measure, read from its Server-Timing header, with the query
embedding shown apart. Recording the
exchange happens after the answer is sent, so it is outside the latency but shares the CPU.
Prints one JSON object and writes bench/results/proxy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI

from agentlearn.embeddings import encode
from agentlearn.memory import exemplars, retrieval
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from bench.bench_retrieval import build_vectors, make_text
from storage.records import Exemplar, Insight, Message, Suite, ToolCall
from tests.asgi_server import free_port, serving

SUITE = "bench"
ANSWER = {"id": "chatcmpl-b", "object": "chat.completion", "created": 1, "model": "fake",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}


def upstream_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def answer() -> dict:
        return ANSWER

    return app


def build_home(n: int, seed: int) -> Path:
    home = Path(tempfile.mkdtemp(prefix="agentlearn-bench-proxy-"))
    ws = open_workspace(Settings(home=home), encoder=encode)
    rng = random.Random(seed)
    rows = [make_text(rng) for _ in range(n)]
    texts = [t for t, _, _ in rows]
    vectors, _ = build_vectors(texts, min(500, n), seed)
    records = [Exemplar(id=f"ex{i:06d}", suite=SUITE, task_id=f"task{i:06d}", kind="reference",
                        input=[Message(role="user", content=text)], call=ToolCall(name=tool, arguments={"ticket": i}),
                        tool=tool, tags=[cat]) for i, (text, tool, cat) in enumerate(rows)]
    ws.repo.put_many(records)
    by_text = dict(zip(texts, vectors, strict=True))
    ws.vectors(exemplars.VECTOR_TABLE).sync({r.id: texts[i] for i, r in enumerate(records)},
                                            lambda batch: np.stack([by_text[x] for x in batch]))
    ws.repo.put(Insight(suite=SUITE, text="Quote the ticket number the user gives, digit for digit."))
    # The retrieval a suite starts with (fused BM25 and MiniLM ranks), stored as its choice: the proxied
    # requests themselves become tasks of the suite, and must not move the choice while it is measured.
    ws.repo.put(Suite(id=SUITE, name=SUITE, retrieval=dict(retrieval.DEFAULT_CHOICE)))
    return home


def pct(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values)
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


class Pairs:
    """Latencies of requests sent direct to the upstream and through the proxy, in pairs."""

    def __init__(self) -> None:
        self.direct, self.proxied, self.overhead, self.retrieval, self.embedding = [], [], [], [], []

    def send(self, client: httpx.Client, upstream: str, proxy: str, body: dict, keep: bool) -> None:
        headers = {"authorization": "Bearer k"}
        t0 = time.perf_counter()
        client.post(upstream + "/chat/completions", json=body, headers=headers)
        t1 = time.perf_counter()
        r = client.post(proxy + "/chat/completions", json=body, headers=headers)
        t2 = time.perf_counter()
        r.raise_for_status()
        if not keep:
            return
        self.direct.append((t1 - t0) * 1000)
        self.proxied.append((t2 - t1) * 1000)
        self.overhead.append(self.proxied[-1] - self.direct[-1])
        timing = r.headers["server-timing"]
        self.retrieval.append(float(re.search(r"memory;dur=([\d.]+)", timing).group(1)))
        self.embedding.append(float(re.search(r"embedding;dur=([\d.]+)", timing).group(1)))

    def summary(self) -> dict:
        return {"requests": len(self.direct), "direct": pct(self.direct), "proxied": pct(self.proxied),
                "overhead": pct(self.overhead), "retrieval": pct(self.retrieval),
                "retrieval_without_embedding": pct([a - b for a, b in zip(self.retrieval, self.embedding, strict=True)]),
                "query_embedding": pct(self.embedding)}


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the proxy did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="exemplars in the suite")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--pause-ms", type=float, default=0.0,
                    help="wait between requests, as an agent does while its model works (0: back to back, so "
                         "the proxy records the previous exchange while it serves the next)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "proxy.json"))
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    t = time.perf_counter()
    home = build_home(args.n, args.seed)
    build_s = time.perf_counter() - t
    rng = random.Random(args.seed + 1)
    queries = [make_text(rng)[0] for _ in range(args.requests // 2 + 5)]
    port = free_port()
    env = os.environ | {"AGENTLEARN_HOME": str(home)}
    with serving(upstream_app()) as upstream:
        proc = subprocess.Popen([sys.executable, "-m", "agentlearn", "proxy", "--upstream", upstream + "/v1",
                                 "--port", str(port), "--suite", SUITE], env=env)
        try:
            proxy = f"http://127.0.0.1:{port}/v1"
            wait_for(f"http://127.0.0.1:{port}/", proc)
            first, later = Pairs(), Pairs()
            with httpx.Client(timeout=60) as client:
                for i, text in enumerate(queries):
                    opening = [{"role": "system", "content": "You are the help desk."}, {"role": "user", "content": text}]
                    # The first request of a conversation, then its next step (the model's call and the
                    # tool's result appended): the request retrieved for is the same user message.
                    step = [*opening, {"role": "assistant", "content": None, "tool_calls": [
                                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                            {"role": "tool", "tool_call_id": "c1", "content": "ticket 42 is open"}]
                    for pairs, messages in ((first, opening), (later, step)):
                        pairs.send(client, upstream + "/v1", proxy, {"model": "fake", "messages": messages},
                                   keep=i >= 5)  # warm-up: the first requests load MiniLM and build the index
                        time.sleep(args.pause_ms / 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result = {"exemplars": args.n, "requests": len(first.direct) + len(later.direct),
              "first_request": first.summary(), "later_step": later.summary(), "bank_build_s": round(build_s, 1),
              "pause_ms": args.pause_ms, "load_avg_start": load_start, "load_avg_end": round(os.getloadavg()[0], 2),
              "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
