"""Real browser on the Training page's "Suite's model" section: the promoted model, the stages and the
gate's decision are shown; Roll back and Use change the suite's model in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlearn import users
from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.training import improve
from agentlearn.workspace import open_workspace
from storage.records import Adapter, EvalRun, Suite
from tests.browser.test_browser import (
    CHROMIUM,
    PASSWORD,
    SHOTS,
    Server,
    no_exception,
    open_page,
    settle,
    wait_for,
)
from tests.seed import HOSTILE, SUITE, admin_of, seed_workspace

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs `apt-get install -y chromium`")]


def _improved(ws) -> str:
    """A finished improvement whose SFT adapter (named with hostile text) passed the gate; returns its id."""

    def heldout(names: list[int], adapter_id: str) -> EvalRun:
        results = {f"t{i}": {"name": float(v), "call": float(v), "exact": float(v), "args": 1.0 if v else -1.0}
                   for i, v in enumerate(names)}
        return ws.repo.put(EvalRun(suite=SUITE, split="heldout", method="none", adapter=adapter_id, n=len(names),
                                   name_accuracy=sum(names) / len(names), call_accuracy=0.0, results=results))

    def sft(ctx):
        folder = ws.settings.adapters_dir / "sft"
        folder.mkdir(parents=True, exist_ok=True)
        made = ws.repo.put(Adapter(name=f"sft {HOSTILE}", path=str(folder), base_model="m", method="sft"))
        return {"adapter_id": made.id, "job_id": "job-1", "steps": 18}

    def evaluate(ctx):
        made = ctx.output("sft")["adapter_id"]
        return {"current": "", "current_eval": heldout([0] * 12, "").id,
                "candidates": {"sft": {"adapter_id": made, "eval_id": heldout([1] * 10 + [0] * 2, made).id,
                                       "name_accuracy": 10 / 12}}}

    stages = {"collect": lambda c: {}, "export": lambda c: {}, "check": lambda c: {}, "sft": sft,
              "evaluate": evaluate}
    return improve.run(ws, SUITE, stages=stages, who=admin_of(ws.repo)).promoted


@pytest.fixture(scope="module")
def improved_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("improve-home")
    ws = open_workspace(Settings(home=home), encoder=hash_encode)
    seed_workspace(ws.repo)
    users.add_user(ws.repo, "alice", "admin", PASSWORD, who=admin_of(ws.repo))
    return home, _improved(ws)


@pytest.fixture(scope="module")
def improve_server(improved_home):
    srv = Server(improved_home[0])
    srv.start()
    yield srv
    srv.stop()


def test_the_suites_model_is_shown_and_rolled_back_in_a_browser(improve_server, improved_home, page):  # noqa: F811
    home, promoted = improved_home
    assert promoted
    open_page(page, improve_server, "training")
    page.get_by_text(f"In use: sft {HOSTILE} ({promoted})", exact=True).wait_for(timeout=30_000)
    assert page.evaluate("window.__pwned") is None  # the adapter's name is text, never markup
    page.get_by_text("Latest improvement", exact=False).first.wait_for(timeout=10_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "training-improve.png"), full_page=True)
    page.get_by_role("button", name="Roll back").click()
    page.get_by_text("In use: the base model", exact=True).wait_for(timeout=30_000)
    settle(page)
    no_exception(page)
    ws = open_workspace(Settings(home=home), encoder=hash_encode)
    assert wait_for(lambda: ws.repo.get(Suite, SUITE).adapter == "")
    assert page.evaluate("window.__pwned") is None
