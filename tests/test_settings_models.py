"""Settings from the environment and the real offline models: SmolLM2 (embedded and over HTTP), MiniLM."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentlearn import models  # noqa: E402
from agentlearn.llm import chat_model  # noqa: E402
from agentlearn.settings import Settings  # noqa: E402
from agentlearn.workspace import open_workspace  # noqa: E402
from storage.records import Trajectory  # noqa: E402
from tests.conftest import link_shared_models  # noqa: E402


@pytest.fixture(scope="session")
def model_home(tmp_path_factory, shared_models) -> Path:
    """One data home for every model test here, with the session's converted SmolLM2."""
    home = link_shared_models(tmp_path_factory.mktemp("model-home"), shared_models)
    models.chat_model_dir(Settings(home=home).models_dir)
    return home


# --- settings --------------------------------------------------------------------------------


def test_from_env_honours_home_and_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTLEARN_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("AGENTLEARN_BACKEND", " OpenAI ")
    monkeypatch.setenv("AGENTLEARN_OPENAI_MODEL", "gpt-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    s = Settings.from_env()
    assert s.home == tmp_path / "elsewhere"
    assert s.backend == "openai" and s.openai_model == "gpt-test" and s.model_label == "gpt-test"
    assert s.openai_base_url == "http://127.0.0.1:9/v1"
    assert {s.store_dir.parent, s.vectors_dir.parent, s.models_dir.parent, s.exports_dir.parent,
            s.adapters_dir.parent, s.jobs_dir.parent} == {tmp_path / "elsewhere"}
    assert s.with_(backend="embedded").model_label == "SmolLM2-135M-Instruct"


def test_from_env_defaults(monkeypatch, tmp_path):
    for name in ("AGENTLEARN_HOME", "AGENTLEARN_BACKEND", "AGENTLEARN_OPENAI_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    s = Settings.from_env()
    assert s.home == tmp_path / ".agentlearn" and s.backend == "embedded" and s.openai_model == ""


def test_from_env_rejects_a_bad_backend(monkeypatch):
    monkeypatch.setenv("AGENTLEARN_BACKEND", "llamacpp")
    with pytest.raises(ValueError, match="AGENTLEARN_BACKEND must be 'embedded' or 'openai', not 'llamacpp'"):
        Settings.from_env()


def test_openai_backend_needs_a_model_and_takes_no_adapter(tmp_path):
    with pytest.raises(ValueError, match="AGENTLEARN_OPENAI_MODEL"):
        chat_model(Settings(home=tmp_path, backend="openai"))
    with pytest.raises(ValueError, match="LoRA adapters run only with the embedded model"):
        chat_model(Settings(home=tmp_path, backend="openai", openai_model="m"), adapter_dir=str(tmp_path))


# --- the real models --------------------------------------------------------------------------


def test_embedded_chat_model_answers(model_home):
    model = chat_model(Settings(home=model_home, max_new_tokens=24))
    answer = model.invoke("What is the capital of France? Answer in one word.")
    assert isinstance(answer.content, str) and answer.content.strip()
    assert "<|im_end|>" not in answer.content
    again = model.invoke("What is the capital of France? Answer in one word.")
    assert again.content == answer.content  # greedy by default: the same answer twice


def test_conversion_is_reused(model_home, monkeypatch):
    target = models.converted_dir(model_home / "models")
    files = ["model.safetensors", "config.json", "tokenizer.json", ".converted"]
    before = {f: (target / f).stat().st_mtime_ns for f in files}

    def no_reconvert(*args):
        raise AssertionError("converted the GGUF file a second time")

    monkeypatch.setattr(models, "_convert_gguf", no_reconvert)
    assert models.chat_model_dir(model_home / "models") == target
    assert {f: (target / f).stat().st_mtime_ns for f in files} == before
    packaged = models.gguf_file(models.embedded_model(), model_home / "unused")  # in its package: nothing assembled
    assert (target / ".converted").read_text() == packaged.name and not (model_home / "unused").exists()
    assert not (target.with_name(target.name + ".partial")).exists()


def test_embedding_model_gives_384_d_unit_vectors_that_mean_something():
    from agentlearn.embeddings import encode

    texts = ["A cat sits on the mat.", "There is a cat on the mat.", "Stock prices fell sharply today."]
    m = encode(texts)
    assert m.shape == (3, models.EMBEDDING_DIM) == (3, 384) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1, rtol=1e-5)
    sim = m @ m.T
    assert sim[0, 1] > sim[0, 2] + 0.3, sim
    batch = encode(texts * 3)  # the batched path gives the same vectors as the one-thread path
    np.testing.assert_allclose(batch[:3], m, atol=1e-5)


def test_secrets_never_reach_the_home(model_home, monkeypatch):
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("AGENTLEARN_HOME", str(model_home))
    monkeypatch.setenv("AGENTLEARN_BACKEND", "openai")
    monkeypatch.setenv("AGENTLEARN_OPENAI_MODEL", "some-model")
    settings = Settings.from_env()
    remote = chat_model(settings)
    assert remote.openai_api_key.get_secret_value() == secret  # the key is used ...

    ws = open_workspace(settings.with_(backend="embedded", max_new_tokens=16))
    answer = ws.chat().invoke("Say hello.").content
    ws.repo.put(Trajectory(task_id="t", suite="s", split="train", output=answer, model=settings.model_label))
    ws.vectors("tasks").sync({"t": answer}, lambda texts: np.eye(len(texts), 4, dtype=np.float32))
    files = [p for p in model_home.rglob("*") if p.is_file()]
    assert any(p.is_relative_to(settings.store_dir) for p in files)
    leaked = [p for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []  # ... and written nowhere


# --- the OpenAI-compatible path against a real local server ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def openai_server(model_home):
    """`transformers serve` on the converted SmolLM2: a real OpenAI-compatible HTTP server."""
    cli = Path(sys.executable).with_name("transformers")
    cli = str(cli) if cli.exists() else shutil.which("transformers")
    assert cli, "the `transformers` command (transformers[serving]) is not installed"
    port = _free_port()
    model_dir = models.chat_model_dir(model_home / "models")
    log = open(model_home / "serve.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([cli, "serve", str(model_dir), "--port", str(port), "--device", "cpu"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (model_home / "serve.log").read_text()[-2000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "transformers serve did not start in 90 s"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_openai_backend_against_a_real_local_server(model_home, openai_server):
    base_url, model_dir = openai_server
    settings = Settings(home=model_home, backend="openai", openai_model=str(model_dir), openai_base_url=base_url,
                        max_new_tokens=24)
    answer = chat_model(settings).invoke("What is the capital of France?").content
    assert isinstance(answer, str) and answer.strip()
    local = chat_model(settings.with_(backend="embedded")).invoke("What is the capital of France?").content
    # Same weights, both greedy: the server and the embedded model should agree on the first words.
    assert answer.split()[:3] == local.split()[:3], (answer, local)


def test_the_agent_sends_a_batch_to_a_real_openai_compatible_server_concurrently(model_home, openai_server):
    """Batched runs on the OpenAI path: concurrent requests, native tool calling or, if refused, text."""
    from agentlearn.agent import run_tasks
    from agentlearn.methods import RunOptions
    from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
    from agentlearn.workspace import open_workspace

    base_url, model_dir = openai_server
    settings = Settings(home=model_home, backend="openai", openai_model=str(model_dir), openai_base_url=base_url,
                        max_new_tokens=48, concurrency=2)
    ws = open_workspace(settings)
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:3]
    runs = run_tasks(ws, tasks, RunOptions(method="none"))
    assert [r[0].task_id for r in runs] == [t.id for t in tasks]  # answers come back in task order
    assert all(r[0].output.strip() and r[0].verdict is not None for r in runs)
    assert all(r[0].model == str(model_dir) for r in runs)


def test_an_agent_on_a_real_server_is_collected_corrected_and_its_correction_reaches_the_next_request(
        model_home, openai_server, tmp_path):
    """The loop for an agent that is not ours, upstream `transformers serve`: an OpenAI-client agent traced by
    OpenInference and the real OTLP exporter runs on the served SmolLM2 and sends its run to `collect`; a person
    corrects the call the model did not make; the correction becomes an exemplar; the next request through
    `proxy` reaches the same server with that corrected call in its system message."""
    import httpx
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from agentlearn.feedback import corrections
    from agentlearn.traces import collect, proxy
    from storage.records import ToolCall
    from tests.asgi_server import serving
    from tests.seed import ME
    from tests.test_own_agent import SERVICE, TOOLS, desk_agent

    base_url, model_dir = openai_server
    ws = open_workspace(Settings(home=tmp_path / "home"))
    received: list[dict] = []

    async def forward(request):  # between proxy and server: keeps what the server was sent, passes it on
        body = await request.json()
        received.append(body)
        async with httpx.AsyncClient(timeout=300) as client:
            reply = await client.post(base_url + "/chat/completions", json=body)
        return JSONResponse(reply.json(), status_code=reply.status_code)

    relay = Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"])])

    def client(url: str, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0, timeout=300, **kw)

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    with serving(collect.create_app(ws, quiet_s=3600)) as collector:
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector + "/v1/traces")))
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            with provider.get_tracer(SERVICE).start_as_current_span("desk-agent run"):
                answer = desk_agent(client(base_url), "Reset the password of dlee and text it to him.",
                                    model=str(model_dir), max_tokens=48)
        finally:
            instrumentor.uninstrument()
            provider.shutdown()

    [episode] = ws.repo.find(Trajectory, source="collect")
    assert episode.suite == SERVICE and episode.model.startswith(str(model_dir))  # the served model's name
    assert episode.steps and (episode.steps[-1].answer == answer or episode.steps[-1].calls)

    expected = ToolCall(name="reset_password", arguments={"username": "dlee", "delivery": "sms"})
    fix = corrections.save(ws, episode.id, "maya", expected, note="the model answered without resetting")
    corrections.to_exemplar(ws, fix.id, who=ME)

    with serving(relay) as relayed, serving(proxy.create_app(ws, relayed + "/v1")) as url:
        reply = client(url + "/v1", default_headers={"X-Agentlearn-Suite": SERVICE}).chat.completions.create(
            model=str(model_dir), max_tokens=24, tools=TOOLS,
            messages=[{"role": "user", "content": "Please reset the password of akhan and text it to her."}])
    assert reply.choices[0].message.content or reply.choices[0].message.tool_calls  # the server's own answer
    system = received[-1]["messages"][0]
    assert system["role"] == "system"
    assert "Reset the password of dlee and text it to him." in system["content"]
    assert '"name": "reset_password", "arguments": {"username": "dlee", "delivery": "sms"}' in system["content"]
