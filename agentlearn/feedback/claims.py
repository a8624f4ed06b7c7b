"""Claims: while a person has an item open in the labeling queue, the queue skips it for everyone else.

A claim lasts `settings.claim_seconds` (10 minutes unless set) and is renewed on activity, so an item
somebody walked away from comes back by itself. Each person holds one claim at most (its id is derived
from the name), so opening the next item moves it. When two people open one item at the same moment,
the earlier claim wins and the later person is moved on.

A claim is only a courtesy to the others: when the disk refuses to store one (full, read-only), the
item stays open for its person unclaimed, so the page goes on to draw it with whatever they were
entering; the label they submit meets the same disk and says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from agentlearn.workspace import Workspace
from storage.errors import StoreWriteError
from storage.records import Claim, now


def claim_id(annotator: str) -> str:
    """The id of this person's one claim."""
    return "claim-" + hashlib.blake2b(annotator.strip().casefold().encode(), digest_size=8).hexdigest()


def _all(ws: Workspace) -> list[Claim]:
    return ws.caches.get("claims", ws.repo.version(Claim), lambda: ws.repo.all(Claim))


def active(ws: Workspace, at: datetime | None = None) -> dict[str, Claim]:
    """Unexpired claims by trajectory id (the earliest claim when two people hold one item)."""
    at = at or now()
    out: dict[str, Claim] = {}
    for c in _all(ws):
        if c.expires > at and (c.trajectory_id not in out or c.since < out[c.trajectory_id].since):
            out[c.trajectory_id] = c
    return out


def held_by_others(ws: Workspace, me: str) -> set[str]:
    """Trajectories someone other than `me` has open now."""
    me = me.strip()
    return {tid for tid, c in active(ws).items() if c.annotator != me}


def claim(ws: Workspace, trajectory_id: str, me: str) -> Claim | None:
    """Claim (or renew) this item for `me`; returns the other person's claim instead if they hold it first."""
    me = me.strip()
    if not me:
        raise ValueError("annotator name is empty: sign in before opening the labeling queue")
    at = now()
    holder = active(ws, at).get(trajectory_id)
    if holder is not None and holder.annotator != me:
        return holder
    ttl = timedelta(seconds=ws.settings.claim_seconds)
    mine = ws.repo.get(Claim, claim_id(me))
    if mine is not None and mine.trajectory_id == trajectory_id and mine.expires > at:
        if mine.expires - at > 0.75 * ttl:
            return None  # renewed a moment ago: spare the write
        since = mine.since
    else:
        since = at
    try:
        ws.repo.put(Claim(id=claim_id(me), trajectory_id=trajectory_id, annotator=me, since=since, expires=at + ttl))
    except StoreWriteError:
        pass  # not claimed this time: the next run tries again
    return None


def take(ws: Workspace, candidates: Sequence[str], me: str) -> str | None:
    """The first candidate `me` can claim (claimed for them), trying a few in order; None if none is free."""
    for tid in list(candidates)[:20]:
        if claim(ws, tid, me) is None:
            return tid
    return None


def held_for(ws: Workspace, trajectory_id: str, me: str) -> float | None:
    """Seconds since `me` opened this item (None when they hold no claim on it)."""
    mine = ws.repo.get(Claim, claim_id(me))
    if mine is None or mine.trajectory_id != trajectory_id:
        return None
    return round((now() - mine.since).total_seconds(), 1)


def release(ws: Workspace, me: str) -> None:
    """Give up `me`'s claim (after a submit, so the item is free for the next person at once)."""
    ws.repo.delete(Claim, claim_id(me))
