"""The default backend: TinyDB files, sharded by table and by id, written atomically.

Why it looks like this (figures measured on a 2-core machine, see README "Storage benchmark"):
- TinyDB rewrites a whole file on every write, so one file for everything makes a write at 100k
  trajectories cost seconds. Each table lives in its own folder, and the big tables are split into
  shards by a hash of the id: a write rewrites one small file.
- TinyDB writes in place (seek, write, truncate), which a crash can leave half-written. Our storage
  class writes a temp file, fsyncs it and renames it over the old one: a reader sees the old file or
  the new one, never a mix.
- TinyDB has no locking. Each shard has a re-entrant lock for threads and a file lock for processes
  (the dashboard, the CLI and training jobs write at the same time). Writes to different shards do
  not wait for each other, so concurrent fsyncs overlap (the file system commits them together).
- Shard counts are fixed per store in meta.json. If it is lost (or predates the counts), they are read
  off the files present (the count that puts every record where it lies); the store never guesses.
- Parsed records are cached per shard and revalidated by the file's (inode, mtime, size), so reads
  after another process writes see its records, and reads of unchanged shards cost a stat call.
- A batch that touches several shards (an import) lands whole or not at all, by a two-phase commit
  (see `_commit`): every new shard is written beside the old one as a pending file, then one marker
  file commits the batch, then the pending files are renamed into place. A crash before the marker
  leaves every shard as it was (the pending files are discarded); a crash after it, even between two
  renames, is rolled forward (the rest are renamed). Why this is sound: a pending file is the whole new
  shard, made under that shard's lock, and every writer of a shard first finishes any committed pending
  file of it under the same lock, so a pending file never overwrites a later write. Opening the store
  finishes or discards what a killed writer left, and removes its temp files.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import ValidationError
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from storage import migrations
from storage.errors import CorruptStoreError, SchemaVersionError, StoreError, StoreWriteError
from storage.files import (
    BACKUP_HINT,
    fsync_dir,
    os_reason,
    read_json_object,
    remove_stale_temps,
    write_atomic,
    write_durable,
)
from storage.gc_pause import paused
from storage.records import ALL_RECORDS, Record, store_order

R = TypeVar("R", bound=Record)

# Shards per table for new stores (kept in meta.json). Big, often-written tables get many so that one
# write stays small: at 100k trajectories (~1.5 KB each) a trajectory shard holds ~400 of them, ~0.6 MB.
SHARDS: dict[str, int] = {"trajectories": 256, "labels": 64, "preferences": 64, "exemplars": 16, "tasks": 16,
                          "reflections": 16, "jobs": 8}
# What stores made before meta.json recorded shard counts used.
LEGACY_SHARDS: dict[str, int] = {"trajectories": 64, "labels": 16, "preferences": 16, "exemplars": 16}
TABLE = "records"  # the TinyDB table name inside every shard file
TXN_DIR = ".txn"  # commit markers of multi-shard batches, one empty file per committed batch
PENDING = ".pending"  # a shard's new content, written before its batch commits: `.NN.json.<batch>.pending`


class _StrIdTable(Table):
    """TinyDB table keyed by our string ids instead of auto-incremented integers."""

    document_id_class = str
    default_query_cache_capacity = 0  # another process may change the file under the cache


class _StrIdTinyDB(TinyDB):
    table_class = _StrIdTable


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class AtomicJSONStorage(Storage):
    """TinyDB storage: cached reads revalidated by stat, atomic writes, loud on corruption."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._data: dict[str, Any] | None = None
        self._key: tuple[int, int, int] | None = None
        self.generation = 0  # bumps whenever the data seen changes

    def read(self) -> dict[str, Any] | None:
        key = _stat_key(self.path)
        if key is None:
            if self._key is not None:
                self.generation += 1  # the file was removed: what was parsed from it is gone too
            self._data, self._key = None, None
            return None
        if key != self._key:
            self._data, self._key = read_json_object(self.path), key
            self.generation += 1
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        try:
            write_atomic(self.path, encode_shard(self.path, data))
        except BaseException:
            # TinyDB changed our cached dict in place before calling write: forget it, so that
            # nothing that did not reach the disk is ever read or written back later.
            self._data, self._key = None, None
            self.generation += 1
            raise
        self._data, self._key = data, _stat_key(self.path)
        self.generation += 1

    def close(self) -> None:
        pass


