"""AppTest of who acts in the dashboard: the sign-in form, roles on the pages, the loopback rule, no
workspace box, and data on the Training page shown as text only."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from agentlearn import accounts, users
from pages import _ui
from storage.records import InsightProposal, Job, Label, Process
from tests import test_pages
from tests.seed import SUITE, admin_of
from tests.test_pages import PASSWORD, ROOT, TIMEOUT, click, markdown_texts, plain_texts

# The page tests' fixtures: a seeded workspace, no accounts (local user "alice"), the app run as a server runs it.
seeded, raw_seeded = test_pages.seeded, test_pages.raw_seeded
EVIL = "![x](http://evil.example/x.png) [click](http://evil.example) **bold**"


@pytest.fixture(autouse=True)
def _fresh_throttle(monkeypatch):
    monkeypatch.setattr(accounts, "THROTTLE", accounts.LoginThrottle(clock=lambda: 0.0))  # time stands still


@pytest.fixture
def team(seeded):
    """The seeded workspace with one account per role."""
    for name, role in (("root", "admin"), ("rita", "reviewer"), ("ann", "annotator")):
        users.add_user(seeded.repo, name, role, PASSWORD, who=admin_of(seeded.repo))
    return seeded


def _app(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_with_accounts_nothing_shows_before_signing_in_and_labels_carry_the_account(team):
    at = _app(annotator="mallory", trajectory="tr4ok")  # the old ?annotator= link is ignored
    assert [t.value for t in at.title] == ["agentlearn"] and not at.sidebar.text
    _sign_in(at, "ann", "not the password")
    assert any("wrong name or password" in e.value for e in at.error)
    _sign_in(at, "ANN", PASSWORD)
    assert "Signed in: ann (annotator)" in [t.value for t in at.sidebar.text]
    at.switch_page("pages/trajectories.py").run()
    assert at.session_state["traj_current"] == "tr4ok"
    click(at, "btn_fail")
    click(at, "btn_submit")
    assert [lb.annotator for lb in team.repo.find(Label, trajectory_id="tr4ok")] == ["ann"]
    click(at, "sign_out")
    assert [t.value for t in at.title] == ["agentlearn"]  # back to the form


def test_no_workspace_box_and_no_name_box(seeded):
    at = _app()
    assert not [t for t in at.sidebar.text_input]
    assert "Local mode: alice (admin)" in [t.value for t in at.sidebar.text]


def test_failed_sign_ins_are_rate_limited(team):
    at = _app()
    for _ in range(accounts.LoginThrottle.FREE):
        _sign_in(at, "rita", "guess guess")
    _sign_in(at, "rita", PASSWORD)
    assert any("too many failed sign" in e.value for e in at.error), [e.value for e in at.error]  # sign\\-ins
    assert not at.sidebar.text


def test_an_annotator_cannot_reach_training_users_or_reviews(team):
    at = _app()
    _sign_in(at, "ann", PASSWORD)
    for page in ("pages/training.py", "pages/users.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered for ann
            at.switch_page(page)
    at.switch_page("pages/insights.py").run()
    assert at.button(key="ins_approve").disabled and at.button(key="ins_reject").disabled
    assert at.button(key="ins_propose").disabled
    assert team.repo.get(InsightProposal, "prop-add").status == "pending"


def test_a_reviewer_approves_under_their_own_name_but_cannot_train(team):
    at = _app()
    _sign_in(at, "rita", PASSWORD)
    at.switch_page("pages/insights.py").run()
    click(at, "ins_approve")
    assert team.repo.get(InsightProposal, "prop-add").reviewer == "rita"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/training.py")


def test_an_admin_manages_users_from_the_users_page(team):
    at = _app()
    _sign_in(at, "root", PASSWORD)
    at.switch_page("pages/users.py").run()
    assert at.title[0].value == "Users"
    at.text_input(key="usr_name").input("Ｎed")
    at.selectbox(key="usr_role").select("reviewer")
    at.text_input(key="usr_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Add").click().run()
    assert accounts.find(team.repo, "ned").role == "reviewer"
    at.text_input(key="usr_name").input("NED")
    at.text_input(key="usr_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Add").click().run()
    assert any("is taken" in e.value for e in at.error)
    at.selectbox(key="usr_pick").select("ann").run()
    at.selectbox(key="usr_new_role").select("reviewer").run()
    click(at, "usr_set_role")
    assert accounts.find(team.repo, "ann").role == "reviewer"


@pytest.fixture
def network_address():
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", before)


def test_without_accounts_a_network_address_serves_no_page(seeded, network_address):
    at = _app()
    assert any("Add an account first" in e.value for e in at.error)
    assert not at.title and not at.sidebar.text


def test_with_accounts_a_network_address_asks_to_sign_in(team, network_address):
    at = _app()
    assert [t.value for t in at.title] == ["agentlearn"] and not at.error


def test_training_page_shows_suite_names_errors_and_logs_as_text(seeded, tmp_path):
    outside = tmp_path / "outside.log"
    outside.write_text("secret line")
    # The job's process record names a log outside the workspace (a record from elsewhere): not read.
    process = seeded.repo.put(Process(kind="train", status="failed", error=EVIL, log_path=str(outside)))
    seeded.repo.put(Job(method="sft", config={"suite": EVIL}, max_steps=2, process_id=process.id))
    at = _app()
    at.switch_page("pages/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("evil.example" in m and "\\" not in m for m in markdown_texts(at))
    assert any(EVIL in t for t in plain_texts(at))
    assert any("outside the workspace" in e.value for e in at.error)
    assert not any("secret line" in t for t in plain_texts(at))


def test_the_served_address_is_loopback_by_default():
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in text
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text()
    assert Path(ROOT / "manage").read_text().count("--server.address") == 1


@pytest.mark.parametrize("page", ["pages/suites.py", "pages/run.py", "pages/evaluate.py", "pages/trajectories.py",
                                  "pages/users.py"])
def test_a_page_run_without_app_shows_nothing_of_the_store(raw_seeded, page):
    """Streamlit's legacy pages/ mode runs a page file with no app.py (no gate): it must draw nothing."""
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT).run()
    drawn = repr(at._tree)
    assert not at.title and SUITE not in drawn and "alice" not in drawn, drawn[:400]


def test_a_password_change_or_sign_out_ends_an_open_tab(team):
    at = _app()
    _sign_in(at, "rita", PASSWORD)
    assert "Signed in: rita (reviewer)" in [t.value for t in at.sidebar.text]
    token = at.session_state[_ui.SESSION_KEY]
    users.set_password(team.repo, "rita", "a new long passphrase", who=admin_of(team.repo))  # e.g. by an admin, elsewhere
    at.run()
    assert [t.value for t in at.title] == ["agentlearn"] and not at.sidebar.text  # the form again
    _sign_in(at, "rita", "a new long passphrase")
    assert at.session_state[_ui.SESSION_KEY] != token
    click(at, "sign_out")
    assert accounts.session_identity(team.repo, token) is None and not sessions_of(team, "rita")


def sessions_of(ws, account_id: str) -> list:
    from storage.records import SignIn

    return ws.repo.find(SignIn, account=account_id)
