"""Real-browser test: the disk under the workspace turns read-only while a person labels with a comment.

The page shows one plain line naming the file (no traceback), the comment stays in its box and the
verdict stays chosen; once the disk is writable again, `N` stores the label with that comment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlearn import users
from storage import open_repository
from storage.records import Label
from tests.browser.test_browser import CHROMIUM, PASSWORD, Server, key, no_exception, open_page, settle, wait_for
from tests.conftest import remount
from tests.seed import admin_of, seed_workspace

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]


@pytest.fixture
def disk_server(small_disk):
    home = small_disk / "home"
    repo = open_repository(str(home / "store"))
    seed_workspace(repo, hostile=False)
    users.add_user(repo, "alice", "admin", PASSWORD, who=admin_of(repo))
    srv = Server(home)
    srv.start()
    yield srv, repo
    srv.stop()


def test_a_read_only_disk_is_one_line_and_the_comment_waits_for_the_retry(disk_server, small_disk, page):
    server, repo = disk_server
    open_page(page, server, "trajectories", annotator="alice", trajectory="tr2ok")
    key(page, "f", "verdict: fail")
    page.get_by_label("Comment").fill("asked for sms, not e-mail")
    page.keyboard.press("Tab")  # the box sends its text when it loses focus
    settle(page)
    remount(small_disk, "ro")
    try:
        key(page, "n")
        alert = page.locator('[data-testid="stAlertContentError"]')
        alert.first.wait_for(timeout=20_000)
        shown = [t.strip() for t in alert.all_inner_texts()]
        assert len(shown) == 1 and "\n" not in shown[0], shown
        assert shown[0].startswith(f"cannot write {server.home / 'store'}") and "Read-only file system" in shown[0]
        no_exception(page)
        assert "Traceback" not in page.locator("body").inner_text()
        assert page.get_by_label("Comment").input_value() == "asked for sms, not e-mail"
        assert page.get_by_text("verdict: fail", exact=False).count()
        assert repo.find(Label, trajectory_id="tr2ok") == []
    finally:
        remount(small_disk, "rw")
    key(page, "n")
    (label,) = wait_for(lambda: repo.find(Label, annotator="alice", trajectory_id="tr2ok"))
    assert (label.verdict, label.comment) == ("fail", "asked for sms, not e-mail")
    no_exception(page)
