"""Real-browser test of the labeling keys that need the page itself: "/" puts the cursor in the comment box
(it was 32-55 Tab presses away), Esc takes it out so the letter keys label again."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlearn import users
from storage import open_repository
from storage.records import Label, Preference
from tests.browser.test_browser import CHROMIUM, PASSWORD, key, no_exception, open_page, settle, wait_for
from tests.seed import admin_of, seed_workspace

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("keys-home")
    repo = open_repository(str(home / "store"))
    seed_workspace(repo, hostile=False)
    users.add_user(repo, "alice", "admin", PASSWORD, who=admin_of(repo))
    return home


def _focused(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label') || ''")


def test_a_key_puts_the_cursor_in_the_comment_box_and_esc_takes_it_out(server, home, page):
    open_page(page, server, "trajectories", annotator="alice", trajectory="tr2ok")
    assert _focused(page) != "Comment"
    page.keyboard.press("/")
    assert _focused(page) == "Comment"
    page.keyboard.type("asked for sms")  # letters typed here label nothing
    assert page.get_by_label("Comment").input_value() == "asked for sms"  # the "/" itself is not typed
    page.keyboard.press("Escape")
    settle(page)
    assert _focused(page) != "Comment"
    key(page, "s", "verdict: success")
    key(page, "n")
    repo = open_repository(str(home / "store"))
    (label,) = wait_for(lambda: repo.find(Label, annotator="alice", trajectory_id="tr2ok"))
    assert (label.verdict, label.comment) == ("success", "asked for sms")
    no_exception(page)


def test_the_same_key_opens_the_edit_box_on_preferences(server, home, page):
    open_page(page, server, "preferences", annotator="alice", pair="tr0ok.tr0bad.0")
    key(page, "e", "Corrected response")
    page.keyboard.press("/")
    assert _focused(page) == "Corrected response (becomes the chosen one)"
    fixed = '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'
    page.keyboard.insert_text(fixed)
    page.keyboard.press("Escape")
    settle(page)
    key(page, "x")
    repo = open_repository(str(home / "store"))
    (pref,) = wait_for(lambda: repo.find(Preference, annotator="alice"))
    assert (pref.choice, pref.corrected) == ("both_bad", fixed)
    no_exception(page)