def encode_shard(path: Path, data: dict[str, Any]) -> bytes:
    """The bytes of a shard file; StoreError naming the record if some text cannot be written as UTF-8."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        for doc_id, doc in data.get(TABLE, {}).items():
            try:
                json.dumps(doc, ensure_ascii=False).encode()
            except UnicodeEncodeError as e:
                bad = e.object[e.start:e.end].encode("unicode_escape").decode()
                raise StoreError(f"{path}: record {doc_id!r} holds text that is not valid Unicode ({bad}, a lone "
                                 "surrogate); nothing was written") from None
        raise


class _Shard:
    """One TinyDB file plus the validated records parsed from it."""

    def __init__(self, path: Path, kind: type[Record], txn_dir: Path) -> None:
        self.path = path
        self.kind = kind
        self.txn_dir = txn_dir
        self.db = _StrIdTinyDB(str(path), storage=AtomicJSONStorage)
        self.storage: AtomicJSONStorage = self.db.storage  # type: ignore[assignment]
        self._parsed: dict[str, Record] = {}
        self._parsed_generation = -1
        # Locks per shard, not per table: writes to different shards (threads or processes) run
        # side by side, so their fsyncs overlap instead of queueing behind each other.
        self.lock = threading.RLock()
        self.file_lock = FileLock(str(path.with_name(f".{path.stem}.lock")), thread_local=False)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this shard against other threads and processes (threads first, then the file).

        Holding it, no batch is half-way through this shard, so a committed pending file of it is one
        whose writer died: it is renamed into place before anything else reads or writes the shard.
        """
        with self.lock:
            self._make_folder()
            try:
                self.file_lock.acquire()
            except OSError as e:  # a read-only disk: the lock file cannot be made
                raise StoreWriteError(f"cannot write {self.path}: {os_reason(e)}; nothing was changed") from None
            try:
                self.finish_committed()
                yield
            finally:
                self.file_lock.release()

    @contextmanager
    def try_locked(self) -> Iterator[bool]:
        """Like locked(), but gives up at once (yields False) if another writer holds the shard."""
        if not self.lock.acquire(blocking=False):
            yield False
            return
        try:
            self.file_lock.acquire(timeout=0)
        except (Timeout, OSError):
            self.lock.release()
            yield False
            return
        try:
            self.finish_committed()
            yield True
        finally:
            self.file_lock.release()
            self.lock.release()

    def _make_folder(self) -> None:
        try:
            self.path.parent.mkdir(exist_ok=True)
        except OSError as e:
            raise StoreWriteError(f"cannot write {self.path.parent}: {os_reason(e)}; nothing was changed") from None

    def pending_path(self, batch: str) -> Path:
        """Where a batch writes this shard's new content before it commits."""
        return self.path.with_name(f".{self.path.name}.{batch}{PENDING}")

    def finish_committed(self) -> None:
        """Rename into place the pending file of a committed batch whose writer died (call holding the shard)."""
        for batch in committed_batches(self.txn_dir):
            pending = self.pending_path(batch)
            if pending.exists():
                self.install(pending)

    def install(self, pending: Path, data: dict[str, Any] | None = None, records: list[Record] = ()) -> None:
        """Rename a pending file over the shard; `data` and `records`, when given, are what it holds."""
        os.replace(pending, self.path)
        if data is None:  # a file written by another process: read it again when next asked
            self.storage._data, self.storage._key = None, None
            self.storage.generation += 1
            return
        parsed = self.records() if self.storage.generation == self._parsed_generation else None
        self.storage._data, self.storage._key = data, _stat_key(self.path)
        self.storage.generation += 1
        if parsed is not None:  # the file holds what was parsed plus these records: no need to parse it again
            for r in records:
                parsed[r.id] = r
            self._parsed_generation = self.storage.generation

    def prepare(self, records: list[Record]) -> tuple[dict[str, Any], bytes]:
        """The shard's content with `records` put in, and its bytes; nothing is written."""
        self.records()  # refuse to write into a shard that does not validate
        data = self.storage.read() or {}
        docs = dict(data.get(TABLE, {}))
        docs.update({r.id: r.model_dump(mode="json") for r in records})
        new = {**data, TABLE: docs}
        return new, encode_shard(self.path, new)

    def records(self) -> dict[str, Record]:
        with paused():
            return self._records()

    def _records(self) -> dict[str, Record]:
        data = self.storage.read() or {}
        if self.storage.generation != self._parsed_generation:
            docs = data.get(TABLE, {})
            parsed = {}
            for doc_id, doc in docs.items():
                try:
                    parsed[doc_id] = self.kind.model_validate(doc)
                except ValidationError as e:
                    raise CorruptStoreError(
                        f"{self.path}: record {doc_id!r} is not a valid {self.kind.__name__}: "
                        f"{_first_error(e)}. The file was left as it is."
                    ) from None
            self._parsed, self._parsed_generation = parsed, self.storage.generation
        return self._parsed

    def write(self, records: list[Record]) -> None:
        parsed = self.records()  # refuse to write into a shard that does not validate
        docs = {r.id: r.model_dump(mode="json") for r in records}
        # Replace whole documents (TinyDB's upsert would merge fields) in one file write.
        self.db.table(TABLE)._update_table(lambda table_docs: table_docs.update(docs))
        # The file now holds exactly what was parsed plus these records: no need to parse it again.
        for r in records:
            parsed[r.id] = r
        self._parsed_generation = self.storage.generation

    def delete(self, record_id: str) -> bool:
        table = self.db.table(TABLE)
        if not table.contains(doc_id=record_id):
            return False
        table.remove(doc_ids=[record_id])
        self._parsed.pop(record_id, None)
        self._parsed_generation = self.storage.generation
        return True


