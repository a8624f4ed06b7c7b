"""Views that must not go stale: Preferences pairs per source and in the address, job endings, quiet logs.

Page tests run the app with AppTest on a seeded workspace of real TinyDB files (tests/test_pages.py's
fixtures); the browser side (a job ending while the page is open) is tests/browser/test_fresh_views.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from agentlearn import preferences
from agentlearn.training import jobs, quiet
from pages import _ui
from storage.records import Job, Preference, Trajectory, now
from tests.seed import seed_workspace
from tests.test_pages import click, open_page

ROOT = Path(__file__).resolve().parents[1]
FRESH = ['<tool_call>{"name": "create_ticket", "arguments": {"title": "x"}}</tool_call>', "I am not sure."]


@pytest.fixture
def seeded(ws, monkeypatch, _navigation_like_a_server):
    """The seeded test workspace, no accounts (local user alice), run by the app as a server runs it."""
    from agentlearn.embeddings import hash_encode

    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", ws.chat_factory)
    seed_workspace(ws.repo)
    _ui.clear()
    yield ws
    _ui.clear()


# --- library ---------------------------------------------------------------------------------------


def test_a_pair_key_brings_back_the_same_pair_with_the_same_sides(seeded):
    pair = preferences.sample_stored_pair(seeded, annotator="alice")
    for swapped in (False, True):
        shown = preferences.Pair(pair.task_id, pair.prompt, pair.first, pair.second, swapped)
        again = preferences.pair_from_key(seeded, preferences.pair_key(shown))
        assert (again.left.id, again.right.id, again.swapped) == (shown.left.id, shown.right.id, swapped)


@pytest.mark.parametrize(("key", "says"), [
    ("tr0ok", "is not FIRST.SECOND.SIDE"),
    ("tr0ok.tr0bad.2", "is not FIRST.SECOND.SIDE"),
    ("tr0ok.gone.0", "names trajectory gone, which is not in the store"),
    ("tr0ok.tr1ok.0", "a pair needs two runs of one task"),
    ("tr0ok.tr0ok.1", "two different trajectories"),
])
def test_a_bad_pair_key_says_what_is_wrong(seeded, key, says):
    with pytest.raises(ValueError, match=says):
        preferences.pair_from_key(seeded, key)


def test_ended_since_names_the_jobs_that_ended_after_the_view_was_drawn(ws):
    a = ws.repo.put(Job(method="sft", config={}, status="running", max_steps=2))
    b = ws.repo.put(Job(method="dpo", config={}, status="queued", max_steps=2))
    c = ws.repo.put(Job(method="grpo", config={}, status="failed", max_steps=2, error="old"))
    drawn = jobs.statuses([a, b, c])
    ws.repo.put(a.model_copy(update={"status": "succeeded", "step": 2, "finished": now(), "adapter_id": "ad1",
                                     "metrics": {"train_loss": 1.36}}))
    ws.repo.put(b.model_copy(update={"status": "running"}))
    found = ws.repo.all(Job)
    assert [j.id for j in jobs.ended_since(drawn, found)] == [a.id]
    assert jobs.statuses(found) != drawn  # the view is stale: the page redraws
    line = jobs.outcome(ws.repo.get(Job, a.id))
    assert line.startswith(f"SFT job {a.id} succeeded · step 2/2 · ") and "train loss 1.360 · adapter ad1 saved" in line
    assert jobs.outcome(c).endswith("· old")  # a failure says why


def test_quiet_drops_the_kernel_notice_and_nothing_else(caplog):
    quiet.install()
    quiet.install()  # twice: one filter
    logger = logging.getLogger(quiet.BNB_CPU_LOGGER)
    assert sum(isinstance(f, quiet.DropOptionalKernelNotice) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=quiet.BNB_CPU_LOGGER):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you "
                       "already `pip install kernels`", "No module named 'kernels'")
        logger.warning("some other bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["some other bitsandbytes warning"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet.install()  # filters go in front of "always"
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning,
                      stacklevel=1)
        warnings.warn("another FutureWarning", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another FutureWarning"]


def _import_peft(install: bool) -> str:
    code = ("from agentlearn.training import quiet; quiet.install()\n" if install else "") + "import peft\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_importing_peft_prints_the_kernel_notice_only_without_the_filter():
    from bitsandbytes.functional import has_avx512bf16

    # bitsandbytes looks for the hub kernel, and logs the notice when it is missing, only on CPUs with
    # AVX512-BF16; elsewhere there is no notice to filter (the filter itself is tested above).
    if has_avx512bf16():
        assert "pip install kernels" in _import_peft(install=False)  # what a CPU job log showed
    assert "gemm_4bit" not in _import_peft(install=True)


# --- Preferences page --------------------------------------------------------------------------------


def _shown_pair(at) -> preferences.Pair | None:
    return at.session_state["pair"] if "pair" in at.session_state else None


def test_switching_to_fresh_runs_drops_the_old_pair_and_shows_the_new_one(seeded, make_fake_chat, monkeypatch):
    seeded.chat_factory = make_fake_chat(FRESH)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", seeded.chat_factory)
    _ui.clear()
    at = open_page("pages/preferences.py")
    old = _shown_pair(at)
    assert old is not None and at.query_params["pair"] == preferences.pair_key(old)
    at.selectbox(key="pref_source").select("fresh agent runs").run()
    assert _shown_pair(at) is None
    assert not [b for b in at.button if b.key == "pref_a"]  # nothing to judge until the agent ran
    assert at.query_params["source"] == "fresh" and "pair" not in at.query_params
    click(at, "pref_run")
    new = _shown_pair(at)
    assert new is not None and {new.first.id, new.second.id}.isdisjoint({old.first.id, old.second.id})
    assert {new.left.output, new.right.output} == set(FRESH)
    assert at.query_params["pair"] == preferences.pair_key(new)
    at.selectbox(key="pref_source").select("stored trajectories").run()
    back = _shown_pair(at)
    assert back is not None and {back.first.id, back.second.id} != {new.first.id, new.second.id}


def test_the_address_brings_back_source_suite_and_pair(seeded):
    first, second = seeded.repo.get(Trajectory, "tr0ok"), seeded.repo.get(Trajectory, "tr0bad")
    key = preferences.pair_key(preferences.Pair(first.task_id, first.prompt, first, second, True))
    at = open_page("pages/preferences.py", source="stored", suite="helpdesk-test", pair=key)
    pair = _shown_pair(at)
    assert (pair.left.id, pair.right.id) == ("tr0bad", "tr0ok")  # swapped: the first run on the right
    assert at.selectbox(key="pref_suite").value == "helpdesk-test"
    click(at, "pref_a")
    (p,) = seeded.repo.find(Preference, annotator="alice")
    assert (p.trajectory_a, p.trajectory_b, p.swapped, p.choice) == ("tr0bad", "tr0ok", True, "A")


def test_a_broken_link_says_why_and_still_offers_a_pair(seeded):
    at = open_page("pages/preferences.py", pair="tr0ok.nothere.0")
    assert any("names trajectory nothere, which is not in the store" in w.value for w in at.warning)
    assert _shown_pair(at) is not None


def test_edit_to_fix_starts_from_the_side_chosen_and_keeps_own_edits(seeded):
    at = open_page("pages/preferences.py")
    pair = _shown_pair(at)
    click(at, "pref_e")
    assert at.text_area(key="pref_fix_text").value == ""  # not the left answer by default
    at.radio(key="pref_fix_side").set_value("B").run()
    assert at.text_area(key="pref_fix_text").value == pair.right.output
    at.radio(key="pref_fix_side").set_value("A").run()
    assert at.text_area(key="pref_fix_text").value == pair.left.output
    mine = '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'
    at.text_area(key="pref_fix_text").input(mine).run()
    at.radio(key="pref_fix_side").set_value("B").run()
    assert at.text_area(key="pref_fix_text").value == mine  # an edit of one's own is never overwritten
    click(at, "pref_b")
    (p,) = seeded.repo.find(Preference, annotator="alice")
    assert (p.choice, p.corrected) == ("B", mine)


def test_the_count_of_preferences_reads_right_and_the_reference_is_beside_both(seeded):
    at = open_page("pages/preferences.py")
    assert "0 preferences stored" in [t.value for t in at.text]
    captions = [c.value for c in at.caption]
    assert captions.count("expected call (the task's reference)") == 2
    click(at, "pref_t")
    assert "1 preference stored" in [t.value for t in at.text]
