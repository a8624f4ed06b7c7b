"""Charts that more than one page draws, from agentlearn.reports tables.

Every bar carries its value as a label outside the bar, so a bar of height zero still shows "0%"
where it stands; legends sit above the plot, so long configuration names neither squeeze the plot
nor get cut, and the margins leave room for those labels and the axis titles.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

MARGIN = dict(l=10, r=10, t=40, b=10)  # t: room for the value labels above a full bar and the legend
HEADROOM = 1.15  # the axis runs a little past 100%, so the label of a full bar stays clear of the legend
LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, x=0, xanchor="left", title_text="")


def _labelled_bars(fig: go.Figure, template: str) -> go.Figure:
    """Value labels above every bar (zero included), never clipped by the plot area."""
    fig.update_traces(texttemplate=template, textposition="outside", cliponaxis=False, textfont_size=13,
                      textfont_color="#1f1f1f")
    fig.update_layout(uniformtext_minsize=10, uniformtext_mode="show")
    fig.update_xaxes(automargin=True, title=None)
    fig.update_yaxes(automargin=True)
    return fig


def accuracy_bars(long: pd.DataFrame) -> go.Figure:
    """Accuracy per configuration and metric with Wilson 95% error bars (reports.accuracy_chart_rows)."""
    fig = px.bar(long, x="configuration", y="accuracy", color="metric", barmode="group", error_y="plus",
                 error_y_minus="minus", range_y=[0, HEADROOM])
    fig.update_layout(height=400, margin=MARGIN, legend=LEGEND)
    fig.update_yaxes(tickformat=".0%", tickvals=[i / 5 for i in range(6)])
    # light error bars, so the value labels they cross stay readable
    fig.update_traces(error_y_color="rgba(40, 40, 40, 0.45)", error_y_thickness=1.5, error_y_width=5)
    return _labelled_bars(fig, "%{y:.0%}")


def percent_bars(long: pd.DataFrame, x: str, y: str, color: str, hover: list[str] | None = None) -> go.Figure:
    """Grouped bars of a percentage (0 to 100), each labelled, zero bars too."""
    fig = px.bar(long, x=x, y=y, color=color, barmode="group", hover_data=hover or [], range_y=[0, 100 * HEADROOM])
    fig.update_layout(height=320, margin=MARGIN, legend=LEGEND)
    fig.update_yaxes(tickvals=list(range(0, 101, 20)))
    return _labelled_bars(fig, "%{y:.0f}%")


def learning_curve(table: pd.DataFrame) -> go.Figure:
    """Mean accuracy against bank size with the draws' standard deviation as error bars (reports.curve_table)."""
    fig = px.line(table, x="bank size", y="mean", color="metric", error_y="sd", markers=True, range_y=[0, 1.05],
                  hover_data=["min", "max", "draws", "n"])
    fig.update_layout(height=320, margin=MARGIN, yaxis_title="accuracy", xaxis_title="exemplars in the bank",
                      legend=LEGEND)
    fig.update_yaxes(tickformat=".0%", automargin=True)
    return fig


def metric_lines(rows: pd.DataFrame, title: str) -> go.Figure:
    """One training chart: value against step per metric (jobs.metric_rows); a legend only for two or more."""
    fig = px.line(rows, x="step", y="value", color="metric", markers=True, title=title)
    several = rows["metric"].nunique() > 1
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=40 + 20 * several, b=10), showlegend=several,
                      legend={**LEGEND, "y": 1.0}, yaxis_title=None if not several else "value")
    fig.update_xaxes(automargin=True, dtick=max(1, int(rows["step"].max() or 1) // 8))
    fig.update_yaxes(automargin=True)
    return fig


MAX_TIME_TICKS = 8


def success_over_time(over_time: pd.DataFrame) -> go.Figure:
    """Success % per period (feedback.reports.success_over_time), ticks on whole buckets.

    Plotly's own ticks fall between buckets when it zooms in (hours on a chart labelled by day), and the
    bucket's label format then repeats one label on several ticks: ticks are placed a whole number of
    buckets apart, starting on the first bucket, so no two read the same.
    """
    bucket = over_time.attrs
    fig = px.line(over_time, x="period", y="success %", color="method", markers=True, hover_data=["runs"],
                  range_y=[0, 100])
    periods = sorted(pd.to_datetime(over_time["period"].unique()))
    step = max(1, -(-len(periods) // MAX_TIME_TICKS))  # buckets between ticks
    months = bucket["seconds"] >= 28 * 86400
    fig.update_xaxes(tickformat=bucket["tickformat"], title_text=f"period (one point per {bucket['bucket']})",
                     tick0=periods[0], dtick=f"M{step}" if months else step * bucket["seconds"] * 1000)
    if len(periods) == 1:  # a bucket of room on each side (plotly would zoom into milliseconds around the point)
        pad = pd.Timedelta(seconds=bucket["seconds"])
        fig.update_xaxes(range=[periods[0] - pad, periods[0] + pad])
    fig.update_layout(height=320, margin=MARGIN, legend=LEGEND)  # legend above: the plot keeps its width
    return fig
