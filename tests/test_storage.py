"""The repository on both backends (TinyDB files, a real PostgreSQL), then TinyDB's files: corruption,
lost meta.json, migrations, vector tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import storage.tinydb_store as tinydb_store
from storage import (
    CorruptStoreError,
    SchemaVersionError,
    StoreError,
    TinyDBRepository,
    open_repository,
    open_vector_table,
)
from storage.records import Insight, Label, Message, Step, Suite, Trajectory, Verdict
from storage.vectors import VectorTable, text_hash
from tests.conftest import open_store

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def label(i: int, **changes) -> Label:
    fields = dict(id=f"label-{i:04d}", trajectory_id=f"traj-{i % 7}", annotator="ann" if i % 2 else "bob",
                  verdict="success" if i % 3 else "fail", score=1 + i % 5, created=T0 + timedelta(seconds=i))
    fields.update(changes)
    return Label(**fields)


def trajectory(i: int) -> Trajectory:
    return Trajectory(
        id=f"traj-{i:05d}", task_id=f"task-{i % 50}", suite="demo", split="train",
        prompt=[Message(role="system", content="You call tools."), Message(role="user", content=f"Do {i}")],
        steps=[Step(thought="think", action='{"name": "f"}', observation="ok")],
        output='<tool_call>{"name": "f", "arguments": {}}</tool_call>',
        verdict=Verdict(success=i % 2 == 0, reward=float(i % 2 == 0), reason="name matches"),
        created=T0 + timedelta(seconds=i),
    )


def shard_of(repo: TinyDBRepository, record) -> Path:
    return repo.root / record.table / f"{repo._shard_index(type(record), record.id):02d}.json"


# --- repository behaviour ------------------------------------------------------------------------


def test_put_get_roundtrip_and_missing(store_location):
    repo = open_store(store_location)
    t = trajectory(1)
    assert repo.put(t) is t
    got = repo.get(Trajectory, t.id)
    assert got == t
    assert got.verdict.success is False and got.prompt[1].content == "Do 1"
    assert repo.get(Trajectory, "nope") is None
    assert repo.get(Label, t.id) is None  # ids are per kind


def test_put_replaces_by_id(store_location):
    repo = open_store(store_location)
    repo.put(label(1, comment="first"))
    repo.put(label(1, comment="second"))
    assert repo.count(Label) == 1
    assert repo.get(Label, "label-0001").comment == "second"
    assert open_store(store_location).get(Label, "label-0001").comment == "second"


def test_all_is_oldest_first_across_shards(store_location):
    repo = open_store(store_location)
    order = [5, 0, 17, 3, 11, 2, 9]
    for i in order:
        repo.put(label(i))
    assert [r.id for r in repo.all(Label)] == [f"label-{i:04d}" for i in sorted(order)]
    fresh = open_store(store_location)
    assert [r.id for r in fresh.all(Label)] == [f"label-{i:04d}" for i in sorted(order)]


def test_find_by_fields(store_location):
    repo = open_store(store_location)
    repo.put_many(label(i) for i in range(30))
    fails = repo.find(Label, verdict="fail")
    assert [r.id for r in fails] == [f"label-{i:04d}" for i in range(30) if i % 3 == 0]
    both = repo.find(Label, verdict="fail", annotator="bob")
    assert [r.id for r in both] == [f"label-{i:04d}" for i in range(30) if i % 3 == 0 and i % 2 == 0]
    assert repo.find(Label, annotator="nobody") == []


def test_find_in_reads_many_keys_at_once_cold_and_warm(store_location):
    """By id, by an indexed field and by any field; `skip` leaves records out. PostgreSQL answers from its
    indexes while nothing is cached and from the cache once it is warm: the answers agree."""
    repo = open_store(store_location)
    repo.put_many([label(i) for i in range(30)] + [trajectory(i) for i in range(5)])
    for fresh in (open_store(store_location), repo):
        if fresh is repo:
            repo.all(Label)  # warm
        by_id = fresh.find_in(Label, "id", ["label-0007", "label-0003", "missing"])
        assert [r.id for r in by_id] == ["label-0003", "label-0007"]  # oldest first
        by_run = fresh.find_in(Label, "trajectory_id", {"traj-1", "traj-2"}, skip={"label-0001"})
        assert [r.id for r in by_run] == [f"label-{i:04d}" for i in range(30) if i % 7 in (1, 2) and i != 1]
        assert [r.id for r in fresh.find_in(Label, "score", [5])] == [f"label-{i:04d}" for i in range(4, 30, 5)]
        assert fresh.find_in(Label, "id", []) == [] and fresh.find_in(Label, "id", ["label-0002"], skip=["label-0002"]) == []
    assert open_store(store_location).find_in(Trajectory, "task_id", ["task-3"]) == [trajectory(3)]


def test_update_delete_count(store_location):
    repo = open_store(store_location)
    repo.put(Insight(id="rule", suite="s", text="Check the tool name."))
    new = repo.update(Insight, "rule", lambda r: r.model_copy(update={"importance": r.importance + 1}))
    assert new.importance == 3
    assert open_store(store_location).get(Insight, "rule").importance == 3
    with pytest.raises(StoreError, match="no Insight with id 'missing'"):
        repo.update(Insight, "missing", lambda r: r)
    assert repo.count(Insight) == 1
    assert repo.delete(Insight, "rule") is True
    assert repo.delete(Insight, "rule") is False
    assert repo.count(Insight) == 0 and repo.get(Insight, "rule") is None
    assert open_store(store_location).count(Insight) == 0


def test_update_does_not_change_the_cached_record_on_failure(store_location):
    repo = open_store(store_location)
    repo.put(Insight(id="rule", suite="s", text="a"))

    def broken(r):
        r.text = "changed in place"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        repo.update(Insight, "rule", broken)
    assert repo.get(Insight, "rule").text == "a"


def test_version_changes_only_on_writes(store_location):
    repo = open_store(store_location)
    v0 = repo.version(Label)
    repo.put(label(1))
    v1 = repo.version(Label)
    assert v1 != v0
    repo.all(Label), repo.get(Label, "label-0001"), repo.count(Label)
    assert repo.version(Label) == v1
    repo.update(Label, "label-0001", lambda r: r.model_copy(update={"comment": "x"}))
    v2 = repo.version(Label)
    assert v2 != v1
    repo.delete(Label, "label-0001")
    assert repo.version(Label) != v2
    assert repo.version(Trajectory) == open_store(store_location).version(Trajectory)


def test_put_many_writes_each_shard_once(tmp_path, monkeypatch):
    repo = open_repository(str(tmp_path))
    writes: list[Path] = []
    real = tinydb_store.write_durable
    monkeypatch.setattr(tinydb_store, "write_durable", lambda p, d: (writes.append(p), real(p, d)))
    records = [label(i) for i in range(500)] + [trajectory(i) for i in range(3)] + [Suite(name="s")]
    assert repo.put_many(records) == 504
    touched = {shard_of(repo, r) for r in records}
    # One pending file per touched shard, no more, renamed into place; nothing of the batch is left over.
    assert sorted(p.with_name(p.name.split(".")[1] + ".json") for p in writes) == sorted(touched)
    assert not [p for p in tmp_path.rglob(".*") if p.is_file() and not p.name.endswith(".lock")]
    assert repo.count(Label) == 500 and repo.count(Trajectory) == 3 and repo.count(Suite) == 1
    assert TinyDBRepository(tmp_path).count(Label) == 500


def test_put_many_empty_and_unknown_kind(store_location):
    from storage.records import Record

    class NotStored(Record):
        table = "not_stored"

    repo = open_store(store_location)
    assert repo.put_many([]) == 0
    with pytest.raises(StoreError, match="NotStored is not a stored record kind"):
        repo.put_many([label(1), NotStored()])
    assert repo.count(Label) == 0  # the batch is checked before anything is written


def test_two_instances_see_each_others_writes(store_location):
    a, b = open_store(store_location), open_store(store_location)
    assert a.all(Label) == [] and b.all(Label) == []  # both have parsed (empty) shards cached
    a.put(label(1))
    assert b.get(Label, "label-0001") == label(1)
    b.put_many([label(2), label(3)])
    assert [r.id for r in a.all(Label)] == ["label-0001", "label-0002", "label-0003"]
    b.update(Label, "label-0001", lambda r: r.model_copy(update={"comment": "by b"}))
    assert a.get(Label, "label-0001").comment == "by b"
    a.update(Label, "label-0001", lambda r: r.model_copy(update={"comment": r.comment + ", then a"}))
    assert b.get(Label, "label-0001").comment == "by b, then a"
    a.delete(Label, "label-0002")
    assert b.get(Label, "label-0002") is None and b.count(Label) == 2
    assert a.version(Label) == b.version(Label)


def test_files_are_tinydb_json_keyed_by_record_id(tmp_path):
    repo = open_repository(str(tmp_path))
    t = trajectory(4)
    repo.put(t)
    assert json.loads(shard_of(repo, t).read_text()) == {"records": {t.id: t.model_dump(mode="json")}}
    assert json.loads((tmp_path / "meta.json").read_text()) == {"schema_version": 2, "shards": tinydb_store.SHARDS}
    assert not list(tmp_path.rglob("*.tmp"))


def test_shard_counts_are_fixed_per_store(tmp_path, monkeypatch):
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"schema_version": 2}))  # written before shard counts were kept
    repo = TinyDBRepository(old)
    assert repo._shard_counts == tinydb_store.LEGACY_SHARDS
    assert json.loads((old / "meta.json").read_text())["shards"] == tinydb_store.LEGACY_SHARDS
    repo.put_many(trajectory(i) for i in range(300))
    assert len(list((old / "trajectories").glob("*.json"))) == 64
    monkeypatch.setattr(tinydb_store, "SHARDS", {"trajectories": 7})  # a later release picks other counts
    again = TinyDBRepository(old)
    assert again.count(Trajectory) == 300 and again.get(Trajectory, "traj-00123") == trajectory(123)
    new = TinyDBRepository(tmp_path / "new")
    new.put_many(trajectory(i) for i in range(300))
    assert len(list((tmp_path / "new" / "trajectories").glob("*.json"))) == 7


# --- bad files: clear errors, nothing overwritten ----------------------------------------------


def _store_with_labels(root: Path) -> tuple[TinyDBRepository, Path, Label]:
    repo = TinyDBRepository(root)
    repo.put_many(label(i) for i in range(40))
    victim = label(7)
    return repo, shard_of(repo, victim), victim


def _assert_refused(root: Path, path: Path, before: bytes, victim: Label, match: str) -> None:
    repo = TinyDBRepository(root)
    with pytest.raises(CorruptStoreError, match=match):
        repo.all(Label)
    with pytest.raises(CorruptStoreError, match=match):
        repo.get(Label, victim.id)
    for write in (lambda: repo.put(victim.model_copy(update={"comment": "overwrite?"})),
                  lambda: repo.put_many([label(i, comment="x") for i in range(40)]),
                  lambda: repo.update(Label, victim.id, lambda r: r),
                  lambda: repo.delete(Label, victim.id)):
        with pytest.raises(CorruptStoreError, match=match):
            write()
        assert path.read_bytes() == before, "a refused write must not touch the file"


def test_record_with_wrong_field_type_is_named_and_never_overwritten(tmp_path):
    repo, path, victim = _store_with_labels(tmp_path)
    data = json.loads(path.read_text())
    data["records"][victim.id]["score"] = "five"
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    match = rf"{path}: record '{victim.id}' is not a valid Label: score"
    _assert_refused(tmp_path, path, before, victim, match)
    # The instance that wrote the file before it was edited also notices the change.
    with pytest.raises(CorruptStoreError, match=match):
        repo.all(Label)
    assert path.read_bytes() == before
    # Other tables and untouched shards still work.
    other = next(label(i) for i in range(40) if shard_of(repo, label(i)) != path)
    assert repo.get(Label, other.id) == other
    repo.put(trajectory(1))
    assert repo.count(Trajectory) == 1


def test_truncated_shard_is_named_and_never_overwritten(tmp_path):
    _, path, victim = _store_with_labels(tmp_path)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    before = path.read_bytes()
    _assert_refused(tmp_path, path, before, victim, rf"{path} is not valid JSON")


def test_empty_shard_is_corrupt_not_empty(tmp_path):
    # TinyDB's in-place write can leave a zero-byte file; reading it as "no records" would let
    # the next write replace everything that was there.
    _, path, victim = _store_with_labels(tmp_path)
    path.write_bytes(b"")
    _assert_refused(tmp_path, path, b"", victim, rf"{path} is empty")


def test_shard_holding_a_non_object_is_refused(tmp_path):
    _, path, victim = _store_with_labels(tmp_path)
    path.write_text("[1, 2]")
    _assert_refused(tmp_path, path, b"[1, 2]", victim, rf"{path} does not hold")


def test_unreadable_meta_is_refused(tmp_path):
    TinyDBRepository(tmp_path).put(label(1))
    (tmp_path / "meta.json").write_text('{"schema_vers')
    with pytest.raises(CorruptStoreError, match="meta.json is unreadable"):
        TinyDBRepository(tmp_path)
    assert (tmp_path / "meta.json").read_text() == '{"schema_vers'


def test_lost_meta_json_recovers_the_shard_layout_from_the_files(tmp_path):
    root = tmp_path / "store"
    TinyDBRepository(root).put_many(trajectory(i) for i in range(400))
    (root / "meta.json").unlink()
    repo = TinyDBRepository(root)
    assert repo.count(Trajectory) == 400  # not 109: the old default of 64 shards would hide most of them
    assert json.loads((root / "meta.json").read_text())["shards"]["trajectories"] == 256
    assert TinyDBRepository(root).count(Trajectory) == 400


def test_lost_meta_json_of_an_unusual_layout_is_found_by_search(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setattr(tinydb_store, "SHARDS", {"trajectories": 7})
    TinyDBRepository(root).put_many(trajectory(i) for i in range(100))
    monkeypatch.undo()
    (root / "meta.json").unlink()
    assert TinyDBRepository(root).count(Trajectory) == 100
    assert json.loads((root / "meta.json").read_text())["shards"]["trajectories"] == 7


def test_lost_meta_json_with_files_no_layout_fits_is_refused(tmp_path):
    root = tmp_path / "store"
    TinyDBRepository(root).put(label(1))
    (root / "meta.json").unlink()
    doc = label(1).model_dump(mode="json")
    for index in (0, 1):  # one id in two shards: no shard count puts it in both
        (root / "labels" / f"{index:02d}.json").write_text(json.dumps({"records": {doc["id"]: doc}}))
    before = {p: p.read_bytes() for p in root.rglob("*.json")}
    with pytest.raises(CorruptStoreError, match="meta.json is missing .* fit no shard layout") as e:
        TinyDBRepository(root)
    assert "python -m agentlearn backup" in str(e.value) and "delete" not in str(e.value)
    assert {p: p.read_bytes() for p in root.rglob("*.json")} == before and not (root / "meta.json").exists()


def test_corrupt_store_errors_name_the_backup_command_and_never_say_delete(tmp_path):
    _, path, _ = _store_with_labels(tmp_path)
    for content in (b"", b'{"records": {', b"\xff\xfe"):
        path.write_bytes(content)
        with pytest.raises(CorruptStoreError) as e:
            TinyDBRepository(tmp_path).all(Label)
        assert str(path) in str(e.value) and "python -m agentlearn backup" in str(e.value)
        assert "delete" not in str(e.value)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(CorruptStoreError, match="meta.json is unreadable") as e:
        TinyDBRepository(tmp_path)
    assert "delete" not in str(e.value)


# --- migrations ------------------------------------------------------------------------------------


def _make_v1_store(root: Path, shards: dict[str, int] | None = None) -> TinyDBRepository:
    root.mkdir()
    (root / "meta.json").write_text(json.dumps({"schema_version": 2, "shards": shards or tinydb_store.SHARDS}))
    repo = TinyDBRepository(root)
    repo.put_many([trajectory(i) for i in range(20)] + [label(i) for i in range(5)])
    for path in (root / "trajectories").glob("*.json"):
        data = json.loads(path.read_text())
        for doc in data["records"].values():
            del doc["episode_id"]  # version 1 had no Reflexion episodes
        path.write_text(json.dumps(data))
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "schema_version": 1}))
    return repo


def test_version_1_store_is_backed_up_and_migrated(tmp_path):
    root = tmp_path / "store"
    _make_v1_store(root)
    old_files = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.json")}
    repo = TinyDBRepository(root)
    assert json.loads((root / "meta.json").read_text()) == {"schema_version": 2, "shards": tinydb_store.SHARDS}
    backup = tmp_path / "store.v1.bak"
    assert {p.relative_to(backup): p.read_bytes() for p in backup.rglob("*.json")} == old_files
    for path in (root / "trajectories").glob("*.json"):
        for doc in json.loads(path.read_text())["records"].values():
            assert doc["episode_id"] == ""
    assert repo.count(Trajectory) == 20 and repo.count(Label) == 5
    assert repo.get(Trajectory, "traj-00003") == trajectory(3)
    # Opening again does not migrate (or back up) twice.
    before = {p: p.read_bytes() for p in root.rglob("*.json")}
    TinyDBRepository(root)
    assert {p: p.read_bytes() for p in root.rglob("*.json")} == before


def test_store_without_meta_but_with_data_counts_as_version_1(tmp_path):
    root = tmp_path / "store"
    _make_v1_store(root, shards=tinydb_store.LEGACY_SHARDS)
    (root / "meta.json").unlink()
    repo = TinyDBRepository(root)
    assert json.loads((root / "meta.json").read_text()) == {"schema_version": 2, "shards": tinydb_store.LEGACY_SHARDS}
    assert (tmp_path / "store.v1.bak").is_dir()
    assert repo.count(Trajectory) == 20 and repo.get(Trajectory, "traj-00003") == trajectory(3)


def test_newer_store_is_refused_untouched(tmp_path):
    TinyDBRepository(tmp_path).put(label(1))
    (tmp_path / "meta.json").write_text(json.dumps({"schema_version": 99}))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SchemaVersionError, match="schema version 99, newer than this agentlearn"):
        TinyDBRepository(tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_migration_refuses_a_corrupt_shard_without_changing_anything(tmp_path):
    root = tmp_path / "store"
    _make_v1_store(root)
    bad = root / "labels" / "00.json"
    bad.write_text('{"records": {"x"')
    before = {p: p.read_bytes() for p in root.rglob("*.json")}
    with pytest.raises(CorruptStoreError, match=rf"{bad} is not valid JSON"):
        TinyDBRepository(root)
    assert {p: p.read_bytes() for p in root.rglob("*.json")} == before


# --- vector tables --------------------------------------------------------------------------------


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        rng = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts]
        m = np.asarray(rng, dtype=np.float32).reshape(len(texts), 8)
        return m / np.linalg.norm(m, axis=1, keepdims=True)


def vector_table(store_location: str, tmp_path: Path, name: str = "tasks"):
    """A new instance of a vector table beside the store (file for TinyDB, rows for PostgreSQL)."""
    return open_vector_table(open_store(store_location), tmp_path / "vectors", name)


def test_vector_table_encodes_only_what_changed(store_location, tmp_path):
    enc = CountingEncoder()
    table = vector_table(store_location, tmp_path)
    assert table.sync({"a": "alpha", "b": "beta", "c": "gamma"}, enc) == 3
    assert enc.calls == [["alpha", "beta", "gamma"]]
    assert table.ids == ["a", "b", "c"] and table.matrix.shape == (3, 8) and table.matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(table.matrix, axis=1), 1, rtol=1e-5)
    b_row = table.rows(["b"]).copy()

    assert table.sync({"a": "alpha", "b": "beta", "c": "gamma"}, enc) == 0
    assert len(enc.calls) == 1  # nothing new: the encoder is not called at all
    assert table.sync({"a": "alpha", "b": "beta", "c": "GAMMA", "d": "delta"}, enc) == 2
    assert enc.calls[-1] == ["GAMMA", "delta"]
    assert table.sync({"b": "beta", "c": "GAMMA", "d": "delta"}, enc) == 0  # a removal encodes nothing
    assert len(enc.calls) == 2
    assert table.ids == ["b", "c", "d"] and table.matrix.shape == (3, 8)
    np.testing.assert_array_equal(table.rows(["b"]), b_row)

    other = vector_table(store_location, tmp_path).load()  # a second instance (another process) reads it
    assert other.ids == table.ids and other.hashes == table.hashes
    np.testing.assert_array_equal(other.matrix, table.matrix)
    assert other.sync({"b": "beta", "c": "GAMMA", "d": "delta"}, enc) == 0
    assert len(enc.calls) == 2
    before = other.version()
    table.sync({"b": "beta"}, enc)
    assert other.version() != before and other.load().ids == ["b"]


def test_vector_table_is_one_file_and_reads_the_old_pair_once(tmp_path):
    enc = CountingEncoder()
    VectorTable(tmp_path, "tasks").sync({"a": "alpha"}, enc)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["tasks.npz"]
    # Written by an older version: a matrix and its index in two files.
    old = tmp_path / "old"
    old.mkdir()
    np.save(old / "t.npy", enc(["x", "y"]))
    (old / "t.json").write_text(json.dumps({"ids": ["x", "y"], "hashes": [text_hash("x"), text_hash("y")]}))
    table = VectorTable(old, "t").load()
    assert table.ids == ["x", "y"]
    assert table.sync({"x": "x", "y": "y", "z": "z"}, enc) == 1
    assert sorted(p.name for p in old.iterdir() if not p.name.startswith(".")) == ["t.npz"]
    assert VectorTable(old, "t").load().ids == ["x", "y", "z"]


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a zip"])
def test_unreadable_vector_file_is_named_then_rebuilt_from_the_store(tmp_path, damage):
    enc = CountingEncoder()
    VectorTable(tmp_path, "tasks").sync({"a": "alpha", "b": "beta"}, enc)
    path = tmp_path / "tasks.npz"
    good = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": good[: len(good) // 2], "not a zip": b"\x93NUMPY junk"}[damage])
    bad = path.read_bytes()
    with pytest.raises(CorruptStoreError, match=rf"{path} is (empty|unreadable)"):
        VectorTable(tmp_path, "tasks").load()
    assert path.read_bytes() == bad  # reading never changes it
    table = VectorTable(tmp_path, "tasks")
    assert table.sync({"a": "alpha", "b": "beta"}, enc) == 2  # rebuilt from the texts the store gives
    assert VectorTable(tmp_path, "tasks").load().ids == ["a", "b"]
    assert (tmp_path / "tasks.npz.corrupt").read_bytes() == bad  # kept aside, not deleted


def test_old_pair_that_disagrees_is_named_then_rebuilt(tmp_path):
    enc = CountingEncoder()
    np.save(tmp_path / "tasks.npy", enc(["a", "b"]))
    index = tmp_path / "tasks.json"
    index.write_text(json.dumps({"ids": ["a", "b", "c"], "hashes": ["1", "2", "3"]}))
    with pytest.raises(CorruptStoreError, match="lists 3 ids but .*tasks.npy has 2 rows"):
        VectorTable(tmp_path, "tasks").load()
    (tmp_path / "tasks.npy").write_bytes(b"")
    with pytest.raises(CorruptStoreError, match=r"tasks.npy / .*tasks.json unreadable \(0 bytes\)"):
        VectorTable(tmp_path, "tasks").load()
    assert VectorTable(tmp_path, "tasks").sync({"a": "alpha"}, enc) == 1
    assert VectorTable(tmp_path, "tasks").load().ids == ["a"]


def test_workspace_rebuilds_an_unreadable_vector_table(ws):
    ws.vectors("tasks").sync({"a": "alpha"}, CountingEncoder())
    (ws.settings.vectors_dir / "tasks.npz").write_bytes(b"")
    ws._vectors.clear()  # as a newly started server would
    table = ws.vectors("tasks")
    assert table.ids == []  # unreadable: empty, not an exception on every page
    assert table.sync({"a": "alpha"}, CountingEncoder()) == 1


SYNCER = """
import sys, time
import numpy as np
from storage import open_repository, open_vector_table, is_database_url
loc, folder = sys.argv[1], sys.argv[2]
table = open_vector_table(open_repository(loc, loc if is_database_url(loc) else ""), folder, "tasks")
enc = lambda texts: np.ones((len(texts), 8), dtype=np.float32)
print("ready", flush=True)
end, n = time.time() + float(sys.argv[3]), 0
while time.time() < end:
    n += 1
    table.sync({f"id-{i}": f"text {n} {i}" for i in range(50 + n % 50)}, enc)
