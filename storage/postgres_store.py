"""The PostgreSQL backend, for teams: the Repository interface on one database that many servers share.

- One table per record kind, `al_<table>`: the record as JSONB, plus `created`, the fields that queries
  filter on (suite, task_id, trajectory_id, annotator, status, kind, split) as generated, indexed
  columns, and `seq`, the table version that last wrote the row.
- `al_versions` holds one counter per table. Every write bumps it first, in the same transaction: that
  row lock orders the writers of a table, so `seq` grows in commit order and a reader can fetch only
  the rows written since it last looked (the parsed records are cached per table, as in TinyDB).
- update() reads with SELECT ... FOR UPDATE inside one transaction: atomic across processes.
- Vectors live in `al_vectors` as float32 bytes, one row per id, and are searched in NumPy as with files.
- Every write bumps the table's counter before it touches a row (put, update and delete alike): one
  lock order, so two writers of one record wait for each other instead of deadlocking.
- PostgreSQL cannot store a NUL character (U+0000) in text: a record holding one is refused with a
  StoreError naming it before anything of its batch is written (db copy checks every record first).
Connections are pooled per process (a forked child opens its own). A pooled connection the server has
closed (a restart) is dropped before use, and a transaction whose BEGIN fails on a reused connection is
retried once on a fresh one: nothing of it reached the server. A URL's password never appears in errors.
"""

from __future__ import annotations

import os
import re
import select
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg.pq import TransactionStatus
from pydantic import ValidationError

from storage import migrations
from storage.errors import CorruptStoreError, SchemaVersionError, StoreError
from storage.records import ALL_RECORDS, Record, store_order
from storage.vectors import VectorTableBase

R = TypeVar("R", bound=Record)

INDEXED = ("suite", "task_id", "trajectory_id", "annotator", "status", "kind", "split")
_IDLE_MAX = 8  # idle connections kept per process
_SCHEMA_LOCK = 0x61676C6E  # advisory lock id: two processes creating the tables at once would collide


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def table_name(kind: type[Record]) -> str:
    """The SQL table of a record kind."""
    return f"al_{kind.table}"


def _indexed(kind: type[Record]) -> list[str]:
    return [f for f in INDEXED if f in kind.model_fields] + [f for f in kind.lookup if f not in INDEXED]


def _one_line(e: Exception) -> str:
    """libpq's message (often several lines, with tabs) as one line."""
    return " ".join(str(e).split())


def _readable(conn: psycopg.Connection) -> bool:
    """Whether an idle connection has bytes waiting: only a server closing it sends any."""
    try:
        ready, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(ready)


def nul_path(value: Any, path: str = "") -> str | None:
    """The JSON path of the first string (or key) in a dumped record that holds a NUL character, else None."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return where or "the record"
        elif isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                inner = f"{where}.{key}" if where else str(key)
                if "\x00" in key:
                    return inner
                stack.append((child, inner))
        elif isinstance(node, list):
            stack.extend((child, f"{where}.{i}") for i, child in reversed(list(enumerate(node))))
    return None


class _Cache:
    """Parsed records of one table as of table version `version` (and `deletes` deletions)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, Record] = {}
        self.ordered: list[Record] | None = None  # the records in the store's order, once asked for
        self.version = -1
        self.deletes = -1


