"""Overview: where things stand — what learning bought, counts, label progress, success rates, agreement."""

from __future__ import annotations

import time

import streamlit as st

from agentlearn import reports
from agentlearn.feedback import reports as feedback_reports
from agentlearn.feedback.overview import overview_tables
from agentlearn.methods import METHODS
from pages import _charts, _labeling, _ui

ws = _ui.workspace()
st.title("Overview")

suites = _ui.suites(ws)
if st.session_state.get("ov_suite") not in suites:
    st.session_state["ov_suite"] = suites[0] if suites else None
with st.spinner("Reading the store…"):
    tables = overview_tables(ws, st.session_state["ov_suite"] or "")
c, people_machine, people = tables.counts, tables.people_verifier, tables.people
if tables.updating:
    st.caption(f"Figures as of {time.strftime('%H:%M:%S', time.localtime(tables.built))}: what was written since "
               "is being counted (seconds on a store this size); the next visit shows it.")


def _kappa_text(a: feedback_reports.Agreement) -> str:
    return "undefined" if a.kappa is None else f"{a.kappa:.2f}"


share = 100 * c["labeled"] / c["trajectories"] if c["trajectories"] else 0.0
m = st.columns(6)
runs = c["trajectories"]  # a million and up would not fit the card: 1.00M, the exact count in its help
m[0].metric("Trajectories", f"{runs / 1e6:.2f}M" if runs >= 1_000_000 else f"{runs:,}", border=True,
            help=f"Stored runs of the agent: {runs:,}")
m[1].metric("Labeled", f"{c['labeled']:,}", f"{share:.1f}% of runs", delta_color="off", delta_arrow="off",
            border=True, help="Runs that at least one person labeled")
m[2].metric("Preferences", f"{c['preferences']:,}", border=True, help="Pairwise choices (DPO pairs)")
m[3].metric("Active insights", f"{c['insights']:,}", border=True)
m[4].metric("To review", f"{c['pending proposals']:,}", border=True,
            help="Playbook proposals waiting for review on the Insights page")
runs_word = "run" if people_machine.n == 1 else "runs"
m[5].metric("κ vs verifier", "n/a" if people_machine.kappa is None else f"{people_machine.kappa:.2f}",
            f"on {people_machine.n:,} {runs_word}" if people_machine.kappa is not None or not people_machine.n
            else people_machine.reason.removeprefix("κ undefined: "),
            delta_color="off", delta_arrow="off", border=True,
            help="Cohen's kappa between people's verdicts and the automatic verifier" + (
                f"; {people_machine.reason}" if people_machine.kappa is None and people_machine.reason else ""))

todo = c["trajectories"] - c["labeled"]
pending = c["pending proposals"]
st.write(f"{todo:,} run{'s' if todo != 1 else ''} wait{'' if todo != 1 else 's'} for a first label and {pending:,} "
         f"insight proposal{'s' if pending != 1 else ''} for review. "
         + ("" if people_machine.kappa is None else
            f"People and the verifier agree on {100 * (people_machine.agree or 0):.0f}% of {people_machine.n:,} "
            f"labeled runs (κ = {people_machine.kappa:.2f})."))
if c["trajectories"] == 0:
    st.info("The store is empty: run the agent on the Run page (or `python -m agentlearn demo`).")
    st.stop()


def _ci(p) -> str:
    return f"{100 * p.low:+.0f} to {100 * p.high:+.0f} points"


def _gain_metric(col, what: str, p) -> None:
    col.metric(f"{what} gain over zero-shot", f"{100 * p.difference:+.1f} points",
               f"{p.accuracy_a:.0%} vs {p.accuracy_b:.0%} · p={p.p_value:.2g} · n={p.n} · 95% CI {_ci(p)}",
               delta_color="off", delta_arrow="off", border=True,
               help="Paired on the same held-out tasks: Newcombe's 95% interval, exact McNemar p-value")