def _on_read_only_disk(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def committed_batches(txn_dir: Path) -> list[str]:
    """Ids of the batches committed but not yet finished (normally none: a listing of an empty folder)."""
    try:
        return [name for name in os.listdir(txn_dir) if not name.startswith(".")]
    except OSError:  # no folder yet, or a store on a read-only disk
        return []


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    return f"{where}: {err['msg']}"


def _shard_files(folder: Path) -> dict[int, Path]:
    """The shard files of one table folder, by shard index."""
    return {int(p.stem): p for p in folder.glob("*.json") if p.stem.isdigit()}


def _fits(ids_by_shard: dict[int, list[str]], n: int) -> bool:
    """Whether every record sits in the shard that `n` shards would put it in."""
    return all(index < n and all(zlib.crc32(i.encode()) % n == index for i in ids)
               for index, ids in ids_by_shard.items()) if n > 1 else set(ids_by_shard) <= {0}


def recover_shard_counts(root: Path, bases: list[dict[str, int]]) -> dict[str, int]:
    """Shard counts that hold every record where it lies, read off the files (meta.json lost or old).

    Tries each known layout whole, then searches per table; refuses if no count fits a table.
    """
    layouts = {folder.name: {index: list(read_json_object(path).get(TABLE, {}))
                             for index, path in _shard_files(folder).items()}
               for folder in sorted(root.iterdir()) if folder.is_dir() and not folder.name.startswith(".")}
    layouts = {table: shards for table, shards in layouts.items() if shards}
    for base in bases:
        if all(_fits(shards, base.get(table, 1)) for table, shards in layouts.items()):
            return dict(base)
    counts = dict(bases[0])
    for table, shards in layouts.items():
        tried = [bases[0].get(table, 1), *(b.get(table, 1) for b in bases[1:]), *range(max(shards) + 1, 4097)]
        n = next((n for n in tried if _fits(shards, n)), None)
        if n is None:
            raise CorruptStoreError(
                f"{root / 'meta.json'} is missing and the files in {root / table} fit no shard layout; the "
                f"store was left as it is. Restore meta.json from a backup made with `python -m agentlearn backup`."
            )
        counts[table] = n
    return counts


class TinyDBRepository:
    """Repository on TinyDB files under one folder. Safe across threads and processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreWriteError(f"cannot make the store folder {self.root}: {os_reason(e)}") from None
        self._txn_dir = self.root / TXN_DIR
        self._lock = threading.Lock()  # guards the shard map; each shard has its own locks
        self._shards: dict[tuple[str, int], _Shard] = {}
        self._recover(everything=True)  # before the schema check: a migration must see finished shards
        self._check_schema()

    # --- schema -------------------------------------------------------------------------------

    def _check_schema(self) -> None:
        meta_path = self.root / "meta.json"
        lock = FileLock(str(self.root / ".meta.lock"))
        try:
            lock.acquire()
        except OSError as e:
            # A read-only disk (or folder): a store that needs no upgrade can still be read.
            meta = self._read_meta(meta_path) if meta_path.exists() else None
            if meta and meta.get("shards") and meta["schema_version"] == migrations.current_version():
                self._shard_counts = dict(meta["shards"])
                return
            raise StoreWriteError(f"cannot open the store {self.root}: {os_reason(e)} (it needs writing to "
                                  "start or upgrade it)") from None
        with lock:
            lock.release()  # held once by acquire() above and once by this block
            meta = self._read_meta(meta_path) if meta_path.exists() else None
            has_data = any(_shard_files(p) for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if meta is None:
                # No meta.json: a new store, or one whose meta.json was lost. Version 1 is the safe guess
                # for data (its migration only adds defaults, and the old files are copied aside first).
                meta = {"schema_version": 1 if has_data else migrations.current_version()}
                bases = [SHARDS, LEGACY_SHARDS]
            else:
                bases = [LEGACY_SHARDS, SHARDS]  # a meta.json without counts predates them
            version, current = meta["schema_version"], migrations.current_version()
            if version > current:
                raise SchemaVersionError(
                    f"{self.root} has schema version {version}, newer than this agentlearn "
                    f"({current}). Upgrade agentlearn to open it."
                )
            # Shard counts are fixed when a store is made: changing them would hide records. Without
            # them in meta.json they are read off the files present, never assumed.
            recorded = meta.get("shards")
            self._shard_counts: dict[str, int] = dict(recorded) if recorded else recover_shard_counts(self.root, bases)
            if version < current:
                self._migrate(version)
            elif not recorded:
                self._write_meta({"schema_version": version, "shards": self._shard_counts})

    @staticmethod
    def _read_meta(meta_path: Path) -> dict[str, Any]:
        try:
            meta = json.loads(meta_path.read_text())
            meta["schema_version"] = int(meta["schema_version"])
            shards = meta.get("shards", {})
            if not all(isinstance(n, int) and n > 0 for n in shards.values()):
                raise ValueError(f"bad shard counts {shards}")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptStoreError(
                f"{meta_path} is unreadable ({e}); left as it is. {BACKUP_HINT}, or move it aside: the "
                "shard layout is then read off the files present."
            ) from None
        return meta

    def _write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.root / "meta.json", json.dumps(meta).encode())

    def _migrate(self, from_version: int) -> None:
        # Parse every shard before changing any: a corrupt file stops the migration untouched.
        shards = [(table_dir.name, shard, read_json_object(shard))
                  for table_dir in sorted(p for p in self.root.iterdir() if p.is_dir())
                  for shard in sorted(table_dir.glob("*.json"))]
        backup = self.root.with_name(f"{self.root.name}.v{from_version}.bak")
        if not backup.exists():
            shutil.copytree(self.root, backup, ignore=shutil.ignore_patterns("*.lock", "*.tmp", f"*{PENDING}", TXN_DIR))
        for table, shard, data in shards:
            docs = data.get(TABLE, {})
            for doc_id in docs:
                docs[doc_id] = migrations.migrate(table, docs[doc_id], from_version)
            write_atomic(shard, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        self._write_meta({"schema_version": migrations.current_version(), "shards": self._shard_counts})

    # --- crash recovery -----------------------------------------------------------------------

    def _pending_files(self) -> list[tuple[_Shard, str, Path]]:
        """Every pending shard file in the store: (its shard, its batch, its path)."""
        kinds = {kind.table: kind for kind in ALL_RECORDS}
        found = []
        for folder in self.root.iterdir():
            kind = kinds.get(folder.name)
            if kind is None or not folder.is_dir():
                continue
            for path in folder.glob(f".*{PENDING}"):
                shard_name, _, batch = path.name[1:-len(PENDING)].rpartition(".")  # ".NN.json.<batch>.pending"
                stem = shard_name.removesuffix(".json")
                if stem.isdigit():
                    found.append((self._shard(kind, int(stem)), batch, path))
        return found

    def _recover(self, everything: bool = False) -> None:
        """Finish the batches a killed writer committed; with `everything` (on open) also discard the
        ones it did not commit and remove its temp files. A read-only store is left as it is."""
        committed = committed_batches(self._txn_dir)
        if not committed and not everything:
            return
        try:
            if everything:
                for folder in [self.root, self._txn_dir, *(p for p in self.root.iterdir() if p.is_dir())]:
                    remove_stale_temps(folder)
            for shard, batch, path in self._pending_files():
                if batch not in committed and not everything:
                    continue
                if everything:
                    context = shard.locked()  # on open: wait for a live writer to finish
                else:
                    context = shard.try_locked()  # on a read: never wait, the next open or writer finishes it
                with context as held:
                    # Holding the shard, a pending file still there is either committed (locked()
                    # renamed it just now) or one whose writer died before committing: discard that one.
                    if held is not False and path.exists() and batch not in committed_batches(self._txn_dir):
                        path.unlink()
            left = {batch for _, batch, _ in self._pending_files()}
            for batch in committed:
                if batch not in left:
                    (self._txn_dir / batch).unlink(missing_ok=True)
        except (OSError, Timeout):
            pass  # a read-only disk: readers see the last finished state of each shard

    def _commit(self, shards: dict[tuple[str, int], _Shard], groups: dict[tuple[str, int], list[Record]]) -> None:
        """Write several shards all or nothing (call holding every one of them); see the module notes."""
        prepared = {key: shards[key].prepare(group) for key, group in groups.items()}  # encode all first
        batch = uuid.uuid4().hex
        written: list[Path] = []
        try:
            for key, (_, payload) in prepared.items():
                pending = shards[key].pending_path(batch)
                written.append(pending)
                write_durable(pending, payload)
            for folder in {p.parent for p in written}:
                fsync_dir(folder)
            self._txn_dir.mkdir(exist_ok=True)
            write_atomic(self._txn_dir / batch, b"")  # the commit point
        except BaseException:
            for pending in written:
                pending.unlink(missing_ok=True)
            raise
        # Committed: from here a failure or a crash is finished by whoever holds these shards next.
        for key, (data, _) in prepared.items():
            shards[key].install(shards[key].pending_path(batch), data, groups[key])
        for folder in {p.parent for p in written}:
            fsync_dir(folder)
        (self._txn_dir / batch).unlink(missing_ok=True)

    # --- plumbing -----------------------------------------------------------------------------

    def _shard_index(self, kind: type[Record], record_id: str) -> int:
        n = self._shard_counts.get(kind.table, 1)
        return zlib.crc32(record_id.encode()) % n if n > 1 else 0

    def _shard(self, kind: type[Record], index: int) -> _Shard:
        key = (kind.table, index)
        shard = self._shards.get(key)
        if shard is None:
            with self._lock:
                shard = self._shards.get(key)
                if shard is None:  # its folder is made on the first write: reading needs no write access
                    path = self.root / kind.table / f"{index:02d}.json"
                    shard = self._shards[key] = _Shard(path, kind, self._txn_dir)
        return shard

    def _shard_of(self, kind: type[Record], record_id: str) -> _Shard:
        return self._shard(kind, self._shard_index(kind, record_id))

    def _all_shards(self, kind: type[Record]) -> list[_Shard]:
        return [self._shard(kind, i) for i in range(self._shard_counts.get(kind.table, 1))]

    @staticmethod
    def _check_kind(kind: type[Record]) -> None:
        if kind not in ALL_RECORDS:
            raise StoreError(f"{kind.__name__} is not a stored record kind")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold every shard: reads inside the block see one consistent store; writers wait until it ends."""
        shards = {(kind.table, i): self._shard(kind, i)
                  for kind in ALL_RECORDS for i in range(self._shard_counts.get(kind.table, 1))}
        read_only = _on_read_only_disk(self.root)  # no lock file can be made there, and nobody can write either
        with ExitStack() as held:
            for key in sorted(shards):  # the order put_many locks in, so that the two cannot deadlock
                held.enter_context(shards[key].lock if read_only else shards[key].locked())
            yield

    def read_files(self) -> dict[str, bytes]:
        """Every file of the store (meta.json and shards) by relative path, read as one consistent state.

        The shards are held only while their bytes are read: writers wait milliseconds, not for a copy.
        """
        self._recover()
        with self.snapshot():
            files = [self.root / "meta.json", *sorted(self.root.glob("*/*.json"))]
            return {str(p.relative_to(self.root)): p.read_bytes() for p in files if p.is_file()}

    # --- the Repository interface -------------------------------------------------------------

    def put(self, record: R) -> R:
        """Insert or replace one record (by id)."""
        self.put_many([record])
        return record

    def put_many(self, records: Iterable[Record]) -> int:
        """Insert or replace many records; one file write per touched shard."""
        by_shard: dict[tuple[str, int], list[Record]] = {}
        for r in records:
            kind = type(r)
            self._check_kind(kind)
            by_shard.setdefault((kind.table, self._shard_index(kind, r.id)), []).append(r)
        shards = {key: self._shard(type(group[0]), key[1]) for key, group in by_shard.items()}
        with ExitStack() as held:
            for key in sorted(shards):  # always in the same order, so that two batches cannot deadlock
                held.enter_context(shards[key].locked())
            if len(shards) > 1:
                self._commit(shards, by_shard)
            else:
                for key, group in by_shard.items():  # one file: its atomic rename is all or nothing already
                    shards[key].write(group)
        return sum(len(g) for g in by_shard.values())

    def get(self, kind: type[R], record_id: str) -> R | None:
        """The record with this id, or None."""
        self._recover()
        shard = self._shard_of(kind, record_id)
        with shard.lock:
            return shard.records().get(record_id)  # type: ignore[return-value]

    def all(self, kind: type[R]) -> list[R]:
        """Every record of a kind, oldest first."""
        self._recover()
        out: list[R] = []
        with paused():
            for shard in self._all_shards(kind):
                with shard.lock:
                    out.extend(shard.records().values())  # type: ignore[arg-type]
        out.sort(key=store_order)
        return out

    def find(self, record_type: type[R], /, **equals: Any) -> list[R]:
        """Records whose fields equal the given values, oldest first (any field, `kind` included)."""
        return [r for r in self.all(record_type) if all(getattr(r, f) == v for f, v in equals.items())]

    def find_in(self, record_type: type[R], field: str, values: Iterable[Any], /,
                skip: Collection[str] = ()) -> list[R]:
        """Records whose `field` is one of `values` (and whose id is not in `skip`), oldest first; ids are
        looked up in their shards."""
        wanted = set(values)
        if field != "id":
            return [r for r in self.all(record_type) if getattr(r, field) in wanted and r.id not in skip]
        wanted -= set(skip)
        self._recover()
        by_shard: dict[int, tuple[_Shard, list[str]]] = {}
        for record_id in wanted:
            shard = self._shard_of(record_type, record_id)
            by_shard.setdefault(id(shard), (shard, []))[1].append(record_id)
        found: list[R] = []
        with paused():
            for shard, ids in by_shard.values():
                with shard.lock:
                    records = shard.records()
                    found.extend(records[i] for i in ids if i in records)  # type: ignore[misc]
        return sorted(found, key=store_order)

    def update(self, kind: type[R], record_id: str, change: Callable[[R], R]) -> R:
        """Read, change and write one record while holding its shard against threads and processes."""
        shard = self._shard_of(kind, record_id)
        with shard.locked():
            current = shard.records().get(record_id)
            if current is None:
                raise StoreError(f"no {kind.__name__} with id {record_id!r} in {self.root}")
            updated = change(current.model_copy(deep=True))  # type: ignore[arg-type]
            if type(updated) is not kind or updated.id != record_id:
                raise StoreError(f"update of {kind.__name__} {record_id!r} must return a {kind.__name__} "
                                 f"with the same id, not {type(updated).__name__} {getattr(updated, 'id', '')!r}")
            shard.write([updated])
            return updated

    def delete(self, kind: type[Record], record_id: str) -> bool:
        """Remove a record; True if it existed."""
        shard = self._shard_of(kind, record_id)
        with shard.locked():
            shard.records()
            return shard.delete(record_id)

    def count(self, kind: type[Record]) -> int:
        """How many records of a kind there are."""
        self._recover()
        total = 0
        with paused():
            for shard in self._all_shards(kind):
                with shard.lock:
                    total += len(shard.records())
        return total

    def changes_since(self, kind: type[R], version: tuple) -> None:
        """None: the files keep no write order, so a reader of changes reads everything again."""
        return None

    def version(self, kind: type[Record]) -> tuple:
        """Changes whenever any shard file of the table changes."""
        folder = self.root / kind.table
        return tuple(_stat_key(folder / f"{i:02d}.json") for i in range(self._shard_counts.get(kind.table, 1)))
