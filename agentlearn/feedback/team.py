"""The team view on Overview: per annotator, how much, how fast, and how much they agree with the others."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd

from agentlearn.feedback.labels import label_index
from agentlearn.feedback.reports import Agreement, agreement_of
from agentlearn.workspace import Workspace
from storage.records import Label, now

TEAM_COLUMNS = ["annotator", "labels", "items", "last 24 h", "last 7 days", "per hour", "per day", "median s",
                "timed", "agree %", "κ", "pairs", "why κ is undefined"]


def _with_others(ws: Workspace, name: str) -> Agreement:
    """This person's verdicts against every other person's on the items both labeled (pooled pairs)."""
    mine, theirs = [], []
    for by in label_index(ws).latest.values():
        if name in by and len(by) > 1:
            for other, label in by.items():
                if other != name:
                    mine.append(by[name].verdict)
                    theirs.append(label.verdict)
    return agreement_of(mine, theirs, "nobody else labeled the same runs yet")


def team_table(ws: Workspace) -> pd.DataFrame:
    """One row per annotator: throughput, time per item (from opening the item to submitting), agreement.

    "per hour" divides the labels by the clock hours in which the person labeled at all (and "per day" by
    the days), so a break does not count as slow work. "median s" is the median time per item over the
    "timed" labels; κ is against every other person on shared runs.
    """
    # Kept until a label is written, and for five minutes at most: "last 24 h" moves with the clock.
    version = (ws.repo.version(Label), int(time.time() // 300))
    return ws.caches.get("team_table", version, lambda: _team_table(ws)).copy()


def _team_table(ws: Workspace) -> pd.DataFrame:
    labels = ws.repo.all(Label)
    if not labels:
        return pd.DataFrame(columns=TEAM_COLUMNS)
    df = pd.DataFrame({"annotator": [lb.annotator for lb in labels], "trajectory": [lb.trajectory_id for lb in labels],
                       "created": pd.to_datetime([lb.created for lb in labels], utc=True),
                       "seconds": [lb.seconds for lb in labels]})
    at = pd.Timestamp(now())
    rows = []
    for name, part in df.groupby("annotator"):
        hours = part["created"].dt.floor("h").nunique()
        days = part["created"].dt.floor("D").nunique()
        timed = part["seconds"].dropna()
        agreement = _with_others(ws, str(name))
        rows.append({
            "annotator": name, "labels": len(part), "items": part["trajectory"].nunique(),
            "last 24 h": int((part["created"] > at - timedelta(hours=24)).sum()),
            "last 7 days": int((part["created"] > at - timedelta(days=7)).sum()),
            "per hour": round(len(part) / hours, 1), "per day": round(len(part) / days, 1),
            "median s": round(float(timed.median()), 1) if len(timed) else None, "timed": len(timed),
            "agree %": None if agreement.agree is None else round(100 * agreement.agree, 1),
            "κ": "undefined" if agreement.kappa is None else f"{agreement.kappa:.2f}",
            "pairs": agreement.n, "why κ is undefined": agreement.reason.removeprefix("κ undefined: ")})
    return pd.DataFrame(rows, columns=TEAM_COLUMNS)

