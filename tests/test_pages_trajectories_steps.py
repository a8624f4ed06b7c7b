"""AppTest of step-level labeling on Trajectories and Preferences, on stored multi-step episodes: steps in
order with folded observations, hostile text inert, a step flagged with the keys, a step corrected in
place, replays, the source filter, and two continuations side by side."""

from __future__ import annotations

import sys
import types

import pytest

from agentlearn import processes
from agentlearn.feedback import replays
from storage.records import Correction, Label, Preference, Process, Step, ToolCall, ToolResult, Trajectory
from tests import test_pages
from tests.episode_seed import LONG, REF, TURN2, TURNS, seed_episodes
from tests.seed import HOSTILE, SUITE
from tests.test_pages import click, markdown_texts, open_page, plain_texts

raw_seeded, seeded = test_pages.raw_seeded, test_pages.seeded  # the page tests' fixtures


@pytest.fixture
def eps(seeded):
    return seed_episodes(seeded.repo)


def _open(trajectory: str, **kw):
    at = open_page("pages/trajectories.py", trajectory=trajectory, **kw)
    assert at.session_state["traj_current"] == trajectory
    return at


def test_an_episode_shows_its_steps_with_folded_observations_and_inert_text(seeded, eps):
    at = _open(TURNS)
    codes = [c.value for c in at.code]
    calls = [c for c in codes if c.startswith('{"name"')]
    assert calls == ['{"name": "reset_password", "arguments": {"username": "akhan", "delivery": "email"}}',
                     '{"name": "create_ticket", "arguments": {"title": "' + HOSTILE.replace('"', '\\"') + '"}}']
    assert "password reset; mail sent to akhan" in codes and HOSTILE in codes  # the short observation, the answer
    folded = [e for e in at.expander if "characters, folded" in e.label]
    assert len(folded) == 1 and "⚠ error 1" in folded[0].label and LONG in [c.value for c in folded[0].code]
    texts = [t.value for t in at.text]
    assert TURN2 in texts and "[user]\nReset akhan's password and send it by sms." in texts  # once, as the task
    assert 'reset_password(username="akhan", delivery="sms")' in texts  # the expected call of turn 1
    assert 'create_ticket(title="printer jam")' in texts  # and of turn 2
    captions = [c.value for c in at.caption]
    assert "▶ step 1 · turn 1 · 0.84 s · 212 → 31 tokens" in captions  # selected, with its timings
    assert "step 2 · turn 1 · 0.41 s" in captions
    assert any("source traces" in t for t in texts)
    assert not any("<script>" in m or "onerror" in m or "akhan is locked" in m for m in markdown_texts(at))
    assert any(HOSTILE in t for t in plain_texts(at))


def test_the_reference_shows_every_acceptable_value(seeded, eps):
    at = _open(REF)
    assert 'reset_password(username="akhan", delivery="sms" | may be left out)' in [t.value for t in at.text]


def test_keys_move_between_steps_and_flag_the_first_wrong_one(seeded, eps):
    at = _open(TURNS)
    assert any(c.value.startswith("▶ step 1") for c in at.caption)
    click(at, "btn_step_next")  # J
    click(at, "btn_step_next")
    assert any(c.value.startswith("▶ step 3") for c in at.caption)
    click(at, "btn_step_prev")  # H
    click(at, "btn_step_flag")  # W: step 2 is the first wrong one
    assert any("verdict: fail" in t.value and "flagged steps: 2" in t.value for t in at.text)
    assert at.checkbox(key=f"flag_{TURNS}_1").value
    click(at, "btn_submit")
    (label,) = seeded.repo.find(Label, trajectory_id=TURNS)
    assert (label.verdict, label.step_flags, label.annotator) == ("fail", [1], "alice")


def test_a_step_is_corrected_in_place_and_stored_with_its_step(seeded, eps):
    at = _open(REF)
    at.text_input(key=f"fix_{REF}_s0_reset_password_username").set_value("akhan")
    at.text_input(key=f"fix_{REF}_s0_reset_password_delivery").set_value("sms")
    save = [b for b in at.button if b.label == "Save correction"]
    assert len(save) == 1  # only the selected step has the form
    save[0].click().run()
    assert not at.exception
    (fix,) = seeded.repo.find(Correction, trajectory_id=REF)
    assert (fix.step, fix.author, fix.call.arguments, fix.add_alternative) == (
        0, "alice", {"username": "akhan", "delivery": "sms"}, False)
    assert any(b.key == f"replay_{REF}_0" for b in at.button)


