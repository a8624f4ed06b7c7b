"""The disk fills up, turns read-only or the database goes away while the dashboard is open.

The page shows one plain line naming what failed and where (no traceback), and what the person entered
is still there: once the store is back, pressing the same button stores it. Real failures: a small
file system of the test's own (full, remounted read-only: a chmod does not stop root) and a real
PostgreSQL server that is stopped and started again.
"""

from __future__ import annotations

import time

import pytest

from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from pages import _ui
from storage import open_repository
from storage.records import Insight, InsightProposal, Label, Preference, Suite
from tests.conftest import PostgresServer, fake_chat_factory, fill, remount
from tests.seed import SUITE, seed_workspace
from tests.test_pages import click, markdown_texts, open_page, plain_texts

COMMENT = "The printer is on floor 2, not 3."


@pytest.fixture
def app_env(monkeypatch, _navigation_like_a_server):
    """The app's settings for these tests (local user alice, fake models); yields after clearing caches."""
    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", fake_chat_factory())
    _ui.clear()
    yield monkeypatch
    _ui.clear()


@pytest.fixture
def disk_ws(small_disk, app_env):
    """A seeded workspace whose whole home is on the small disk."""
    home = small_disk / "home"
    app_env.setenv("AGENTLEARN_HOME", str(home))
    ws = open_workspace(Settings(home=home), encoder=hash_encode, chat_factory=fake_chat_factory())
    seed_workspace(ws.repo)
    return ws


def _labeling(at) -> str:
    """Choose fail, score 2 and type a comment on the open item; returns its id."""
    first = at.session_state["traj_current"]
    click(at, "btn_fail")
    click(at, "btn_score_2")
    at.text_area(key=f"comment_{first}").input(COMMENT).run()
    return first


def _one_line(at, *words: str) -> str:
    """The page's one error line (as the person reads it); it names `words`; no traceback anywhere."""
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    shown = errors[0].replace("\\", "").replace(_ui.WORD_JOINER, "")  # plain() escapes Markdown's specials
    assert all(w in shown for w in words), shown
    assert not any("Traceback" in t or "File \"" in t for t in markdown_texts(at) + plain_texts(at))
    return shown


@pytest.mark.parametrize("failure", ["read-only", "full"])
def test_a_label_the_disk_refuses_is_one_line_and_its_comment_waits_for_the_retry(disk_ws, small_disk, failure):
    at = open_page("pages/trajectories.py")
    first = _labeling(at)
    filler = None
    if failure == "read-only":
        remount(small_disk, "ro")
    else:
        filler = fill(small_disk)
    at.button(key="btn_submit").click().run()
    line = _one_line(at, f"cannot write {disk_ws.settings.store_dir}",
                     "Read-only file system" if failure == "read-only" else "No space left on device")
    assert line.endswith("nothing was changed")
    assert disk_ws.repo.find(Label, trajectory_id=first) == []
    # The same item, the comment in its box, the verdict and score still chosen.
    assert at.session_state["traj_current"] == first
    assert at.text_area(key=f"comment_{first}").value == COMMENT
    assert any(t.value.startswith("verdict: fail   score: 2") for t in at.text)

    if failure == "read-only":
        remount(small_disk, "rw")
    else:
        filler.unlink()
    click(at, "btn_submit")
    (label,) = disk_ws.repo.find(Label, trajectory_id=first, annotator="alice")
    assert (label.verdict, label.score, label.comment) == ("fail", 2, COMMENT)
    assert not at.error


def test_a_claim_that_cannot_be_renewed_leaves_the_item_open_for_the_retry(disk_ws, small_disk, app_env):
    """Every run renews the open item's claim (a write) before the label box is drawn: a disk that refuses
    it must not take the box, the verdict or the item away from the person."""
    app_env.setenv("AGENTLEARN_CLAIM_SECONDS", "1")  # renewed on every run
    _ui.clear()
    at = open_page("pages/trajectories.py")
    first = _labeling(at)
    remount(small_disk, "ro")
    time.sleep(0.5)  # the claim is due for renewal (after a quarter of its second)
    at.button(key="btn_submit").click().run()
    line = _one_line(at, f"cannot write {disk_ws.settings.store_dir / 'labels'}", "Read-only file system")
    assert "claims" not in line
    assert at.text_area(key=f"comment_{first}").value == COMMENT
    assert any(t.value.startswith("verdict: fail   score: 2") for t in at.text)
    remount(small_disk, "rw")
    click(at, "btn_submit")
    (label,) = disk_ws.repo.find(Label, trajectory_id=first, annotator="alice")
    assert (label.verdict, label.score, label.comment) == ("fail", 2, COMMENT)


