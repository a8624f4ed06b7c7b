"""Real-browser tests of team labeling: overlap, claims, the reviewers' queue, undo, who is labeling.

Each test gets its own seeded workspace and server (claims expire after CLAIM_SECONDS there), and every
person signs in through the real form in a browser context of their own.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agentlearn import users, verdicts
from agentlearn.feedback import queue
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import open_repository
from storage.records import Label, Process, Resolution, Trajectory, now
from tests.browser.test_browser import (
    CHROMIUM,
    PASSWORD,
    SHOTS,
    Server,
    key,
    no_exception,
    open_page,
    settle,
    wait_for,
)
from tests.seed import SUITE, admin_of, seed_workspace

CLAIM_SECONDS = 8  # for the expiry test; the other tests keep the default (10 minutes)
TEAM = {"alice": "admin", "carol": "annotator", "erin": "annotator", "dave": "reviewer"}
SHOWN = re.compile(r"^trajectory (\w+) · suite")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]


@pytest.fixture
def team_home(tmp_path) -> Path:
    home = tmp_path / "team-home"
    repo = open_repository(str(home / "store"))
    seed_workspace(repo)
    for name, role in TEAM.items():
        users.add_user(repo, name, role, PASSWORD, who=admin_of(repo))
    queue.set_overlap(open_workspace(Settings(home=home)), SUITE, 2, who=admin_of(repo))
    return home


@pytest.fixture
def team_server(team_home):
    srv = Server(team_home)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def quick_claims_server(team_home):
    srv = Server(team_home, env={"AGENTLEARN_CLAIM_SECONDS": str(CLAIM_SECONDS)})
    srv.start()
    yield srv
    srv.stop()


def person(browser, server: Server, name: str, path: str = "trajectories", **query):  # noqa: F811
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    open_page(page, server, path, annotator=name, **query)
    return page


def shown(page) -> str | None:
    """The trajectory the page shows, or None when the queue is empty."""
    found = page.get_by_text(SHOWN).or_(page.get_by_text("Nothing to label")).first
    found.wait_for(timeout=30_000)
    match = SHOWN.match(found.inner_text())
    return match.group(1) if match else None


def label_and_next(page, verdict_key: str = "s") -> str | None:
    """Press S (or F) then N; returns the trajectory shown next (None: nothing left)."""
    before = shown(page)
    key(page, verdict_key, "verdict: " + ("success" if verdict_key == "s" else "fail"))
    page.keyboard.press("n")
    wait_for(lambda: shown(page) != before or page.get_by_text("Nothing to label").count(), timeout=30)
    settle(page)
    return shown(page)


def test_two_annotators_with_overlap_two_each_get_every_item_once(team_server, team_home, browser):  # noqa: F811
    repo = open_repository(str(team_home / "store"))
    suite_ids = {t.id for t in repo.all(Trajectory) if t.suite == SUITE}
    pages = {name: person(browser, team_server, name) for name in ("carol", "erin")}
    current = {name: shown(p) for name, p in pages.items()}
    assert current["carol"] != current["erin"]  # carol's open item is claimed: erin was given another
    seen: dict[str, list[str]] = {name: [current[name]] for name in pages}
    for _ in range(2 * len(suite_ids) + 4):
        for name, p in pages.items():
            if current[name] is None:
                key(p, "k")  # look again: the item someone else held may be free now
                current[name] = shown(p)
                if current[name] is not None:
                    seen[name].append(current[name])
                continue
            current[name] = label_and_next(p)
            if current[name] is not None:
                seen[name].append(current[name])
        if all(c is None for c in current.values()):
            break
    for name, items in seen.items():
        assert len(items) == len(set(items)), f"{name} was shown an item twice: {items}"
        mine = [lb.trajectory_id for lb in repo.find(Label, annotator=name)]
        assert len(mine) == len(set(mine)) and set(mine) == set(items) - {None}
    # Everyone's labels together: each item of the suite has two people, tr0ok had bob's already.
    for tid in suite_ids:
        people = {lb.annotator for lb in repo.find(Label, trajectory_id=tid)}
        assert len(people) == 2, (tid, people)
    for p in pages.values():
        no_exception(p)
        p.context.close()

    # The team view: both people's throughput, time per item and agreement.
    lead = person(browser, team_server, "alice", path="")
    lead.get_by_role("heading", name="Team").first.wait_for(timeout=20_000)
    time.sleep(1.0)  # charts draw after the run ends
    team = lead.locator('[data-testid="stDataFrame"]').last
    assert team.is_visible()
    lead.get_by_role("heading", name="Team").first.scroll_into_view_if_needed()
    SHOTS.mkdir(exist_ok=True)
    lead.screenshot(path=str(SHOTS / "overview-team.png"), full_page=True)
    no_exception(lead)
    lead.context.close()


def test_a_claim_skips_the_item_for_the_other_person_until_it_expires(quick_claims_server, browser):  # noqa: F811
    erin = person(browser, quick_claims_server, "erin", path="")  # signed in and waiting on Overview
    carol = person(browser, quick_claims_server, "carol")
    held, opened = shown(carol), time.time()
    erin.get_by_role("link", name="Trajectories").click()
    erin.get_by_role("heading", name="Trajectories").first.wait_for(timeout=20_000)
    settle(erin)
    other = shown(erin)
    assert time.time() - opened < CLAIM_SECONDS, "too slow to see the claim: raise CLAIM_SECONDS"
    assert other is not None and other != held  # skipped while carol has it open
    time.sleep(max(0.0, opened + CLAIM_SECONDS + 1 - time.time()))  # carol does nothing: her claim runs out
    key(erin, "p")  # the queue is read again: carol's item is back, just before erin's
    assert shown(erin) == held
    for p in (carol, erin):
        no_exception(p)
        p.context.close()


def test_a_disagreement_reaches_the_reviewer_and_the_ruling_is_the_learning_verdict(team_server, team_home,
                                                                                    browser):  # noqa: F811
    repo = open_repository(str(team_home / "store"))
    for name, verdict_key, comment in (("carol", "s", "right tool and title"),
                                       ("erin", "f", "the title should name floor 2")):
        p = person(browser, team_server, name, trajectory="tr1ok")
        assert shown(p) == "tr1ok"
        p.get_by_label("Comment").fill(comment)
        p.get_by_role("heading", name="Trajectories").first.click()  # out of the text box: keys count again
        settle(p)
        label_and_next(p, verdict_key)
        p.context.close()
    stored = wait_for(lambda: len(repo.find(Label, trajectory_id="tr1ok")) == 2 and repo.find(Label, trajectory_id="tr1ok"))
    assert {lb.comment for lb in stored} == {"right tool and title", "the title should name floor 2"}
    ws = open_workspace(Settings(home=team_home))
    traj = repo.get(Trajectory, "tr1ok")
    assert verdicts.judge(ws).succeeded(traj) is False  # a tie is a fail until a reviewer rules

    carol = person(browser, team_server, "carol", path="")
    assert "Disagreements" not in carol.locator('[data-testid="stSidebarNav"]').inner_text()  # reviewers only
    carol.context.close()

    dave = person(browser, team_server, "dave", path="review")
    dave.get_by_text("1 to resolve").first.wait_for(timeout=20_000)
    table = dave.locator('[data-testid="stDataFrame"]').nth(1)
    table.wait_for(timeout=20_000)
    dave.get_by_text("trajectory tr1ok · suite", exact=False).first.wait_for(timeout=20_000)
    SHOTS.mkdir(exist_ok=True)
    dave.screenshot(path=str(SHOTS / "disagreements.png"), full_page=True)
    dave.get_by_label("Note (why)").fill("the ticket id matches the request")
    dave.get_by_label("Note (why)").press("Tab")
    settle(dave)
    key(dave, "s", "Nothing to resolve")
    ruling = wait_for(lambda: repo.find(Resolution, trajectory_id="tr1ok"))[0]
    assert (ruling.reviewer, ruling.verdict, ruling.note) == ("dave", "success", "the ticket id matches the request")
    assert verdicts.judge(ws).succeeded(traj) is True
    no_exception(dave)
    dave.context.close()


def test_undo_removes_the_last_label_and_reopens_the_item(team_server, team_home, browser):  # noqa: F811
    repo = open_repository(str(team_home / "store"))
    carol = person(browser, team_server, "carol", trajectory="tr2ok")
    assert shown(carol) == "tr2ok"
    after = label_and_next(carol, "f")
    assert after != "tr2ok"
    wait_for(lambda: repo.find(Label, annotator="carol", trajectory_id="tr2ok"))
    key(carol, "u", "Undone")
    wait_for(lambda: not repo.find(Label, annotator="carol", trajectory_id="tr2ok"))
    assert shown(carol) == "tr2ok"
    carol.get_by_text("verdict: fail").first.wait_for(timeout=20_000)  # the undone verdict as the draft
    # Back in her queue: submitting again stores one label, not two.
    label_and_next(carol, "s")
    labels = wait_for(lambda: repo.find(Label, annotator="carol", trajectory_id="tr2ok"))
    assert [lb.verdict for lb in labels] == ["success"]
    no_exception(carol)
    carol.context.close()


def test_l_on_the_run_page_keeps_who_is_labeling_and_the_first_key_after_signing_in_counts(team_server, team_home,
                                                                                           browser):  # noqa: F811
    repo = open_repository(str(team_home / "store"))
    repo.put(Process(kind="run", args=["run", "--suite", SUITE, "--split", "train"], status="succeeded",
                     created=now() - timedelta(days=4), finished=now()))
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    page.goto(f"{team_server.url}/trajectories")
    settle(page)
    # Sign in with the keyboard only, then press a shortcut at once: it must not land in a text box.
    page.get_by_label("Name").click()
    page.keyboard.type("dave")  # a reviewer: the Run page is theirs
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_text("Signed in: dave").first.wait_for(timeout=20_000)
    shown(page)
    # The signed-in page draws in more than one run on a loaded machine; a key pressed between them can
    # land on the run being replaced. Wait as a person would for the page to be still, then press once.
    settle(page, quiet=2.0)
    key(page, "s", "verdict: success")
    assert page.get_by_role("button", name="Sign in").count() == 0
    page.get_by_role("link", name="Run").click()
    page.get_by_role("heading", name="Run").first.wait_for(timeout=20_000)
    settle(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Run on").click()
    page.get_by_role("option", name="a whole split").click()
    settle(page)
    page.get_by_text("trajectories stored by the last run").first.wait_for(timeout=20_000)
    page.get_by_role("heading", name="Run").first.click()  # out of the select box, as a person clicks away
    key(page, "l")
    page.get_by_role("heading", name="Trajectories").first.wait_for(timeout=20_000)
    settle(page)
    assert page.get_by_text("Signed in: dave").count() >= 1
    tid = shown(page)
    key(page, "s", "verdict: success")
    page.keyboard.press("n")
    label = wait_for(lambda: repo.find(Label, trajectory_id=tid, annotator="dave"))[0]
    assert label.verdict == "success"
    no_exception(page)
    page.context.close()
