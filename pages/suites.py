"""Suites: each suite's card (description, instruction, tools) and how each of its arguments is graded."""

from __future__ import annotations

import streamlit as st

from agentlearn import arg_kinds, tasks
from agentlearn.feedback import queue, rubric
from agentlearn.prompts import DEFAULT_INSTRUCTION, tool_signature
from pages import _ui

FROM_VALUE = ""  # no kind stored: graders decide from each value (arg_kinds.kind_of)
KIND_HELP = ("categorical: one of a known set, compared after normalisation · extractive: copied from the "
             "conversation (ids, numbers, dates, names), compared after normalisation · free_text: the caller's "
             "own words, compared by token F1 with a threshold")

ws = _ui.workspace()
_ui.keep("su_suite", "su_tool")
st.title("Suites")
_ui.show_flash()


def _import_form() -> None:
    """Upload a JSONL task file: the checks and line-numbered errors of `tasks import`; nothing half-written."""
    with st.form("su_import", border=False):
        upload = st.file_uploader("Task file: JSONL, one task a line", type=["jsonl", "json", "txt"], key="su_upload")
        c = st.columns([2, 1])
        given = c[0].text_input("Suite", key="su_import_name", placeholder="the file's name",
                                help="Importing into an existing suite updates its tasks in place.")
        heldout = c[1].number_input("Held-out fraction", 0.0, 1.0, 0.5, 0.05, key="su_import_heldout")
        sent = st.form_submit_button("Import", type="primary", key="su_import_go")
    if not sent:
        return
    if upload is None:
        st.error("Choose a task file first.")
        return
    try:
        with st.spinner("Checking every line, then importing…"):
            made = tasks.import_upload(ws, _ui.identity(), upload.name, upload.getvalue(), given.strip(),
                                       float(heldout))
    except ValueError as e:  # AccessDenied is a PermissionError, never expected here: the form is admins' only
        st.error("Not imported: " + _ui.plain(str(e)))
        return
    n = len(tasks.load_tasks(ws, made.name))
    _ui.flash(f"Imported {upload.name} into suite {made.name}: {n} tasks.")
    st.session_state["su_suite"] = made.name
    st.rerun()


if _ui.can("admin"):
    with st.expander("Import a suite", expanded=not _ui.suites(ws)):
        _import_form()
names = _ui.suites_or_stop(ws, "su_suite", "an admin imports one here, or run `python -m agentlearn tasks import "
                           "FILE --suite NAME`")
name = st.selectbox("Suite", names, key="su_suite")
try:
    suite = tasks.get_suite(ws, name)
except ValueError:
    st.info("This suite has runs but no card in the store: import its tasks to make one.")
    st.stop()

all_tasks = tasks.load_tasks(ws, name)
train = sum(1 for t in all_tasks if t.split == "train")
st.text(f"{len(all_tasks)} tasks ({train} train, {len(all_tasks) - train} heldout) · {len(suite.tools)} tools"
        f" · source: {suite.source or '-'}")

st.subheader("Card")
with st.form(f"su_card_{name}"):
    description = st.text_input("Description", value=suite.description, key=f"su_description_{name}")
    instruction = st.text_area("Instruction: the agent's role and rules", value=suite.instruction, height=140,
                               key=f"su_instruction_{name}", placeholder=DEFAULT_INSTRUCTION,
                               help="Empty: the agent gets the default instruction, which names no domain.")
    if st.form_submit_button("Save card", type="primary", key="su_save_card"):
        tasks.update_suite(ws, name, instruction=instruction, description=description)
        _ui.flash(f"Saved the card of {name}.")
        st.rerun()
if not suite.instruction:
    st.caption("In use: the default instruction")
    st.text(DEFAULT_INSTRUCTION)

st.subheader("Tools")
st.code("\n".join(tool_signature(t) for t in suite.tools) or "(no tools)", language=None, wrap_lines=True)

st.subheader("Argument kinds")
st.caption(KIND_HELP)
rows = arg_kinds.table(suite)
st.dataframe([{**r, "kind": r["kind"] or "(from the value)", "inferred": r["inferred"] or "(from the value)"}
              for r in rows], hide_index=True, width="stretch")
tools = list(dict.fromkeys(r["tool"] for r in rows))
if tools:
    if st.session_state.get("su_tool") not in tools:
        st.session_state["su_tool"] = tools[0]
    tool = st.selectbox("Change the kinds of", tools, key="su_tool")
    with st.form(f"su_kinds_{name}_{tool}"):
        chosen = {}
        for row in (r for r in rows if r["tool"] == tool):
            options = ([FROM_VALUE] if not row["kind"] else []) + list(arg_kinds.KINDS)
            chosen[row["argument"]] = st.selectbox(
                _ui.plain(row["argument"]), options, index=options.index(row["kind"]),
                key=f"su_kind_{name}_{tool}_{row['argument']}",
                format_func=lambda k: k or "(decided from each value)")
        if st.form_submit_button("Save kinds", key="su_save_kinds"):
            current = {r["argument"]: r["kind"] for r in rows if r["tool"] == tool}
            changed = {arg: kind for arg, kind in chosen.items() if kind != current[arg] and kind != FROM_VALUE}
            if changed:
                tasks.update_suite(ws, name, kind_overrides={tool: changed})
            _ui.flash(f"Saved {len(changed)} argument kind(s) of {tool}." if changed else "Nothing changed.",
                      "success" if changed else "info")
            st.rerun()

st.subheader("Assignment")
st.caption("How many different people label each run of this suite. The labeling queue offers a run to each "
           "person until that many have labeled it, and skips runs someone else has open.")
overlap_now = queue.overlap(ws, name)
if _ui.can("reviewer"):
    with st.form(f"su_overlap_{name}"):
        wanted = st.number_input("Annotators per item", min_value=1, max_value=5, step=1, value=overlap_now,
                                 key=f"su_overlap_value_{name}")
        if st.form_submit_button("Save assignment", key="su_save_overlap"):
            try:
                queue.set_overlap(ws, name, int(wanted))
            except ValueError as e:
                st.error(_ui.plain(f"Not saved: {e}"))
            else:
                _ui.flash(f"{name}: {int(wanted)} annotator(s) per item.")
                st.rerun()
else:
    st.text(f"Annotators per item: {overlap_now}")
    st.caption("Changing it needs the reviewer role.")

st.subheader("Labeling rubric")
st.caption("Error categories a labeler can tick on a failed run, and guidelines (Markdown) shown beside every run "
           "of this suite on Trajectories. Reviewers and admins edit them.")
if _ui.can("reviewer"):
    with st.form(f"su_rubric_{name}"):
        cats = st.text_area("Error categories, one a line", value="\n".join(suite.error_categories), height=140,
                            key=f"su_categories_{name}")
        guide = st.text_area("Guidelines (Markdown)", value=suite.guidelines, height=200,
                             key=f"su_guidelines_{name}", placeholder="## What counts as a success\n…")
        if st.form_submit_button("Save rubric", key="su_save_rubric"):
            try:
                rubric.update(ws, name, cats.splitlines(), guide)
            except ValueError as e:
                st.error(_ui.plain(f"Not saved: {e}"))
            else:
                _ui.flash(f"Saved the rubric of {name}.")
                st.rerun()
else:
    st.text("Error categories: " + ", ".join(suite.error_categories))
    st.caption("Changing the rubric needs the reviewer role.")
if suite.guidelines:
    with st.expander("Guidelines as labelers see them"):
        _ui.guidelines(suite.guidelines)  # written by a reviewer or admin: formatting, no links or images