def test_a_write_in_the_page_itself_stops_there_in_one_line_and_keeps_the_text(disk_ws, small_disk):
    """Not a callback: the button's write runs in the page body (propose a playbook rule)."""
    at = open_page("pages/trajectories.py")
    first = _labeling(at)
    rule = f"rule_traj_{first}"
    at.text_area(key=rule).input("Ask which floor before sending a technician.").run()
    remount(small_disk, "ro")
    at.button(key=f"propose_traj_{first}").click().run()
    _one_line(at, f"cannot write {disk_ws.settings.store_dir}", "Read-only file system")
    assert at.text_area(key=rule).value == "Ask which floor before sending a technician."
    remount(small_disk, "rw")
    click(at, f"propose_traj_{first}")
    assert [p.text for p in disk_ws.repo.find(InsightProposal, source="person")] == [
        "Ask which floor before sending a technician."]


def test_preferences_insights_and_suites_keep_what_was_entered_on_a_read_only_disk(disk_ws, small_disk):
    fixed = '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'
    where = f"cannot write {disk_ws.settings.store_dir}"
    pref = open_page("pages/preferences.py")
    pair = pref.session_state["pair"]
    click(pref, "pref_e")
    pref.text_area(key="pref_fix_text").input(fixed).run()
    insights = open_page("pages/insights.py")
    insights.text_area(key="ins_edit_prop-add").input("Use create_ticket for any broken device.").run()
    suites = open_page("pages/suites.py")
    suites.selectbox(key="su_suite").set_value(SUITE).run()
    suites.text_input(key=f"su_description_{SUITE}").set_value("Accounts and tickets")
    remount(small_disk, "ro")

    pref.button(key="pref_x").click().run()  # both bad, with the edit: a callback
    _one_line(pref, where, "Read-only file system")
    assert pref.session_state["pair"] == pair and pref.text_area(key="pref_fix_text").value == fixed
    insights.button(key="ins_edit").click().run()  # approve my edit: a callback
    _one_line(insights, where, "Read-only file system")
    assert insights.text_area(key="ins_edit_prop-add").value == "Use create_ticket for any broken device."
    suites.button(key="su_save_card").click().run()  # in the page body
    _one_line(suites, where, "Read-only file system")
    assert suites.text_input(key=f"su_description_{SUITE}").value == "Accounts and tickets"
    assert disk_ws.repo.find(Preference) == [] and disk_ws.repo.get(InsightProposal, "prop-add").status == "pending"

    remount(small_disk, "rw")
    click(pref, "pref_x")
    click(insights, "ins_edit")
    click(suites, "su_save_card")
    (p,) = disk_ws.repo.find(Preference, annotator="alice")
    assert (p.choice, p.corrected) == ("both_bad", fixed)
    assert "Use create_ticket for any broken device." in [i.text for i in disk_ws.repo.find(Insight, suite=SUITE)]
    assert disk_ws.repo.get(Suite, SUITE).description == "Accounts and tickets"


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own: it is stopped and started again."""
    server = PostgresServer()
    yield server
    server.remove()


def test_a_database_that_goes_away_is_one_line_naming_the_host_and_the_label_waits(own_server, app_env):
    app_env.setenv("AGENTLEARN_DATABASE_URL", own_server.url)
    repo = open_repository("", own_server.url)
    seed_workspace(repo)
    at = open_page("pages/trajectories.py")
    first = _labeling(at)
    own_server.stop()
    at.button(key="btn_submit").click().run()
    _one_line(at, f"PostgreSQL at postgresql://postgres@127.0.0.1:{own_server.port}/postgres")
    assert at.session_state[f"comment_{first}"] == COMMENT  # kept, though the page stopped before its box

    own_server.start()
    at.run()
    assert not at.error and at.text_area(key=f"comment_{first}").value == COMMENT
    click(at, "btn_submit")
    (label,) = repo.find(Label, trajectory_id=first, annotator="alice")
    assert (label.verdict, label.score, label.comment) == ("fail", 2, COMMENT)
