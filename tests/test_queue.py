"""Assignment, claims, undo and the reviewers' queue (agentlearn.feedback) on real TinyDB files."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from agentlearn import caches, verdicts
from agentlearn.feedback import claims, disagreements, labels, queue, reports, team
from storage.records import Claim, Label, Suite, Trajectory, now
from tests.seed import ME, SUITE, as_

MINE = queue.Filters(status=queue.ASSIGNED, order="oldest")


def _reopen(ws):
    """Forget every cache, as a new server process would."""
    caches.clear_all()
    return ws


def test_overlap_two_gives_each_person_each_item_once(seeded):
    queue.set_overlap(seeded, SUITE, 2, who=ME)
    assert seeded.repo.get(Suite, SUITE).overlap == 2
    everything = queue.queue(seeded, queue.Filters(order="oldest"))
    seen = {"ann": [], "ben": []}
    for _ in range(2 * len(everything)):
        for name in seen:
            ids = queue.queue(seeded, MINE, me=name)
            got = claims.take(seeded, ids, name)
            if got is None:
                continue
            assert got not in seen[name]  # never an item this person has done
            seen[name].append(got)
            labels.submit_label(seeded, got, name, "success", seconds=claims.held_for(seeded, got, name))
            claims.release(seeded, name)
    # bob had labeled tr0ok in the seed: it needs only one more person, so one of the two gets it.
    assert sorted(seen["ann"] + seen["ben"]).count("tr0ok") == 1
    for name in seen:
        assert len(set(seen[name])) == len(seen[name])
        assert set(seen[name]) >= set(everything) - {"tr0ok"}
    assert all(len(labels.labels_of(seeded, t)) == 2 for t in everything)
    assert queue.queue(seeded, MINE, me="ann") == [] and queue.queue(seeded, MINE, me="carl") == []
    # The same after a restart (indices rebuilt from the files).
    assert queue.queue(_reopen(seeded), MINE, me="ann") == []


def test_overlap_one_is_the_default_and_bad_values_are_refused(seeded):
    assert queue.overlap(seeded, SUITE) == 1
    assert "tr0ok" not in queue.queue(seeded, MINE, me="ann")  # bob's label was enough
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="1 to 5"):
            queue.set_overlap(seeded, SUITE, bad, who=ME)
    with pytest.raises(ValueError, match="no suite named"):
        queue.set_overlap(seeded, "nope", 2, who=ME)
    assert seeded.repo.get(Suite, SUITE).overlap == 1


def test_a_claim_hides_the_item_from_others_until_it_expires(seeded):
    seeded.settings = seeded.settings.with_(claim_seconds=1)
    first = queue.queue(seeded, MINE, me="ann")[0]
    assert claims.take(seeded, [first], "ann") == first
    assert first not in queue.queue(seeded, MINE, me="ben")
    assert first in queue.queue(seeded, MINE, me="ann")  # the holder keeps it
    assert claims.claim(seeded, first, "ben").annotator == "ann"  # ben cannot take it
    assert claims.take(seeded, [first, "tr1ok"], "ben") == "tr1ok"
    # Claims live in the store: another process (a fresh repository object) sees them too.
    assert first not in queue.queue(_reopen(seeded), MINE, me="carl")
    time.sleep(1.2)
    assert first in queue.queue(seeded, MINE, me="ben")  # expired: free again


def test_a_claim_is_renewed_on_activity_and_moves_with_the_person(seeded):
    tid = queue.queue(seeded, MINE, me="ann")[0]
    claims.claim(seeded, tid, "ann")
    held = seeded.repo.get(Claim, claims.claim_id("ann"))
    # Pretend the claim is about to run out: the next activity writes a new expiry, same start.
    seeded.repo.put(held.model_copy(update={"expires": now() + timedelta(seconds=5)}))
    claims.claim(seeded, tid, "ann")
    renewed = seeded.repo.get(Claim, claims.claim_id("ann"))
    assert renewed.expires > now() + timedelta(seconds=500) and renewed.since == held.since
    claims.claim(seeded, "tr1ok", "ann")  # opening another item moves the one claim
    assert [c.trajectory_id for c in seeded.repo.all(Claim)] == ["tr1ok"]
    with pytest.raises(ValueError, match="sign in"):
        claims.claim(seeded, tid, " ")


def test_time_per_item_is_stored_on_the_label(seeded):
    tid = queue.queue(seeded, MINE, me="ann")[0]
    claims.claim(seeded, tid, "ann")
    time.sleep(0.3)
    seconds = claims.held_for(seeded, tid, "ann")
    label = labels.submit_label(seeded, tid, "ann", "fail", seconds=seconds)
    assert 0.3 <= seeded.repo.get(Label, label.id).seconds < 5
    assert claims.held_for(seeded, "tr1ok", "ann") is None


def test_undo_removes_the_last_label_and_the_item_comes_back(seeded):
    tid = queue.queue(seeded, MINE, me="ann")[0]
    queue.queue(seeded, MINE, me="ann")  # warm the caches
    first = labels.submit_label(seeded, tid, "ann", "success", 4)
    second = labels.submit_label(seeded, tid, "ann", "fail", 2)
    assert tid not in queue.queue(seeded, MINE, me="ann")
    removed = labels.undo(seeded, second.id, "ann")
    assert removed.verdict == "fail" and seeded.repo.get(Label, second.id) is None
    assert labels.latest_label(seeded, tid, "ann").id == first.id  # the earlier label is in force again
    labels.undo(seeded, first.id, "ann")
    assert labels.latest_label(seeded, tid, "ann") is None
    assert tid in queue.queue(seeded, MINE, me="ann")
    assert tid in queue.queue(_reopen(seeded), MINE, me="ann")  # from the files too
    with pytest.raises(ValueError, match="nothing to undo"):
        labels.undo(seeded, first.id, "ann")
    bobs = seeded.repo.find(Label, annotator="bob")[0]
    with pytest.raises(ValueError, match="only they can undo"):
        labels.undo(seeded, bobs.id, "ann")
    assert seeded.repo.get(Label, bobs.id) is not None


def test_disagreement_reaches_reviewers_and_the_resolution_is_the_learning_verdict(seeded):
    queue.set_overlap(seeded, SUITE, 2, who=ME)
    labels.submit_label(seeded, "tr1ok", "ann", "success", comment="looks right")
    labels.submit_label(seeded, "tr1ok", "ben", "fail", comment="wrong ticket id")
    traj = seeded.repo.get(Trajectory, "tr1ok")
    assert verdicts.judge(seeded).succeeded(traj) is False  # a tie is a fail
    items = disagreements.disagreements(seeded)
    assert [d.trajectory_id for d in items] == ["tr1ok"] and items[0].votes == {"fail": 1, "success": 1}
    table = disagreements.labels_table(seeded, "tr1ok")
    assert {(r["annotator"], r["verdict"], r["comment"]) for r in table} == {
        ("ann", "success", "looks right"), ("ben", "fail", "wrong ticket id")}
    with pytest.raises(ValueError, match="'success' or 'fail'"):
        disagreements.resolve(seeded, "tr1ok", as_("dave"), "maybe")
    disagreements.resolve(seeded, "tr1ok", as_("dave"), "success", "the id is right")
    assert verdicts.judge(seeded).succeeded(traj) is True
    assert disagreements.disagreements(seeded) == []
    assert [d.trajectory_id for d in disagreements.disagreements(seeded, resolved=True)] == ["tr1ok"]
    # A resolved item no longer waits for annotators.
    assert "tr1ok" not in queue.queue(seeded, MINE, me="carl")


def test_people_against_the_verifier_is_a_separate_kind(seeded):
    labels.submit_label(seeded, "tr1ok", "ann", "fail")  # the verifier said success
    assert disagreements.disagreements(seeded) == []
    assert [d.trajectory_id for d in disagreements.disagreements(seeded, "people vs verifier")] == ["tr1ok"]
    with pytest.raises(ValueError, match="kind must be one of"):
        disagreements.disagreements(seeded, "everyone")


def test_kappa_says_why_it_is_undefined(seeded):
    assert reports.kappa_between_people(seeded).text() == "κ undefined: no run has labels from two people yet"
    labels.submit_label(seeded, "tr0ok", "ann", "success")  # bob said success too
    same = reports.kappa_between_people(seeded)
    assert same.kappa is None and same.agree == 1.0
    assert same.text() == "κ undefined: everyone gave the same verdict (success)"


def test_team_table(seeded):
    for tid, verdict in (("tr0ok", "success"), ("tr1ok", "fail"), ("tr2ok", "success")):
        labels.submit_label(seeded, tid, "ann", verdict, seconds=10.0 if tid != "tr2ok" else 30.0)
    labels.submit_label(seeded, "tr1ok", "ben", "success")
    rows = team.team_table(seeded).set_index("annotator")
    ann = rows.loc["ann"]
    assert (ann["labels"], ann["items"], ann["last 24 h"], ann["median s"], ann["timed"]) == (3, 3, 3, 10.0, 3)
    assert ann["per hour"] >= 1.5  # 3 labels in one or two clock hours
    # ann agrees with bob on tr0ok and disagrees with ben on tr1ok.
    assert (ann["agree %"], ann["pairs"]) == (50.0, 2)
    assert rows.loc["ben", "κ"] == "0.00"  # one pair, opposite verdicts
    assert rows.loc["bob", "why κ is undefined"] == "everyone gave the same verdict (success)"


def test_assignment_claims_undo_and_rulings_on_postgresql(pg_url, tmp_path):
    """The same team flow on the PostgreSQL backend, with two servers' worth of repositories."""
    from agentlearn.embeddings import hash_encode
    from agentlearn.settings import Settings
    from agentlearn.workspace import open_workspace
    from tests.seed import seed_workspace

    settings = Settings(home=tmp_path / "home", database_url=pg_url)
    one, two = (open_workspace(settings, encoder=hash_encode) for _ in range(2))
    seed_workspace(one.repo)
    queue.set_overlap(one, SUITE, 2, who=ME)
    assert queue.overlap(two, SUITE) == 2
    fresh = [t for t in queue.queue(one, MINE, me="ann") if t != "tr0ok"]  # bob labeled tr0ok already
    first = claims.take(one, fresh, "ann")
    assert first not in queue.queue(two, MINE, me="ben")  # the other server sees ann's claim
    label = labels.submit_label(one, first, "ann", "fail", seconds=claims.held_for(one, first, "ann"))
    claims.release(one, "ann")
    assert first in queue.queue(two, MINE, me="ben") and first not in queue.queue(one, MINE, me="ann")
    labels.undo(one, label.id, "ann")
    assert first in queue.queue(two, MINE, me="ann") and not two.repo.find(Label, annotator="ann")
    labels.submit_label(one, "tr1ok", "ann", "fail")
    labels.submit_label(two, "tr1ok", "ben", "success")
    assert [d.trajectory_id for d in disagreements.disagreements(two)] == ["tr1ok"]
    disagreements.resolve(two, "tr1ok", as_("dave"), "success")
    assert verdicts.judge(one).succeeded(one.repo.get(Trajectory, "tr1ok")) is True
    assert disagreements.disagreements(one) == []
