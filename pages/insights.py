"""Insights: the suite's playbook. Propose changes in the background, review them, and see which bullets help."""

from __future__ import annotations

import streamlit as st

from agentlearn import processes
from agentlearn.feedback import queue as feedback_queue
from agentlearn.feedback import reports as feedback_reports
from agentlearn.memory import attribution, insights, playbook, proposals
from agentlearn.methods import PROPOSAL_SOURCES
from pages import _progress, _ui
from storage.records import InsightProposal

KEYS = [("A", "approve"), ("E", "approve my edit"), ("X", "reject"), ("N", "next proposal")]
SOURCE_WORDS = {"errors": "error analysis (no model)", "model": "ExpeL comparisons (model)",
                "curator": "ACE curator deltas (model)"}

ws = _ui.workspace()
_ui.keep("ins_suite", "ins_sources", "ins_section", "ins_flagged", "ins_sort", "ins_status")
# The bullet pickers show a bullet's text, and the browser keeps the label it last showed, not the bullet's
# id. Naming the chosen bullet again each run sends its current label: after an edit, a restore or a
# promotion the picker shows the new text.
_ui.keep("ins_pick", "ins_ab_pick")


def _current(suite: str) -> InsightProposal | None:
    queue = insights.pending(ws, suite)
    if not queue:
        return None
    wanted = st.session_state.get("ins_current")
    return next((p for p in queue if p.id == wanted), queue[0])


@_ui.action
def _act(action: str) -> None:
    suite = st.session_state.get("ins_suite") or ""
    proposal = _current(suite)
    if proposal is None or not _ui.allowed("review"):
        return
    name = _ui.identity()
    nxt = feedback_queue.next_after([p.id for p in insights.pending(ws, suite)], proposal.id)
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


@_ui.action
def _skip() -> None:
    suite = st.session_state.get("ins_suite") or ""
    proposal = _current(suite)
    if proposal is not None:
        st.session_state["ins_current"] = feedback_queue.next_after(
            [p.id for p in insights.pending(ws, suite)], proposal.id)


@_ui.action
def _manage(fn, *args) -> None:
    if not _ui.allowed("edit_playbook"):
        return
    try:
        fn(ws, *args, _ui.identity())
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    _ui.flash("Saved")


def _add_manual(suite: str) -> None:
    _manage(insights.add_manual, suite, st.session_state.get("ins_new_text", ""))
    if st.session_state.get("_flash", ("",))[0] == "success":
        st.session_state["ins_new_text"] = ""


@_ui.action
def _retire(insight_id: str, why: str) -> None:
    if not _ui.allowed("edit_playbook"):
        return
    try:
        proposals.retire(ws, insight_id, _ui.identity(), why)
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    _ui.flash("A proposal to retire the bullet waits in the review queue")


def _pct(x) -> str:
    return "" if x is None or x != x else f"{x:.0%}"  # x != x: NaN from an empty group


st.title("Insights")
st.caption("The playbook: short rules shown to the agent (methods insights, exemplars+insights, all), in "
           "sections, best first. Counters: runs of the train split that were shown a bullet and succeeded "
           "(helpful), failed in what the bullet is about (harmful), or failed for another reason (neutral).")
_ui.cheatsheet(KEYS)
_ui.show_flash()
suites = _ui.suites_or_stop(ws, "", "import tasks and run the agent first")
if st.session_state.get("ins_suite") not in suites:  # first visit: open where proposals wait for review
    st.session_state["ins_suite"] = insights.most_pending(ws, suites)
suite = st.selectbox("Suite", suites, key="ins_suite")
reviewer, editor = _ui.can("review"), _ui.can("edit_playbook")  # others read proposals and rules
if not reviewer:
    st.info("You can read the proposals and rules here; approving, rejecting and editing them needs the "
            "reviewer role.")

# --- proposing, in the background ------------------------------------------------------------

with st.container(border=True):
    st.subheader("Propose changes from the stored runs")
    st.session_state.setdefault("ins_sources", list(proposals.default_sources(ws)))
    sources = st.multiselect("Sources", list(PROPOSAL_SOURCES), key="ins_sources",
                             format_func=lambda s: SOURCE_WORDS.get(s, s),
                             help="Error analysis groups repeated failures and drafts a rule for each pattern seen "
                                  "3 times. ExpeL and the curator ask the model; a small model often proposes "
                                  "nothing they can use.")
    if st.button("Propose", key="ins_propose", type="primary",
                 disabled=not editor or not sources or _progress.is_running("propose")) \
            and _ui.allowed("edit_playbook"):
        _progress.start("propose", ["insights", "propose", "--suite", suite, "--sources", ",".join(sources)])
    _progress.watch("propose", "sources")
    last = processes.latest(ws, "propose")
    if last is not None and last.status == "succeeded" and processes.option(last, "--suite") == suite:
        st.text(f"Last proposing ({last.created:%Y-%m-%d %H:%M}): {last.result.get('summary', '')}")
        for source in PROPOSAL_SOURCES:
            why = last.result.get(f"why_{source}")
            if why:
                st.text(f"  {SOURCE_WORDS.get(source, source)}: {why}")