print(n, flush=True)
"""


def test_loads_during_concurrent_syncs_never_fail(store_location, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "vectors"
    vector_table(store_location, tmp_path).sync({"x": "x"}, CountingEncoder())
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", SYNCER, store_location, str(folder), "3"], stdout=subprocess.PIPE,
                            text=True, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert proc.stdout.readline().strip() == "ready"
    loads, seen = 0, set()
    while proc.poll() is None:
        table = vector_table(store_location, tmp_path).load()  # a fresh reader each time: always a full read
        assert len(table.ids) == len(table.hashes) == len(table.matrix)
        seen.add(len(table.ids))
        loads += 1
    syncs = int(proc.stdout.readline())
    assert proc.wait() == 0 and syncs > 10 and loads > 10
    assert len(seen) > 2, "the loads should have seen the table change"


def test_update_must_keep_the_id(store_location):
    repo = open_store(store_location)
    repo.put(label(1))
    with pytest.raises(StoreError, match="must return a Label with the same id"):
        repo.update(Label, "label-0001", lambda r: r.model_copy(update={"id": "label-0002"}))
    assert [r.id for r in repo.all(Label)] == ["label-0001"]


def test_reading_leaves_the_garbage_collector_as_it_was(tmp_path):
    import gc

    open_repository(str(tmp_path)).put_many(label(i) for i in range(50))
    assert gc.isenabled()
    TinyDBRepository(tmp_path).all(Label)
    assert gc.isenabled()
    gc.disable()
    try:
        TinyDBRepository(tmp_path).count(Label)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- batches across shards: all or nothing -------------------------------------------------------


def _debris(root: Path) -> list[Path]:
    """Temp, pending and marker files left in a store (lock files are expected)."""
    return [p for p in root.rglob("*") if p.is_file() and (p.name.endswith((".tmp", ".pending")) or p.parent.name == ".txn")]


def test_text_that_is_not_unicode_refuses_the_whole_batch_naming_the_record(tmp_path):
    repo = open_repository(str(tmp_path))
    batch = [label(i) for i in range(60)]
    batch[40] = label(40, comment="bad \ud800 text")  # json.loads of "\\ud800" makes such a string
    with pytest.raises(StoreError, match=r"record 'label-0040' holds text that is not valid Unicode \(\\ud800"):
        repo.put_many(batch)
    assert repo.count(Label) == 0 and TinyDBRepository(tmp_path).count(Label) == 0
    assert _debris(tmp_path) == []


def test_a_crash_between_shard_renames_is_finished_on_open(tmp_path, monkeypatch):
    repo = open_repository(str(tmp_path))
    real, renamed = tinydb_store.os.replace, []

    def crash_after_three(src, dst):  # the process dies between two renames of one committed batch
        if str(src).endswith(".pending"):
            if len(renamed) == 3:
                raise KeyboardInterrupt("killed")
            renamed.append(dst)
        real(src, dst)

    monkeypatch.setattr(tinydb_store.os, "replace", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        repo.put_many([label(i) for i in range(200)])
    monkeypatch.setattr(tinydb_store.os, "replace", real)
    assert len(renamed) == 3 and len(list((tmp_path / ".txn").iterdir())) == 1  # committed, 3 shards in place
    assert TinyDBRepository(tmp_path).count(Label) == 200  # rolled forward when opened
    assert _debris(tmp_path) == []


def test_a_committed_batch_is_finished_by_the_next_writer_or_reader_of_an_open_store(tmp_path, monkeypatch):
    repo, other = open_repository(str(tmp_path)), open_repository(str(tmp_path))
    real = tinydb_store.os.replace
    monkeypatch.setattr(tinydb_store.os, "replace", lambda s, d: (_ for _ in ()).throw(KeyboardInterrupt())
                        if str(s).endswith(".pending") else real(s, d))
    with pytest.raises(KeyboardInterrupt):
        repo.put_many([label(i) for i in range(200)])
    monkeypatch.setattr(tinydb_store.os, "replace", real)
    assert other.count(Label) == 200  # a process that had the store open already sees the whole batch
    other.put(label(7, comment="later"))  # and a later write is never undone by the old batch
    assert TinyDBRepository(tmp_path).get(Label, "label-0007").comment == "later"
    assert _debris(tmp_path) == []


def test_a_crash_before_the_commit_leaves_every_shard_as_it_was(tmp_path, monkeypatch):
    repo = open_repository(str(tmp_path))
    repo.put_many([label(i, comment="old") for i in range(200)])
    real, written = tinydb_store.write_durable, []

    def crash_on_fifth(path, data):
        if len(written) == 5:
            raise KeyboardInterrupt("killed")
        written.append(path)
        real(path, data)

    monkeypatch.setattr(tinydb_store, "write_durable", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        repo.put_many([label(i, comment="new") for i in range(300)])
    monkeypatch.setattr(tinydb_store, "write_durable", real)
    for path in written:  # a killed process cannot remove its pending files: put them back
        path.write_bytes(b"{")
    reopened = TinyDBRepository(tmp_path)
    assert reopened.count(Label) == 200 and {r.comment for r in reopened.all(Label)} == {"old"}
    assert _debris(tmp_path) == []


def test_stale_temp_files_are_removed_on_open_but_a_live_writers_are_kept(tmp_path):
    import subprocess

    repo = open_repository(str(tmp_path))
    repo.put(label(1))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [tmp_path / f".meta.json.{dead.pid}.1.tmp", tmp_path / "labels" / f".03.json.{dead.pid}.9.tmp"]
    live = tmp_path / "labels" / f".04.json.{__import__('os').getpid()}.9.tmp"
    for path in [*stale, live]:
        path.write_bytes(b"{")
    TinyDBRepository(tmp_path)
    assert [p.exists() for p in stale] == [False, False] and live.exists()


def test_a_vector_folder_loses_the_temp_files_of_dead_writers_when_opened(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".exemplars.npz.{dead.pid}.5.tmp"
    stale.write_bytes(b"x")
    VectorTable(tmp_path, "exemplars")
    assert not stale.exists()
