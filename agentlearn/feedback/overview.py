"""Everything the Overview page draws from the store, in one call.

One call, so that the dashboard's server can build it before its first visitor comes (serve.py: at 1M
runs the first build of these tables takes seconds, and Overview is the page the dashboard opens on).

On a big store (BACKGROUND_FROM runs and more), a visit after a write (a collector's run, a person's
label) is served the tables of the last build at once, marked `updating`, while a background thread
builds them again: at 1M runs that build takes about 3 s, which a team labeling beside its collectors
would otherwise wait through on every visit. Smaller stores build on the visit itself (well under a
second), so what a person just did shows at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import pandas as pd

from agentlearn.feedback import reports, rubric, team
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Insight, InsightProposal, Label, Preference, Resolution, Suite, Task, Trajectory

BACKGROUND_FROM = 100_000  # runs in the store
# The build waits this long, so that the visit which found the change draws first: both are Python in one
# process, and a build beside the page run (one lock for Python code) made that page 2x slower at 1M.
BUILD_AFTER_S = 1.0
# Every kind of record a table below reads, and the team table's five-minute clock ("last 24 h").
READS = (Trajectory, Task, Label, Resolution, Suite, Insight, InsightProposal, Preference, EvalRun)


@dataclass
class OverviewTables:
    counts: dict[str, int]
    people_verifier: reports.Agreement  # people's verdicts against the automatic verifier
    people: reports.Agreement  # between people on the runs two of them labeled
    success_over_time: pd.DataFrame  # of the suite
    success_by_method: pd.DataFrame  # of the suite
    failures: pd.DataFrame  # failed runs of the suite per error category
    progress_by_suite: pd.DataFrame
    progress_by_annotator: pd.DataFrame
    evaluations: pd.DataFrame  # the suite's latest five
    team: pd.DataFrame
    built: float = field(default_factory=time.time)  # when (seconds since the epoch)
    updating: bool = False  # the store changed since `built`: newer tables are being built


def overview_tables(ws: Workspace, suite: str) -> OverviewTables:
    """Overview's tables, those of one suite for `suite` ("": the whole store)."""
    version = _version(ws)
    key = ("overview", suite)
    kept = ws.caches.previous(key)
    if kept is not None and kept[0] == version:
        return kept[1]
    if kept is None or kept[1].counts["trajectories"] < BACKGROUND_FROM:
        tables = _build(ws, suite)
        ws.caches.put(key, version, (version, tables))
        return tables
    _rebuild_in_background(ws, suite, key)
    return replace(kept[1], updating=True)


def _version(ws: Workspace) -> tuple:
    return (*(ws.repo.version(kind) for kind in READS), int(time.time() // 300))


def _build(ws: Workspace, suite: str) -> OverviewTables:
    return OverviewTables(
        counts=reports.counts(ws), people_verifier=reports.kappa_human_verifier(ws),
        people=reports.kappa_between_people(ws), success_over_time=reports.success_over_time(ws, suite=suite),
        success_by_method=reports.success_by_method(ws, suite=suite), failures=rubric.failures_by_category(ws, suite),
        progress_by_suite=reports.progress_by_suite(ws), progress_by_annotator=reports.progress_by_annotator(ws),
        evaluations=reports.eval_table(ws, suite, limit=5), team=team.team_table(ws))


def _rebuild_in_background(ws: Workspace, suite: str, key: tuple) -> None:
    """One build at a time per suite; the tables it makes replace the kept ones when done."""
    building = ws.caches.table("overview builds")
    with ws.caches.lock:
        if building.get(key):
            return
        building[key] = True

    def work() -> None:
        try:
            time.sleep(BUILD_AFTER_S)
            version = _version(ws)  # read before the records: a write meanwhile makes the next visit build again
            ws.caches.put(key, version, (version, _build(ws, suite)))
        finally:
            with ws.caches.lock:
                building.pop(key, None)

    threading.Thread(target=work, name="overview tables", daemon=True).start()
