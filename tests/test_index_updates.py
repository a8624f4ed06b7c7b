"""The trajectory index follows the store by reading only what was written since it was built (PostgreSQL
keeps the write order), and equals a full rebuild; on TinyDB, or after a deletion, it is rebuilt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentlearn import caches
from agentlearn.embeddings import hash_encode
from agentlearn.feedback import index, labels, reports, rubric
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import is_database_url
from storage.records import Label, Step, Trajectory, Verdict, now
from tests.seed import SUITE, seed_workspace


@pytest.fixture
def store_ws(store_location, tmp_path):
    url = store_location if is_database_url(store_location) else ""
    ws = open_workspace(Settings(home=tmp_path / "home", database_url=url), encoder=hash_encode)
    seed_workspace(ws.repo)
    yield ws
    caches.clear_all()


def _run(i: int, ok: bool, when) -> Trajectory:
    return Trajectory(id=f"new{i}", task_id=f"{SUITE}:t{i % 6}", suite=SUITE, split="heldout", prompt=[],
                      steps=[Step(action=f"answer {i}")], output=f"answer {i}", tool_call=None,
                      verdict=Verdict(success=ok, reward=float(ok), reason="graded"), model="m2", created=when)


def _columns(idx: index.TrajectoryIndex) -> dict:
    return {name: list(getattr(idx, name)) for name in index.FIELDS} | {"facets": idx.facets}


def test_runs_written_after_the_index_was_built_are_read_alone_and_give_what_a_rebuild_gives(store_ws, monkeypatch):
    ws = store_ws
    monkeypatch.setattr(index, "SAVE_INDEX_FROM", 1)
    before = index.trajectory_index(ws)
    replaced = ws.repo.get(Trajectory, "tr0ok").model_copy(update={
        "verdict": Verdict(success=False, reward=0.0, reason="regraded"), "model": "m3"})
    late = now()
    ws.repo.put_many([replaced, _run(1, True, late), _run(2, False, late + timedelta(seconds=1))])
    ws.repo.put(_run(3, False, late - timedelta(days=30)))  # written last but older than every run: re-sorted
    rebuilt = []
    real_build = index._build_trajectory_index
    monkeypatch.setattr(index, "_build_trajectory_index", lambda *a: rebuilt.append(a) or real_build(*a))
    after = index.trajectory_index(ws)
    postgres = is_database_url(ws.settings.database_url)
    assert bool(rebuilt) is not postgres  # PostgreSQL: only the four runs read; TinyDB: everything again
    assert len(after) == len(before) + 3 and after.ids[0] == "new3"
    n = after.position["tr0ok"]
    assert after.verifier[n] == 0 and after.model[n] == "m3" and after.category[after.position["new2"]] == "format"
    assert "m3" in after.facets["model"] and all(after.ids[after.position[i]] == i for i in after.ids)
    caches.clear_all()
    monkeypatch.setattr(index, "_build_trajectory_index", real_build)
    assert _columns(after) == _columns(real_build(ws, after.version))

    # A restart: the file saved above plus what was written since, still without a full read on PostgreSQL.
    ws.repo.put(_run(4, True, late + timedelta(seconds=2)))
    caches.clear_all()
    rebuilt.clear()
    monkeypatch.setattr(index, "_build_trajectory_index", lambda *a: rebuilt.append(a) or real_build(*a))
    restarted = index.trajectory_index(ws)
    assert bool(rebuilt) is not postgres and restarted.ids[-1] == "new4"

    # A deletion cannot be listed as a change: the index is read again in full.
    ws.repo.delete(Trajectory, "new1")
    rebuilt.clear()
    assert "new1" not in index.trajectory_index(ws).position and len(rebuilt) == 1


def test_overview_tables_come_from_the_index_and_people_verdicts(store_ws):
    ws = store_ws
    labels.submit_label(ws, "tr1bad", "alice", "success")  # people overrule the verifier's fail
    labels.submit_label(ws, "tr2ok", "alice", "fail", categories=["wrong argument"])
    table = rubric.failures_by_category(ws, SUITE).set_index("category")
    # Failed runs: 6 verifier fails + the hostile run, less tr1bad (people: success), plus tr2ok (people: fail).
    assert table["failures"].sum() == 7
    assert table.loc["wrong argument", "from people"] == 1
    assert table.loc["wrong tool", "from the verifier"] == 5 and table.loc["format", "from the verifier"] == 1
    methods = reports.success_by_method(ws, SUITE).set_index("method")
    assert methods.loc["none", "labeled"] == 1 and methods.loc["none", "human success %"] == 100
    assert methods.loc["exemplars", "labeled"] == 2 and methods.loc["exemplars", "human success %"] == 50
    ws.repo.put(Label(trajectory_id="tr3bad", annotator="bob", verdict="fail", categories=["format"]))
    assert rubric.failures_by_category(ws, SUITE).set_index("category").loc["format", "from people"] == 1


def test_labels_another_writer_added_are_folded_into_the_label_index(store_ws, monkeypatch):
    """PostgreSQL: only the new labels are read (not every label again) and the index equals a rebuild;
    TinyDB: rebuilt. An undone label (a deletion) reads everything again on both."""
    ws = store_ws
    before = labels.label_index(ws)
    ws.repo.put_many([Label(trajectory_id="tr0ok", annotator="zed", verdict="fail"),
                      Label(trajectory_id="tr0ok", annotator="zed", verdict="success"),
                      Label(trajectory_id="tr1bad", annotator="amy", verdict="fail")])
    rebuilt = []
    real = labels._build_label_index
    monkeypatch.setattr(labels, "_build_label_index", lambda *a: rebuilt.append(1) or real(*a))
    after = labels.label_index(ws)
    assert bool(rebuilt) is not is_database_url(ws.settings.database_url)
    assert after.count == before.count + 3 and after.latest["tr0ok"]["zed"].verdict == "success"
    assert after.by_annotator["amy"] == {"tr1bad"} and "tr0ok" in after.by_annotator["zed"]
    assert "zed" not in before.latest.get("tr0ok", {})  # the index a reader held is left as it was
    full = real(ws.repo.all(Label), ())
    assert after.latest == full.latest and after.by_annotator == full.by_annotator and after.count == full.count

    undone = after.latest["tr1bad"]["amy"]
    ws.repo.delete(Label, undone.id)
    rebuilt.clear()
    assert "amy" not in labels.label_index(ws).latest.get("tr1bad", {}) and rebuilt == [1]


def test_the_judge_folds_in_new_labels_and_keeps_the_verdicts_of_other_runs(store_ws):
    from agentlearn import verdicts
    from storage.records import Resolution

    ws = store_ws
    ws.repo.put(Label(trajectory_id="tr1ok", annotator="amy", verdict="success"))
    before = verdicts.judge(ws)
    assert before.people_succeeded("tr1ok") is True and before.people_said("tr1ok") == "success"
    ws.repo.put_many([Label(trajectory_id="tr0ok", annotator="zed", verdict="fail"),
                      Label(trajectory_id="tr1ok", annotator="bo", verdict="fail")])  # a tie: a fail
    after = verdicts.judge(ws)
    postgres = is_database_url(ws.settings.database_url)
    assert ("tr1ok" in after._people) is False and before.people_succeeded("tr1ok") is True
    fresh = verdicts.Judge(ws.repo.all(Label), ws.repo.all(Resolution))
    for tid in fresh.judged() | after.judged():
        assert after.people_succeeded(tid) == fresh.people_succeeded(tid), tid
        assert after.people_said(tid) == fresh.people_said(tid), tid
    assert after.people_succeeded("tr1ok") is False and after.people_said("tr0ok") == "fail"
    # What was worked out for an untouched run is carried over where the labels were folded in (PostgreSQL).
    ws.repo.put(Label(trajectory_id="tr0bad", annotator="zed", verdict="fail"))
    again = verdicts.judge(ws)
    assert ("tr1ok" in again._people) is postgres
    ws.repo.put(Resolution(trajectory_id="tr0bad", reviewer="rev", verdict="success"))
    assert verdicts.judge(ws).people_succeeded("tr0bad") is True  # a resolution: read again
