"""Copying a whole store and its vector tables between backends (db copy), and backups, then checking counts.

The source is read inside its snapshot (TinyDB holds every shard, PostgreSQL reads one REPEATABLE READ
transaction), so a copy made while servers write is one consistent state, not a mix of two. A backup of
a TinyDB store copies the files' bytes, so its shards are held for milliseconds rather than a whole copy.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage import TinyDBRepository, open_vector_table
from storage.errors import StoreError
from storage.files import write_atomic
from storage.records import ALL_RECORDS
from storage.repository import Repository
from storage.vectors import VectorTableBase, file_table_names


@dataclass
class Location:
    """A store and where its vector tables are (the folder is unused when they live in the database)."""

    repo: Repository
    vectors_dir: Path
    label: str

    def vector_names(self) -> list[str]:
        """Names of the vector tables kept beside this store."""
        in_database = getattr(self.repo, "vector_names", None)
        return in_database() if in_database is not None else file_table_names(self.vectors_dir)

    def vector_table(self, name: str) -> VectorTableBase:
        """One vector table of this store."""
        return open_vector_table(self.repo, self.vectors_dir, name)

    def counts(self) -> dict[str, int]:
        """Records per table and rows per vector table (`vectors/NAME`); empty tables left out."""
        out = {kind.table: n for kind in ALL_RECORDS if (n := self.repo.count(kind))}
        out |= {f"vectors/{name}": n for name in self.vector_names() if (n := len(self.vector_table(name).load().ids))}
        return out


def copy_store(source: Location, target: Location, force: bool = False) -> dict[str, int]:
    """Make `target` hold exactly what `source` holds; returns the verified counts.

    Refuses a target that holds anything unless `force`, and then replaces what it held. A record the
    target cannot store (a NUL character, for PostgreSQL) is named and nothing is copied: text is never
    changed on the way.
    """
    held = target.counts()
    if held and not force:
        summary = ", ".join(f"{n} {table}" for table, n in held.items())
        raise StoreError(f"{target.label} is not empty ({summary}); nothing was copied. "
                         "Pass --force to replace what it holds.")
    snapshot = getattr(source.repo, "snapshot", None)
    with snapshot() if snapshot is not None else nullcontext():
        check = getattr(target.repo, "check", None)  # what the target cannot store (PostgreSQL: NUL characters)
        if check is not None:
            for kind in ALL_RECORDS:  # every record before the first is written: a refusal copies nothing
                check(source.repo.all(kind))
        expected: dict[str, int] = {}
        for kind in ALL_RECORDS:
            records = source.repo.all(kind)
            target.repo.put_many(records)  # one transaction, or one write per TinyDB shard
            keep = {r.id for r in records}
            for stale in [r.id for r in target.repo.all(kind) if r.id not in keep]:
                target.repo.delete(kind, stale)
            if records:
                expected[kind.table] = len(records)
        names = source.vector_names()
        for name in names:
            table = source.vector_table(name).load()
            target.vector_table(name).replace(table.ids, table.hashes, table.matrix)
            if table.ids:
                expected[f"vectors/{name}"] = len(table.ids)
        for name in set(target.vector_names()) - set(names):
            target.vector_table(name).replace([], [], np.zeros((0, 0), dtype=np.float32))
    got = target.counts()
    if got != expected:
        diff = {k: (expected.get(k, 0), got.get(k, 0)) for k in expected.keys() | got.keys()
                if expected.get(k, 0) != got.get(k, 0)}
        raise StoreError(f"copy to {target.label} does not match {source.label} (expected, found): {diff}")
    return got



def backup_store(source: Location, out_store: Path, out_vectors: Path) -> dict[str, int]:
    """Write a consistent copy of `source` as a TinyDB store and vector folder; returns the verified counts.

    A TinyDB source is copied file by file (its shards held only while read); a database through copy_store.
    """
    if not isinstance(source.repo, TinyDBRepository):
        return copy_store(source, Location(TinyDBRepository(out_store), out_vectors, str(out_store)))
    for relative, data in source.repo.read_files().items():
        (out_store / relative).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out_store / relative, data)
    out_vectors.mkdir(parents=True, exist_ok=True)
    for name in source.vector_names():
        table = source.vector_table(name)
        if hasattr(table, "copy_to"):
            table.copy_to(out_vectors)
    return Location(TinyDBRepository(out_store), out_vectors, str(out_store)).counts()  # reads every file back
