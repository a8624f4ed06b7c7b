"""Build what the dashboard's first page reads before anybody asks (serve.py, once at start).

Its own module because it imports the pages' helpers, which import pages._ui: kept out of _ui, the
imports stay one way."""

from __future__ import annotations

from pages import _ui


def warm() -> None:
    """The pages' imports, the trajectory and label indices and Overview's tables for its default suite.
    At 1M runs these take seconds, which the first visitor would otherwise wait through."""
    from agentlearn import reports  # noqa: F401 - what app.py and Overview import (the agent, LangGraph: 0.4 s)
    from agentlearn.feedback.overview import overview_tables
    from pages import _charts, _labeling, _progress  # noqa: F401 - plotly alone takes a second

    ws = _ui._open(_ui.home())
    names = _ui.suites(ws)
    tables = overview_tables(ws, names[0] if names else "")
    if len(tables.success_over_time):  # plotly loads its validators and JSON encoder with the first figure
        _charts.success_over_time(tables.success_over_time).to_json()
