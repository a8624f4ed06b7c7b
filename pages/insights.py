"""Insights: review the ExpeL operations the agent proposes, and curate the rule list by hand."""

from __future__ import annotations

import streamlit as st

from agentlearn import insights
from agentlearn.feedback import index
from agentlearn.feedback import queue as feedback_queue
from agentlearn.feedback import reports as feedback_reports
from pages import _ui
from storage.records import Insight, InsightProposal, Trajectory

KEYS = [("A", "approve"), ("E", "approve my edit"), ("X", "reject"), ("N", "next proposal")]

ws = _ui.workspace()
_ui.keep("ins_suite")


def _pending(suite: str) -> list[InsightProposal]:
    return ws.repo.find(InsightProposal, suite=suite, status="pending")


def _current(suite: str) -> InsightProposal | None:
    queue = _pending(suite)
    if not queue:
        return None
    wanted = st.session_state.get("ins_current")
    return next((p for p in queue if p.id == wanted), queue[0])


def _act(action: str) -> None:
    suite = st.session_state.get("ins_suite") or ""
    proposal = _current(suite)
    if proposal is None or not _ui.allowed("reviewer", "reviewing insight proposals"):
        return
    name = _ui.annotator()
    queue = _pending(suite)
    nxt = feedback_queue.next_after([p.id for p in queue], proposal.id)
    try:
        if action == "approve":
            insights.approve(ws, proposal.id, name)
        elif action == "edit":
            insights.approve(ws, proposal.id, name, text=st.session_state.get(f"ins_edit_{proposal.id}", ""))
        elif action == "reject":
            insights.reject(ws, proposal.id, name)
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    _ui.flash({"approve": "Approved", "edit": "Approved with your edit", "reject": "Rejected"}[action])
    st.session_state["ins_current"] = nxt if nxt != proposal.id else None


def _skip() -> None:
    suite = st.session_state.get("ins_suite") or ""
    proposal = _current(suite)
    if proposal is not None:
        st.session_state["ins_current"] = feedback_queue.next_after([p.id for p in _pending(suite)], proposal.id)


def _manage(fn, *args) -> None:
    if not _ui.allowed("reviewer", "changing insights"):
        return
    try:
        fn(ws, *args, _ui.annotator())
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    _ui.flash("Saved")


def _add_manual(suite: str) -> None:
    _manage(insights.add_manual, suite, st.session_state.get("ins_new_text", ""))
    if st.session_state.get("_flash", ("",))[0] == "success":
        st.session_state["ins_new_text"] = ""


st.title("Insights")
_ui.cheatsheet(KEYS)
_ui.show_flash()
suites = _ui.suites_or_stop(ws, "ins_suite", "import tasks and run the agent first")
top = st.columns([2, 3])
suite = top[0].selectbox("Suite", suites, key="ins_suite")
reviewer = _ui.can("reviewer")  # annotators see the proposals and rules; reviewers act on them
if not reviewer:
    st.info("You can read the proposals and rules here; approving, rejecting and editing them needs the "
            "reviewer role.")
with top[1]:
    if st.button("Propose operations from the stored runs (ExpeL)", key="ins_extract", disabled=not reviewer,
                 help="Runs the model over successes and failures of the train split; proposals wait for review.") \
            and _ui.allowed("reviewer", "proposing insight operations"):
        with st.spinner("Asking the model for insight operations…"):
            try:
                made = insights.extract(ws, suite)
                _ui.flash(f"{len(made)} new proposals", "info")
            except (ValueError, RuntimeError) as e:
                _ui.flash(str(e), "error")
        st.rerun()

# --- the review queue -------------------------------------------------------------------------

queue = _pending(suite)
st.subheader(f"Proposals to review ({len(queue)})")
proposal = _current(suite)
if proposal is None:
    st.text("Nothing waits for review in this suite.")
