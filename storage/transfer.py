"""Copying a whole store and its vector tables between backends (db copy, backup), then checking the counts.

The source is read inside its snapshot (TinyDB holds every shard, PostgreSQL reads one REPEATABLE READ
transaction), so a copy made while servers write is one consistent state, not a mix of two.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage import open_vector_table
from storage.errors import StoreError
from storage.records import ALL_RECORDS
from storage.repository import Repository
from storage.vectors import VectorTableBase, file_table_names

BATCH = 2000  # records per put_many: one transaction (or one write per shard) each


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

    Refuses a target that holds anything unless `force`, and then replaces what it held.
    """
    held = target.counts()
    if held and not force:
        summary = ", ".join(f"{n} {table}" for table, n in held.items())
        raise StoreError(f"{target.label} is not empty ({summary}); nothing was copied. "
                         "Pass --force to replace what it holds.")
    snapshot = getattr(source.repo, "snapshot", None)
    with snapshot() if snapshot is not None else nullcontext():
        expected: dict[str, int] = {}
        for kind in ALL_RECORDS:
            records = source.repo.all(kind)
            for start in range(0, len(records), BATCH):
                target.repo.put_many(records[start:start + BATCH])
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

