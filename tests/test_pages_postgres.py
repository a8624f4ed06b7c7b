"""Every page on a PostgreSQL store: the dashboard a team shares runs on the same Repository interface."""

from __future__ import annotations

import pytest

from agentlearn.embeddings import hash_encode
from pages import _ui
from storage import open_repository
from storage.records import Label
from tests.conftest import fake_chat_factory
from tests.seed import seed_workspace
from tests.test_pages import click, open_page

PAGES = ["pages/overview.py", "pages/trajectories.py", "pages/preferences.py", "pages/insights.py",
         "pages/exemplars.py", "pages/suites.py", "pages/run.py", "pages/evaluate.py", "pages/training.py"]


@pytest.fixture
def pg_repo(pg_url, monkeypatch, _navigation_like_a_server):
    monkeypatch.setenv("AGENTLEARN_DATABASE_URL", pg_url)
    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", fake_chat_factory())
    repo = open_repository("", pg_url)
    seed_workspace(repo)
    _ui.clear()
    yield repo
    _ui.clear()


def test_every_page_renders_on_postgresql_and_a_label_lands_there(pg_repo):
    at = open_page(None)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.title, page
    at = open_page("pages/trajectories.py")
    first = at.session_state["traj_current"]
    click(at, "btn_success")
    click(at, "btn_submit")
    labels = pg_repo.find(Label, trajectory_id=first, annotator="alice")
    assert [label.verdict for label in labels] == ["success"]
