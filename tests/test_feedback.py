"""agentlearn.feedback: the labeling queue, labels, bulk accept, agreement, progress, find similar."""

from __future__ import annotations

import pytest

from agentlearn import caches
from agentlearn.feedback import index, labels, queue, reports, similar
from storage.records import Label, Trajectory
from tests.seed import SUITE


def test_filters_combine(seeded):
    everything = queue.queue(seeded, queue.Filters())
    assert len(everything) == 13 and everything[:2] == ["tr5bad", "tr5ok"]  # newest first
    assert queue.queue(seeded, queue.Filters(order="oldest"))[0] == "tr0ok"
    fails = queue.queue(seeded, queue.Filters(verifier="fail", split="heldout"))
    assert set(fails) == {"tr1bad", "tr3bad", "tr5bad", "trhostile"}
    assert queue.queue(seeded, queue.Filters(search="PRINTER")) == ["trhostile", "tr1bad", "tr1ok"]
    assert queue.queue(seeded, queue.Filters(method="exemplars", split="train")) == ["tr4ok", "tr2ok", "tr0ok"]
    assert queue.queue(seeded, queue.Filters(status="labeled")) == ["tr0ok"]
    assert queue.queue(seeded, queue.Filters(annotator="bob")) == ["tr0ok"]
    assert "tr0ok" not in queue.queue(seeded, queue.Filters(status="not labeled by me"), me="bob")
    assert "tr0ok" in queue.queue(seeded, queue.Filters(status="not labeled by me"), me="alice")
    order = queue.queue(seeded, queue.Filters(order="verifier fail first"))
    assert all(t.endswith(("bad", "hostile")) for t in order[:7]) and order[-1].endswith("ok")


def test_unknown_filter_values_are_refused():
    with pytest.raises(ValueError, match="verifier filter"):
        queue.Filters(verifier="maybe")
    with pytest.raises(ValueError, match="label status"):
        queue.Filters(status="done")


def test_human_verifier_disagreement_filter(seeded):
    labels.submit_label(seeded, "tr1ok", "alice", "fail")
    assert queue.queue(seeded, queue.Filters(status="human ≠ verifier")) == ["tr1ok"]


def test_next_after_wraps_and_recovers():
    ids = ["a", "b", "c"]
    assert queue.next_after(ids, "a") == "b"
    assert queue.next_after(ids, "c") == "a"
    assert queue.next_after(ids, "a", -1) == "c"
    assert queue.next_after(ids, "gone") == "a"
    assert queue.next_after([], "a") is None


def test_labels_are_new_records_and_the_index_follows(seeded):
    queue.queue(seeded, queue.Filters(status="unlabeled"))  # warm the caches
    labels.submit_label(seeded, "tr2ok", "alice", "success", 5, "good", [0])
    labels.submit_label(seeded, "tr2ok", "alice", "fail", 2)
    labels.submit_label(seeded, "tr2ok", "carol", "success")
    assert len(seeded.repo.find(Label, trajectory_id="tr2ok")) == 3  # nothing overwritten
    assert labels.latest_label(seeded, "tr2ok", "alice").verdict == "fail"
    assert set(labels.labels_of(seeded, "tr2ok")) == {"alice", "carol"}
    assert "tr2ok" not in queue.queue(seeded, queue.Filters(status="unlabeled"))
    # another process writing a label is seen too
    from storage import open_repository

    open_repository(str(seeded.settings.store_dir)).put(Label(trajectory_id="tr3ok", annotator="dan", verdict="fail"))
    assert "tr3ok" in queue.queue(seeded, queue.Filters(status="labeled"))


@pytest.mark.parametrize("args,message", [
    (("tr2ok", "", "success"), "annotator name is empty"),
    (("tr2ok", "alice", "great"), "verdict must be"),
    (("nope", "alice", "success"), "no trajectory"),
    (("tr2ok", "alice", "success", None, "", [5]), "outside the trajectory"),
])
def test_bad_labels_are_refused_and_nothing_is_written(seeded, args, message):
    with pytest.raises(ValueError, match=message):
        labels.submit_label(seeded, *args)
    assert seeded.repo.count(Label) == 1


def test_bulk_accept_counts_then_writes(seeded):
    ids = queue.queue(seeded, queue.Filters(split="train"))
    todo = labels.bulk_accept_count(seeded, ids, "bob")
    assert len(todo) == len(ids) - 1  # bob already labeled tr0ok
    assert labels.bulk_accept_verifier(seeded, ids, "bob") == len(todo)
    for tid in todo:
        (label,) = seeded.repo.find(Label, trajectory_id=tid, annotator="bob")
        assert label.verdict == ("success" if seeded.repo.get(Trajectory, tid).verdict.success else "fail")
    assert labels.bulk_accept_verifier(seeded, ids, "bob") == 0  # idempotent