class PostgresRepository:
    """Repository on a PostgreSQL database. Safe across threads, processes and servers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pid = os.getpid()
        self._pool_lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._held = threading.local()  # a snapshot's connection, for this thread only
        self._caches: dict[str, _Cache] = {kind.table: _Cache() for kind in ALL_RECORDS}
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._create_tables(cur)
            self._check_schema(cur)

    def __repr__(self) -> str:
        return f"PostgresRepository({redact(self.url)!r})"

    # --- connections ----------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to PostgreSQL at {redact(self.url)}: {_one_line(e)}") from None

    def _checkout(self) -> tuple[psycopg.Connection, bool]:
        """A connection for this thread and whether it came from the pool (False: just opened)."""
        if os.getpid() != self._pid:  # a forked child must not share its parent's sockets
            self._pid, self._idle = os.getpid(), []
        while True:
            with self._pool_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect(), False
            if not conn.closed and not _readable(conn):
                return conn, True
            conn.close()  # an idle connection has nothing to read unless the server closed it (a restart)

    def _checkin(self, conn: psycopg.Connection) -> None:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            with self._pool_lock:
                if len(self._idle) < _IDLE_MAX:
                    self._idle.append(conn)
                    return
        conn.close()

    def _failed(self, e: psycopg.OperationalError) -> StoreError:
        return StoreError(f"PostgreSQL at {redact(self.url)} failed: {_one_line(e)}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        held = getattr(self._held, "conn", None)
        if held is not None:
            yield held
            return
        conn, _ = self._checkout()
        try:
            yield conn
        except psycopg.OperationalError as e:
            conn.close()
            raise self._failed(e) from None
        finally:
            self._checkin(conn)

    @contextmanager
    def _transaction(self, repeatable: bool = False) -> Iterator[psycopg.Cursor]:
        held = getattr(self._held, "conn", None)
        if held is not None:
            with held.cursor() as cur:  # inside a snapshot: its transaction already holds
                yield cur
            return
        conn = None
        try:
            with ExitStack() as stack:
                conn = self._begin(stack)
                cur = stack.enter_context(conn.cursor())
                if repeatable:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield cur
        except psycopg.OperationalError as e:  # the connection broke, perhaps at COMMIT: whether it took is unknown
            if conn is not None:
                conn.close()
            raise self._failed(e) from None
        except BaseException:
            if conn is not None:
                self._checkin(conn)  # rolled back: the connection is fine for the next one
            raise
        self._checkin(conn)

    def _begin(self, stack: ExitStack) -> psycopg.Connection:
        """Open a transaction on a pooled connection; if its BEGIN fails on a reused one, once more on a fresh one.

        Only BEGIN is retried: before it, nothing of the transaction has reached the server, so running
        it on another connection cannot do anything twice.
        """
        conn, reused = self._checkout()
        try:
            stack.enter_context(conn.transaction())
            return conn
        except psycopg.OperationalError as e:
            conn.close()
            if not reused:
                raise self._failed(e) from None
        conn = self._connect()
        try:
            stack.enter_context(conn.transaction())
        except psycopg.OperationalError as e:
            conn.close()
            raise self._failed(e) from None
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads by this thread inside the block see one consistent state of the whole database."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    def close(self) -> None:
        """Close the idle connections of this process."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- schema ---------------------------------------------------------------------------------

    @staticmethod
    def _create_tables(cur: psycopg.Cursor) -> None:
        # Only what is missing: DDL on a table in use (even IF NOT EXISTS) takes locks that deadlock with
        # writers of other servers already running.
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        present = {row[0] for row in cur.fetchall()}
        if "al_meta" not in present:
            cur.execute("CREATE TABLE al_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        if "al_versions" not in present:
            cur.execute("CREATE TABLE al_versions (tbl text PRIMARY KEY, version bigint NOT NULL, deletes bigint NOT NULL)")
        for kind in ALL_RECORDS:
            name = table_name(kind)
            if name in present:
                continue
            columns = "".join(f", {f} text GENERATED ALWAYS AS (doc->>'{f}') STORED" for f in _indexed(kind))
            cur.execute(f"CREATE TABLE {name} (id text PRIMARY KEY, created timestamptz NOT NULL, "
                        f"seq bigint NOT NULL, doc jsonb NOT NULL{columns})")
            for column in ("seq", *_indexed(kind)):
                cur.execute(f"CREATE INDEX {name}_{column} ON {name} ({column})")
            cur.execute("INSERT INTO al_versions VALUES (%s, 0, 0) ON CONFLICT DO NOTHING", (kind.table,))
        if "al_vector_versions" not in present:
            cur.execute("CREATE TABLE al_vector_versions (name text PRIMARY KEY, version bigint NOT NULL, "
                        "dim integer NOT NULL)")
        if "al_vectors" not in present:
            cur.execute("CREATE TABLE al_vectors (name text NOT NULL, id text NOT NULL, hash text NOT NULL, "
                        "seq bigint NOT NULL, vec bytea NOT NULL, PRIMARY KEY (name, id))")

    def _check_schema(self, cur: psycopg.Cursor) -> None:
        current = migrations.current_version()
        cur.execute("SELECT value FROM al_meta WHERE key = 'schema_version'")
        row = cur.fetchone()
        if row is None:
            cur.execute("INSERT INTO al_meta VALUES ('schema_version', %s::jsonb)", (str(current),))
            return
        version = int(row[0])
        if version > current:
            raise SchemaVersionError(f"{redact(self.url)} has schema version {version}, newer than this agentlearn "
                                     f"({current}). Upgrade agentlearn to open it.")
        if version < current:
            # One transaction: a failure leaves every table as it was.
            for kind in ALL_RECORDS:
                cur.execute(f"SELECT id, doc FROM {table_name(kind)}")
                for record_id, doc in cur.fetchall():
                    cur.execute(f"UPDATE {table_name(kind)} SET doc = %s WHERE id = %s",
                                (psycopg.types.json.Jsonb(migrations.migrate(kind.table, doc, version)), record_id))
            cur.execute("UPDATE al_meta SET value = %s::jsonb WHERE key = 'schema_version'", (str(current),))

    # --- plumbing -------------------------------------------------------------------------------

    @staticmethod
    def _check_kind(kind: type[Record]) -> None:
        if kind not in ALL_RECORDS:
            raise StoreError(f"{kind.__name__} is not a stored record kind")

    def _parse(self, kind: type[R], record_id: str, text: str) -> R:
        try:
            return kind.model_validate_json(text)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "record"
            raise CorruptStoreError(f"{redact(self.url)} table {table_name(kind)}: record {record_id!r} is not a "
                                    f"valid {kind.__name__}: {where}: {err['msg']}. The row was left as it is.") from None

    @staticmethod
    def _bump(cur: psycopg.Cursor, kind: type[Record], deletes: int = 0) -> int:
        cur.execute("UPDATE al_versions SET version = version + 1, deletes = deletes + %s WHERE tbl = %s "
                    "RETURNING version", (deletes, kind.table))
        return cur.fetchone()[0]

    def check(self, records: Iterable[Record]) -> list[tuple[Record, str]]:
        """Each record with its JSON text; StoreError naming the first one this database cannot store."""
        out = []
        for r in records:
            try:
                text = r.model_dump_json()
            except ValueError as e:  # pydantic cannot write a lone surrogate as UTF-8
                raise StoreError(f"{type(r).__name__} {r.id!r} holds text that is not valid Unicode ({e}); "
                                 f"nothing of its batch was written to {redact(self.url)}") from None
            if "\\u0000" in text:  # a NUL character in some string (or a literal backslash-u0000: look)
                where = nul_path(r.model_dump(mode="json"))
                if where is not None:
                    raise StoreError(
                        f"{type(r).__name__} {r.id!r}: {where} holds a NUL character (\\u0000), which PostgreSQL "
                        f"cannot store; nothing of its batch was written to {redact(self.url)}. Remove the "
                        "character from that record (agentlearn never changes stored text on its own)")
            out.append((r, text))
        return out

    @staticmethod
    def _upsert(cur: psycopg.Cursor, kind: type[Record], rows: list[tuple[Record, str]], seq: int) -> None:
        cur.executemany(
            f"INSERT INTO {table_name(kind)} (id, created, seq, doc) VALUES (%s, %s, %s, %s::jsonb) "
            "ON CONFLICT (id) DO UPDATE SET created = EXCLUDED.created, seq = EXCLUDED.seq, doc = EXCLUDED.doc",
            [(r.id, r.created, seq, text) for r, text in sorted(rows, key=lambda row: row[0].id)])

    def _fresh(self, kind: type[R]) -> dict[str, R]:
        """The cached records of a kind, brought up to date with only the rows written since."""
        cache = self._caches[kind.table]
        with cache.lock, self._transaction(repeatable=True) as cur:
            cur.execute("SELECT version, deletes FROM al_versions WHERE tbl = %s", (kind.table,))
            version, deletes = cur.fetchone()
            if (version, deletes) == (cache.version, cache.deletes):
                return cache.records  # type: ignore[return-value]
            records = dict(cache.records)  # a reader holding the old dict keeps a consistent one
            cur.execute(f"SELECT id, doc::text FROM {table_name(kind)} WHERE seq > %s", (cache.version,))
            for record_id, text in cur:
                records[record_id] = self._parse(kind, record_id, text)
            if deletes != cache.deletes:
                cur.execute(f"SELECT id FROM {table_name(kind)}")
                present = {row[0] for row in cur}
                records = {i: r for i, r in records.items() if i in present}
            cache.records, cache.version, cache.deletes, cache.ordered = records, version, deletes, None
            return records  # type: ignore[return-value]

    # --- the Repository interface ---------------------------------------------------------------

    def put(self, record: R) -> R:
        """Insert or replace one record (by id)."""
        self.put_many([record])
        return record

    def put_many(self, records: Iterable[Record]) -> int:
        """Insert or replace many records in one transaction: all of them or none."""
        records = list(records)
        by_kind: dict[type[Record], list[tuple[Record, str]]] = {}
        for r in records:
            self._check_kind(type(r))
        for r, text in self.check(records):
            by_kind.setdefault(type(r), []).append((r, text))
        if not by_kind:
            return 0
        with self._transaction() as cur:
            kinds = sorted(by_kind, key=lambda k: k.table)  # one lock order for every writer: no deadlock
            seqs = {kind: self._bump(cur, kind) for kind in kinds}
            for kind in kinds:
                self._upsert(cur, kind, by_kind[kind], seqs[kind])
        return sum(len(group) for group in by_kind.values())

    def get(self, kind: type[R], record_id: str) -> R | None:
        """The record with this id, or None."""
        self._check_kind(kind)
        with self._transaction() as cur:
            cur.execute(f"SELECT doc::text FROM {table_name(kind)} WHERE id = %s", (record_id,))
            row = cur.fetchone()
        return None if row is None else self._parse(kind, record_id, row[0])

    def all(self, kind: type[R]) -> list[R]:
        """Every record of a kind, oldest first."""
        self._check_kind(kind)
        records, cache = self._fresh(kind), self._caches[kind.table]
        with cache.lock:
            if cache.ordered is None or cache.records is not records:
                ordered = sorted(records.values(), key=store_order)
                if cache.records is records:  # still the newest: keep the order for the next reader
                    cache.ordered = ordered
            else:
                ordered = cache.ordered
        return list(ordered)

    def find(self, record_type: type[R], /, **equals: Any) -> list[R]:
        """Records whose fields equal the given values, oldest first (any field, `kind` included)."""
        self._check_kind(record_type)
        indexed = {f: v for f, v in equals.items() if f in _indexed(record_type) and isinstance(v, str)}
        cache = self._caches[record_type.table]
        if indexed and cache.version < 0:
            # Nothing cached yet (a CLI call, a job): let the indexes pick the rows instead of reading all.
            where = " AND ".join(f"{f} = %s" for f in indexed)
            with self._transaction() as cur:
                cur.execute(f"SELECT id, doc::text FROM {table_name(record_type)} WHERE {where}", list(indexed.values()))
                candidates = [self._parse(record_type, i, text) for i, text in cur.fetchall()]
        else:
            candidates = list(self._fresh(record_type).values())
        found = [r for r in candidates if all(getattr(r, f) == v for f, v in equals.items())]
        return sorted(found, key=store_order)

    def find_in(self, record_type: type[R], field: str, values: Iterable[Any], /,
                skip: Collection[str] = ()) -> list[R]:
        """Records whose `field` is one of `values` (and whose id is not in `skip`), oldest first. The id or
        an indexed field is read with one query on its index while nothing is cached (as find does), and
        the rows in `skip` are not sent; otherwise the cache, brought up to date, is searched."""
        self._check_kind(record_type)
        wanted, skip = set(values), set(skip)
        if not wanted:
            return []
        keyed = field == "id" or field in _indexed(record_type)
        if keyed and self._caches[record_type.table].version < 0 and all(isinstance(v, str) for v in wanted):
            with self._transaction() as cur:
                cur.execute(f"SELECT id, doc::text FROM {table_name(record_type)} WHERE {field} = ANY(%s) "
                            "AND NOT (id = ANY(%s))", (sorted(wanted), sorted(skip)))
                found = [self._parse(record_type, i, text) for i, text in cur.fetchall()]
        elif field == "id":
            records = self._fresh(record_type)
            found = [records[i] for i in wanted - skip if i in records]
        else:
            found = [r for r in self._fresh(record_type).values() if getattr(r, field) in wanted and r.id not in skip]
        return sorted(found, key=store_order)

    def update(self, kind: type[R], record_id: str, change: Callable[[R], R]) -> R:
        """Read, change and write one record in one transaction, the row locked against everyone else."""
        self._check_kind(kind)
        with self._transaction() as cur:
            seq = self._bump(cur, kind)
            cur.execute(f"SELECT doc::text FROM {table_name(kind)} WHERE id = %s FOR UPDATE", (record_id,))
            row = cur.fetchone()
            if row is None:
                raise StoreError(f"no {kind.__name__} with id {record_id!r} in {redact(self.url)}")
            updated = change(self._parse(kind, record_id, row[0]))
            if type(updated) is not kind or updated.id != record_id:
                raise StoreError(f"update of {kind.__name__} {record_id!r} must return a {kind.__name__} "
                                 f"with the same id, not {type(updated).__name__} {getattr(updated, 'id', '')!r}")
            self._upsert(cur, kind, self.check([updated]), seq)
        return updated

    def delete(self, kind: type[Record], record_id: str) -> bool:
        """Remove a record; True if it existed."""
        self._check_kind(kind)
        with self._transaction() as cur:
            # The counter first, as put and update take it: locking the row first deadlocked with them.
            self._bump(cur, kind)
            cur.execute(f"DELETE FROM {table_name(kind)} WHERE id = %s RETURNING id", (record_id,))
            deleted = cur.fetchone() is not None
            if deleted:
                cur.execute("UPDATE al_versions SET deletes = deletes + 1 WHERE tbl = %s", (kind.table,))
        return deleted

    def count(self, kind: type[Record]) -> int:
        """How many records of a kind there are."""
        self._check_kind(kind)
        with self._transaction() as cur:
            cur.execute(f"SELECT count(*) FROM {table_name(kind)}")
            return cur.fetchone()[0]

    def version(self, kind: type[Record]) -> tuple:
        """The table's write counter and deletion counter."""
        with self._transaction() as cur:
            cur.execute("SELECT version, deletes FROM al_versions WHERE tbl = %s", (kind.table,))
            return tuple(cur.fetchone())

    def changes_since(self, kind: type[R], version: tuple) -> tuple[Iterator[R], tuple] | None:
        """The rows written since `version` (one query on the seq index; every row for `()`), oldest first,
        and the version they bring it to; None after a deletion (what is gone cannot be listed).

        The records are parsed one at a time as the caller iterates, each row's text dropped once read,
        and none is kept in the records cache: 1M parsed trajectories held at once took 19 GB."""
        self._check_kind(kind)
        with self._transaction(repeatable=True) as cur:
            cur.execute("SELECT version, deletes FROM al_versions WHERE tbl = %s", (kind.table,))
            now_at = tuple(cur.fetchone())
            if version and (len(version) != 2 or version[1] != now_at[1]):
                return None
            cur.execute(f"SELECT id, doc::text FROM {table_name(kind)} WHERE seq > %s "
                        'ORDER BY created, id COLLATE "C"', (version[0] if version else -1,))
            rows = deque(cur.fetchall())

        def parsed() -> Iterator[R]:
            while rows:
                record_id, text = rows.popleft()
                yield self._parse(kind, record_id, text)

        return parsed(), now_at

    # --- vectors --------------------------------------------------------------------------------

    def vector_table(self, name: str) -> PostgresVectorTable:
        """The named vector table in this database."""
        return PostgresVectorTable(self, name)

    def vector_names(self) -> list[str]:
        """Names of the vector tables in this database."""
        with self._transaction() as cur:
            cur.execute("SELECT name FROM al_vector_versions ORDER BY name")
            return [row[0] for row in cur.fetchall()]


class PostgresVectorTable(VectorTableBase):
    """A vector table in `al_vectors`: one row per id (float32 bytes), ordered by when it was added."""

    def __init__(self, repo: PostgresRepository, name: str) -> None:
        super().__init__()
        self.repo = repo
        self.name = name
        self._loaded: tuple | None = None
        self._cur: psycopg.Cursor | None = None  # the locking transaction of a sync, while it runs

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor]:
        if self._cur is not None:
            yield self._cur
        else:
            with self.repo._transaction(repeatable=True) as cur:
                yield cur

    def version(self) -> tuple:
        """The table's write counter (empty tuple when it was never written)."""
        with self._cursor() as cur:
            cur.execute("SELECT version FROM al_vector_versions WHERE name = %s", (self.name,))
            row = cur.fetchone()
        return () if row is None else (row[0],)

    def load(self) -> PostgresVectorTable:
        """Read the rows if the table changed since the last load."""
        with self._lock, self._cursor() as cur:
            cur.execute("SELECT version, dim FROM al_vector_versions WHERE name = %s", (self.name,))
            row = cur.fetchone()
            key = None if row is None else (row[0],)
            if key == self._loaded:
                return self
            if row is None:
                self._adopt([], [], np.zeros((0, 0), dtype=np.float32))
            else:
                cur.execute("SELECT id, hash, vec FROM al_vectors WHERE name = %s ORDER BY seq", (self.name,))
                rows = cur.fetchall()
                dim = row[1]
                bad = next((r[0] for r in rows if len(r[2]) != 4 * dim), None)
                if bad is not None:
                    raise CorruptStoreError(f"{redact(self.repo.url)} al_vectors: row {bad!r} of table {self.name!r} "
                                            f"is not {dim} float32 values; it is rebuilt from the store on the next sync.")
                matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
                self._adopt([r[0] for r in rows], [r[1] for r in rows],
                            matrix.copy() if rows else np.zeros((0, dim), dtype=np.float32))
            self._loaded = key
        return self

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self.repo._transaction() as cur:
            cur.execute("INSERT INTO al_vector_versions VALUES (%s, 0, 0) ON CONFLICT DO NOTHING", (self.name,))
            cur.execute("SELECT version FROM al_vector_versions WHERE name = %s FOR UPDATE", (self.name,))
            self._cur = cur
            try:
                yield
            finally:
                self._cur = None

    def _store(self, ids: list[str], hashes: list[str], matrix: np.ndarray) -> None:
        cur = self._cur
        assert cur is not None, "_store runs inside _exclusive"
        current = dict(zip(self.ids, self.hashes, strict=True))
        keep = {i for i, h in zip(ids, hashes, strict=True) if current.get(i) == h}
        gone = [i for i in self.ids if i not in keep]
        if gone:
            cur.execute("DELETE FROM al_vectors WHERE name = %s AND id = ANY(%s)", (self.name, gone))
        dim = int(matrix.shape[1]) if matrix.ndim == 2 else 0
        cur.execute("UPDATE al_vector_versions SET version = version + 1, dim = %s WHERE name = %s RETURNING version",
                    (dim, self.name))
        seq = cur.fetchone()[0]
        new = [n for n, i in enumerate(ids) if i not in keep]
        with cur.copy("COPY al_vectors (name, id, hash, seq, vec) FROM STDIN") as copy:
            for n in new:
                copy.write_row((self.name, ids[n], hashes[n], seq, np.ascontiguousarray(matrix[n]).tobytes()))
        # The stored order: the rows kept, in their old order, then the new ones.
        order = [n for n, i in enumerate(ids) if i in keep]
        order.sort(key=lambda n: self._row[ids[n]])
        order += new
        self._adopt([ids[n] for n in order], [hashes[n] for n in order],
                    matrix[order] if order else np.zeros((0, dim), dtype=np.float32))
        self._loaded = (seq,)

    def _set_aside(self) -> None:
        cur = self._cur
        assert cur is not None, "_set_aside runs inside _exclusive"
        cur.execute("DELETE FROM al_vectors WHERE name = %s", (self.name,))  # derived rows, rebuilt at once
        self._adopt([], [], np.zeros((0, 0), dtype=np.float32))
