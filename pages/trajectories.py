"""Trajectories: the labeling queue. Filter, search, find similar, label with the keyboard, bulk-accept.

An episode is shown step by step (pages._episode); a labeler moves between its steps with J and H, flags
the selected one as wrong with W, corrects its call in place and replays the episode from it.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from agentlearn.feedback import claims, episodes, index, labels, queue, similar
from agentlearn.memory import proposals
from agentlearn.tasks import request_text
from pages import _episode, _labeling, _ui

FILTER_KEYS = ("f_suite", "f_split", "f_verifier", "f_status", "f_model", "f_adapter", "f_method", "f_source",
               "f_annotator", "f_search", "f_order")
KEYS = [("S", "success"), ("F", "fail"), ("1–5", "score"), ("V", "take the verifier's verdict"),
        ("N", "submit and next"), ("U", "undo last submit"), ("K", "skip"), ("P", "previous"), ("M", "find similar"),
        ("J / H", "next / previous step"), ("W", "flag the selected step as wrong"), _labeling.FOCUS_KEY]

ws = _ui.workspace()
_ui.keep(*FILTER_KEYS)
st.session_state.setdefault("f_status", queue.ASSIGNED)


def _filters() -> queue.Filters:
    s = st.session_state
    since = s.get("f_since")
    return queue.Filters(
        suite=s.get("f_suite") or "", split=s.get("f_split") or "", verifier=s.get("f_verifier", "any"),
        status=s.get("f_status", queue.ASSIGNED), model=s.get("f_model") or "",
        adapter=s.get("f_adapter") or "", method=s.get("f_method") or "", source=s.get("f_source") or "",
        annotator=s.get("f_annotator") or "",
        search=s.get("f_search", ""), order=s.get("f_order", "newest"),
        since=datetime.fromisoformat(since) if since else None)


def _queue() -> list[str]:
    return queue.queue(ws, _filters(), me=_ui.annotator())


def _draft(tid: str) -> dict:
    drafts = st.session_state.setdefault("drafts", {})
    if tid not in drafts:
        mine = labels.latest_label(ws, tid, _ui.annotator())
        drafts[tid] = {"verdict": mine.verdict if mine else None, "score": mine.score if mine else None,
                       "categories": list(mine.categories) if mine else []}
        if mine and f"comment_{tid}" not in st.session_state:
            st.session_state[f"comment_{tid}"] = mine.comment
    return drafts[tid]


def _unpin() -> None:
    st.session_state["_pinned"] = None


@_ui.action
def _go(step: int) -> None:
    _unpin()
    st.session_state["traj_current"] = queue.next_after(_queue(), st.session_state.get("traj_current"), step)


@_ui.action
def _set(field: str, value) -> None:
    tid = st.session_state.get("traj_current")
    if tid:
        _draft(tid)[field] = value
        if field == "verdict" and value == "success":
            _draft(tid)["categories"] = []  # error categories describe a failure


@_ui.action
def _toggle_category(name: str) -> None:
    tid = st.session_state.get("traj_current")
    if tid:
        draft = _draft(tid)
        ticked = draft.setdefault("categories", [])
        if name in ticked:
            ticked.remove(name)
        else:
            ticked.append(name)
            draft["verdict"] = "fail"


@_ui.action
def _take_verifier() -> None:
    traj = index.trajectory(ws, st.session_state.get("traj_current"))
    if traj is not None and traj.verdict is not None:
        _set("verdict", "success" if traj.verdict.success else "fail")


@_ui.action
def _submit() -> None:
    tid = st.session_state.get("traj_current")
    traj = index.trajectory(ws, tid)
    if traj is None:
        return
    draft = _draft(tid)
    name = _ui.annotator()
    if not draft.get("verdict"):
        _ui.flash("Choose success (S) or fail (F) before submitting.", "error")
        return
    ids = _queue()
    nxt = queue.next_after(ids, tid)
    flags = [i for i in range(len(traj.steps)) if st.session_state.get(f"flag_{tid}_{i}")]
    try:
        label = labels.submit_label(ws, tid, name, draft["verdict"], draft.get("score"),
                                    st.session_state.get(f"comment_{tid}", ""), flags,
                                    seconds=claims.held_for(ws, tid, name), categories=draft.get("categories", []))
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    st.session_state["last_label"] = label.id
    st.session_state["drafts"].pop(tid, None)
    _ui.flash(f"Saved: {draft['verdict']}" + (f", score {draft['score']}" if draft.get("score") else ""))
    st.session_state["traj_current"] = nxt if nxt != tid else None
    st.session_state["similar_of"] = None
    _unpin()
    _labeling.ask_scroll_to_top()  # a mouse submit leaves the view at the button; the next run starts at the top


@_ui.action
def _undo() -> None:
    """Remove my last submitted label and reopen its item with that verdict as the draft."""
    try:
        removed = labels.undo(ws, st.session_state.get("last_label") or "", _ui.annotator())
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    st.session_state["last_label"] = None
    tid = removed.trajectory_id
    st.session_state.setdefault("drafts", {})[tid] = {"verdict": removed.verdict, "score": removed.score,
                                                      "categories": list(removed.categories)}
    st.session_state["traj_current"] = st.session_state["_pinned"] = tid
    _ui.flash(f"Undone: your {removed.verdict} label is removed; the item is open again.")


def _selected_step(tid: str, steps: int) -> int:
    """The step the keys act on (the first one until a person moves), kept within the run's steps."""
    return min(max(0, st.session_state.get(f"step_{tid}", 0)), max(0, steps - 1))


