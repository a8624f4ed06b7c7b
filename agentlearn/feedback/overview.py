"""Everything the Overview page draws from the store, in one call.

One call, so that the dashboard's server can build it before its first visitor comes (serve.py: at 1M
runs the first build of these tables takes seconds, and Overview is the page the dashboard opens on).
Each table is kept in the workspace's caches until its records change (see the functions it calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from agentlearn.feedback import reports, rubric, team
from agentlearn.workspace import Workspace


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


def overview_tables(ws: Workspace, suite: str) -> OverviewTables:
    """Overview's tables, those of one suite for `suite` ("": the whole store)."""
    return OverviewTables(
        counts=reports.counts(ws), people_verifier=reports.kappa_human_verifier(ws),
        people=reports.kappa_between_people(ws), success_over_time=reports.success_over_time(ws, suite=suite),
        success_by_method=reports.success_by_method(ws, suite=suite), failures=rubric.failures_by_category(ws, suite),
        progress_by_suite=reports.progress_by_suite(ws), progress_by_annotator=reports.progress_by_annotator(ws),
        evaluations=reports.eval_table(ws, suite, limit=5), team=team.team_table(ws))
