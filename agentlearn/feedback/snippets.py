"""Search hits shown without HTML: each match with a little context, the hit between markers.

The queue's search is a case-insensitive substring match on a run's request and output; these lines
show where it matched, so a person sees why a run is in the filtered set.
"""

from __future__ import annotations

import re

MARKS = ("»", "«")


def hit_lines(text: str, query: str, width: int = 40, limit: int = 3, marks: tuple[str, str] = MARKS) -> list[str]:
    """Up to `limit` snippets of `text` around each case-insensitive match of `query`, the hit between marks."""
    needle = query.strip()
    if not needle or not text:
        return []
    flat = re.sub(r"\s+", " ", text)
    out, start = [], 0
    low, want = flat.lower(), needle.lower()
    while len(out) < limit:
        at = low.find(want, start)
        if at < 0:
            break
        end = at + len(needle)
        left, right = max(0, at - width), min(len(flat), end + width)
        out.append(("…" if left else "") + flat[left:at] + marks[0] + flat[at:end] + marks[1] + flat[end:right]
                   + ("…" if right < len(flat) else ""))
        start = end
    return out


def count_hits(text: str, query: str) -> int:
    """How many times `query` occurs in `text`, ignoring case and runs of white space."""
    needle = query.strip().lower()
    return re.sub(r"\s+", " ", text).lower().count(needle) if needle and text else 0
