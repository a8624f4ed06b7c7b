"""Errors the storage layer raises; each names the file (or database) and what is wrong with it."""


class StoreError(Exception):
    """Base class of storage errors. Its message is one line that says what failed and where."""


class CorruptStoreError(StoreError):
    """A store file cannot be read or holds an invalid record. The file is left untouched."""


class SchemaVersionError(StoreError):
    """The store was written by a newer agentlearn than this one."""


class StoreWriteError(StoreError, OSError):
    """The disk refused a write (full, read-only, no permission); names the path. Nothing was changed.

    Also an OSError, so that code which treats a file it keeps as a cache can still ignore it.
    """
