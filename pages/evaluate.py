"""Evaluate: what each method bought on held-out tasks, with n, 95% intervals and paired p-values."""

from __future__ import annotations

import streamlit as st

from agentlearn import reports
from agentlearn.feedback import reports as feedback_reports
from agentlearn.feedback import rubric
from agentlearn.methods import DEFAULT_K, DEFAULT_MODE, MODES, RunOptions, command_line, help_of
from pages import _charts, _labeling, _progress, _run_options, _ui

ws = _ui.workspace()
_ui.keep("ev_suite", *_run_options.keys("ev", "eval"), "ev_repeats", "ev_limit", "ev_baseline", "ev_metric", "ev_argument_run",
         "cu_sizes", "cu_draws", "cu_mode", "cu_k")
st.title("Evaluate")
suites = _ui.suites_or_stop(ws, "ev_suite", "import tasks with `python -m agentlearn tasks import FILE --suite NAME`")
suite = st.selectbox("Suite", suites, key="ev_suite")

summary = reports.eval_summary(ws, suite)
st.subheader("Held-out accuracy per configuration")
if len(summary):
    st.caption("Each bar names its n. Error bars: Wilson 95% intervals. Per configuration the run with the "
               "largest n is shown, so a smaller run never replaces a larger one.")
    st.plotly_chart(_charts.accuracy_bars(reports.accuracy_chart_rows(summary)), key="ev_chart")
    st.dataframe(summary.drop(columns=["id"]), hide_index=True, width="stretch")
    for _, row in summary[summary["note"].str.contains("newer")].iterrows():
        st.text(f"{row['configuration']}: {row['note']} (open All evaluation runs to see them)")
else:
    st.text("No held-out evaluation of this suite yet.")

if len(summary) > 1:
    st.subheader("Compared with a baseline on the same tasks")
    st.caption("Paired on the tasks both runs have: difference with Newcombe's 95% interval and the exact "
               "McNemar p-value (two-sided) on the tasks only one of the two got right.")
    choices = reports.baseline_choices(ws, suite)
    if st.session_state.get("ev_baseline") not in choices:
        st.session_state["ev_baseline"] = ""
    c = st.columns([3, 1])
    baseline = c[0].selectbox("Baseline", list(choices), key="ev_baseline", format_func=choices.get)
    metric = c[1].selectbox("Metric", ["name", "call", "exact"], key="ev_metric")
    compared = reports.comparison(ws, suite, baseline_id=baseline, metric=metric)
    if len(compared):
        st.dataframe(compared, hide_index=True, width="stretch")
    else:
        st.text("No run here has a baseline with per-task results on the same tasks yet (evaluate `none` with "
                "the same decoding).")

if len(summary):
    st.subheader("Per-argument accuracy")
    runs = dict(zip(summary["id"], summary["configuration"] + " (n=" + summary["n"].astype(str) + ")", strict=True))
    if st.session_state.get("ev_argument_run") not in runs:
        st.session_state["ev_argument_run"] = next(iter(runs))
    run_id = st.selectbox("Run", list(runs), key="ev_argument_run", format_func=runs.get)
    arguments = reports.per_argument(ws, run_id)
    if len(arguments):
        st.caption("Over the calls that named the right tool; an argument is right under its kind's rule.")
        st.dataframe(arguments, hide_index=True, width="stretch")
    else:
        st.text("This run has no per-argument grades (no call named the right tool, or it predates them).")
    st.caption("Failures of this run by error category")
    _labeling.failure_categories(rubric.failures_of_eval(ws, run_id), key="ev_categories")

st.subheader("Learning curve")
curve = reports.latest_curve(ws, suite)
if curve is not None:
    table = reports.curve_table(curve)
    st.caption(f"Held-out accuracy against the exemplars in the bank ({curve.exemplar_mode or 'auto'}, k={curve.k}); "
               "mean over draws, error bars one standard deviation.")
    st.plotly_chart(_charts.learning_curve(table), key="ev_curve")
    st.dataframe(table, hide_index=True, width="stretch")
else:
    st.text("No learning curve of this suite yet: measure one below.")

spreads = reports.repeat_spreads(ws, suite)
if len(spreads):
    st.subheader("Repeats")
    st.caption("Runs repeated with sampling and a shuffled shot order: how much a result moves.")
    st.dataframe(spreads, hide_index=True, width="stretch")

st.subheader("All evaluation runs")
table = feedback_reports.eval_table(ws, suite=suite)
st.dataframe(table.drop(columns=["id"]) if len(table) else table, hide_index=True, width="stretch")

st.subheader("Run an evaluation")
n_heldout = reports.split_size(ws, suite, "heldout")
options = _run_options.controls(ws, suite, "ev", "eval")
c = st.columns(3)
repeats = int(c[0].number_input("Repeats (sampled)", 1, 10, 1, key="ev_repeats",
                                help="more than 1: rerun with sampling and a shuffled shot order, and report the spread"))
limit = int(c[1].number_input("Tasks", 1, max(n_heldout, 1), max(n_heldout, 1), key="ev_limit"))
args = command_line("eval", suite, options.replace(limit=limit if limit < n_heldout else None),
                    repeats=repeats if repeats > 1 else None) if options else []
st.code("python -m agentlearn " + " ".join(args), language="bash")
if st.button("Evaluate", key="ev_start", type="primary",
             disabled=_progress.is_running("eval") or n_heldout == 0 or not args):
    _progress.start("eval", args)
    st.rerun()
_progress.watch("eval")

st.subheader("Measure the learning curve")
c = st.columns(4)
sizes = c[0].text_input("Bank sizes", "0,4,8,16,all", key="cu_sizes", help="comma separated; all = the whole bank")
draws = int(c[1].number_input("Draws per size", 1, 10, 3, key="cu_draws"))
curve_mode = c[2].selectbox("Retrieval", list(MODES), index=list(MODES).index(DEFAULT_MODE), key="cu_mode",
                            help=help_of("exemplar_mode"))
curve_k = int(c[3].number_input("k", 1, 8, DEFAULT_K, key="cu_k", help=help_of("k")))
curve_args = command_line("curve", suite, RunOptions(exemplar_mode=curve_mode, k=curve_k),
                          sizes=sizes.replace(" ", ""), draws=draws)
st.code("python -m agentlearn " + " ".join(curve_args), language="bash")
if st.button("Measure", key="cu_start", disabled=_progress.is_running("curve") or n_heldout == 0):
    _progress.start("curve", curve_args)
    st.rerun()
_progress.watch("curve", "points")