@_ui.action
def _move_step(by: int) -> None:
    traj = index.trajectory(ws, st.session_state.get("traj_current"))
    if traj is not None and traj.steps:
        st.session_state[f"step_{traj.id}"] = min(max(0, _selected_step(traj.id, len(traj.steps)) + by),
                                                  len(traj.steps) - 1)


@_ui.action
def _flag_selected() -> None:
    """Flag (or unflag) the selected step; a wrong step makes the run a fail."""
    traj = index.trajectory(ws, st.session_state.get("traj_current"))
    if traj is None or not traj.steps:
        return
    flag = f"flag_{traj.id}_{_selected_step(traj.id, len(traj.steps))}"
    st.session_state[flag] = not st.session_state.get(flag, False)
    if st.session_state[flag]:
        _set("verdict", "fail")


def _open_run(tid: str) -> None:
    st.session_state["traj_current"] = st.session_state["_pinned"] = tid


def _pick_from(table_key: str, ids: list[str]) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state["traj_current"] = st.session_state["_pinned"] = ids[rows[0]]


st.title("Trajectories")
_ui.cheatsheet(KEYS)
_ui.show_flash()
_labeling.scroll_to_top_if_asked()

with st.spinner("Indexing trajectories…"):
    facets = queue.facets(ws)

active = sum(bool(st.session_state.get(k)) and st.session_state.get(k) not in ("any", "newest", queue.ASSIGNED)
             for k in FILTER_KEYS)
