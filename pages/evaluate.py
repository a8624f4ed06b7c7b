"""Evaluate: what each method bought on held-out tasks — base model, adapters, exemplars, Reflexion, insights."""

from __future__ import annotations

import re

import plotly.express as px
import streamlit as st

from agentlearn import background, review
from pages import _ui
from storage.records import Adapter

METHODS = ("none", "exemplars", "reflexion", "insights", "all")
MODES = ("fixed", "type", "bm25", "semantic", "mmr")

ws = _ui.workspace()
_ui.keep("ev_suite", "ev_method", "ev_mode", "ev_k", "ev_adapter", "ev_limit")
st.title("Evaluate")
suites = _ui.suites(ws)
if not suites:
    st.info("No suites yet: import tasks first.")
    st.stop()
if st.session_state.get("ev_suite") not in suites:
    st.session_state["ev_suite"] = suites[0]
suite = st.selectbox("Suite", suites, key="ev_suite")

table = review.eval_table(ws, suite=suite)
heldout = table[table["split"] == "heldout"] if len(table) else table
if len(heldout):
    # The latest run of each configuration, so that a re-run replaces its bar instead of adding one.
    latest = heldout.drop_duplicates(["method", "exemplar mode", "k", "adapter"]).copy()
    latest["order"] = latest["method"].map({m: n for n, m in enumerate(METHODS)}).fillna(len(METHODS))
    latest = latest.sort_values(["adapter", "order"])
    latest["configuration"] = latest.apply(
        lambda r: r["method"] + (f" ({r['exemplar mode']}, k={r['k']})" if r["exemplar mode"] else "")
        + ("" if r["adapter"] == "(base)" else f" + {r['adapter']}"), axis=1)
    long = latest.melt(id_vars=["configuration", "n"], value_vars=["call accuracy", "name accuracy"],
                       var_name="metric", value_name="accuracy")
    fig = px.bar(long, x="configuration", y="accuracy", color="metric", barmode="group", hover_data=["n"],
                 range_y=[0, 1], text_auto=".2f")
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10))
    st.subheader("Held-out accuracy, latest run per configuration")
    st.plotly_chart(fig, key="ev_chart")
else:
    st.text("No held-out evaluation of this suite yet.")

st.subheader("All evaluation runs")
st.dataframe(table.drop(columns=["id"]) if len(table) else table, hide_index=True, width="stretch")

st.subheader("Run an evaluation")
c = st.columns(5)
method = c[0].selectbox("Method", METHODS, key="ev_method")
mode = c[1].selectbox("Exemplar retrieval", MODES, index=MODES.index("semantic"), key="ev_mode",
                      disabled=method not in ("exemplars", "all"))
k = int(c[2].number_input("k", 1, 8, 3, key="ev_k", disabled=method not in ("exemplars", "all")))
adapters = {a.id: a.name for a in ws.repo.all(Adapter)}
adapter = c[3].selectbox("Adapter", [""] + list(adapters), key="ev_adapter",
                         format_func=lambda i: adapters.get(i, i) if i else "base model")
n_heldout = sum(1 for t in review.task_map(ws).values() if t.suite == suite and t.split == "heldout")
limit = int(c[4].number_input("Tasks", 1, max(n_heldout, 1), max(n_heldout, 1), key="ev_limit"))
args = ["eval", "--suite", suite, "--split", "heldout", "--method", method, "--k", k, "--mode", mode,
        "--limit", limit, "--json"] + (["--adapter", adapter] if adapter else [])
st.code("python -m agentlearn " + " ".join(str(a) for a in args), language="bash")
child = st.session_state.get("ev_child")
running = child is not None and background.returncode(child) is None
if st.button("Evaluate", key="ev_start", type="primary", disabled=running or n_heldout == 0):
    st.session_state["ev_child"] = background.start(_ui.home(), args, name="eval")
    st.session_state["ev_child_total"] = limit
    st.rerun()


@st.fragment(run_every=2)
def _watch() -> None:
    child = st.session_state.get("ev_child")
    if child is None:
        return
    total = st.session_state.get("ev_child_total", 1)
    code = background.returncode(child)
    log = background.tail(child, 30)
    steps = re.findall(r"\[(\d+)/(\d+)\]", log)
    stored = len(review.queue(ws, review.Filters(suite=st.session_state.get("ev_suite") or "", since=child.started)))
    done = int(steps[-1][0]) if steps else min(stored, total)  # --json keeps stdout for the result
    st.progress(min(done / max(total, 1), 1.0), text=f"{done} of {total} tasks · {stored} runs stored")
    if code is None:
        st.code(log or "(loading the model…)", language=None)
        if st.button("Stop", key="ev_stop"):
            background.stop(child)
            st.rerun(scope="fragment")
        return
    result = background.last_json(child)
    if code == 0 and isinstance(result, dict):
        st.text(f"done: call accuracy {float(result.get('call_accuracy', 0)):.2f}, "
                f"name accuracy {float(result.get('name_accuracy', 0)):.2f} on {result.get('n', '?')} tasks")
        st.json(result, expanded=False)
        if st.session_state.get("ev_shown") != child.id:
            st.session_state["ev_shown"] = child.id
            st.rerun()  # redraw the table and the chart with the new run
    else:
        st.text(f"the evaluation stopped (exit status {code})")
        st.code(log, language=None)


_watch()
