"""The one interface pages and agentlearn use to persist records.

A backend stores records by kind (one table per Record subclass) and id. Swapping TinyDB for SQLite or
PostgreSQL means writing another class with these methods; nothing above storage changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from storage.records import Record

R = TypeVar("R", bound=Record)


class Repository(Protocol):
    """Persistence for records. Every write is durable when the call returns."""

    def put(self, record: R) -> R:
        """Insert or replace one record (by id)."""

    def put_many(self, records: Iterable[Record]) -> int:
        """Insert or replace many records at once; returns how many were written."""

    def get(self, kind: type[R], record_id: str) -> R | None:
        """The record with this id, or None."""

    def all(self, kind: type[R]) -> list[R]:
        """Every record of a kind, oldest first."""

    def find(self, record_type: type[R], /, **equals: Any) -> list[R]:
        """Records whose fields equal the given values, oldest first (any field, `kind` included)."""

    def find_in(self, record_type: type[R], field: str, values: Iterable[Any], /,
                skip: Collection[str] = ()) -> list[R]:
        """Records whose `field` (the id or any field) is one of `values`, oldest first: one read for many
        keys. Records whose id is in `skip` (the caller holds them already) are left out unread."""

    def update(self, kind: type[R], record_id: str, change: Callable[[R], R]) -> R:
        """Read, change and write one record atomically (across threads and processes)."""

    def delete(self, kind: type[Record], record_id: str) -> bool:
        """Remove a record; True if it existed."""

    def count(self, kind: type[Record]) -> int:
        """How many records of a kind there are."""

    def version(self, kind: type[Record]) -> tuple:
        """A value that changes whenever the table changes (for caches above)."""

    def changes_since(self, kind: type[R], version: tuple) -> tuple[Iterator[R], tuple] | None:
        """The records written (added or replaced) since the table was at `version` (all of them for `()`),
        oldest first, to be iterated once, and the version they bring it to; None when the store cannot tell
        (a deletion since, or a backend that keeps no write order): the caller reads everything again."""
