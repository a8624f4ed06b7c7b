"""Preferences: pick the better of two responses to one task (blind, sides randomised). These become DPO pairs.

Two episodes that share their first steps (a run and its replay) are shown from where they part: the
shared steps once, folded, and each side's continuation beside the other.
"""

from __future__ import annotations

import streamlit as st

from agentlearn import preferences
from agentlearn.feedback import corrections, episodes, index
from agentlearn.feedback.corrections import CorrectionError
from agentlearn.memory import proposals
from agentlearn.methods import METHODS
from agentlearn.tasks import request_text
from pages import _episode, _labeling, _ui
from storage.records import Adapter

KEYS = [("A", "left is better"), ("B", "right is better"), ("T", "tie"), ("X", "both bad"),
        ("E", "edit to fix"), ("/", "the edit box, once open (Esc leaves it)"), ("N", "next pair")]
FIX_BOX = "Corrected response (becomes the chosen one)"

SOURCES = {"stored": "stored trajectories", "fresh": "fresh agent runs"}  # as the link names them: shown
FINDING = "Finding two stored runs of one task with different answers…"  # the first time indexes the store

ws = _ui.workspace()
_ui.keep("pref_source", "pref_suite")


def _set_pair(pair: preferences.Pair | None) -> None:
    """Show this pair (None: none yet) for the current source, with the edit box closed and empty."""
    st.session_state["pair"] = pair
    st.session_state["pair_source"] = st.session_state.get("pref_source", SOURCES["stored"])
    st.session_state["pref_fix_open"] = False
    st.session_state.pop("pref_fix_text", None)
    st.session_state.pop("pref_fix_side", None)


@_ui.action
def _new_stored_pair() -> None:
    _set_pair(preferences.sample_stored_pair(ws, annotator=_ui.annotator(),
                                             suite=st.session_state.get("pref_suite") or ""))


def _from_link() -> None:
    """A new session (a reload, a shared link) starts on the source, suite and pair its address names."""
    if st.session_state.get("pref_link_read"):
        return
    st.session_state["pref_link_read"] = True
    q = st.query_params
    if q.get("source") in SOURCES:
        st.session_state["pref_source"] = SOURCES[q["source"]]
    if q.get("suite") in _ui.suites(ws):
        st.session_state["pref_suite"] = q["suite"]
    if q.get("pair"):
        try:
            _set_pair(preferences.pair_from_key(ws, q["pair"]))
        except ValueError as e:
            st.session_state["pref_link_error"] = f"The link's pair is not shown: {e}."


def _to_link(pair: preferences.Pair | None) -> None:
    """Keep source, suite and pair in the address, so a reload or a shared link shows the same pair."""
    short = {v: k for k, v in SOURCES.items()}
    st.query_params["source"] = short.get(st.session_state.get("pref_source", ""), "stored")
    for name, value in (("suite", st.session_state.get("pref_suite") or ""),
                        ("pair", preferences.pair_key(pair) if pair is not None else "")):
        if value:
            st.query_params[name] = value
        else:
            st.query_params.pop(name, None)


@_ui.action
def _choose(choice: str) -> None:
    pair = st.session_state.get("pair")
    name = _ui.annotator()
    if pair is None:
        return
    fix = st.session_state.get("pref_fix_text", "") if st.session_state.get("pref_fix_open") else ""
    try:
        preferences.record_choice(ws, pair, choice, name, corrected=fix)
    except CorrectionError as e:  # the pair and the edit stay, to be fixed
        _ui.flash("Not saved: the corrected response " + " · ".join(e.problems), "error")
        return
    words = {"A": "left is better", "B": "right is better", "tie": "tie", "both_bad": "both bad"}[choice]
    _ui.flash(f"Saved: {words}" + (" with a corrected response" if fix.strip() else ""))
    if st.session_state.get("pref_source") == SOURCES["fresh"]:
        _set_pair(None)
    else:
        _new_stored_pair()


def _toggle_fix() -> None:
    st.session_state["pref_fix_open"] = not st.session_state.get("pref_fix_open")


def _start_fix_from() -> None:
    """Fill the edit box with the chosen side's answer, unless the box holds an edit of the person's own."""
    pair, side = st.session_state.get("pair"), st.session_state.get("pref_fix_side")
    if pair is None or side not in ("A", "B"):
        return
    text = st.session_state.get("pref_fix_text", "")
    if not text.strip() or text in (pair.left.output, pair.right.output):
        st.session_state["pref_fix_text"] = (pair.left if side == "A" else pair.right).output


def _run_fresh(task_id: str, first: preferences.RunSpec, second: preferences.RunSpec) -> None:
    task = index.task_map(ws).get(task_id)
    if task is None:
        return
    try:
        _set_pair(preferences.fresh_pair(ws, task, first, second))
    except (ImportError, ValueError, RuntimeError, TypeError) as e:
        _ui.flash(f"Could not run the agent: {e}", "error")


_from_link()
st.title("Preferences")
_ui.cheatsheet(KEYS)
_ui.show_flash()
if st.session_state.get("pref_link_error"):
    st.warning(_ui.plain(st.session_state.pop("pref_link_error")))

