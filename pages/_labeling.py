"""Parts of the labeling pages: correct in place, error categories, guidelines, label export, search hits.

Data (calls, argument names and values, notes, errors that quote them) is shown with st.text, st.json,
st.dataframe or escaped with _ui.plain. The guidelines are the one Markdown rendered (reviewers and
admins write them on the Suites page), through _ui.guidelines: no links, images or HTML.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import streamlit as st

from agentlearn import policy
from agentlearn.feedback import corrections, corrections_steps, episodes, export, replays, rubric, snippets
from agentlearn.feedback.corrections import CorrectionError, FormField
from agentlearn.workspace import Workspace
from pages import _ui
from storage.records import Task, ToolCall, Trajectory

MAX_CATEGORY_KEYS = 9  # Shift+1 … Shift+9


# --- rubric ------------------------------------------------------------------------------------------


def guidelines_sidebar(ws: Workspace, suite: str) -> None:
    """The suite's guidelines and error categories in the sidebar, beside whatever is being labeled."""
    text = rubric.guidelines(ws, suite)
    with st.sidebar:
        st.markdown("**Guidelines**")
        st.caption(f"suite {_ui.plain(suite)}")
        if text:
            _ui.guidelines(text)  # written by a reviewer or admin (Suites page): formatting, no links or images
        else:
            st.caption("No guidelines for this suite yet: a reviewer or admin writes them on the Suites page.")
        st.caption("Error categories: " + ", ".join(_ui.plain(c) for c in rubric.categories(ws, suite)))


def category_buttons(ws: Workspace, suite: str, ticked: Sequence[str], on_toggle: Callable[[str], None]) -> None:
    """One toggle per error category (Shift+1 … Shift+9); ticking one marks the run as a fail."""
    names = rubric.categories(ws, suite)
    st.caption("Error categories (Shift+1 … ; ticking one marks it a fail)")
    # Buttons as wide as their words, wrapping onto more lines: a fixed grid cut long names off.
    row = st.container(horizontal=True, gap="small")
    for i, name in enumerate(names):
        shortcut = f"Shift+{i + 1}" if i < MAX_CATEGORY_KEYS else None
        row.button(_ui.plain(name), key=f"btn_cat_{i}", shortcut=shortcut, width="content",
                   on_click=on_toggle, args=(name,), type="primary" if name in ticked else "secondary")


# --- correct in place --------------------------------------------------------------------------------


def correction_panel(ws: Workspace, traj: Trajectory, task: Task | None, step: int | None = None) -> None:
    """Edit the run's call, or one step's (`step`), as a form per tool schema or JSON; store it as a Correction."""
    if task is None:
        st.text("The run's task is not in the store: there is no tool schema to check a correction against.")
        return
    key = traj.id if step is None else f"{traj.id}_s{step}"
    start = next(iter(episodes.step_calls(traj, step)), None) if step is not None else traj.tool_call
    if step is not None and corrections_steps.can_add_alternative(task):
        st.checkbox("Also accept as an alternative in the task's reference", key=f"fix_alt_{key}",
                    help="The next grading accepts these values too (the task's reference lists every "
                         "acceptable value of each argument)")
    mode = st.segmented_control("Edit as", ["form", "JSON"], default="form", key=f"fix_mode_{key}")
    if mode == "JSON":
        _json_form(ws, traj, task, start, step, key)
    else:
        _schema_form(ws, traj, task, start, step, key)
    if step is None:
        _stored(ws, traj, task)


def _schema_form(ws: Workspace, traj: Trajectory, task: Task, start: ToolCall | None, step: int | None,
                 key: str) -> None:
    tools = corrections.tool_names(task) or corrections.tool_names(task.model_copy(update={"tools": traj.tools}))
    if not tools:
        st.text("The task offers no tools: use the JSON mode.")
        return
    current = start.name if start is not None and start.name in tools else tools[0]
    tool = st.selectbox("Tool", tools, index=tools.index(current), key=f"fix_tool_{key}")
    fields = corrections.form_fields(task if task.tools else task.model_copy(update={"tools": traj.tools}), tool)
    start_call = start if start is not None and start.name == tool else None
    with st.form(key=f"fix_form_{key}_{tool}", border=False):
        values = {f.name: _input(f, corrections.form_value(f, start_call), f"fix_{key}_{tool}_{f.name}")
                  for f in fields}
        if not fields:
            st.text(f"{tool} takes no arguments.")
        note = st.text_input("Note (optional)", key=f"fix_note_{key}_{tool}")
        submitted = st.form_submit_button("Save correction", type="primary")
    if submitted:
        try:
            call = ToolCall(name=tool, arguments=corrections.arguments_from_form(fields, values))
        except CorrectionError as e:
            _refused(e)
            return
        _save(ws, traj, call, note, step, key)


