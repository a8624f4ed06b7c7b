"""Secrets never reach what is written down: the redaction rules, and a real child whose endpoint echoes the key."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentlearn import cli, processes
from agentlearn.redact import MASK, RedactingStream, redact
from storage.records import Job, Process
from tests.seed import ME, SUITE, seed_workspace

KEY = "sk-test-Zq81vXw2LmNp4RtY7uKc"


def test_redact_hides_env_secrets_tokens_and_url_passwords():
    env = {"MY_SERVICE_TOKEN": "tok-1234567890", "DB_PASSWORD": "hunter2hunter2", "SHORT_KEY": "abc",
           "PATH": "/usr/bin:/bin"}
    text = ("key tok-1234567890, Authorization: Bearer abc.def-123456789, sk-proj-AbCdEf123456789 and "
            "hf_abcdefghijklmnop; postgresql://al:hunter2hunter2@db/x api_key=zzzzzzzzzzzz")
    out = redact(text, env)
    for secret in ("tok-1234567890", "abc.def-123456789", "sk-proj-AbCdEf123456789", "hf_abcdefghijklmnop",
                   "hunter2hunter2", "zzzzzzzzzzzz"):
        assert secret not in out, secret
    assert "Bearer [redacted]" in out and "postgresql://al:[redacted]@db/x" in out
    plain = "96 tokens per answer; the password must have 12 characters; see /usr/bin:/bin; abc"
    assert redact(plain, env) == plain  # ordinary words and short values are left alone


def test_a_redacting_stream_catches_a_key_written_in_pieces():
    sink = io.StringIO()
    stream = RedactingStream(sink)
    stream.write("error: Incorrect API key sk-te")
    stream.write("st-Zq81vXw2LmNp4RtY7uKc given\npartial")
    stream.flush()
    assert KEY not in sink.getvalue() and sink.getvalue().endswith("given\npartial")


class _EchoKey(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that refuses every call and quotes the key it was sent."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {sent}.", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echoing_endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoKey)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_an_endpoint_that_echoes_the_key_leaves_it_nowhere(ws, monkeypatch, echoing_endpoint):
    seed_workspace(ws.repo)
    monkeypatch.setenv("AGENTLEARN_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", echoing_endpoint)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test")
    ws.settings = ws.settings.with_(backend="openai")
    record = processes.start(ws, "run", ["run", "--suite", SUITE, "--limit", "1"], who=ME)
    deadline = time.time() + 120
    while record.status == "running" and time.time() < deadline:
        time.sleep(0.2)
        record = processes.get(ws, record.id)
    log = processes.tail(ws, record, 1000)
    raw_log = open(record.log_path, encoding="utf-8", errors="replace").read()
    assert "Incorrect API key" in record.error + raw_log, (record.error, raw_log[-2000:])  # the echo happened
    assert KEY not in record.error and KEY not in raw_log and KEY not in log
    assert MASK in record.error + raw_log


def test_a_training_job_error_that_quotes_a_token_is_stored_redacted(ws, monkeypatch):
    from agentlearn.training import config as jc
    from agentlearn.training import jobs, runner

    def fail(*args, **kwargs):
        raise RuntimeError(f"401 from the hub: Authorization: Bearer {KEY}")

    monkeypatch.setattr(runner, "train", fail)
    job = jobs.new_job(ws, jc.preset("sft", "cpu-tiny"))
    process = ws.repo.put(Process(kind="train", args=["train", "--run-job", job.id]))
    ws.repo.update(Job, job.id, lambda j: j.model_copy(update={"process_id": process.id}))
    monkeypatch.setenv(processes.PROCESS_ID_ENV, process.id)  # the job process's own code, run here
    monkeypatch.setattr(processes, "_own_ws", [ws])
    monkeypatch.setattr("agentlearn.cli.open_workspace", lambda: ws)
    assert cli.main(["train", "--run-job", job.id]) == 2
    job = jobs.get(ws, job.id)
    assert job.status == "failed" and "401 from the hub" in job.error and KEY not in job.error