c = st.columns([2, 2, 3])
source = c[0].selectbox("Pairs from", list(SOURCES.values()), key="pref_source")
suites = _ui.suites(ws)
c[1].selectbox("Suite", [""] + suites, key="pref_suite", format_func=lambda v: v or "all suites",
               on_change=_new_stored_pair if source == SOURCES["stored"] else None)
if "pair" in st.session_state and st.session_state.get("pair_source") != source:
    _set_pair(None)  # a pair belongs to the source it came from: switching never shows the old one
    if source == SOURCES["stored"]:
        with st.spinner(FINDING):
            _new_stored_pair()

if source == SOURCES["fresh"]:
    tasks = [t for t in index.task_map(ws).values() if not st.session_state.get("pref_suite")
             or t.suite == st.session_state["pref_suite"]]
    with st.expander("Run the agent twice on one task", expanded=st.session_state.get("pair") is None):
        if not tasks:
            st.info("No tasks in the store yet: import a suite first.")
        else:
            task_id = st.selectbox("Task", [t.id for t in tasks], key="pref_task",
                                   format_func=lambda i: f"{index.task_map(ws)[i].sample_id}: "
                                   f"{request_text(index.task_map(ws)[i].input)[:80]}")
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
            if st.button("Run both", key="pref_run", shortcut="G",
                         help="Runs the agent twice (both runs are stored) and shows the answers side by side."):
                with st.spinner("Running the agent twice on this task (both runs are stored)…"):
                    _run_fresh(task_id, *specs)
                st.rerun()
elif "pair" not in st.session_state:
    with st.spinner(FINDING):
        _new_stored_pair()

pair = st.session_state.get("pair")
_to_link(pair)
summary = preferences.preference_summary(ws)
stored = int(summary["pairs"].sum()) if len(summary) else 0
c[2].text(f"{stored:,} preference{'' if stored == 1 else 's'} stored")

if pair is None:
    if source == "stored trajectories":
        st.info("No pair left to judge: a pair needs two stored runs of one task with different answers. "
                "Run the agent again (Run page), or switch to fresh agent runs.")
        st.button("Look again", key="pref_again", on_click=_new_stored_pair)
    st.stop()

if pair.heldout:
    st.info("Held-out task: the choice is stored and counted, but no training export uses it "
            "(the evaluation would see its own answer).")
with st.container(border=True):
    st.markdown("**Task**")
    _ui.messages([m for m in pair.prompt if m.role != "system"])

task = index.task_map(ws).get(pair.task_id)
episodic = episodes.is_episode(pair.left) and episodes.is_episode(pair.right)
if episodic and pair.step:
    with st.expander(f"The first {pair.step} step{'s' if pair.step != 1 else ''}, which both runs share"):
        _episode.render_continuation(pair.first.model_copy(update={"steps": pair.first.steps[:pair.step]}), task, 0)
sides = st.columns(2, gap="large")
for col, title, traj in ((sides[0], "A (left)", pair.left), (sides[1], "B (right)", pair.right)):
    with col, st.container(border=True):
        st.markdown(f"**{title}**")
        if episodic:
            st.caption(f"continuation from step {pair.step + 1}")
            _episode.render_continuation(traj, task, pair.step)
        else:
            st.code(traj.output or "(empty response)", language=None, wrap_lines=True)
            _ui.reference_panel(ws, task, traj)  # the task's expected call beside this answer's call
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
            on_click=_new_stored_pair if source == SOURCES["stored"] else (lambda: _set_pair(None)))

if st.session_state.get("pref_fix_open"):
    st.radio("Start from", ["A", "B"], index=None, key="pref_fix_side", horizontal=True, on_change=_start_fix_from,
             format_func=lambda s: "A (left)" if s == "A" else "B (right)",
             help="Fills the box with that answer to edit; what you typed yourself is kept.")
    st.text_area(FIX_BOX, key="pref_fix_text", height=120)
    _labeling.focus_key(FIX_BOX)
    st.caption("Press Esc (or click outside the box), then A, B, T or X: the choice is saved with this correction.")
    pair = st.session_state.get("pair")
    fix = st.session_state.get("pref_fix_text", "")
    if fix.strip() and task is not None:
        try:
            corrections.check_response(task, fix)
        except CorrectionError as e:
            st.error("Cannot be saved as it is: " + " · ".join(_ui.plain(p) for p in e.problems))
    if pair is not None and fix.strip() and fix not in (pair.left.output, pair.right.output):
        with st.expander("Also turn this correction into a playbook rule"):
            _labeling.propose_rule(ws, pair.first.suite, proposals.draft_from_fix(ws, pair.task_id, fix),
                                   f"pref_{preferences.pair_key(pair)}", [pair.left.id, pair.right.id],
                                   f"from {_ui.annotator()}'s edit-to-fix on Preferences")

with st.expander("Export labels, preferences and corrections"):
    _labeling.export_panel(ws, "pref_export", suite=st.session_state.get("pref_suite") or "")

with st.expander("Preferences per annotator"):
    st.dataframe(summary, hide_index=True, width="stretch")