def _input(f: FormField, start, key: str):
    label = _ui.plain(f.name) + (" (required)" if f.required else "")
    hint = _ui.plain(f.description) if f.description else None
    if f.widget == "text":
        return st.text_input(label, value=start or "", key=key, help=hint)
    if f.widget in ("integer", "number"):
        number = start if isinstance(start, (int, float)) and not isinstance(start, bool) else None
        if f.widget == "integer":
            return st.number_input(label, value=int(number) if number is not None else None, step=1, key=key, help=hint)
        return st.number_input(label, value=float(number) if number is not None else None, key=key, help=hint,
                               format="%g")
    if f.widget in ("boolean", "choice"):
        options = [None, True, False] if f.widget == "boolean" else [None, *f.options]
        index = options.index(start) if start in options else 0
        return st.selectbox(label, options, index=index, key=key, help=hint,
                            format_func=lambda v: "(leave out)" if v is None else json.dumps(v, ensure_ascii=False))
    return st.text_area(label + " · JSON", value=start or "", height=68, key=key, help=hint)


def _json_form(ws: Workspace, traj: Trajectory, task: Task, start: ToolCall | None, step: int | None,
               key: str) -> None:
    shown = {"name": start.name, "arguments": start.arguments} if start is not None else {"name": "", "arguments": {}}
    with st.form(key=f"fix_json_{key}", border=False):
        text = st.text_area("The call as JSON: {\"name\": …, \"arguments\": {…}}",
                            value=json.dumps(shown, ensure_ascii=False, indent=2), height=180,
                            key=f"fix_json_text_{key}")
        note = st.text_input("Note (optional)", key=f"fix_json_note_{key}")
        submitted = st.form_submit_button("Save correction", type="primary")
    if submitted:
        try:
            call = corrections.parse_call_json(text)
        except CorrectionError as e:
            _refused(e)
            return
        _save(ws, traj, call, note, step, key)


def _save(ws: Workspace, traj: Trajectory, call: ToolCall, note: str, step: int | None, key: str) -> None:
    also = bool(st.session_state.get(f"fix_alt_{key}"))
    try:
        if step is None:
            corrections.save(ws, traj.id, _ui.annotator(), call, note)
        else:
            corrections_steps.correct_step(ws, traj.id, step, call, who=_ui.identity(), note=note,
                                           add_alternative=also)
    except CorrectionError as e:
        _refused(e)
        return
    where = f" for step {step + 1}" if step is not None else ""
    _ui.flash(f"Correction saved{where}: {call.name}." + (" Its values are now accepted by the task's reference."
                                                          if also else "")
              + (" Replay from this step to see what follows." if step is not None else
                 " It is the SFT answer for this task and is chosen over this run in DPO."))
    st.rerun()


def _refused(e: CorrectionError) -> None:
    st.error("Not saved. " + " · ".join(_ui.plain(p) for p in e.problems))


def _stored(ws: Workspace, traj: Trajectory, task: Task) -> None:
    made = corrections.of_trajectory(ws, traj.id)
    if not made:
        return
    st.caption(f"Corrections of this run ({len(made)}, newest first)")
    st.dataframe([{"author": c.author, "call": json.dumps(c.call.model_dump(), ensure_ascii=False), "note": c.note,
                   "when": c.created.strftime("%Y-%m-%d %H:%M")} for c in made], hide_index=True, width="stretch")
    heldout = task.split != "train"
    if _ui.can("manage_exemplars") and st.button("Make the newest correction an exemplar", key=f"fix_exemplar_{traj.id}", disabled=heldout,
                 help="Held-out tasks never become exemplars: the evaluation would see its own answer" if heldout
                 else "A manual exemplar of this suite, retrievable at once"):
        try:
            ex = corrections.to_exemplar(ws, made[0].id, who=_ui.identity())
        except CorrectionError as e:
            _refused(e)
            return
        _ui.flash(f"Exemplar {ex.id} added to the bank of {ex.suite}.")
        st.rerun()


# --- one step of an episode: correct it in place, replay from it --------------------------------------