# --- the review queue -------------------------------------------------------------------------

queue = insights.pending(ws, suite)
st.subheader(f"Proposals to review ({len(queue)})")
proposal = _current(suite)
if proposal is None:
    st.text("Nothing waits for review in this suite. Press Propose above, or turn a rating comment "
            "(Trajectories) or an edit-to-fix (Preferences) into a proposal.")
else:
    st.session_state["ins_current"] = proposal.id
    target = insights.target(ws, proposal)
    before = target.text if target is not None else ""
    with st.container(border=True):
        section = proposal.section or (target.section if target else playbook.section_for(proposal.text))
        st.text(f"{proposal.operation} · {section} · from {proposal.source}   (proposal {queue.index(proposal) + 1} "
                f"of {len(queue)}, {proposal.created:%Y-%m-%d %H:%M})")
        if proposal.rationale:
            st.text(f"why: {proposal.rationale}")
        if target is not None:
            st.caption(f"current text (importance {target.importance}, +{target.helpful} −{target.harmful} "
                       f"~{target.neutral})")
            st.text(target.text)
        elif proposal.operation != "ADD":
            st.caption("target")
            st.text(f"the rule that proposal {proposal.target_id} would add")
        for other in insights.merged(ws, proposal):
            st.caption("merged into it")
            st.text(other.text)
        st.caption("diff against the current text")
        st.code(feedback_reports.text_diff(before, "" if proposal.operation == "REMOVE" else proposal.text),
                language="diff", wrap_lines=True)
        if proposal.operation in ("ADD", "EDIT", "MERGE"):
            key = f"ins_edit_{proposal.id}"
            if key not in st.session_state:
                st.session_state[key] = proposal.text
            st.text_area("Edit before approving (then press E)", key=key, height=80)
        b = st.columns(4)
        b[0].button("Approve", key="ins_approve", shortcut="A", type="primary", width="stretch",
                    on_click=_act, args=("approve",), disabled=not reviewer)
        b[1].button("Approve my edit", key="ins_edit", shortcut="E", width="stretch", on_click=_act,
                    args=("edit",), disabled=not reviewer or proposal.operation not in ("ADD", "EDIT", "MERGE"))
        b[2].button("Reject", key="ins_reject", shortcut="X", width="stretch", on_click=_act, args=("reject",),
                    disabled=not reviewer)
        b[3].button("Next", key="ins_next", shortcut="N", width="stretch", on_click=_skip)
        rows = proposals.evidence_rows(ws, proposal)
        st.caption(f"evidence: {len(rows)} runs")
        for row in rows:
            cols = st.columns([5, 1])
            cols[0].text(f"{row['outcome']}: {row['request']}\n→ {row['answer']}")
            cols[1].page_link("pages/trajectories.py", label="open", icon=":material/open_in_new:",
                              query_params={"trajectory": row["trajectory"]})

# --- the playbook, with attribution -------------------------------------------------------------

st.subheader("The playbook")
table = attribution.bullets(ws, suite)
if table.empty:
    st.text("No bullets yet: approve a proposal or add one below.")
