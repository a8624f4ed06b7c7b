"""Step-level labeling in the library: step views, step corrections, replays and preferences between
continuations, on multi-step episodes stored in real TinyDB files."""

from __future__ import annotations

import sys
import time
import types

import pytest

from agentlearn import accounts, agent, preferences, processes, users
from agentlearn.cli import main
from agentlearn.feedback import corrections_steps, episodes, queue, replays
from agentlearn.feedback.corrections import CorrectionError
from agentlearn.settings import PROCESS_ID_ENV
from storage.records import Correction, Preference, Process, Step, Task, ToolCall, ToolResult, Trajectory
from tests.episode_seed import LONG, REF, TURN2, TURNS, seed_episodes
from tests.seed import ME, SUITE, admin_of, seed_workspace


@pytest.fixture
def eps(ws):
    seed_workspace(ws.repo, hostile=False)
    return seed_episodes(ws.repo)


def test_steps_read_in_order_with_turns_observations_and_expected_calls(ws, eps):
    views = episodes.step_views(eps[TURNS], ws.repo.get(Task, f"{SUITE}:{TURNS}"))
    assert [(v.index, v.turn, v.opens_turn) for v in views] == [(0, 0, True), (1, 0, False), (2, 1, True), (3, 1, False)]
    assert views[0].user == "Reset akhan's password and send it by sms." and views[2].user == TURN2
    assert [c.text() for c in views[0].expected] == ['reset_password(username="akhan", delivery="sms")']
    assert [c.text() for c in views[2].expected] == ['create_ticket(title="printer jam")']
    assert views[1].expected is None and views[1].answer.startswith("Done")
    (obs,) = views[2].observations
    assert (obs.name, obs.error, obs.folded, obs.seconds, obs.content) == ("create_ticket", True, True, 2.5, LONG)
    assert not views[0].observations[0].folded
    assert views[0].timing() == "0.84 s · 212 → 31 tokens" and views[1].timing() == "0.41 s"


def test_a_single_turn_reference_shows_every_acceptable_value(ws, eps):
    views = episodes.step_views(eps[REF], ws.repo.get(Task, f"{SUITE}:{REF}"))
    assert [c.text() for c in views[0].expected] == ['reset_password(username="akhan", delivery="sms" | may be left out)']
    assert episodes.is_episode(eps[REF]) and not episodes.is_episode(ws.repo.get(Trajectory, "tr0ok"))


def test_a_step_correction_is_checked_and_stored_with_its_step(ws, eps):
    fix = ToolCall(name="reset_password", arguments={"username": "akhan", "delivery": "sms"})
    made = corrections_steps.correct_step(ws, TURNS, 0, fix, who=ME, note=" wrong channel ")
    assert (made.step, made.author, made.note, made.call, made.add_alternative) == (0, "tester", "wrong channel", fix, False)
    assert [c.id for c in corrections_steps.of_step(ws, TURNS, 0)] == [made.id]
    assert corrections_steps.of_step(ws, TURNS, 1) == []
    with pytest.raises(CorrectionError, match="step 4 is not a step of trajectory ep-turns"):
        corrections_steps.correct_step(ws, TURNS, 4, fix, who=ME)
    with pytest.raises(CorrectionError, match="argument 'username' is required"):
        corrections_steps.correct_step(ws, TURNS, 2, ToolCall(name="reset_password", arguments={}), who=ME)
    with pytest.raises(CorrectionError, match="has no reference to add an alternative to"):
        corrections_steps.correct_step(ws, TURNS, 0, fix, who=ME, add_alternative=True)
    assert len(ws.repo.all(Correction)) == 1  # the refused ones stored nothing


def test_a_person_without_the_label_role_cannot_correct(ws, eps):
    users.add_user(ws.repo, "root", "admin", "correct horse battery", who=admin_of(ws.repo))
    stranger = accounts.Identity(name="mallory", role="annotator")
    with pytest.raises(PermissionError):
        corrections_steps.correct_step(ws, TURNS, 0, ToolCall(name="create_ticket", arguments={"title": "x"}),
                                       who=stranger)
    assert ws.repo.all(Correction) == []


def test_also_accepting_an_alternative_goes_through_the_reference_module(ws, eps, monkeypatch):
    fix = ToolCall(name="reset_password", arguments={"username": "akhan", "delivery": "text message"})
    monkeypatch.setitem(sys.modules, "agentlearn.suites.references", None)  # as if it were not installed
    with pytest.raises(CorrectionError, match="needs agentlearn.suites.references"):
        corrections_steps.correct_step(ws, REF, 0, fix, who=ME, add_alternative=True)
    assert ws.repo.all(Correction) == []
    added = []
    fake = types.ModuleType("agentlearn.suites.references")
    fake.add_alternative = lambda ws_, task_id, call, who: added.append((task_id, call, who.name))
    monkeypatch.setitem(sys.modules, "agentlearn.suites.references", fake)
    made = corrections_steps.correct_step(ws, REF, 0, fix, who=ME, add_alternative=True)
    assert added == [(f"{SUITE}:{REF}", fix, "tester")] and made.add_alternative