def test_kappa_against_sklearn(seeded):
    from sklearn.metrics import cohen_kappa_score

    for tid, verdict in (("tr0bad", "fail"), ("tr1ok", "fail"), ("tr1bad", "success"), ("tr2ok", "success")):
        labels.submit_label(seeded, tid, "bob", verdict)
    labels.submit_label(seeded, "tr1ok", "carol", "success")
    hv = reports.kappa_human_verifier(seeded)
    # per trajectory: people's majority (a tie is a fail) against the verifier
    human = ["success", "fail", "fail", "success", "success"]  # tr0ok tr0bad tr1ok(bob fail, carol success) tr1bad tr2ok
    machine = ["success", "fail", "success", "fail", "success"]
    assert hv.n == 5 and hv.kappa == pytest.approx(cohen_kappa_score(human, machine))
    hh = reports.kappa_between_people(seeded)
    assert hh.n == 1 and hh.agree == 0.0
    assert reports.kappa_between_people(seeded, suite="other").n == 0


def test_progress_and_success_tables(seeded):
    labels.submit_label(seeded, "tr1ok", "alice", "fail")
    by_suite = reports.progress_by_suite(seeded)
    row = by_suite[by_suite["suite"] == SUITE].iloc[0]
    assert (row["trajectories"], row["labeled"]) == (13, 2)
    people = reports.progress_by_annotator(seeded).set_index("annotator")
    assert people.loc["alice", "trajectories labeled"] == 1 and people.loc["bob", "success %"] == 100
    methods = reports.success_by_method(seeded).set_index("method")
    assert methods.loc["exemplars", "verifier success %"] == 100
    assert methods.loc["exemplars", "human success %"] == 50
    assert reports.success_over_time(seeded)["runs"].sum() == 13
    assert len(reports.eval_table(seeded)) == 2
    assert reports.counts(seeded)["pending proposals"] == 2


def test_index_file_is_reused_after_a_restart(seeded, monkeypatch):
    monkeypatch.setattr(index, "SAVE_INDEX_FROM", 1)
    first = index.trajectory_index(seeded)
    assert (seeded.settings.home / "cache" / "trajectory-index.parquet").exists()
    caches.clear_all()
    calls = []
    monkeypatch.setattr(index, "_build_trajectory_index", lambda *a: calls.append(a))
    again = index.trajectory_index(seeded)
    assert not calls and list(again.ids) == list(first.ids) and again.facets == first.facets
    assert list(again.created) == list(first.created)


def test_similar_finds_the_same_request(seeded):
    hits = similar.similar(seeded, "tr0ok", k=3)
    assert hits[0][0] in ("tr0bad", "tr2ok", "tr4ok") and all(t != "tr0ok" for t, _ in hits)
    assert similar.similar(seeded, "tr0ok", k=2, among=["tr5ok", "tr1ok"])[0][0] in ("tr5ok", "tr1ok")
    with pytest.raises(ValueError, match="no trajectory"):
        similar.similar(seeded, "nope")


def test_similar_with_the_real_minilm(seeded):
    from agentlearn.embeddings import encode

    seeded.encoder = encode
    hits = dict(similar.similar(seeded, "tr1ok", k=12))
    # the same printer request is closer than any password reset
    assert hits["tr1bad"] > max(hits["tr0ok"], hits["tr2ok"], hits["tr4ok"])


def test_text_diff():
    assert reports.text_diff("", "new rule") == "+ new rule"
    assert reports.text_diff("old rule", "") == "- old rule"
    diff = reports.text_diff("ask for the username", "ask for the username and channel")
    assert "- ask for the username" in diff and "+ ask for the username and channel" in diff


def test_success_over_time_buckets_follow_the_time_span(seeded):
    assert reports.time_bucket(30 * 60)[2] == "5 minutes"  # half an hour: 6 buckets
    assert reports.time_bucket(3 * 86400)[2] == "6 hours"
    assert reports.time_bucket(90 * 86400)[2] == "week"
    span = seeded.repo.all(Trajectory)
    table = reports.success_over_time(seeded)
    assert table["runs"].sum() == sum(t.verdict is not None for t in span)
    # Every bucket start is on the chosen grid, and there are several buckets unless runs share one.
    width = table.attrs["seconds"]
    assert all(p.timestamp() % width == 0 for p in table["period"]) or width >= 604800
    assert table.attrs["bucket"] in [b[2] for b in reports.BUCKETS]