with st.expander("Filters and search", expanded=False, key="filters_open"):
    st.caption(f"{active} filter{'s' if active != 1 else ''} active · filters and the open run are kept in the "
               "address bar, so a reload or a shared link keeps them")
    c = st.columns(5)
    c[0].selectbox("Suite", [""] + facets["suite"], key="f_suite", on_change=_unpin, bind="query-params", format_func=lambda v: v or "all suites")
    c[1].selectbox("Split", ["", "train", "heldout"], key="f_split", on_change=_unpin, bind="query-params", format_func=lambda v: v or "all splits")
    c[2].selectbox("Verifier result", queue.VERIFIER_RESULTS, key="f_verifier", on_change=_unpin, bind="query-params")
    c[3].selectbox("Label status", queue.LABEL_STATUSES, key="f_status", on_change=_unpin, bind="query-params")
    c[4].selectbox("Order", queue.ORDERS, key="f_order", on_change=_unpin, bind="query-params")
    c = st.columns(6)
    c[0].selectbox("Model", [""] + facets["model"], key="f_model", on_change=_unpin, bind="query-params", format_func=lambda v: v or "all models")
    c[1].selectbox("Adapter", ["", "(none)"] + facets["adapter"], key="f_adapter", on_change=_unpin, bind="query-params",
                   format_func=lambda v: {"": "any adapter", "(none)": "base model"}.get(v, v))
    c[2].selectbox("Method", [""] + facets["method"], key="f_method", on_change=_unpin, bind="query-params", format_func=lambda v: v or "all methods")
    c[3].selectbox("Labeled by", [""] + facets["annotator"], key="f_annotator", on_change=_unpin, bind="query-params",
                   format_func=lambda v: v or "anyone or no one")
    c[4].text_input("Search text", key="f_search", on_change=_unpin, bind="query-params", placeholder="words in the request or output")
    c[5].selectbox("Source", [""] + sorted(set(episodes.SOURCES) | set(facets.get("source", []))), key="f_source",
                   on_change=_unpin, bind="query-params",
                   format_func=lambda v: v or "any source", help="agent: the built-in agent · traces: imported trace "
                   "files · collect: spans received live · proxy: conversations through the proxy · replay: "
                   "replays from a corrected step")
    if st.session_state.get("f_since"):
        st.text(f"Only runs since {st.session_state['f_since']} (sent from the Run page)")
        st.button("Show all runs again", on_click=lambda: st.session_state.update(f_since=None))

ids = _queue()
wanted = st.query_params.get("trajectory")
if wanted and wanted != st.session_state.get("_written_link"):
    # A link from outside (evidence on the Insights page, a bookmark, a reload): open that trajectory
    # and keep it open even when the filters would hide it, until the person moves on.
    if index.trajectory(ws, wanted) is not None:
        st.session_state["traj_current"] = st.session_state["_pinned"] = wanted
current = st.session_state.get("traj_current")
if current is None or (current not in ids and current != st.session_state.get("_pinned")):
    current = st.session_state["traj_current"] = ids[0] if ids else None
# Claim the open item, so the queue skips it for everyone else (renewed on every key press).
holder = claims.claim(ws, current, _ui.annotator()) if current else None
if holder is not None and current != st.session_state.get("_pinned") and _filters().status == queue.ASSIGNED:
    # Someone opened it a moment before this queue was read: take the next free item instead.
    current = st.session_state["traj_current"] = claims.take(ws, ids[ids.index(current) + 1:], _ui.annotator())
    holder = None
if current is None:
    claims.release(ws, _ui.annotator())  # nothing open: free what was claimed before (one write at most)
if current:
    st.query_params["trajectory"] = st.session_state["_written_link"] = current

position = ids.index(current) + 1 if current in ids else 0
top = st.columns([4, 1, 1, 1, 1])
top[0].markdown(f"**Queue:** {len(ids):,} trajectories" + (f" · item {position:,}" if position else ""))
if holder is not None:
    top[0].warning(f"{_ui.plain(holder.annotator)} has this item open too.")
top[4].button("Undo", key="btn_undo", shortcut="U", on_click=_undo, width="stretch",
              disabled=not st.session_state.get("last_label"), help="Remove your last submitted label")
top[1].button("Previous", key="btn_prev", shortcut="P", on_click=_go, args=(-1,), width="stretch")
top[2].button("Skip", key="btn_skip", shortcut="K", on_click=_go, args=(1,), width="stretch")
top[3].button("Find similar", key="btn_similar", shortcut="M", width="stretch",
              on_click=lambda: st.session_state.update(similar_of=st.session_state.get("traj_current")))