def test_accepting_an_alternative_is_offered_only_with_a_reference(seeded, eps, monkeypatch):
    added = []
    fake = types.ModuleType("agentlearn.suites.references")
    fake.add_alternative = lambda ws, task_id, call, who: added.append((task_id, call.arguments, who.name))
    monkeypatch.setitem(sys.modules, "agentlearn.suites.references", fake)
    at = _open(TURNS)
    assert not any("alternative" in c.label for c in at.checkbox)  # turn_calls, no reference
    at = _open(REF)
    at.checkbox(key=f"fix_alt_{REF}_s0").check().run()
    at.text_input(key=f"fix_{REF}_s0_reset_password_username").set_value("akhan")
    at.text_input(key=f"fix_{REF}_s0_reset_password_delivery").set_value("text")
    next(b for b in at.button if b.label == "Save correction").click().run()
    assert added == [(f"{SUITE}:{REF}", {"username": "akhan", "delivery": "text"}, "alice")]
    (fix,) = seeded.repo.find(Correction, trajectory_id=REF)
    assert fix.add_alternative


def test_replay_from_a_corrected_step_links_both_runs(seeded, eps, monkeypatch):
    started = []

    def start(ws, kind, args, *, who):  # the child's work is tested in test_episode_labeling
        started.append((kind, list(args), who.name))
        return ws.repo.put(Process(kind=kind, args=list(args), by=who.name, status="running", pid=None))

    monkeypatch.setattr(processes, "start", start)
    at = _open(REF)
    at.text_input(key=f"fix_{REF}_s0_reset_password_username").set_value("akhan")
    next(b for b in at.button if b.label == "Save correction").click().run()
    (fix,) = seeded.repo.find(Correction, trajectory_id=REF)
    click(at, f"replay_{REF}_0")
    assert started == [("replay", ["replay", fix.id], "alice")]
    # The child ends: it stores the replay and its result names both runs.
    (record,) = seeded.repo.find(Process, kind="replay")
    first = seeded.repo.get(Trajectory, REF).steps
    replay = seeded.repo.put(Trajectory(id="ep-ref-r1", task_id=f"{SUITE}:{REF}", suite=SUITE, split="train",
                                        source="replay", output="ok", steps=[
        Step(calls=[fix.call], results=[ToolResult(name="reset_password", content="password reset; sms sent")]),
        Step(answer="ok")]))
    seeded.repo.update(Process, record.id, lambda p: p.model_copy(update={
        "status": "succeeded", "result": {"original": REF, "step": 0, "replay": replay.id}}))
    at.run()
    assert any(t.value.startswith("from step 1 · succeeded · run ep-ref-r1") for t in at.text)
    click(at, f"open_replay_{record.id}")
    assert at.session_state["traj_current"] == "ep-ref-r1"
    assert f"This run replays {REF} from step 1 with a corrected call." in [t.value for t in at.text]
    assert len(first) == 3  # the original is unchanged
    assert replays.origin(seeded, "ep-ref-r1").original == REF
    click(at, "compare_ep-ref-r1")  # to Preferences, the two continuations from the corrected step
    pair = at.session_state["pair"]
    assert {pair.first.id, pair.second.id} == {REF, "ep-ref-r1"} and pair.step == 0
    assert [c.value for c in at.caption].count("continuation from step 1") == 2


def test_the_source_filter_narrows_the_queue(seeded, eps):
    at = open_page("pages/trajectories.py")
    at.selectbox(key="f_status").select("any").run()
    at.selectbox(key="f_source").select("traces").run()
    assert at.session_state["traj_current"] == TURNS
    assert any("1 trajectories" in m.value for m in at.markdown)
    assert list(at.dataframe(key="queue_table").value["source"]) == ["traces"]
    at.selectbox(key="f_source").select("agent").run()
    assert at.session_state["traj_current"] != TURNS


def test_preferences_show_two_continuations_from_the_same_step(seeded, eps):
    original = seeded.repo.get(Trajectory, REF)
    other = ToolCall(name="reset_password", arguments={"username": "akhan"})
    seeded.repo.put(Trajectory(id="ep-ref-r2", task_id=original.task_id, suite=SUITE, split="train", source="replay",
                               output="Sent.", steps=[original.steps[0], Step(calls=[other], results=[
                                   ToolResult(name="reset_password", content="reset without a channel")]),
                                   Step(answer=HOSTILE)]))
    at = open_page("pages/preferences.py", pair=f"{REF}.ep-ref-r2.0")
    assert at.session_state["pair"].step == 1
    assert [c.value for c in at.caption].count("continuation from step 2") == 2
    codes = [c.value for c in at.code]
    assert '{"name": "reset_password", "arguments": {"username": "akhan"}}' in codes
    assert '{"name": "reset_password", "arguments": {"username": "akhan", "delivery": "sms"}}' in codes
    assert HOSTILE in codes and not any("<script>" in m for m in markdown_texts(at))
    assert any("which both runs share" in e.label for e in at.expander)
    click(at, "pref_a")
    (pref,) = seeded.repo.find(Preference, annotator="alice")
    assert pref.step == 1