else:
    f = st.columns([2, 2, 2, 1])
    sections = f[0].multiselect("Sections", list(playbook.SECTIONS), key="ins_section")
    sort = f[1].selectbox("Sort by", ["flagged first", "rank in the prompt", "attributed difference",
                                      "harmful count", "times shown"], key="ins_sort")
    status = f[2].selectbox("Status", ["active", "removed", "any"], key="ins_status")
    flagged_only = f[3].checkbox("flagged only", key="ins_flagged")
    view = table
    if sections:
        view = view[view["section"].isin(sections)]
    if status != "any":
        view = view[view["status"] == status]
    if flagged_only:
        view = view[view["flag"] != ""]
    by = {"attributed difference": ("difference", True), "harmful count": ("harmful", False),
          "times shown": ("shown", False)}.get(sort)
    if by:
        view = view.sort_values(by[0], ascending=by[1], na_position="last")
    elif sort == "rank in the prompt":
        order = {b.id: n for n, b in enumerate(insights.every(ws, suite))}
        view = view.assign(_r=view["id"].map(order)).sort_values("_r").drop(columns="_r")
    st.caption("difference: success rate of runs shown the bullet minus runs of the same tasks not shown it "
               "(any split), with its 95% interval; observational. For a controlled measure, run the A/B "
               "evaluation of one bullet below.")
    shown = view.assign(
        success_shown=view["success_shown"].map(_pct), success_not_shown=view["success_not_shown"].map(_pct),
        difference=[("" if d != d or d is None else f"{d:+.0%} [{lo:+.0%}, {hi:+.0%}]")
                    for d, lo, hi in zip(view["difference"], view["low"], view["high"], strict=True)])
    columns = ["text", "section", "helpful", "harmful", "neutral", "shown", "difference", "flag", "success_shown",
               "not_shown", "success_not_shown", "importance", "status", "id"]  # what a reviewer reads first
    st.dataframe(shown[columns], hide_index=True, width="stretch",
                 column_config={"text": st.column_config.TextColumn("bullet", width="large"),
                                "flag": st.column_config.TextColumn("flag", width="medium"),
                                "id": st.column_config.TextColumn("id", width="small")})
    for row in view[view["flag"] != ""].itertuples():
        cols = st.columns([5, 1])
        cols[0].text(f"flagged: {row.text[:90]}\n  {row.flag}")
        cols[1].button("Propose retiring", key=f"ins_retire_{row.id}", on_click=_retire, args=(row.id, row.flag),
                       disabled=not editor)

every = insights.every(ws, suite)
active = [i for i in every if i.status == "active"]
if active:
    with st.expander("A/B evaluation of one bullet (heldout)"):
        pick = st.selectbox("Bullet", [i.id for i in active], key="ins_ab_pick",
                            format_func=lambda i: next(f"[{x.section}] {x.text[:90]}" for x in active if x.id == i))
        st.text("Runs the heldout split with the whole playbook and without this bullet, and compares them "
                "(paired, exact McNemar). Results appear on the Evaluate page.")
        if st.button("Measure this bullet", key="ins_ab", disabled=not _ui.can("run") or _progress.is_running("eval")):
            _progress.start("eval", ["eval", "--suite", suite, "--method", "insights", "--ablate", pick])
        _progress.watch("eval")

with st.expander("Reflections (Reflexion) and what followed them"):
    notes = attribution.reflections(ws, suite)
    st.text(attribution.reflection_summary(notes))
    if not notes.empty:
        st.dataframe(notes, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn("reflection", width="large")})

with st.expander("Add a bullet"):
    st.text_area("New bullet", key="ins_new_text", height=70, disabled=not editor)
    st.button("Add", key="ins_add", on_click=_add_manual, args=(suite,), disabled=not editor)

if every:
    with st.expander("Edit, promote, demote, history and restore", expanded=False):
        chosen = st.selectbox("Bullet", [i.id for i in every], key="ins_pick",
                              format_func=lambda i: next(f"[{x.status}, importance {x.importance}] {x.text[:90]}"
                                                         for x in every if x.id == i))
        ins = next(i for i in every if i.id == chosen)
        st.text(ins.text)
        c = st.columns(3)
        c[0].button("Promote (+1)", key="ins_promote", on_click=_manage, args=(insights.promote, ins.id),
                    disabled=not editor or ins.status != "active")
        c[1].button("Demote (−1)", key="ins_demote", on_click=_manage, args=(insights.demote, ins.id),
                    disabled=not editor or ins.status != "active")
        edit_key = f"ins_text_{ins.id}_{len(ins.history)}"  # a new version of the bullet starts a fresh box
        if edit_key not in st.session_state:
            st.session_state[edit_key] = ins.text
        st.text_area("Text", key=edit_key, height=70)
        st.button("Save text", key="ins_save", disabled=not editor or ins.status != "active",
                  on_click=lambda: _manage(insights.edit, ins.id, st.session_state.get(edit_key, "")))
        st.caption("history (oldest first)")
        st.dataframe([{"#": n, "when": h.at.strftime("%Y-%m-%d %H:%M"), "by": h.by, "operation": h.operation,
                       "importance": h.importance, "text": h.text, "evidence": len(h.evidence)}
                      for n, h in enumerate(ins.history)], hide_index=True, width="stretch")
        if ins.history:
            # Keyed by the history's length, so after a change the default is the newest version again.
            back = st.number_input("Restore version #", 0, len(ins.history) - 1, len(ins.history) - 1,
                                   key=f"ins_restore_{ins.id}_{len(ins.history)}")
            st.button("Restore this version", key="ins_restore", on_click=_manage, disabled=not editor,
                      args=(insights.restore, ins.id, int(back)))
