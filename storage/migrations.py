"""Numbered schema migrations.

MIGRATIONS[n] upgrades one stored document of a table from schema version n to n + 1. The store
records its version in meta.json; opening an older store applies the missing steps in order (after
copying the old files aside), opening a newer one is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


def _v1_to_v2(table: str, doc: Doc) -> Doc:
    # Version 2 added Reflexion episodes: trials of one task run share an episode id.
    if table in ("trajectories", "reflections"):
        doc.setdefault("episode_id", "")
    return doc


MIGRATIONS: dict[int, Callable[[str, Doc], Doc]] = {1: _v1_to_v2}


def current_version() -> int:
    """The schema version this code writes."""
    return max(MIGRATIONS, default=0) + 1


def migrate(table: str, doc: Doc, from_version: int) -> Doc:
    """Bring one document from `from_version` up to the current version."""
    for version in range(from_version, current_version()):
        doc = MIGRATIONS[version](table, doc)
    return doc
