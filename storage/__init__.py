"""Persistence only: record schemas, the repository interface and its TinyDB and PostgreSQL backends."""

from __future__ import annotations

from pathlib import Path

from storage.errors import CorruptStoreError, SchemaVersionError, StoreError
from storage.repository import Repository
from storage.tinydb_store import TinyDBRepository
from storage.vectors import VectorTable, VectorTableBase


def is_database_url(location: str) -> bool:
    """Whether a location names a PostgreSQL database rather than a folder."""
    return location.startswith(("postgresql://", "postgres://"))


def open_repository(root: str, database_url: str = "") -> Repository:
    """The store: PostgreSQL when `database_url` is given, else TinyDB files in folder `root`."""
    if database_url:
        from storage.postgres_store import PostgresRepository  # psycopg only where a database is used

        return PostgresRepository(database_url)
    return TinyDBRepository(root)


def open_vector_table(repo: Repository, folder: str | Path, name: str) -> VectorTableBase:
    """The named vector table beside a store: in its database, or a file in `folder` for TinyDB."""
    in_database = getattr(repo, "vector_table", None)
    return in_database(name) if in_database is not None else VectorTable(folder, name)


__all__ = ["CorruptStoreError", "Repository", "SchemaVersionError", "StoreError", "TinyDBRepository",
           "VectorTable", "VectorTableBase", "is_database_url", "open_repository", "open_vector_table"]
