"""Real-browser test of step-level labeling: an episode of four steps on Trajectories, its observations
(a long one folded), a step flagged with the keys, a step's call corrected in place and replayed from.

Chromium against `streamlit run app.py`; screenshots go to /tmp/agentlearn-episode-*.png for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentlearn import agent, users
from storage import open_repository
from storage.records import Correction, Label, Process
from tests.browser.test_browser import CHROMIUM, PASSWORD, key, no_exception, open_page, settle, wait_for
from tests.episode_seed import TURNS, seed_episodes
from tests.seed import admin_of, seed_workspace

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]
SHOTS = Path("/tmp")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("episode-home")
    repo = open_repository(str(home / "store"))
    seed_workspace(repo, hostile=False)
    seed_episodes(repo)
    users.add_user(repo, "alice", "admin", PASSWORD, who=admin_of(repo))
    return home


def test_an_episode_is_labeled_step_by_step(server, home, page):
    repo = open_repository(str(home / "store"))
    page.set_viewport_size({"width": 1500, "height": 3400})  # the whole episode in one screenshot
    open_page(page, server, "trajectories", annotator="alice", trajectory=TURNS)
    page.get_by_text("source traces").first.wait_for(timeout=20_000)
    page.get_by_text("Also open a ticket about the printer jam.").first.wait_for(timeout=20_000)
    page.get_by_text('create_ticket(title="printer jam")').wait_for(timeout=20_000)  # turn 2's expected call
    folded = page.get_by_text(re.compile(r"error 1 · 2\.500 s · [\d,]+ characters, folded"))
    assert folded.count() == 1
    assert not page.get_by_text("line of a long listing").first.is_visible()  # folded until opened
    assert page.evaluate("window.__pwned") is None  # the hostile title and answer stayed text
    page.screenshot(path=str(SHOTS / "agentlearn-episode-steps.png"), full_page=True)

    # J moves to step 2, W flags it as the first wrong step (and makes the run a fail).
    key(page, "j", "▶ step 2")
    key(page, "w", "flagged steps: 2")
    assert page.get_by_text("verdict: fail").count()

    # Step 3's call is corrected in its own box.
    key(page, "j", "▶ step 3")
    page.get_by_text("Correct step 3's call").click()
    settle(page)
    page.get_by_label("title (required)").fill("printer jam")
    page.get_by_role("button", name="Save correction").click()
    settle(page)
    (fix,) = wait_for(lambda: repo.find(Correction, trajectory_id=TURNS))
    assert (fix.step, fix.author, fix.call.arguments) == (2, "alice", {"title": "printer jam"})
    replay = page.get_by_role("button", name="Replay from step 3 with the newest correction")
    replay.wait_for(timeout=20_000)
    page.screenshot(path=str(SHOTS / "agentlearn-episode-corrected.png"), full_page=True)

    # Replay from it: a child process; without the agent loop's replay_from it ends saying so.
    replay.click()
    settle(page)
    (process,) = wait_for(lambda: repo.find(Process, kind="replay"))
    assert process.args == ["replay", fix.id] and process.by == "alice"
    ended = wait_for(lambda: (p := repo.get(Process, process.id)).status != "running" and p, timeout=60)
    if not hasattr(agent, "replay_from"):
        assert ended.status == "failed" and "replaying needs agentlearn.agent.replay_from" in ended.error
    # The page watches the process and redraws when it ends (no reload).
    page.get_by_text(re.compile(r"^from step 3 · (failed|succeeded)")).first.wait_for(timeout=30_000)
    settle(page)
    page.screenshot(path=str(SHOTS / "agentlearn-episode-replay.png"), full_page=True)

    # The episode is rated as before: N submits the fail with its flagged step.
    page.get_by_role("heading", name="Trajectories").click()  # out of any text box, so letter keys act
    key(page, "n")
    (label,) = wait_for(lambda: repo.find(Label, annotator="alice", trajectory_id=TURNS))
    assert (label.verdict, label.step_flags) == ("fail", [1])
    no_exception(page)
