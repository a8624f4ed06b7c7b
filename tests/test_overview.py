"""Overview's tables in one call: built on the visit for a small store; on a big one, the last tables at
once after a write while new ones are built in the background (real TinyDB files)."""

from __future__ import annotations

import time

from agentlearn.feedback import overview
from agentlearn.feedback.overview import overview_tables
from storage.records import Label
from tests.seed import SUITE, seed_workspace


def _label(ws, who: str) -> None:
    ws.repo.put(Label(trajectory_id="tr0bad", annotator=who, verdict="fail"))


def test_a_small_store_shows_a_new_label_at_once(ws):
    seed_workspace(ws.repo)
    before = overview_tables(ws, SUITE)
    assert overview_tables(ws, SUITE) is before  # nothing written: the same tables
    _label(ws, "zed")
    after = overview_tables(ws, SUITE)
    assert not after.updating and after.counts["labels"] == before.counts["labels"] + 1


def test_a_big_store_serves_the_last_tables_while_it_builds_new_ones(ws, monkeypatch):
    monkeypatch.setattr(overview, "BACKGROUND_FROM", 1)  # the seed's 13 runs count as big here
    seed_workspace(ws.repo)
    first = overview_tables(ws, SUITE)  # nothing kept yet: built on the visit
    assert not first.updating
    _label(ws, "zed")
    stale = overview_tables(ws, SUITE)
    assert stale.updating and stale.counts == first.counts and stale.built == first.built
    deadline = time.time() + 30
    while (fresh := overview_tables(ws, SUITE)).updating and time.time() < deadline:
        time.sleep(0.05)
    assert not fresh.updating and fresh.counts["labels"] == first.counts["labels"] + 1
    assert "zed" in set(fresh.progress_by_annotator["annotator"])