with st.expander(f"Bulk action on the whole filtered set ({len(ids):,} trajectories)"):
    name = _ui.annotator()
    st.write("Accept the verifier's verdict as your label on every trajectory of the filtered set that has a "
             "verdict and that you have not labeled yet.")
    if st.button("Accept the verifier's verdicts…", key="bulk_ask", disabled=not ids):
        st.session_state["bulk_confirm"] = True
    if st.session_state.get("bulk_confirm"):
        todo = labels.bulk_accept_count(ws, ids, name)
        st.warning(f"This writes {len(todo):,} label records, one per trajectory, under your name. Confirm?")
        b = st.columns(2)
        if b[0].button(f"Confirm: write {len(todo):,} labels", key="bulk_confirm_yes", type="primary",
                       disabled=not todo):
            written = labels.bulk_accept_verifier(ws, ids, name)
            st.session_state["bulk_confirm"] = False
            _ui.flash(f"Wrote {written:,} labels from the verifier's verdicts.")
            st.rerun()
        if b[1].button("Cancel", key="bulk_confirm_no"):
            st.session_state["bulk_confirm"] = False
            st.rerun()

with st.expander("Export labels, preferences and corrections"):
    _labeling.export_panel(ws, "traj_export", suite=st.session_state.get("f_suite") or "")

if current is None:
    st.info("Nothing to label with these filters. Change the filters, or run the agent on the Run page.")
    st.stop()