def test_the_source_filter_keeps_runs_of_one_source(ws, eps):
    everything = queue.queue(ws, queue.Filters())
    assert queue.queue(ws, queue.Filters(source="traces")) == [TURNS]
    assert REF in queue.queue(ws, queue.Filters(source="agent")) and TURNS not in queue.queue(ws, queue.Filters(source="agent"))
    assert set(everything) >= {TURNS, REF}
    assert "traces" in queue.facets(ws)["source"]
    # An episode is found by the tools it called and the answers it gave on the way, not only its last output.
    assert TURNS in queue.queue(ws, queue.Filters(search="done: akhan has a new password"))
    assert queue.queue(ws, queue.Filters(search="create_ticket", source="traces")) == [TURNS]


def _replayed(traj: Trajectory, step: int, call: ToolCall) -> Trajectory:
    """What a replay stores: the steps before `step`, the corrected call with its result, then an answer."""
    new = [*traj.steps[:step], Step(calls=[call], results=[ToolResult(name=call.name, content="password reset; sms sent")]),
           Step(answer="Sent by sms.")]
    return Trajectory(task_id=traj.task_id, suite=traj.suite, split=traj.split, source="replay", steps=new,
                      output="Sent by sms.")


def test_a_replay_runs_from_the_corrected_step_and_is_linked_to_the_original(ws, eps, monkeypatch):
    fix = ToolCall(name="reset_password", arguments={"username": "akhan", "delivery": "sms"})
    made = corrections_steps.correct_step(ws, TURNS, 0, fix, who=ME)
    seen = []

    def replay_from(ws_, trajectory, step, call, who):
        seen.append((trajectory.id, step, call, who.local))
        return ws_.repo.put(_replayed(trajectory, step, call))

    monkeypatch.setattr(agent, "replay_from", replay_from, raising=False)
    record = ws.repo.put(Process(kind=replays.KIND, args=[replays.KIND, made.id]))
    monkeypatch.setenv(PROCESS_ID_ENV, record.id)  # as a child the dashboard started
    assert main(["replay", made.id]) == 0
    assert seen == [(TURNS, 0, fix, True)]  # acting for the local user, as the process record says
    (r,) = replays.replays(ws, TURNS)
    assert (r.status, r.step, r.correction_id) == ("succeeded", 0, made.id)
    assert replays.origin(ws, r.replay).original == TURNS
    assert ws.repo.get(Trajectory, r.replay).source == "replay"


def test_a_replay_child_that_cannot_replay_says_why(ws, eps, monkeypatch):
    """A real child process: without the agent loop's replay_from it fails with one clear line on its record."""
    made = corrections_steps.correct_step(ws, REF, 1, ToolCall(name="reset_password", arguments={"username": "akhan"}),
                                          who=ME)
    if hasattr(agent, "replay_from"):
        pytest.skip("the agent loop is installed: the child would really replay")
    started = replays.start(ws, made.id, who=ME)
    deadline = time.time() + 60
    while time.time() < deadline and (processes.get(ws, started.id).status == "running"):
        time.sleep(0.3)
    (r,) = replays.replays(ws, REF)
    assert (r.status, r.step, r.replay) == ("failed", 1, "")
    assert "replaying needs agentlearn.agent.replay_from" in r.error
    with pytest.raises(CorrectionError, match="no correction with id 'nope'"):
        replays.start(ws, "nope", who=ME)


def test_two_continuations_from_the_same_step_make_a_step_preference(ws, eps):
    other = ToolCall(name="reset_password", arguments={"username": "akhan"})
    replay = ws.repo.put(_replayed(eps[REF], 1, other))
    assert episodes.shared_steps(eps[REF], replay) == 1
    pair = preferences.make_pair(ws, eps[REF], replay)
    assert pair.step == 1
    assert preferences.pair_from_key(ws, preferences.pair_key(pair)).step == 1
    stored = ws.repo.get(Preference, preferences.record_choice(ws, pair, "A", "tester").id)
    assert stored.step == 1
    texts = {stored.trajectory_a: stored.response_a, stored.trajectory_b: stored.response_b}
    assert texts[replay.id] == ('call: {"name": "reset_password", "arguments": {"username": "akhan"}}\n'
                                "result: password reset; sms sent\nanswer: Sent by sms.")
    assert texts[REF] == ('call: {"name": "reset_password", "arguments": {"username": "akhan", "delivery": "sms"}}\n'
                          "result: password reset; sms sent\nanswer: The password is reset and was sent by sms.")
    # Two single-call runs keep whole-answer pairs.
    plain = preferences.make_pair(ws, ws.repo.get(Trajectory, "tr0ok"), ws.repo.get(Trajectory, "tr0bad"))
    assert plain.step == 0 and plain.response(plain.first) == plain.first.output
