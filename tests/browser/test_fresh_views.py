"""Real-browser tests: views that follow the store by themselves, without a reload.

- Training: a job whose process another process moves from running to succeeded, while the page is open,
  shows a "Finished" notice and the new status in History; the page is never reloaded.
- Run: a run process that another process starts and ends redraws the whole page (its Start button, the count of
  stored runs), not only the progress widget.
- Preferences: switching to fresh agent runs drops the stored pair, "Run both" shows the new pair, and
  the address keeps it, so a reload shows the same pair. The agent talks to a small OpenAI-compatible
  HTTP server in this test (answers differ per request), through the real openai backend.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from storage import open_repository
from storage.records import Job, Preference, Process, Trajectory, now
from tests.browser.test_browser import (
    CHROMIUM,
    SHOTS,
    Server,
    local_http,
    no_exception,
    open_page,
    seeded_home,
    settle,
    sign_in_if_asked,
    wait_for,
)
from tests.seed import SUITE

ROOT = Path(__file__).resolve().parents[2]
LATENCY_S = 10  # the views poll every 2 s; a redraw of the page on top of that stays well under this

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]

# Another process: keeps the job process's heartbeat while it "trains", and once the test creates the go file,
# writes the end of the job into the store, the way a real job process does (Repository.update).
WRITER = """
import sys, time
from pathlib import Path
from storage import open_repository
from storage.records import Job, Process, now
store, job_id, process_id, go = sys.argv[1:5]
repo = open_repository(store)
while not Path(go).exists():
    repo.update(Process, process_id, lambda p: p.model_copy(update={"heartbeat": now(), "done": 1, "total": 2}))
    time.sleep(0.5)
repo.update(Job, job_id, lambda j: j.model_copy(update={"step": 2, "metrics": {"train_loss": 1.25}}))
repo.update(Process, process_id, lambda p: p.model_copy(update={
    "status": "succeeded", "done": 2, "finished": now(), "heartbeat": now()}))
"""


class _Answers(BaseHTTPRequestHandler):
    """POST /v1/chat/completions: an OpenAI chat completion whose tool call differs on every request."""

    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            type(self).count += 1
            n = type(self).count
        call = {"name": "create_ticket", "arguments": {"title": f"fresh answer {n}"}}
        text = f"<tool_call>{json.dumps(call)}</tool_call>"
        body = json.dumps({"id": f"c{n}", "object": "chat.completion", "created": 0, "model": "fake",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": text}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint():
    with local_http(_Answers) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return seeded_home(tmp_path_factory, "fresh-home", {"alice": "admin"})


@pytest.fixture(scope="module")
def server(home, endpoint):
    srv = Server(home, env={"AGENTLEARN_BACKEND": "openai", "AGENTLEARN_OPENAI_MODEL": "fake",
                            "OPENAI_BASE_URL": endpoint, "OPENAI_API_KEY": "not-needed"})
    srv.start()
    yield srv
    srv.stop()


def _shoot(page, name: str) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside the page, so grow the window first)."""
    SHOTS.mkdir(exist_ok=True)
    tall = page.evaluate("Math.max(...[...document.querySelectorAll('section, div')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1500, "height": min(int(tall) + 50, 8000)})
    settle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 1100})


def _choose(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def _query(page) -> dict[str, str]:
    from urllib.parse import parse_qs, urlparse

    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_a_job_that_ends_while_the_training_page_is_open_shows_finished(server, home, page, tmp_path):
    repo = open_repository(str(home / "store"))
    process = repo.put(Process(kind="train", args=["train", "--run-job", "j"], heartbeat=now(), total=2))
    job = repo.put(Job(method="sft", config={"suite": SUITE}, max_steps=2, process_id=process.id))
    go = tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home / "store"), job.id, process.id, str(go)], cwd=ROOT,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    try:
        open_page(page, server, "training", annotator="alice")
        page.get_by_text(f"job {job.id} · suite {SUITE}").wait_for(timeout=20_000)  # in Running
        assert page.get_by_text("Finished:").count() == 0
        page.evaluate("window.__same_page = 1")  # gone if the page were reloaded
        go.write_text("go")
        assert writer.wait(timeout=30) == 0
        assert repo.get(Process, process.id).status == "succeeded"  # written by the other process
        written = time.monotonic()
        page.get_by_text(f"Finished: SFT job {job.id} succeeded").wait_for(timeout=30_000)
        latency = time.monotonic() - written
        print(f"training page showed the job's end {latency:.1f} s after it was written")
        assert latency < LATENCY_S
        settle(page)
        assert page.evaluate("window.__same_page") == 1  # no reload
        assert page.get_by_text("No job is running.").count() == 1
        assert page.get_by_text(re.compile(r"^2 of 2 steps · ")).count() >= 1  # History's progress
        assert "train loss 1.250" in page.get_by_text(f"Finished: SFT job {job.id}").first.inner_text()
        no_exception(page)
        _shoot(page, "training")
        page.get_by_role("button", name="Dismiss").click()  # the notice stays until dismissed
        settle(page)
        assert page.get_by_text("Finished:").count() == 0
    finally:
        if writer.poll() is None:
            writer.kill()


