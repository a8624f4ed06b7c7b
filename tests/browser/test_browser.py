"""Real-browser tests: Debian chromium (Playwright) against `streamlit run app.py` on a seeded workspace.

What they prove that AppTest cannot: the letter-key shortcuts work in a browser, work survives a reload
and a server restart, two browsers labeling at once lose nothing, hostile trajectory text stays inert,
and every page renders. Screenshots of each page go to screenshots/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentlearn import users
from storage import open_repository
from storage.records import InsightProposal, Label, Preference
from tests.seed import admin_of, seed_workspace

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
TEAM = {"alice": "admin", "carol": "annotator", "dave": "reviewer"}

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "screenshots"
PAGES = {"overview": "", "trajectories": "trajectories", "preferences": "preferences", "insights": "insights",
         "exemplars": "exemplars", "run": "run", "evaluate": "evaluate"}
if (ROOT / "pages" / "training.py").exists():  # the training page is registered when it is installed
    PAGES["training"] = "training"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]


@contextmanager
def local_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port in a thread; yields http://127.0.0.1:PORT."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on a workspace, restartable."""

    def __init__(self, home: Path, address: str = "127.0.0.1", env: dict[str, str] | None = None,
                 script: str = "app.py") -> None:
        self.home, self.address, self.extra_env, self.script = home, address, dict(env or {}), script
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.start_without_waiting()
        self.wait()

    def start_without_waiting(self) -> None:
        """Start the process and return at once (to catch the server's very first moments)."""
        env = dict(os.environ, AGENTLEARN_HOME=str(self.home), AGENTLEARN_DEMO="0", HF_HUB_OFFLINE="1",
                   **self.extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / self.script), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", self.address, "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait(self) -> None:
        """Return once the server answers its health check."""
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("streamlit did not start within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None


def seeded_home(tmp_path_factory, prefix: str, team: dict[str, str]) -> Path:
    """A seeded workspace whose people (name -> role) sign in through the real form with PASSWORD."""
    home = tmp_path_factory.mktemp(prefix)
    repo = open_repository(str(home / "store"))
    seed_workspace(repo)
    for name, role in team.items():
        users.add_user(repo, name, role, PASSWORD, who=admin_of(repo))
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return seeded_home(tmp_path_factory, "browser-home", TEAM)


def settle(page, quiet: float = 0.6, timeout: float = 30) -> None:
    """Wait until Streamlit has finished the current run (no status widget for `quiet` seconds)."""
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=timeout * 1000)
    deadline, calm_since = time.time() + timeout, None
    while time.time() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"]').is_visible()
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = time.time()
        elif time.time() - calm_since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError("the page kept running")