def step_panel(ws: Workspace, traj: Trajectory, task: Task | None, step: int) -> None:
    """Inside the selected step: correct its call in place, the corrections made of it, replay from it."""
    with st.expander(f"Correct step {step + 1}'s call (stored as a correction of this step)",
                     key=f"fix_open_{traj.id}_{step}"):
        correction_panel(ws, traj, task, step)
    made = corrections_steps.of_step(ws, traj.id, step)
    if not made:
        return
    st.caption(f"Corrections of step {step + 1} ({len(made)}, newest first)")
    st.dataframe([{"author": c.author, "call": episodes.call_text(c.call), "note": c.note,
                   "also accepted": c.add_alternative, "when": c.created.strftime("%Y-%m-%d %H:%M")} for c in made],
                 hide_index=True, width="stretch")
    st.button(f"Replay from step {step + 1} with the newest correction", key=f"replay_{traj.id}_{step}",
              on_click=_replay, args=(ws, made[0].id), disabled=replays.running_for(ws, traj.id),
              help="Runs the episode again from this step with the corrected call (a child process); the "
                   "replay is a new run, linked to this one")


@_ui.action
def _replay(ws: Workspace, correction_id: str) -> None:
    try:
        replays.start(ws, correction_id, who=_ui.identity())
    except (OSError, ValueError) as e:  # AccessDenied is a PermissionError; CorrectionError a ValueError
        _ui.flash(f"The replay could not start: {e}", "error")
        return
    _ui.flash("Replay started: it runs in its own process; the replayed run appears below when it ends.")


def replays_panel(ws: Workspace, traj: Trajectory, open_run: Callable[[str], None]) -> None:
    """Where this run came from if it is a replay, and the replays made from it, each with a way to open it."""
    from pages import _progress

    source = replays.origin(ws, traj.id)
    if source is not None:
        st.text(f"This run replays {source.original} from step {source.step + 1} with a corrected call.")
        c = st.columns(2)
        c[0].button("Open the original run", key=f"open_original_{traj.id}", on_click=open_run,
                    args=(source.original,))
        if c[1].button("Compare the continuations on Preferences", key=f"compare_{traj.id}"):
            compare(source.original, traj.id)
    made = replays.replays(ws, traj.id)
    if not made:
        return
    st.caption(f"Replays of this run ({len(made)}, newest first)")
    for r in made:
        c = st.columns([4, 1, 1])
        c[0].text(f"from step {r.step + 1} · {r.status}" + (f" · run {r.replay}" if r.replay else "")
                  + (f" · {r.error}" if r.error else ""))
        if r.replay:
            c[1].button("Open", key=f"open_replay_{r.process_id}", on_click=open_run, args=(r.replay,))
            if c[2].button("Compare", key=f"compare_replay_{r.process_id}"):
                compare(traj.id, r.replay)
    if made[0].status == "running":
        _progress.watch(replays.KIND, what="steps")


def compare(first: str, second: str) -> None:
    """Open Preferences on two runs of one task, compared from the step where they part."""
    st.session_state["pref_link_read"] = False  # Preferences reads the pair from the address once per session
    st.switch_page("pages/preferences.py", query_params={"source": "stored", "pair": f"{first}.{second}.0"})


# --- label export ------------------------------------------------------------------------------------


def export_panel(ws: Workspace, key: str, kinds: Sequence[str] = export.KINDS, suite: str = "") -> None:
    """Download labels, preferences and corrections (JSONL, CSV) or write a Hugging Face datasets folder."""
    if not _ui.can("export"):
        st.caption(f"Exporting needs the {policy.role_for('export')} role.")
        return
    kinds = tuple(kinds)
    what = ", ".join(kinds) + (f" of suite {suite}" if suite else "")
    st.caption(f"Exports {_ui.plain(what)}, each row with its run and task.")
    c = st.columns(3)
    c[0].download_button("JSONL", data=lambda: export.to_jsonl(export.rows(ws, kinds, suite)),
                         file_name="labels.jsonl", mime="application/jsonl", key=f"{key}_jsonl", width="stretch",
                         on_click="ignore")
    c[1].download_button("CSV", data=lambda: export.to_csv(export.rows(ws, kinds, suite)), file_name="labels.csv",
                         mime="text/csv", key=f"{key}_csv", width="stretch", on_click="ignore")
    if c[2].button("Write a datasets folder", key=f"{key}_hf", width="stretch",
                   help="A Hugging Face datasets folder (one split per kind) under the workspace"):
        with st.spinner("Writing the Hugging Face dataset…"):
            try:
                path, n = export.write(ws, "hf", kinds=kinds, suite=suite, who=_ui.identity())
            except ValueError as e:
                st.error(_ui.plain(e))
                return
        st.session_state[f"{key}_hf_done"] = (str(path), n)
    done = st.session_state.get(f"{key}_hf_done")
    if done:
        st.text(f"Wrote {done[1]:,} rows to {done[0]}")
        st.code(f"datasets.load_from_disk({done[0]!r})", language="python")


