"""Preferences: pick the better of two responses to one task (blind, sides randomised). These become DPO pairs."""

from __future__ import annotations

import streamlit as st

from agentlearn import preferences
from agentlearn.feedback import index
from agentlearn.methods import METHODS
from pages import _ui
from storage.records import Adapter

KEYS = [("A", "left is better"), ("B", "right is better"), ("T", "tie"), ("X", "both bad"),
        ("E", "edit to fix"), ("N", "next pair")]

ws = _ui.workspace()
_ui.keep("pref_source", "pref_suite")


def _new_stored_pair() -> None:
    st.session_state["pair"] = preferences.sample_stored_pair(
        ws, annotator=_ui.annotator(), suite=st.session_state.get("pref_suite") or "")
    st.session_state["pref_fix_open"] = False
    st.session_state.pop("pref_fix_text", None)


def _choose(choice: str) -> None:
    pair = st.session_state.get("pair")
    name = _ui.annotator()
    if pair is None:
        return
    fix = st.session_state.get("pref_fix_text", "") if st.session_state.get("pref_fix_open") else ""
    preferences.record_choice(ws, pair, choice, name, corrected=fix)
    words = {"A": "left is better", "B": "right is better", "tie": "tie", "both_bad": "both bad"}[choice]
    _ui.flash(f"Saved: {words}" + (" with a corrected response" if fix.strip() else ""))
    if st.session_state.get("pref_source") == "fresh agent runs":
        st.session_state["pair"] = None
        st.session_state["pref_fix_open"] = False
        st.session_state.pop("pref_fix_text", None)
    else:
        _new_stored_pair()


def _toggle_fix() -> None:
    pair = st.session_state.get("pair")
    opening = not st.session_state.get("pref_fix_open")
    st.session_state["pref_fix_open"] = opening
    if opening and pair is not None and not st.session_state.get("pref_fix_text"):
        st.session_state["pref_fix_text"] = pair.left.output


def _run_fresh(task_id: str, first: preferences.RunSpec, second: preferences.RunSpec) -> None:
    task = index.task_map(ws).get(task_id)
    if task is None:
        return
    try:
        st.session_state["pair"] = preferences.fresh_pair(ws, task, first, second)
    except (ImportError, ValueError, RuntimeError, TypeError) as e:
        _ui.flash(f"Could not run the agent: {e}", "error")


st.title("Preferences")
_ui.cheatsheet(KEYS)
_ui.show_flash()

c = st.columns([2, 2, 3])
source = c[0].selectbox("Pairs from", ["stored trajectories", "fresh agent runs"], key="pref_source")
suites = _ui.suites(ws)
c[1].selectbox("Suite", [""] + suites, key="pref_suite", format_func=lambda v: v or "all suites",
               on_change=_new_stored_pair if source == "stored trajectories" else None)

if source == "fresh agent runs":
    tasks = [t for t in index.task_map(ws).values() if not st.session_state.get("pref_suite")
             or t.suite == st.session_state["pref_suite"]]
    with st.expander("Run the agent twice on one task", expanded=st.session_state.get("pair") is None):
        if not tasks:
            st.info("No tasks in the store yet: import a suite first.")
        else:
            task_id = st.selectbox("Task", [t.id for t in tasks], key="pref_task",
                                   format_func=lambda i: f"{index.task_map(ws)[i].sample_id}: "
                                   f"{index.task_text(index.task_map(ws)[i])[:80]}")
            adapters = [""] + [a.id for a in ws.repo.all(Adapter)]
            specs = []
            for side, col in zip(("first", "second"), st.columns(2), strict=True):
                with col:
                    st.caption(f"{side} run")
                    method = st.selectbox("Memory", METHODS, key=f"pref_{side}_method",
                                          index=0 if side == "first" else 1)
                    adapter = st.selectbox("Adapter", adapters, key=f"pref_{side}_adapter",
                                           format_func=lambda i: i or "base model")
                    temp = st.slider("Temperature", 0.0, 1.5, 0.0 if side == "first" else 0.7, 0.1,
                                     key=f"pref_{side}_temp")
                    specs.append(preferences.RunSpec(method=method, adapter_id=adapter, temperature=temp))
            st.button("Run both", key="pref_run", shortcut="G", on_click=_run_fresh, args=(task_id, *specs),
                      help="Runs the agent twice (both runs are stored) and shows the answers side by side.")
elif "pair" not in st.session_state:
    _new_stored_pair()

pair = st.session_state.get("pair")
summary = preferences.preference_summary(ws)
c[2].text(f"{int(summary['pairs'].sum()) if len(summary) else 0} preferences stored")

if pair is None:
    if source == "stored trajectories":
        st.info("No pair left to judge: a pair needs two stored runs of one task with different answers. "
                "Run the agent again (Run page), or switch to fresh agent runs.")
        st.button("Look again", key="pref_again", on_click=_new_stored_pair)
    st.stop()

with st.container(border=True):
    st.markdown("**Task**")
    _ui.messages([m for m in pair.prompt if m.role != "system"])

sides = st.columns(2, gap="large")
for col, title, traj in ((sides[0], "A (left)", pair.left), (sides[1], "B (right)", pair.right)):
    with col, st.container(border=True):
        st.markdown(f"**{title}**")
        st.code(traj.output or "(empty response)", language=None, wrap_lines=True)
        st.caption("parsed tool call")
        if traj.tool_call is not None:
            st.json(traj.tool_call.model_dump(), expanded=True)
        else:
            st.text("(no tool call could be parsed)")
        with st.expander("verifier's view"):
            _ui.render_verdict(traj)

b = st.columns(6)
b[0].button("A is better", key="pref_a", shortcut="A", on_click=_choose, args=("A",), width="stretch")
b[1].button("B is better", key="pref_b", shortcut="B", on_click=_choose, args=("B",), width="stretch")
b[2].button("Tie", key="pref_t", shortcut="T", on_click=_choose, args=("tie",), width="stretch")
b[3].button("Both bad", key="pref_x", shortcut="X", on_click=_choose, args=("both_bad",), width="stretch")
b[4].button("Edit to fix", key="pref_e", shortcut="E", on_click=_toggle_fix, width="stretch",
            type="primary" if st.session_state.get("pref_fix_open") else "secondary")
b[5].button("Next pair", key="pref_n", shortcut="N", width="stretch",
            on_click=_new_stored_pair if source == "stored trajectories" else
            (lambda: st.session_state.update(pair=None)))

if st.session_state.get("pref_fix_open"):
    st.text_area("Corrected response (becomes the chosen one)", key="pref_fix_text", height=120)
    st.caption("Click outside the box, then press A, B, T or X: the choice is saved with this correction.")

with st.expander("Preferences per annotator"):
    st.dataframe(summary, hide_index=True, width="stretch")