def _learning(suite: str) -> None:
    """The suite's learning curve and the latest gain of a method over zero-shot, paired on the same tasks."""
    st.subheader("What learning bought")
    cols = st.columns([2, 4])
    method = cols[0].selectbox("Method", [m for m in METHODS if m != "none"], key="ov_method",
                            help="\n".join(f"{m}: {d}" for m, d in METHODS.items()))
    left, right = st.columns([1, 2], gap="large")
    with left:
        gain = reports.latest_gain(ws, suite, method)
        if gain is None:
            st.text(f"No held-out evaluation of {method} with a zero-shot run on the same tasks yet (Evaluate page).")
        else:
            p, call = gain.paired, gain.call
            # One above the other: side by side in a third of the page, each figure was cut to "+10…".
            _gain_metric(st.container(), "Tool-name", p)
            _gain_metric(st.container(), "Whole-call", call)  # the name alone can gain while no call is right
            # The cards' last line is cut in a third of the page; the intervals are written out here too.
            st.text(f"{gain.label} against zero-shot on {p.n} held-out tasks: tool name {p.accuracy_a:.0%} vs "
                    f"{p.accuracy_b:.0%} (gain 95% CI {_ci(p)}), whole call (name and arguments) "
                    f"{call.accuracy_a:.0%} vs {call.accuracy_b:.0%} (gain 95% CI {_ci(call)})")
    with right:
        curve = reports.latest_curve(ws, suite)
        if curve is None:
            st.text("No learning curve yet: `python -m agentlearn curve --suite NAME` or the Evaluate page.")
        else:
            st.caption("Learning curve: held-out accuracy against the exemplars in the bank")
            st.plotly_chart(_charts.learning_curve(reports.curve_table(curve)), key="chart_curve")


suite = st.selectbox("Suite", suites, key="ov_suite", help="Every chart and table below is of this suite")
if suite:
    _learning(suite)

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Success rate over time")
    over_time = tables.success_over_time
    if len(over_time):
        fig = _charts.success_over_time(over_time)
        st.plotly_chart(fig, key="chart_time")
    else:
        st.text("No verified runs yet.")
with right:
    st.subheader("Success rate per learning method")
    by_method = tables.success_by_method
    if len(by_method):
        long = by_method.melt(id_vars=["method", "runs"], value_vars=["verifier success %", "human success %"],
                              var_name="judged by", value_name="success %").dropna()
        st.plotly_chart(_charts.percent_bars(long, "method", "success %", "judged by", ["runs"]), key="chart_method")

st.subheader("Failures by error category")
_labeling.failure_categories(tables.failures, key="ov_categories")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Label progress per suite")
    st.dataframe(tables.progress_by_suite, hide_index=True, width="stretch")
    st.subheader("Agreement")
    pairs = {"people and the verifier": people_machine, "two people": people}
    st.dataframe([{"between": name, "Cohen's κ": _kappa_text(a), "runs": a.n,
                   "raw agreement %": "—" if a.agree is None else f"{100 * a.agree:.1f}"} for name, a in pairs.items()],
                 hide_index=True, width="stretch")
    for name, a in pairs.items():
        if a.kappa is None:
            st.text(f"{name}: {a.reason}")
with right:
    st.subheader("Label progress per annotator")
    per_person = tables.progress_by_annotator
    if len(per_person):
        st.dataframe(per_person, hide_index=True, width="stretch")
    else:
        st.text("Nobody has labeled yet.")
    st.subheader("Latest evaluations")
    evals = tables.evaluations
    if len(evals):
        st.dataframe(evals[["when", "suite", "method", "adapter", "n", "call accuracy", "name accuracy"]],
                     hide_index=True, width="stretch")
    else:
        st.text("No evaluation yet.")
    st.page_link("pages/evaluate.py", label="All evaluations", icon=":material/bar_chart:")

st.subheader("Team")
crew = tables.team
if len(crew):
    st.caption("Per annotator: labels written, throughput per clock hour and per day in which they labeled at all, "
               "median time from opening an item to submitting it, and agreement with the other people on the "
               f"runs both labeled. Between all people: {people.text()}"
               + ("" if people.agree is None else f" (raw agreement {100 * people.agree:.0f}% on {people.n:,} pairs)."))
    st.dataframe(crew, hide_index=True, width="stretch", column_config={
        "per hour": st.column_config.NumberColumn(help="Labels per clock hour in which the person labeled at all"),
        "per day": st.column_config.NumberColumn(help="Labels per day on which the person labeled at all"),
        "median s": st.column_config.NumberColumn(help="Median seconds from opening an item to submitting it"),
        "timed": st.column_config.NumberColumn(help="Labels with a time (those written before timing have none)"),
        "κ": st.column_config.TextColumn(help="Cohen's κ of this person against every other person on shared runs "
                                              "(pooled pairs)"),
        "why κ is undefined": st.column_config.TextColumn(width="large")})
else:
    st.text("Nobody has labeled yet.")
