"""Errors the storage layer raises; each names the file and what is wrong with it."""


class StoreError(Exception):
    """Base class of storage errors."""


class CorruptStoreError(StoreError):
    """A store file cannot be read or holds an invalid record. The file is left untouched."""


class SchemaVersionError(StoreError):
    """The store was written by a newer agentlearn than this one."""
