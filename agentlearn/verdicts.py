"""What people said about a trajectory, reduced to one verdict. People win over the verifier."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from storage.records import Label


def human_verdict(labels: Iterable[Label]) -> str | None:
    """People's verdict: the latest label of each annotator, then the majority; a tie is a fail.

    A tie counts as a fail so that a disputed trajectory never becomes an exemplar or training data.
    None when nobody labeled it.
    """
    latest: dict[str, Label] = {}
    for label in sorted(labels, key=lambda lab: (lab.created, lab.id)):
        latest[label.annotator] = label
    if not latest:
        return None
    votes = Counter(lab.verdict for lab in latest.values())
    return "success" if votes["success"] > votes["fail"] else "fail"