else:
    st.session_state["ins_current"] = proposal.id
    target = ws.repo.get(Insight, proposal.target_id) if proposal.target_id else None
    before = target.text if target is not None else ""
    with st.container(border=True):
        st.text(f"{proposal.operation}   (proposal {queue.index(proposal) + 1} of {len(queue)}, "
                f"{proposal.created.strftime('%Y-%m-%d %H:%M')})")
        if target is not None:
            st.caption(f"current text (importance {target.importance})")
            st.text(target.text)
        elif proposal.operation != "ADD":
            st.caption("target")
            st.text(f"the rule that proposal {proposal.target_id} would add")
        st.caption("diff against the current text")
        st.code(feedback_reports.text_diff(before, "" if proposal.operation == "REMOVE" else proposal.text),
                language="diff", wrap_lines=True)
        if proposal.operation in ("ADD", "EDIT"):
            key = f"ins_edit_{proposal.id}"
            if key not in st.session_state:
                st.session_state[key] = proposal.text
            st.text_area("Edit before approving (then press E)", key=key, height=80)
        b = st.columns(4)
        b[0].button("Approve", key="ins_approve", shortcut="A", type="primary", width="stretch",
                    on_click=_act, args=("approve",), disabled=not reviewer)
        b[1].button("Approve my edit", key="ins_edit", shortcut="E", width="stretch", on_click=_act,
                    args=("edit",), disabled=not reviewer or proposal.operation not in ("ADD", "EDIT"))
        b[2].button("Reject", key="ins_reject", shortcut="X", width="stretch", on_click=_act, args=("reject",),
                    disabled=not reviewer)
        b[3].button("Next", key="ins_next", shortcut="N", width="stretch", on_click=_skip)
        st.caption(f"evidence: {len(proposal.evidence)} trajectories")
        tasks = index.task_map(ws)
        for tid in proposal.evidence:
            traj = ws.repo.get(Trajectory, tid)
            cols = st.columns([5, 1])
            if traj is None:
                cols[0].text(f"{tid} (not in the store)")
                continue
            ok = "no verdict" if traj.verdict is None else ("success" if traj.verdict.success else "fail")
            cols[0].text(f"{ok}: {index.task_text(tasks.get(traj.task_id))[:100]}\n→ {traj.output[:140]}")
            cols[1].page_link("pages/trajectories.py", label="open", icon=":material/open_in_new:", query_params={"trajectory": tid})

# --- the active rules ---------------------------------------------------------------------------

st.subheader("Active insights (by importance)")
rules = insights.active(ws, suite)
if rules:
    st.dataframe([{"importance": r.importance, "insight": r.text, "changes": len(r.history), "id": r.id}
                  for r in rules], hide_index=True, width="stretch")
else:
    st.text("No active insights yet.")

with st.expander("Add an insight"):
    st.text_area("New insight", key="ins_new_text", height=70, disabled=not reviewer)
    st.button("Add", key="ins_add", on_click=_add_manual, args=(suite,), disabled=not reviewer)

every = sorted(ws.repo.find(Insight, suite=suite), key=lambda i: (i.status != "active", -i.importance))
if every:
    with st.expander("Edit, promote, demote, history and restore", expanded=False):
        chosen = st.selectbox("Insight", [i.id for i in every], key="ins_pick",
                              format_func=lambda i: next(f"[{x.status}, {x.importance}] {x.text[:90]}"
                                                         for x in every if x.id == i))
        ins = next(i for i in every if i.id == chosen)
        st.text(ins.text)
        c = st.columns(3)
        c[0].button("Promote (+1)", key="ins_promote", on_click=_manage, args=(insights.promote, ins.id),
                    disabled=not reviewer or ins.status != "active")
        c[1].button("Demote (−1)", key="ins_demote", on_click=_manage, args=(insights.demote, ins.id),
                    disabled=not reviewer or ins.status != "active")
        edit_key = f"ins_text_{ins.id}"
        if edit_key not in st.session_state:
            st.session_state[edit_key] = ins.text
        st.text_area("Text", key=edit_key, height=70)
        st.button("Save text", key="ins_save", disabled=not reviewer or ins.status != "active",
                  on_click=lambda: _manage(insights.edit, ins.id, st.session_state.get(edit_key, "")))
        st.caption("history (oldest first)")
        st.dataframe([{"#": n, "when": h.at.strftime("%Y-%m-%d %H:%M"), "by": h.by, "operation": h.operation,
                       "importance": h.importance, "text": h.text, "evidence": len(h.evidence)}
                      for n, h in enumerate(ins.history)], hide_index=True, width="stretch")
        if ins.history:
            back = st.number_input("Restore version #", 0, len(ins.history) - 1, len(ins.history) - 1,
                                   key="ins_restore_n")
            st.button("Restore this version", key="ins_restore", on_click=_manage, disabled=not reviewer,
                      args=(insights.restore, ins.id, int(back)))