# --- search hits and scrolling -----------------------------------------------------------------------


def search_hits(text: str, query: str) -> None:
    """Where the search matched in this run, as plain text with the hit between » «."""
    lines = snippets.hit_lines(text, query)
    if query.strip():
        st.text("search hits: " + ("  ·  ".join(lines) if lines else "none in the request or output"))


_SCROLL_TOP = """<script>
(() => {{ // run {n}: after a submit, the next run is read from the top
  const main = window.parent.document.querySelector('[data-testid="stMain"]') || document.querySelector('[data-testid="stMain"]');
  if (main) main.scrollTo({{top: 0}});
  window.scrollTo({{top: 0}});
}})();
</script>"""


def scroll_to_top_if_asked() -> None:
    """Scroll to the top once after a submit (a constant script: no data goes into it)."""
    n = st.session_state.pop("_scroll_top", None)
    if n is not None:
        st.html(_SCROLL_TOP.format(n=int(n)), unsafe_allow_javascript=True, width="content")


def ask_scroll_to_top() -> None:
    """Make the next run of the page scroll to its top."""
    st.session_state["_scroll_top"] = st.session_state.get("_scroll_count", 0) + 1
    st.session_state["_scroll_count"] = st.session_state["_scroll_top"]


# The comment box was 32-55 Tab presses away. One listener for the whole window (installed once: st.html is
# not iframed, and the element is not redrawn while it is unchanged): "/" focuses the box named in
# window.__agentlearnFocus, Esc leaves it so the letter keys work again. Letter keys are avoided: Streamlit
# itself opens its clear-cache dialog on "c" and reruns on "r". The script is a constant: no data goes in it.
_FOCUS_KEY = """<script>
(() => {
  window.__agentlearnFocus = %s;
  if (window.__agentlearnFocusKey) return;
  window.__agentlearnFocusKey = true;
  const box = () => window.__agentlearnFocus &&
    document.querySelector(`textarea[aria-label="${CSS.escape(window.__agentlearnFocus)}"]`);
  document.addEventListener("keydown", (e) => {
    const target = e.target, typing = target && (target.isContentEditable ||
      ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    const found = box();
    if (!found || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/" && !typing) {
      e.preventDefault();
      found.focus();
      found.setSelectionRange(found.value.length, found.value.length);
    } else if (e.key === "Escape" && target === found) {
      found.blur();  // a blur also sends the box's text to the app
    }
  }, true);
})();
</script>"""
FOCUS_KEY = ("/", "comment box (Esc leaves it)")


def focus_key(label: str) -> None:
    """Make "/" focus the text area labelled `label` on this page (a label written in the code, never data)."""
    st.html(_FOCUS_KEY % json.dumps(label), unsafe_allow_javascript=True, width="content")


# --- reports -----------------------------------------------------------------------------------------


def failure_categories(table, key: str) -> None:
    """A failures-by-category table (feedback.rubric) with its share as a bar; zero rows stay visible."""
    if not len(table) or not table["failures"].sum():
        st.text("No failed runs here yet.")
        return
    st.caption("A failure counts under each category ticked on it (people's latest labels), else under what its "
               "verifier verdict implies; so counts can add up to more than the failures.")
    st.dataframe(table, hide_index=True, width="stretch", key=key, column_config={
        "share of failures": st.column_config.ProgressColumn("share of failures", min_value=0.0, max_value=1.0,
                                                             format="percent")})


def row_text(text: str, query: str, width: int = 160) -> str:
    """A queue row's text: the first search hit when searching, else the start of the text."""
    hits = snippets.hit_lines(text, query, width=60, limit=1)
    return hits[0] if hits else text[:width]


# --- a rule for the playbook, from what a person wrote ----------------------------------------------


def propose_rule(ws: Workspace, suite: str, draft: str, key: str, evidence: Sequence[str], why: str) -> None:
    """An editable draft of a playbook rule and a button that sends it to the Insights review queue."""
    from agentlearn.memory import proposals

    box = f"rule_{key}"
    if box not in st.session_state or not st.session_state[box]:
        st.session_state[box] = draft
    st.text_area("Rule for the agent's playbook (edit it first)", key=box, height=70,
                 help="It waits for a reviewer on the Insights page, like every proposal.")
    if st.button("Propose as a playbook rule", key=f"propose_{key}", disabled=not st.session_state[box].strip()):
        try:
            proposals.from_person(ws, suite, st.session_state[box], _ui.identity(), evidence=evidence, why=why)
        except ValueError as e:
            st.error(_ui.plain(str(e)))
            return
        st.success("Proposed: it waits for review on the Insights page.")