def open_page(page, server: Server, path: str, annotator: str = "alice", **query) -> None:
    """Open a page; a new browser session signs in as `annotator` through the sign-in form first."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{server.url}/{path}" + (f"?{qs}" if qs else ""))
    settle(page)
    sign_in_if_asked(page, annotator)
    page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
    settle(page)


def sign_in_if_asked(page, name: str, password: str = PASSWORD) -> None:
    """Fill the sign-in form when the app shows it (each page load is a new Streamlit session)."""
    form = page.get_by_role("button", name="Sign in")
    form.or_(page.get_by_text("Signed in:")).or_(page.get_by_text("Local mode:")).first.wait_for(timeout=30_000)
    settle(page, quiet=1.0)  # the first run may rerun once (through_app): fill the form of the last one
    if not form.count():
        return
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in: {name}", exact=False).first.wait_for(timeout=20_000)
    settle(page)


def key(page, k: str, wait_text: str | None = None) -> None:
    """Press a letter key the way a person does (no click), then wait for its effect."""
    page.keyboard.press(k)
    if wait_text:
        page.get_by_text(wait_text, exact=False).first.wait_for(timeout=20_000)
    settle(page)


def wait_for(predicate, timeout: float = 20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the store")


def no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def test_keyboard_label_preference_and_review_survive_reload_and_restart(server, home, page):
    repo = open_repository(str(home / "store"))

    open_page(page, server, "trajectories", annotator="alice", trajectory="tr2ok")
    key(page, "s", "verdict: success")
    key(page, "4", "score: 4")
    key(page, "n")
    label = wait_for(lambda: repo.find(Label, annotator="alice", trajectory_id="tr2ok"))[0]
    assert (label.verdict, label.score) == ("success", 4)

    open_page(page, server, "preferences", annotator="alice")
    key(page, "a")
    pref = wait_for(lambda: repo.find(Preference, annotator="alice"))[0]
    assert pref.choice == "A" and {pref.trajectory_a, pref.trajectory_b} and pref.trajectory_a != pref.trajectory_b

    open_page(page, server, "insights", annotator="alice")
    key(page, "a")
    reviewed = wait_for(lambda: [p for p in repo.all(InsightProposal) if p.status == "approved"])
    assert reviewed[0].reviewer == "alice"

    # A reload starts a new session (sign in again): what was stored is shown again.
    open_page(page, server, "", annotator="alice")
    page.reload()
    settle(page)
    sign_in_if_asked(page, "alice")
    assert _metric(page, "Preferences") == "1"
    assert _metric(page, "Labeled") == "2"  # bob's seed label and alice's
    assert _metric(page, "To review") == "1"

    # A server restart loses nothing either.
    server.stop()
    server.start()
    repo2 = open_repository(str(home / "store"))
    assert repo2.find(Label, annotator="alice", trajectory_id="tr2ok")
    assert repo2.find(Preference, annotator="alice")
    assert repo2.get(InsightProposal, reviewed[0].id).status == "approved"
    open_page(page, server, "", annotator="alice")
    assert _metric(page, "Preferences") == "1"
    no_exception(page)


def _metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_two_browsers_labeling_at_once_lose_nothing(server, home, browser):
    repo = open_repository(str(home / "store"))
    pages = []
    for name in ("carol", "dave"):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        p = context.new_page()
        open_page(p, server, "trajectories", annotator=name, trajectory="tr3ok")
        pages.append(p)
    for p, k in zip(pages, ("s", "f"), strict=True):
        key(p, k)
    for p in pages:
        p.keyboard.press("n")  # both submit at (nearly) the same time
    for p in pages:
        settle(p)
    labels = wait_for(lambda: len(repo.find(Label, trajectory_id="tr3ok")) >= 2 and repo.find(Label, trajectory_id="tr3ok"))
    assert sorted((lb.annotator, lb.verdict) for lb in labels) == [("carol", "success"), ("dave", "fail")]
    for p in pages:
        p.context.close()


def test_two_servers_on_one_postgresql_database_with_two_people_each_lose_nothing(browser, pg_url, tmp_path):
    """A team's set-up: two dashboard servers share one database; four people label one item at once."""
    repo = open_repository("", pg_url)
    seed_workspace(repo)
    people = {"alice": "admin", "carol": "annotator", "dave": "reviewer", "erin": "annotator"}
    for name, role in people.items():
        users.add_user(repo, name, role, PASSWORD, who=admin_of(repo))
    servers = [Server(tmp_path / f"home-{n}", env={"AGENTLEARN_DATABASE_URL": pg_url}) for n in (1, 2)]
    pages = []
    try:
        for srv in servers:
            srv.start()
        for n, name in enumerate(people):
            p = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            open_page(p, servers[n % 2], "trajectories", annotator=name, trajectory="tr3ok")
            pages.append(p)
        verdicts = ("s", "f", "s", "f")
        for p, k in zip(pages, verdicts, strict=True):
            key(p, k)
        for p in pages:
            p.keyboard.press("n")  # all four submit at (nearly) the same time, through two servers
        for p in pages:
            settle(p)
        labels = wait_for(lambda: len(repo.find(Label, trajectory_id="tr3ok")) >= 4
                          and repo.find(Label, trajectory_id="tr3ok"))
        assert sorted((lb.annotator, lb.verdict) for lb in labels) == [
            ("alice", "success"), ("carol", "fail"), ("dave", "success"), ("erin", "fail")]
    finally:
        for p in pages:
            p.context.close()
        for srv in servers:
            srv.stop()


def test_sign_in_roles_and_no_network_without_accounts(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server.url}/trajectories?annotator=alice")  # the old name link signs nobody in
    settle(page)
    page.get_by_label("Name").fill("carol")
    page.get_by_label("Password", exact=True).fill("a wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong name or password").first.wait_for(timeout=20_000)
    assert page.get_by_role("link", name="Trajectories").count() == 0  # no page before signing in
    sign_in_if_asked(page, "carol")
    page.get_by_role("heading", name="Trajectories").first.wait_for(timeout=30_000)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Trajectories" in nav and "Training" not in nav and "Users" not in nav  # carol annotates only
    context.close()

    lonely = Server(tmp_path / "no-accounts", address="0.0.0.0")  # serving the network, no accounts
    lonely.start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(lonely.url)
        page.get_by_text("no accounts exist", exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_role("heading", level=1).count() == 0
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        context.close()
    finally:
        lonely.stop()


def test_hostile_text_is_inert(server, page):
    open_page(page, server, "trajectories", annotator="alice", trajectory="trhostile")
    assert page.evaluate("window.__pwned") is None
    assert page.get_by_text("<script>window.__pwned=1</script>", exact=False).count() >= 1  # shown as text
    assert page.locator('img[src="x"]').count() == 0
    no_exception(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "trajectories-hostile.png"), full_page=True)


def test_every_page_renders_and_is_photographed(server, page):
    SHOTS.mkdir(exist_ok=True)
    for name, path in PAGES.items():
        open_page(page, server, path, annotator="alice")
        time.sleep(1.0)  # charts draw after the run ends
        no_exception(page)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
