"""Pausing Python's cyclic garbage collector while many short-lived containers are made.

Parsing stored records or a received span batch makes many dicts and lists and no cycles. With the
collector on, the ones alive across its passes are promoted to the oldest generation, and every full
pass then walks the whole heap: reading 10k trajectories from TinyDB was about four times slower, and a
collector ingesting spans spent about a fifth of its CPU time in those passes. Reference counting still
frees everything at once; cycles made inside the block wait for the next pass after it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausers = 0  # threads inside paused() right now; the collector runs again when the last one is done
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic garbage collection while any thread is inside the block."""
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
