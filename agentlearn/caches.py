"""What a workspace derives from its store and keeps in memory, with one owner: the workspace.

Every value is kept beside the store version it was built from (a tuple the repository reports), so
a write by any process or any workspace makes the next read rebuild it. Workspaces open on the same
store (the same folder or database URL) share one `Caches`: a page run, a command or a reopened
workspace finds what another one built, and two stores never see each other's values. A store's
caches live as long as a workspace on it (the dashboard keeps one per server), so a process that
opens many stores, such as the test suite, does not keep them all.

Keys never use `id()` of an object: ids are reused after garbage collection, so an id-keyed value
could be served to a different repository or encoder.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Caches:
    """Named values built from one store, each valid while the store's version for it is unchanged."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # guards the dicts; building a value happens outside it
        self._values: dict[object, tuple[tuple, Any]] = {}
        self._tables: dict[str, dict] = {}

    def get(self, name: object, version: tuple, build: Callable[[], T]) -> T:
        """The value cached under `name` if it was built at `version`, else build() (and keep it)."""
        with self.lock:
            hit = self._values.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        self.put(name, version, value)
        return value

    def previous(self, name: object) -> Any:
        """The value kept under `name` whatever its version (None if none): a build that brings an old
        value up to date instead of starting over."""
        with self.lock:
            hit = self._values.get(name)
        return None if hit is None else hit[1]

    def put(self, name: object, version: tuple, value: object) -> None:
        """Replace a value (a writer that folded its own change in, instead of a rebuild)."""
        with self.lock:
            self._values[name] = (version, value)

    def table(self, name: str) -> dict:
        """A named dict for values with keys of their own (queue results per filter, exemplar indices per
        suite, tool vectors per encoder and text); its user checks versions and bounds its size."""
        with self.lock:
            return self._tables.setdefault(name, {})

    def clear(self) -> None:
        """Forget every value and table entry."""
        with self.lock:
            self._values.clear()
            for table in self._tables.values():
                table.clear()


_by_store: weakref.WeakValueDictionary[str, Caches] = weakref.WeakValueDictionary()
_by_store_lock = threading.Lock()


def for_store(location: str) -> Caches:
    """The caches of the store at `location` (a folder path or a database URL), shared by its open workspaces."""
    with _by_store_lock:
        found = _by_store.get(location)
        if found is None:
            found = _by_store[location] = Caches()
        return found


def clear_all() -> None:
    """Forget every store's cached values, as a new process would start (tests; a folder changed on disk)."""
    with _by_store_lock:
        for caches in list(_by_store.values()):
            caches.clear()
