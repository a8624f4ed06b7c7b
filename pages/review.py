"""Disagreements: the reviewers' queue. Every label on a contested run, and the ruling learning uses."""

from __future__ import annotations

import streamlit as st

from agentlearn.feedback import disagreements, index, queue
from pages import _episode, _ui

KEYS = [("S", "resolve as success"), ("F", "resolve as fail"), ("K", "skip"), ("P", "previous")]

ws = _ui.workspace()
_ui.keep("rv_kind", "rv_suite", "rv_resolved")
st.title("Disagreements")
_ui.require_page("review")
_ui.cheatsheet(KEYS)
_ui.show_flash()

c = st.columns([2, 2, 1])
kind = c[0].selectbox("Queue", disagreements.KINDS, key="rv_kind",
                      help="people disagree: people's latest verdicts differ · people vs verifier: people's "
                           "verdict (majority, a tie is a fail) differs from the automatic verifier's")
suite = c[1].selectbox("Suite", [""] + _ui.suites(ws), key="rv_suite", format_func=lambda v: v or "all suites")
show_resolved = c[2].toggle("Show resolved", key="rv_resolved")
items = disagreements.disagreements(ws, kind, suite, resolved=show_resolved)
ids = [d.trajectory_id for d in items]


def _go(step: int) -> None:
    st.session_state["rv_current"] = queue.next_after(ids, st.session_state.get("rv_current"), step)


@_ui.action
def _resolve(verdict: str) -> None:
    tid = st.session_state.get("rv_current")
    if not tid or not _ui.allowed("review"):
        return
    try:
        disagreements.resolve(ws, tid, _ui.identity(), verdict, st.session_state.get(f"rv_note_{tid}", ""))
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    nxt = queue.next_after(ids, tid)
    st.session_state["rv_current"] = nxt if nxt != tid else None
    _ui.flash(f"Resolved as {verdict}: learning uses this verdict from now on.")


if not ids:
    st.info("Nothing to resolve here: no run has labels that disagree"
            + (" with the verifier." if kind != disagreements.KINDS[0] else "."))
    st.stop()
current = st.session_state.get("rv_current")
if current not in ids:
    current = st.session_state["rv_current"] = ids[0]
item = items[ids.index(current)]

top = st.columns([4, 1, 1])
top[0].markdown(f"**{len(ids):,} to resolve** · item {ids.index(current) + 1:,}")
top[1].button("Previous", key="rv_prev", shortcut="P", on_click=_go, args=(-1,), width="stretch")
top[2].button("Skip", key="rv_skip", shortcut="K", on_click=_go, args=(1,), width="stretch")
st.dataframe([{"trajectory": d.trajectory_id, "suite": d.suite,
               "votes": " · ".join(f"{v} {n}" for v, n in d.votes.items()), "verifier": d.verifier or "-",
               "resolved": d.resolution.verdict if d.resolution else ""} for d in items[:200]],
             hide_index=True, width="stretch", height=min(38 + 35 * len(items), 250))

traj = index.trajectory(ws, current)
task = index.task_map(ws).get(traj.task_id)
st.markdown("**Every label on this run** (latest per person)")
st.dataframe(disagreements.labels_table(ws, current), hide_index=True, width="stretch", column_config={
    "comment": st.column_config.TextColumn(width="large"), "score": st.column_config.NumberColumn(width="small")})
left, right = st.columns([3, 2], gap="large")
with right:
    with st.container(border=True):
        st.markdown("**Your ruling**")
        _ui.render_verdict(traj)
        ruling = disagreements.resolution_of(ws, current)
        if ruling is not None:
            st.text(f"Resolved as {ruling.verdict} by {ruling.reviewer} ({ruling.created:%Y-%m-%d %H:%M})"
                    + (f": {ruling.note}" if ruling.note else ""))
        st.text_input("Note (why)", key=f"rv_note_{current}", placeholder="optional, kept with the ruling")
        b = st.columns(2)
        b[0].button("Resolve: success", key="rv_success", shortcut="S", type="primary", width="stretch",
                    on_click=_resolve, args=("success",))
        b[1].button("Resolve: fail", key="rv_fail", shortcut="F", type="primary", width="stretch",
                    on_click=_resolve, args=("fail",))
with left:
    st.text(f"trajectory {traj.id} · suite {traj.suite} · split {traj.split} · "
            f"{traj.created.strftime('%Y-%m-%d %H:%M')}")
    with st.container(border=True):
        st.markdown("**Expected call beside the agent's**")
        _ui.reference_panel(ws, task, traj)
    _episode.render_trajectory(traj, task)
