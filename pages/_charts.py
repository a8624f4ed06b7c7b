"""Charts that more than one page draws, from agentlearn.reports tables."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def accuracy_bars(long: pd.DataFrame) -> go.Figure:
    """Accuracy per configuration and metric with Wilson 95% error bars (reports.accuracy_chart_rows)."""
    fig = px.bar(long, x="configuration", y="accuracy", color="metric", barmode="group", error_y="plus",
                 error_y_minus="minus", range_y=[0, 1], text_auto=".2f")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=None)
    return fig


def learning_curve(table: pd.DataFrame) -> go.Figure:
    """Mean accuracy against bank size with the draws' standard deviation as error bars (reports.curve_table)."""
    fig = px.line(table, x="bank size", y="mean", color="metric", error_y="sd", markers=True, range_y=[0, 1],
                  hover_data=["min", "max", "draws", "n"])
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="accuracy",
                      xaxis_title="exemplars in the bank")
    return fig
