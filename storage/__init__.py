"""Persistence only: record schemas, the repository interface and its TinyDB backend."""

from storage.errors import CorruptStoreError, SchemaVersionError, StoreError
from storage.repository import Repository
from storage.tinydb_store import TinyDBRepository


def open_repository(root: str) -> Repository:
    """Open (or create) the store in folder `root` with the default backend."""
    return TinyDBRepository(root)


__all__ = ["CorruptStoreError", "Repository", "SchemaVersionError", "StoreError", "TinyDBRepository",
           "open_repository"]
