"""agentlearn.preferences: pairs from stored or fresh runs, random sides, choices stored as new records."""

from __future__ import annotations

import random

import pytest

from agentlearn import preferences
from agentlearn.feedback.corrections import CorrectionError
from agentlearn.toolcall import format_tool_call
from storage.records import Preference, Task, Trajectory
from tests.seed import SUITE


def test_sides_are_random_and_recorded(seeded):
    a, b = seeded.repo.get(Trajectory, "tr0ok"), seeded.repo.get(Trajectory, "tr0bad")
    swaps = [preferences.make_pair(seeded, a, b, random.Random(i)).swapped for i in range(40)]
    assert 5 < sum(swaps) < 35
    pair = next(preferences.make_pair(seeded, a, b, random.Random(i)) for i in range(40)
                if preferences.make_pair(seeded, a, b, random.Random(i)).swapped)
    assert (pair.left.id, pair.right.id) == ("tr0bad", "tr0ok")
    pref = preferences.record_choice(seeded, pair, "A", "alice")
    assert (pref.trajectory_a, pref.response_a, pref.swapped) == ("tr0bad", b.output, True)
    assert pref.prompt == seeded.repo.get(Task, f"{SUITE}:t0").input


def test_pairs_need_one_task_and_two_runs(seeded):
    a, other = seeded.repo.get(Trajectory, "tr0ok"), seeded.repo.get(Trajectory, "tr1ok")
    with pytest.raises(ValueError, match="two runs of one task"):
        preferences.make_pair(seeded, a, other)
    with pytest.raises(ValueError, match="two different trajectories"):
        preferences.make_pair(seeded, a, a)


def test_stored_pairs_skip_what_this_person_judged(seeded):
    groups = preferences.pairable_tasks(seeded)
    assert sorted(len(v) for v in groups.values()) == [2, 2, 2, 2, 2, 3]  # task 1 also has the hostile run
    rng = random.Random(0)
    seen = set()
    for _ in range(8):  # 5 tasks x 1 pair + task 1 x 3 pairs
        pair = preferences.sample_stored_pair(seeded, annotator="alice", rng=rng)
        assert pair is not None and pair.first.task_id == pair.second.task_id
        seen.add(frozenset((pair.first.id, pair.second.id)))
        preferences.record_choice(seeded, pair, "tie", "alice")
    assert len(seen) == 8
    assert preferences.sample_stored_pair(seeded, annotator="alice", rng=rng) is None
    assert preferences.sample_stored_pair(seeded, annotator="bob", rng=rng) is not None  # bob has judged none
    assert preferences.sample_stored_pair(seeded, suite="other") is None
    only = preferences.sample_stored_pair(seeded, task_id=f"{SUITE}:t3")
    assert only.task_id == f"{SUITE}:t3"


def test_two_people_two_records_and_corrections(seeded):
    pair = preferences.sample_stored_pair(seeded, rng=random.Random(1))
    preferences.record_choice(seeded, pair, "B", "alice")
    fixed = format_tool_call(seeded.repo.get(Task, pair.task_id).expected)
    preferences.record_choice(seeded, pair, "both_bad", "bob", corrected=f"  {fixed}  ")
    prefs = seeded.repo.all(Preference)
    assert [(p.annotator, p.choice, p.corrected) for p in prefs] == [("alice", "B", ""), ("bob", "both_bad", fixed)]
    with pytest.raises(ValueError, match="choice must be"):
        preferences.record_choice(seeded, pair, "left", "alice")
    with pytest.raises(ValueError, match="annotator name is empty"):
        preferences.record_choice(seeded, pair, "A", " ")
    assert seeded.repo.count(Preference) == 2
    summary = preferences.preference_summary(seeded).set_index("annotator")
    assert summary.loc["bob", "corrected"] == 1 and summary.loc["alice", "B"] == 1


def test_a_corrected_response_gets_the_schema_check_of_corrections(seeded):
    pair = preferences.make_pair(seeded, *(seeded.repo.get(Trajectory, i) for i in ("tr0ok", "tr0bad")))
    refused = {
        "Reset it by email please": "the response holds no tool call: no tool call found",
        '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan", "channel": "sms"}}</tool_call>':
            "argument 'channel' is not one of the tool's parameters (username, delivery)",
        '<tool_call>{"name": "reset_password", "arguments": {"delivery": "sms"}}</tool_call>':
            "argument 'username' is required",
        '<tool_call>{"name": "send_mail", "arguments": {}}</tool_call>':
            "'send_mail' is not one of the task's tools (reset_password, create_ticket)",
    }
    for text, problem in refused.items():
        with pytest.raises(CorrectionError) as e:
            preferences.record_choice(seeded, pair, "both_bad", "bob", corrected=text)
        assert e.value.problems == [problem]
    assert seeded.repo.count(Preference) == 0  # nothing stored
    thought = 'She wants a text. <tool_call>{"name": "reset_password", "arguments": {"username": "akhan", ' \
              '"delivery": "sms"}}</tool_call>'
    assert preferences.record_choice(seeded, pair, "A", "bob", corrected=thought).corrected == thought


def test_pairs_of_heldout_tasks_are_marked(seeded):
    train = preferences.make_pair(seeded, *(seeded.repo.get(Trajectory, i) for i in ("tr0ok", "tr0bad")))
    heldout = preferences.make_pair(seeded, *(seeded.repo.get(Trajectory, i) for i in ("tr1ok", "tr1bad")))
    assert (train.heldout, heldout.heldout) == (False, True)


def test_fresh_pair_runs_two_settings(seeded, make_fake_chat):
    seeded.chat_factory = make_fake_chat(["first answer", "second answer"])
    task = seeded.repo.get(Task, f"{SUITE}:t0")
    pair = preferences.fresh_pair(seeded, task, preferences.RunSpec(method="none"),
                                  preferences.RunSpec(method="none", temperature=0.7), random.Random(3))
    assert (pair.first.output, pair.second.output) == ("first answer", "second answer")
    assert seeded.repo.get(Trajectory, pair.first.id) is not None  # both runs are stored
    assert preferences.RunSpec(method="exemplars", temperature=0.7).describe() == "exemplars / base / T=0.7"
