"""Real-browser test: text from the store never becomes a link or a remote fetch.

A suite named by a URL, error categories holding a URL, a domain and an e-mail address, and guidelines
with images, links, autolinks and raw HTML pointing at a local "beacon" server: Chromium shows the
Trajectories page (sidebar guidelines, category buttons, run header) and the Suites page, and the page
holds no <a> or <img> to those addresses and the beacon hears nothing.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from agentlearn import users
from storage import open_repository
from storage.records import Message, Suite, Task, ToolCall, Trajectory, Verdict
from tests.browser.test_browser import CHROMIUM, PASSWORD, local_http, open_page, settle
from tests.seed import TOOLS, admin_of

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]
URL_SUITE = "https://evil.example/suite"
CATEGORIES = ["see https://evil.example/cat", "www.evil.example", "mail bob@evil.example"]
HITS: list[str] = []


class _Beacon(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        HITS.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def beacon():
    with local_http(_Beacon) as url:
        yield url


@pytest.fixture(scope="module")
def home(tmp_path_factory, beacon) -> Path:
    home = tmp_path_factory.mktemp("inert-home")
    repo = open_repository(str(home / "store"))
    guide = (f"## Rules\nRead **this** first.\n\n![pixel]({beacon}/md.png)\n\n[the wiki]({beacon}/link)\n\n"
             f"<{beacon}/autolink>\n\nsee {beacon}/bare and www.evil.example\n\n![ref][b]\n\n[b]: {beacon}/ref.png\n\n"
             f'<img src="{beacon}/html.png">\n\n`code {beacon}/code`')
    repo.put(Suite(id=URL_SUITE, name=URL_SUITE, tools=TOOLS, error_categories=CATEGORIES, guidelines=guide))
    task = Task(id="url:t0", suite=URL_SUITE, sample_id="t0", split="train",
                input=[Message(role="user", content="Reset akhan, see https://evil.example/task")], tools=TOOLS,
                expected=ToolCall(name="reset_password", arguments={"username": "akhan"}))
    repo.put(task)
    repo.put(Trajectory(id="trurl", task_id=task.id, suite=URL_SUITE, split="train", output="no call",
                        verdict=Verdict(success=False, reward=0.0, reason="wrong https://evil.example/reason"),
                        model="SmolLM2-135M-Instruct"))
    users.add_user(repo, "alice", "admin", PASSWORD, who=admin_of(repo))
    return home


def _links_and_images(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('a[href], img[src]')]
        .map(e => e.getAttribute('href') || e.getAttribute('src'))
        .filter(u => u.includes('evil.example') || u.includes('127.0.0.1:') && !u.startsWith(location.origin))""")


def test_urls_in_store_text_are_not_links_and_guidelines_fetch_nothing(server, page, beacon):
    open_page(page, server, "trajectories", annotator="alice", trajectory="trurl")
    page.get_by_text("Read this first").wait_for(timeout=20_000)  # the guidelines are shown, formatted
    assert page.get_by_role("heading", name="Rules").count()
    for visible in ("evil.example/cat", "bob@", "/bare"):
        assert page.get_by_text(visible, exact=False).count(), visible
    settle(page)
    assert _links_and_images(page) == []
    assert HITS == []
    open_page(page, server, "suites", annotator="alice")
    settle(page)
    assert _links_and_images(page) == []
    assert HITS == []
