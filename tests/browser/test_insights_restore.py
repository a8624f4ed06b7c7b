"""Insights in Chromium: after a bullet is edited, restored or promoted, the bullet picker shows its new text.

The picker's browser side holds the label it showed (its text), not the bullet's id; AppTest cannot see
what the browser keeps, so this runs against `streamlit run` on a seeded workspace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import open_repository
from storage.records import Insight
from tests.browser.test_browser import open_page, seeded_home, settle, wait_for

OLD = "Always ask for the username before resetting a password."
NEW = "Check the username."


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return seeded_home(tmp_path_factory, "insights-home", {"alice": "admin"})


def _picker(page):
    return page.locator('[data-testid="stExpander"]').filter(has_text="history and restore") \
        .locator('[data-testid="stSelectbox"] input').first


def _shown(page) -> str:
    """What the picker shows (the text in its box)."""
    return _picker(page).input_value()


def test_the_bullet_picker_shows_the_text_after_save_restore_and_promote(server, home, page):
    repo = open_repository(str(home / "store"))
    open_page(page, server, "insights")
    page.get_by_text("Edit, promote, demote, history and restore").click()
    _picker(page).click()
    page.get_by_role("option", name=f"[active, importance 2] {OLD}", exact=True).click()
    settle(page)

    box = page.get_by_label("Text", exact=True)
    box.fill(NEW)
    box.press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Save text").click()
    wait_for(lambda: repo.get(Insight, "ins-1").text == NEW)
    settle(page)
    assert NEW in _shown(page)

    restore = page.get_by_label("Restore version #")
    restore.fill("0")
    restore.press("Enter")
    settle(page)
    page.get_by_role("button", name="Restore this version").click()
    wait_for(lambda: repo.get(Insight, "ins-1").text == OLD)
    settle(page)
    shown = _shown(page)
    assert OLD[:60] in shown and NEW not in shown
    assert page.get_by_label("Text", exact=True).input_value() == OLD

    page.get_by_role("button", name="Promote (+1)").click()
    wait_for(lambda: repo.get(Insight, "ins-1").importance == 3)
    settle(page)
    assert _shown(page) == f"[active, importance 3] {OLD}"
