"""Real-browser tests of Trajectories: correct in place, the rubric, and state kept in the address bar.

Chromium against `streamlit run app.py` on a seeded workspace: a correction made in the form reaches
the next SFT export, a bad one is refused with the argument named, an error category is ticked with
Shift+1, a reload keeps the filters and the open run, and the page shows the expected call beside the
agent's (screenshot screenshots/trajectories-reference.png).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentlearn import datasets, graders, users
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import open_repository
from storage.records import Correction, Label, Suite, Task, ToolCall, Trajectory
from tests.browser.test_browser import CHROMIUM, PASSWORD, SHOTS, open_page, settle, sign_in_if_asked
from tests.seed import SUITE, admin_of, seed_workspace

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]
GUIDE = "## Passwords\nA reset needs the **username** and the channel the person asked for."


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("correct-home")
    repo = open_repository(str(home / "store"))
    seed_workspace(repo, hostile=False)
    repo.update(Suite, SUITE, lambda s: s.model_copy(update={"guidelines": GUIDE}))
    task = repo.get(Task, f"{SUITE}:t2")
    call = ToolCall(name="reset_password", arguments={"username": "bnovak", "delivery": "email", "reason": "locked"})
    verdict = graders.grade("", call, task.expected, task.tools)
    repo.put(Trajectory(id="trdiff", task_id=task.id, suite=SUITE, split="train", output=json.dumps(call.model_dump()),
                        tool_call=call, verdict=verdict, model="SmolLM2-135M-Instruct"))
    for name, role in {"alice": "admin", "carol": "annotator"}.items():
        users.add_user(repo, name, role, PASSWORD, who=admin_of(repo))
    return home


def _open_run(page) -> str:
    """The id of the run the page shows."""
    text = page.get_by_text(re.compile(r"^trajectory \S+ · suite")).first.inner_text()
    return text.split()[1]


def _choose(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def test_a_correction_made_in_the_form_is_in_the_next_sft_export(server, home, page):
    repo = open_repository(str(home / "store"))
    open_page(page, server, "trajectories", annotator="carol", trajectory="tr0bad")
    assert _open_run(page) == "tr0bad"
    page.get_by_text("Correct the agent's call").click()
    settle(page)
    _choose(page, "Tool", "reset_password")
    page.get_by_label("username (required)").fill("akhan")
    page.get_by_label("delivery").fill("sms")
    page.get_by_role("button", name="Save correction").click()
    settle(page)
    fix = repo.find(Correction, trajectory_id="tr0bad")
    assert [(c.author, c.call.arguments) for c in fix] == [("carol", {"username": "akhan", "delivery": "sms"})]
    page.get_by_text("Corrections of this run (1, newest first)").wait_for(timeout=20_000)

    # The JSON mode refuses a call that breaks the schema and names the argument; nothing more is stored.
    page.get_by_text("JSON", exact=True).click()
    settle(page)
    box = page.get_by_label(re.compile("The call as JSON"))
    box.fill('{"name": "reset_password", "arguments": {"delivery": "sms"}}')
    page.get_by_role("button", name="Save correction").click()
    settle(page)
    page.get_by_text("Not saved. argument 'username' is required").wait_for(timeout=20_000)
    assert len(repo.find(Correction, trajectory_id="tr0bad")) == 1

    ws = open_workspace(Settings(home=home))
    record = datasets.export(ws, "sft", SUITE)
    rows = [json.loads(line) for line in open(record.path, encoding="utf-8")]
    answers = [r["messages"][-1]["content"] for r in rows if "akhan" in r["messages"][-2]["content"]]
    assert len(answers) == 1 and '"delivery": "sms"' in answers[0]  # the seed's reference said email
    assert record.correction_ids == [fix[0].id]


def test_a_reload_keeps_the_filters_and_the_open_run(server, page):
    open_page(page, server, "trajectories", annotator="alice")
    page.get_by_text("Filters and search").click()
    search = page.get_by_label("Search text")
    search.fill("password")
    search.press("Enter")
    settle(page)
    _choose(page, "Label status", "any")
    page.get_by_role("heading", name="Trajectories").click()  # out of the text box, so letter keys act
    page.keyboard.press("k")
    settle(page)
    shown = _open_run(page)
    assert "f_search=password" in page.url and f"trajectory={shown}" in page.url
    assert page.get_by_text(re.compile("search hits: .*»password«")).count() or page.get_by_text(
        re.compile("search hits: none")).count()
    queue_line = page.get_by_text(re.compile(r"^Queue:")).first.inner_text()

    page.reload()
    settle(page)
    sign_in_if_asked(page, "alice")
    page.get_by_role("heading", name="Trajectories").wait_for(timeout=30_000)
    settle(page)
    assert _open_run(page) == shown
    assert page.get_by_text(re.compile(r"^Queue:")).first.inner_text() == queue_line
    page.get_by_text("Filters and search").click()
    settle(page)
    assert page.get_by_label("Search text").input_value() == "password"

    # Leaving the page and coming back keeps them too.
    page.get_by_role("link", name="Overview").first.click()
    settle(page)
    page.get_by_role("link", name="Trajectories").first.click()
    settle(page)
    assert page.get_by_text(re.compile(r"^Queue:")).first.inner_text() == queue_line


def test_rubric_keys_reference_and_the_next_run_at_the_top(server, home, page):
    repo = open_repository(str(home / "store"))
    open_page(page, server, "trajectories", annotator="alice", trajectory="trdiff")
    assert _open_run(page) == "trdiff"
    page.get_by_text("Right tool; 1 of 3 arguments right").wait_for(timeout=20_000)
    page.get_by_text("A reset needs the").wait_for(timeout=20_000)  # the guidelines in the sidebar
    page.keyboard.press("Shift+3")  # third category: missing argument
    page.get_by_text("categories: missing argument").wait_for(timeout=20_000)
    page.keyboard.press("Shift+2")
    page.get_by_text("categories: missing argument, wrong argument").wait_for(timeout=20_000)
    assert page.get_by_text("verdict: fail").count()
    settle(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "trajectories-reference.png"), full_page=True)

    main = page.locator('[data-testid="stMain"]')
    page.get_by_role("button", name="Submit and next").scroll_into_view_if_needed()
    main.evaluate("el => el.scrollTo({top: el.scrollHeight})")  # far down, where a long run leaves a person
    assert main.evaluate("el => el.scrollTop") > 0
    page.get_by_role("button", name="Submit and next").click()  # with the mouse
    settle(page)
    label = repo.find(Label, annotator="alice", trajectory_id="trdiff")
    assert [(lab.verdict, lab.categories) for lab in label] == [("fail", ["missing argument", "wrong argument"])]
    assert _open_run(page) != "trdiff"
    assert main.evaluate("el => el.scrollTop") == 0