idx = index.trajectory_index(ws)
page_size = 25
start = max(0, min(position - 1 - page_size // 2, len(ids) - page_size)) if position else 0
window = ids[start:start + page_size]
with st.expander("Queue list (click a row to open it)"):
    rows = []
    people = labels.people_count(ws, window)
    for tid in window:
        n = idx.position[tid]
        rows.append({"id": tid, "suite": idx.suite[n], "split": idx.split[n], "source": idx.source[n],
                     "method": idx.method[n],
                     "verifier": {1: "success", 0: "fail"}.get(int(idx.verifier[n]), "-"),
                     "labels": people[tid],
                     "request and output": _labeling.row_text(idx.text[n], st.session_state.get("f_search", ""))})
    st.dataframe(rows, hide_index=True, width="stretch", key="queue_table", on_select=lambda: _pick_from(
        "queue_table", window), selection_mode="single-row")

similar_of = st.session_state.get("similar_of")
if similar_of:
    with st.expander("Similar trajectories", expanded=True):
        with st.spinner("Embedding trajectories (only new ones)…"):
            hits = similar.similar(ws, similar_of, k=10)
        sim_ids = [t for t, _ in hits]
        st.dataframe([{"id": t, "similarity": round(s, 3), "suite": idx.suite[idx.position[t]],
                       "verifier": {1: "success", 0: "fail"}.get(int(idx.verifier[idx.position[t]]), "-"),
                       "request and output": idx.text[idx.position[t]][:160]} for t, s in hits],
                     hide_index=True, width="stretch", key="similar_table", selection_mode="single-row",
                     on_select=lambda: _pick_from("similar_table", sim_ids))
        st.button("Close", key="similar_close", on_click=lambda: st.session_state.update(similar_of=None))

traj = index.trajectory(ws, current)
task = index.task_map(ws).get(traj.task_id)
draft = _draft(current)
_labeling.guidelines_sidebar(ws, traj.suite)
left, right = st.columns([3, 2], gap="large")
with right:
    with st.container(border=True):
        st.markdown("**Your label**")
        _ui.render_verdict(traj)
        v = st.columns(3)
        v[0].button("Success", key="btn_success", shortcut="S", width="stretch", on_click=_set,
                    args=("verdict", "success"), type="primary" if draft["verdict"] == "success" else "secondary")
        v[1].button("Fail", key="btn_fail", shortcut="F", width="stretch", on_click=_set, args=("verdict", "fail"),
                    type="primary" if draft["verdict"] == "fail" else "secondary")
        v[2].button("Verifier's", key="btn_verifier", shortcut="V", width="stretch", on_click=_take_verifier,
                    disabled=traj.verdict is None)
        s = st.columns(5)
        for n in range(1, 6):
            s[n - 1].button(str(n), key=f"btn_score_{n}", shortcut=str(n), width="stretch", on_click=_set,
                            args=("score", n), type="primary" if draft["score"] == n else "secondary")
        _labeling.category_buttons(ws, traj.suite, draft.get("categories", []), _toggle_category)
        flagged = [str(i + 1) for i in range(len(traj.steps)) if st.session_state.get(f"flag_{current}_{i}")]
        st.text(f"verdict: {draft['verdict'] or '—'}   score: {draft['score'] or '—'}   "
                f"categories: {', '.join(draft.get('categories', [])) or '—'}   flagged steps: {', '.join(flagged) or '—'}")
        st.text_area("Comment", key=f"comment_{current}", height=80, placeholder="optional · / to write, Esc to leave")
        _labeling.focus_key("Comment")
        comment = st.session_state.get(f"comment_{current}", "").strip()
        if comment:
            with st.expander("Turn this comment into a playbook rule"):
                _labeling.propose_rule(ws, traj.suite, proposals.draft_from_comment(ws, current, comment),
                                       f"traj_{current}", [current], f"from {_ui.annotator()}'s rating comment")
        st.button("Submit and next", key="btn_submit", shortcut="N", type="primary", width="stretch",
                  on_click=_submit, disabled=not draft["verdict"])
        others = labels.labels_of(ws, current)
        if others:
            st.caption("Labels on this trajectory (latest per person)")
            st.dataframe([{"annotator": a, "verdict": lb.verdict, "score": lb.score, "comment": lb.comment,
                           "flagged steps": ", ".join(str(i + 1) for i in lb.step_flags),
                           "when": lb.created.strftime("%Y-%m-%d %H:%M")} for a, lb in others.items()],
                         hide_index=True, width="stretch")
    with st.expander("Memory the agent was given", expanded=True):
        _ui.render_memory(ws, traj)
with left:
    st.text(f"trajectory {traj.id} · suite {traj.suite} · split {traj.split} · source {traj.source} · "
            f"{traj.created.strftime('%Y-%m-%d %H:%M')}")
    _labeling.search_hits(request_text(task.input) + "\n" + traj.output if task is not None else traj.output,
                          st.session_state.get("f_search", ""))
    _labeling.replays_panel(ws, traj, _open_run)
    if episodes.is_episode(traj):
        selected = _selected_step(current, len(traj.steps))
        k = st.container(horizontal=True, gap="small", vertical_alignment="center")
        k.button("Previous step", key="btn_step_prev", shortcut="H", on_click=_move_step, args=(-1,), width="content")
        k.button("Next step", key="btn_step_next", shortcut="J", on_click=_move_step, args=(1,), width="content")
        k.button(f"Flag step {selected + 1} as wrong", key="btn_step_flag", shortcut="W", on_click=_flag_selected,
                 width="content", help="Flag the first wrong step; press again to take the flag off")
        k.caption(f"selected: step {selected + 1} of {len(traj.steps)} (▶) · its call can be corrected in its box")
        _episode.render_trajectory(traj, task, flag_prefix=f"flag_{current}_", selected=selected,
                              below=lambda step: _labeling.step_panel(ws, traj, task, step))
    else:
        with st.container(border=True):
            st.markdown("**Expected call beside the agent's**")
            _ui.reference_panel(ws, task, traj)
        with st.expander("Correct the agent's call (stored as a correction: the SFT answer for this task)"):
            _labeling.correction_panel(ws, traj, task)
        _episode.render_trajectory(traj, task, flag_prefix=f"flag_{current}_")
