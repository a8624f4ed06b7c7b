"""The PostgreSQL backend beyond the shared repository tests: schema, bad rows, copying and backups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from agentlearn import cli
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import CorruptStoreError, SchemaVersionError, StoreError, TinyDBRepository
from storage.postgres_store import PostgresRepository, PostgresVectorTable
from storage.records import Exemplar, Insight, Label, ToolCall, Trajectory
from tests.test_storage import CountingEncoder, label, trajectory


def _sql(url: str, query: str, params: tuple = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


def test_records_are_jsonb_rows_with_indexed_columns(pg_url):
    repo = PostgresRepository(pg_url)
    repo.put(trajectory(3))
    with psycopg.connect(pg_url) as conn:
        suite, task_id, doc = conn.execute("SELECT suite, task_id, doc FROM al_trajectories").fetchone()
    assert (suite, task_id) == ("demo", "task-3") and doc == trajectory(3).model_dump(mode="json")


def test_find_agrees_with_and_without_a_warm_cache(pg_url):
    PostgresRepository(pg_url).put_many([label(i) for i in range(40)] + [trajectory(i) for i in range(5)])
    cold = PostgresRepository(pg_url)
    first = cold.find(Label, annotator="bob", verdict="fail")  # by the indexed column, nothing cached
    cold.all(Label)
    assert cold.find(Label, annotator="bob", verdict="fail") == first  # from the cache
    assert [r.id for r in first] == [f"label-{i:04d}" for i in range(40) if i % 6 == 0]
    assert cold.find(Trajectory, suite="demo", split="train", task_id="task-2") == [trajectory(2)]


def test_put_many_is_all_or_nothing(pg_url, monkeypatch):
    repo = PostgresRepository(pg_url)
    real = PostgresRepository._upsert

    def fail_on_trajectories(cur, kind, records, seq):
        if kind is Trajectory:
            raise RuntimeError("connection lost mid-batch")
        real(cur, kind, records, seq)

    monkeypatch.setattr(PostgresRepository, "_upsert", staticmethod(fail_on_trajectories))
    with pytest.raises(RuntimeError):
        repo.put_many([label(1), label(2), trajectory(1)])
    monkeypatch.undo()
    assert repo.count(Label) == 0 and repo.version(Label) == (0, 0)


def test_bad_row_is_named_and_left_alone(pg_url):
    repo = PostgresRepository(pg_url)
    repo.put_many(label(i) for i in range(3))
    _sql(pg_url, "UPDATE al_labels SET doc = jsonb_set(doc, '{score}', '\"five\"') WHERE id = 'label-0001'")
    for read in (lambda: repo.get(Label, "label-0001"), lambda: PostgresRepository(pg_url).all(Label),
                 lambda: repo.update(Label, "label-0001", lambda r: r)):
        with pytest.raises(CorruptStoreError, match=r"al_labels: record 'label-0001' is not a valid Label: score"):
            read()
    assert repo.get(Label, "label-0002") == label(2)


def test_newer_schema_is_refused_and_older_is_migrated(pg_url):
    repo = PostgresRepository(pg_url)
    repo.put(trajectory(1))
    _sql(pg_url, "UPDATE al_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="schema version 99, newer than this agentlearn"):
        PostgresRepository(pg_url)
    _sql(pg_url, "UPDATE al_meta SET value = '1' WHERE key = 'schema_version'")
    _sql(pg_url, "UPDATE al_trajectories SET doc = doc - 'episode_id'")  # version 1 had no episodes
    assert PostgresRepository(pg_url).get(Trajectory, trajectory(1).id) == trajectory(1)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM al_meta WHERE key = 'schema_version'").fetchone()[0] == 2


def test_connection_errors_hide_the_password():
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL at postgresql://al:\\*\\*\\*@127.0.0.1:1/x") as e:
        PostgresRepository("postgresql://al:s3cret@127.0.0.1:1/x?connect_timeout=2")
    assert "s3cret" not in str(e.value)


def test_vector_row_of_the_wrong_size_is_named_then_rebuilt(pg_url):
    table = PostgresRepository(pg_url).vector_table("tasks")
    table.sync({"a": "alpha", "b": "beta"}, CountingEncoder())
    _sql(pg_url, "UPDATE al_vectors SET vec = '\\x00' WHERE id = 'b'")
    _sql(pg_url, "UPDATE al_vector_versions SET version = version + 1")
    fresh = PostgresRepository(pg_url).vector_table("tasks")
    with pytest.raises(CorruptStoreError, match="row 'b' of table 'tasks' is not 8 float32 values"):
        fresh.load()
    assert fresh.sync({"a": "alpha", "b": "beta"}, CountingEncoder()) == 2
    assert PostgresRepository(pg_url).vector_table("tasks").load().ids == ["a", "b"]


def test_workspace_uses_the_database_url(pg_url, monkeypatch, _agentlearn_home):
    monkeypatch.setenv("AGENTLEARN_DATABASE_URL", pg_url)
    settings = Settings.from_env()
    assert pg_url not in repr(settings)
    ws = open_workspace(settings)
    assert isinstance(ws.repo, PostgresRepository) and isinstance(ws.vectors("tasks"), PostgresVectorTable)
    ws.repo.put(label(1))
    assert not (_agentlearn_home / "store").exists()


def _fill_tinydb_workspace(home: Path) -> None:
    repo = TinyDBRepository(home / "store")
    repo.put_many([label(i) for i in range(300)] + [trajectory(i) for i in range(50)]
                  + [Insight(id="rule", suite="demo", text="Check the tool name.")])
    from storage.vectors import VectorTable

    VectorTable(home / "vectors", "exemplars").sync({f"e{i}": f"text {i}" for i in range(20)}, CountingEncoder())


def test_db_copy_there_and_back(pg_url, _agentlearn_home, tmp_path, capsys):
    _fill_tinydb_workspace(_agentlearn_home)
    assert cli.main(["db", "copy", "--to", pg_url]) == 0
    assert "verified: 50 trajectories, 300 labels, 1 insights, 20 vectors/exemplars" in capsys.readouterr().out
    db = PostgresRepository(pg_url)
    assert db.all(Label) == TinyDBRepository(_agentlearn_home / "store").all(Label)
    assert db.vector_table("exemplars").load().ids == [f"e{i}" for i in range(20)]

    assert cli.main(["db", "copy", "--to", pg_url]) == 2  # a non-empty target needs --force
    assert "is not empty (50 trajectories, 300 labels, 1 insights, 20 vectors/exemplars)" in capsys.readouterr().err
    db.put(Exemplar(id="only-in-db", suite="demo", task_id="t", kind="manual", input=[],
                    call=ToolCall(name="f"), tool="f"))
    assert cli.main(["db", "copy", "--to", pg_url, "--force"]) == 0
    assert db.get(Exemplar, "only-in-db") is None  # the target now holds exactly the source

    back = tmp_path / "back"
    assert cli.main(["db", "copy", "--from", pg_url, "--to", str(back)]) == 0
    again = TinyDBRepository(back / "store")
    assert again.all(Trajectory) == db.all(Trajectory) and again.get(Insight, "rule").text == "Check the tool name."
    from storage.vectors import VectorTable

    source = VectorTable(_agentlearn_home / "vectors", "exemplars").load()
    copied = VectorTable(back / "vectors", "exemplars").load()
    assert copied.ids == source.ids and copied.hashes == source.hashes
    np.testing.assert_array_equal(copied.matrix, source.matrix)


@pytest.mark.parametrize("backend", ["tinydb", "postgres"])
def test_backup_is_a_workspace_that_restores(backend, request, _agentlearn_home, tmp_path, monkeypatch, capsys):
    _fill_tinydb_workspace(_agentlearn_home)
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        assert cli.main(["db", "copy", "--to", url]) == 0
        monkeypatch.setenv("AGENTLEARN_DATABASE_URL", url)
    out = tmp_path / "backup"
    assert cli.main(["backup", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"backup written to {out}" in printed and "50 trajectories, 300 labels" in printed
    assert TinyDBRepository(out / "store").count(Label) == 300
    assert json.loads((out / "store" / "meta.json").read_text())["schema_version"] == 2
    assert cli.main(["backup", "--out", str(out)]) == 2  # never over an earlier backup

    ws = open_workspace()
    ws.repo.delete(Label, "label-0007")
    ws.repo.put(label(7, comment="changed after the backup"))
    target = ws.settings.database_url or str(_agentlearn_home)
    assert cli.main(["db", "copy", "--from", str(out), "--to", target, "--force"]) == 0
    restored = open_workspace()
    assert restored.repo.get(Label, "label-0007") == label(7) and restored.repo.count(Label) == 300
    assert restored.vectors("exemplars").ids == [f"e{i}" for i in range(20)]


def test_backup_while_another_process_writes_is_consistent(_agentlearn_home, tmp_path):
    from tests.test_storage_crash import start_writer

    root = _agentlearn_home / "store"
    TinyDBRepository(root).put_many(label(i) for i in range(100))
    proc = start_writer(str(root), tmp_path / "acked.txt", "w", 3000, threads=2)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    try:
        assert cli.main(["backup", "--out", str(tmp_path / "b")]) == 0
    finally:
        proc.kill()
        proc.wait()
    copied = TinyDBRepository(tmp_path / "b" / "store").all(Label)
    assert len(copied) >= 100 and {r.id for r in copied} >= {f"label-{i:04d}" for i in range(100)}


# --- text PostgreSQL cannot store, lock order, restarts ---------------------------------------------


def test_a_nul_character_is_refused_naming_the_record_and_nothing_of_the_batch_is_written(pg_url):
    db = PostgresRepository(pg_url)
    batch = [label(i) for i in range(30)] + [label(30, comment="a\x00b")]
    with pytest.raises(StoreError, match=r"Label 'label-0030': comment holds a NUL character \(\\u0000\), which "
                                         r"PostgreSQL cannot store; nothing of its batch was written"):
        db.put_many(batch)
    assert db.count(Label) == 0
    db.put(label(1, comment="a literal \\u0000 is fine"))  # six characters, no NUL
    idle = len(db._idle)
    with pytest.raises(StoreError, match="holds a NUL"):
        db.update(Label, "label-0001", lambda r: r.model_copy(update={"comment": "\x00"}))
    assert len(db._idle) == idle  # the rolled-back connection went back to the pool
    assert db.get(Label, "label-0001").comment == "a literal \\u0000 is fine"


def test_db_copy_of_a_store_holding_a_nul_names_the_record_and_copies_nothing(pg_url, _agentlearn_home, capsys):
    _fill_tinydb_workspace(_agentlearn_home)
    TinyDBRepository(_agentlearn_home / "store").put(label(5, comment="pasted\x00text"))
    assert cli.main(["db", "copy", "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert "Label 'label-0005': comment holds a NUL character" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    db = PostgresRepository(pg_url)
    assert (db.count(Trajectory), db.count(Label)) == (0, 0)


def test_concurrent_update_and_delete_of_one_record_never_deadlock(pg_url):
    import threading

    db = PostgresRepository(pg_url)
    errors: list[BaseException] = []
    for round_ in range(60):
        db.put(Insight(id="rule", suite="s", text="r", importance=0))
        start = threading.Barrier(2)

        def update(start: threading.Barrier) -> None:
            start.wait()
            try:
                db.update(Insight, "rule", lambda r: r.model_copy(update={"importance": r.importance + 1}))
            except StoreError as e:
                if "no Insight with id" not in str(e):  # the delete came first: expected
                    errors.append(e)

        def delete(start: threading.Barrier) -> None:
            start.wait()
            try:
                db.delete(Insight, "rule")
            except StoreError as e:
                errors.append(e)

        workers = [threading.Thread(target=update, args=(start,)), threading.Thread(target=delete, args=(start,))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors, f"round {round_}: {errors[0]}"
        assert db.get(Insight, "rule") is None


@pytest.fixture(scope="module")
def own_server():
    """A PostgreSQL server of this module's own, for tests that restart it."""
    from tests.conftest import PostgresServer

    server = PostgresServer()
    yield server
    server.remove()


def test_writes_after_a_server_restart_retry_once_on_a_fresh_connection(own_server, monkeypatch):
    import threading

    db = PostgresRepository(own_server.url)

    def hold_connections() -> None:  # fill the pool with several connections, as a busy server does
        with db._transaction() as cur:
            cur.execute("SELECT pg_sleep(0.2)")

    workers = [threading.Thread(target=hold_connections) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    pooled = list(db._idle)
    assert len(pooled) >= 2
    own_server.restart()
    for i in range(10):
        db.put(label(i))
    assert db.count(Label) == 10 and all(conn.closed for conn in pooled)

    # A connection that looks alive but dies at BEGIN is retried once; nothing is done twice.
    own_server.restart()
    import storage.postgres_store as pg

    monkeypatch.setattr(pg, "_readable", lambda conn: False)  # as if the server's goodbye had not arrived yet
    db.put(label(100))
    db.update(Label, "label-0100", lambda r: r.model_copy(update={"score": 5}))
    assert db.get(Label, "label-0100").score == 5 and db.count(Label) == 11
