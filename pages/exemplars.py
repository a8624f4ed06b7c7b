"""Exemplars: the bank of solved cases the agent retrieves as few-shot examples; compare retrieval modes."""

from __future__ import annotations

import json

import streamlit as st

from agentlearn import exemplars, review
from pages import _ui
from storage.records import Exemplar, Message, Task, ToolCall

ws = _ui.workspace()
_ui.keep("ex_suite", "ex_kinds", "ex_retired")
st.title("Exemplars")
_ui.show_flash()
suites = _ui.suites_or_stop(ws, "ex_suite", "import tasks first")
top = st.columns([2, 3, 1, 2])
suite = top[0].selectbox("Suite", suites, key="ex_suite")
kinds = top[1].multiselect("Kinds", ["reference", "learned", "manual"], default=["reference", "learned", "manual"],
                           key="ex_kinds")
retired = top[2].checkbox("Show retired", key="ex_retired")
with top[3]:
    if st.button("Learn from labeled successes", key="ex_sync",
                 help="Adds a learned exemplar for each successful train run (people's labels win over the verifier)."):
        n = exemplars.sync_bank(ws, suite)
        _ui.flash(f"{n} learned exemplars are active in this suite.", "info")
        st.rerun()

bank = [e for e in ws.repo.find(Exemplar, suite=suite) if e.kind in kinds and (retired or e.active)]
st.subheader(f"Bank ({len(bank):,} exemplars)")


def _request(e: Exemplar) -> str:
    return next((m.content for m in reversed(e.input) if m.role == "user"), "")


rows = [{"id": e.id, "kind": e.kind, "active": e.active, "tool": e.tool, "request": _request(e)[:200],
         "call": json.dumps(e.call.arguments, ensure_ascii=False), "tags": ", ".join(e.tags)} for e in bank[-2000:]]
if len(bank) > 2000:
    st.caption("Showing the newest 2,000.")
st.dataframe(rows, hide_index=True, width="stretch", key="ex_table")
by_id = {e.id: e for e in bank}
chosen = st.multiselect("Retire exemplars", [e.id for e in bank if e.active], key="ex_retire_ids",
                        format_func=lambda i: f"{i} · {by_id[i].tool} · {_request(by_id[i])[:60]}",
                        placeholder="choose exemplars to retire")
if st.button(f"Retire {len(chosen)} exemplar(s)", key="ex_retire", disabled=not chosen,
             help="Retired exemplars stay in the store for audit but are never retrieved again."):
    for eid in chosen:
        exemplars.retire(ws, eid)
    st.session_state.pop("ex_retire_ids", None)
    _ui.flash(f"Retired {len(chosen)} exemplars.")
    st.rerun()

with st.expander("Add an exemplar by hand"):
    tools = {t.get("name", ""): t for t in next((t.tools for t in review.task_map(ws).values() if t.suite == suite), [])}
    with st.form("ex_add_form", clear_on_submit=False):
        request = st.text_area("User request", key="ex_add_request", height=80)
        tool = st.selectbox("Tool", sorted(tools) or [""], key="ex_add_tool", accept_new_options=True)
        args = st.text_area("Arguments (JSON object)", key="ex_add_args", value="{}", height=80)
        tags = st.text_input("Tags (comma separated)", key="ex_add_tags")
        submitted = st.form_submit_button("Add exemplar")
    if submitted:
        try:
            arguments = json.loads(args or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments must be a JSON object, like {\"username\": \"akhan\"}")
            ex = exemplars.add_manual(ws, suite, [Message(role="user", content=request)],
                                      ToolCall(name=tool or "", arguments=arguments),
                                      [t.strip() for t in tags.split(",") if t.strip()])
            _ui.flash("Added an exemplar.")
            st.session_state["ex_last_added"] = ex.id
            st.rerun()
        except json.JSONDecodeError as e:
            st.error(_ui.plain(f"Arguments are not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}."))
        except ValueError as e:
            st.error(_ui.plain(str(e)))

st.subheader("What each retrieval mode returns")
q = st.columns([4, 1, 2])
query = q[0].text_area("Type a task", key="ex_query", height=80, placeholder="e.g. reset the password of akhan by sms")
k = q[1].number_input("k", 1, 10, 3, key="ex_k")
tags_q = q[2].text_input("Task tags (for the 'type' mode)", key="ex_query_tags")
if query.strip():
    probe = Task(id="probe", suite=suite, sample_id="probe", split="heldout", input=[Message(role="user", content=query)],
                 expected=ToolCall(name=""), tags=[t.strip() for t in tags_q.split(",") if t.strip()])
    cols = st.columns(len(exemplars.MODES))
    for col, mode in zip(cols, exemplars.MODES, strict=True):
        with col:
            st.markdown(f"**{mode}**")
            try:
                hits = exemplars.select(ws, probe, mode, k=int(k))
            except ValueError as e:
                st.text(str(e))
                continue
            if not hits:
                st.text("(nothing)")
            for h in hits:
                with st.container(border=True):
                    st.text(f"score {h.score:.3f} · {h.exemplar.tool}")
                    st.text(_request(h.exemplar)[:160])
else:
    st.caption("Type a task to see the exemplars that fixed, type, BM25, semantic and MMR retrieval would give.")