def test_preferences_switching_to_fresh_runs_shows_a_new_pair_that_a_reload_keeps(server, home, page):
    repo = open_repository(str(home / "store"))
    open_page(page, server, "preferences", annotator="alice")
    page.get_by_role("button", name=re.compile("^A is better")).wait_for(timeout=20_000)
    old = wait_for(lambda: _query(page).get("pair"))  # the stored pair, in the address
    old_ids = set(old.split(".")[:2])
    assert repo.get(Trajectory, old.split(".")[0]) is not None

    _choose(page, "Pairs from", "fresh agent runs")
    assert page.get_by_role("button", name=re.compile("^A is better")).count() == 0  # the old pair is gone
    assert _query(page).get("source") == "fresh" and "pair" not in _query(page)

    before = repo.count(Trajectory)
    page.get_by_role("button", name=re.compile("^Run both")).click()
    page.get_by_role("button", name=re.compile("^A is better")).wait_for(timeout=60_000)
    settle(page)
    assert repo.count(Trajectory) == before + 2
    new = wait_for(lambda: _query(page).get("pair"))
    new_ids = set(new.split(".")[:2])
    assert new_ids.isdisjoint(old_ids)
    answers = sorted(repo.get(Trajectory, i).output for i in new_ids)
    assert all("fresh answer" in a for a in answers) and answers[0] != answers[1]
    for a in answers:
        assert page.get_by_text(a).count() >= 1
    assert page.get_by_text("expected call (the task's reference)").count() == 2
    no_exception(page)
    _shoot(page, "preferences")

    page.reload()  # a new session: the address brings the pair back
    settle(page)
    sign_in_if_asked(page, "alice")
    page.get_by_role("button", name=re.compile("^A is better")).wait_for(timeout=30_000)
    settle(page)
    for a in answers:
        assert page.get_by_text(a).count() >= 1
    assert _query(page).get("pair") == new
    page.keyboard.press("a")
    pref = wait_for(lambda: repo.find(Preference, annotator="alice"))[0]
    assert {pref.trajectory_a, pref.trajectory_b} == new_ids


# Another process: a `run` child's end as processes.finish writes it, after two stored trajectories.
RUN_WRITER = """
import sys, time
from pathlib import Path
from storage import open_repository
from storage.records import Process, Trajectory, now
store, process_id, task_id, suite, go = sys.argv[1:6]
repo = open_repository(store)
while not Path(go).exists():
    time.sleep(0.2)
for n in (1, 2):
    repo.put(Trajectory(task_id=task_id, suite=suite, split="train", output=f"run {n}"))
repo.update(Process, process_id, lambda p: p.model_copy(update={
    "status": "succeeded", "done": 2, "total": 2, "finished": now(), "heartbeat": now()}))
"""


def test_a_run_started_and_ended_elsewhere_redraws_the_open_run_page(server, home, page, tmp_path):
    repo = open_repository(str(home / "store"))
    open_page(page, server, "run", annotator="alice")
    _choose(page, "Run on", "a whole split")
    start = page.get_by_role("button", name=re.compile("^Start"))
    assert start.is_enabled()
    page.evaluate("window.__same_page = 1")  # gone if the page were reloaded

    # Started from another browser or the CLI: this page's Start button must follow, not only its widget.
    process = repo.put(Process(kind="run", args=["run", "--suite", SUITE, "--split", "train"], total=2, done=1,
                               heartbeat=now(), message="task 1 of 2"))
    go = tmp_path / "go-run"
    writer = subprocess.Popen([sys.executable, "-c", RUN_WRITER, str(home / "store"), process.id,
                               f"{SUITE}:t0", SUITE, str(go)], cwd=ROOT,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    try:
        page.get_by_text("1 of 2 tasks").wait_for(timeout=20_000)
        wait_for(lambda: page.get_by_role("button", name=re.compile("^Start")).is_disabled(), timeout=20)
        assert page.get_by_text("trajectories stored by the last run").count() == 0
        go.write_text("go")
        assert writer.wait(timeout=30) == 0
        written = time.monotonic()
        page.get_by_text("2 trajectories stored by the last run").wait_for(timeout=30_000)  # outside the widget
        latency = time.monotonic() - written
        print(f"run page showed the run's end {latency:.1f} s after it was written")
        assert latency < LATENCY_S
        page.get_by_text("run process finished").wait_for(timeout=10_000)
        settle(page)
        assert page.evaluate("window.__same_page") == 1
        assert page.get_by_role("button", name=re.compile("^Start")).is_enabled()  # the whole page was redrawn
        no_exception(page)
    finally:
        if writer.poll() is None:
            writer.kill()
