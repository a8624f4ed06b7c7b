"""Small helpers shared by the pages: the workspace, who is signed in, the key cheatsheet, safe rendering.

Everything that comes from data (task text, model output, tool output, reasons, names) is shown with
st.text / st.code / st.json / st.dataframe, never as markdown or HTML.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from markdown_it import MarkdownIt

from agentlearn import accounts, policy
from agentlearn.settings import Settings
from agentlearn.tasks import request_text
from agentlearn.workspace import Workspace, open_workspace
from storage.errors import StoreError
from storage.records import Exemplar, Insight, Task, Trajectory

# Tests replace these (a hashing encoder, a fake chat model) before running the app.
ENCODER = None
CHAT_FACTORY = None
IDENTITY_KEY = "identity"  # session state: the accounts.Identity app.py signed in
SESSION_KEY = "_session_token"  # session state: the token of this tab's sign-in (agentlearn.sessions)


@st.cache_resource(show_spinner=False)
def _open(home: str) -> Workspace:
    return open_workspace(Settings.from_env().with_(home=Path(home)), encoder=ENCODER, chat_factory=CHAT_FACTORY)


def home() -> str:
    """The workspace folder: AGENTLEARN_HOME of whoever started the server, never a visitor's choice."""
    return str(Settings.from_env().home)


GATE_KEY = "_gate_passed"  # session state: app.py's gate let this session through (set just before a page runs)
_GATE_RETRY_KEY = "_gate_retry"


def through_app() -> None:
    """Stop a page that runs without app.py's gate for this session: nothing of it is drawn.

    A folder named pages/ makes Streamlit start in its old multipage mode, where the first requests of a
    fresh server run pages/NAME.py directly, without app.py (no sign-in, no loopback rule). Every
    session in that window would otherwise draw the page. The gate's mark in session state is set only
    by app.py, after the gate, in the same session; a page without it turns the old mode off (for the
    process) and reruns once, which sends the request through app.py; if that does not help (the page
    was started on its own, as in a test), it stops before drawing anything.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if st.session_state.get(GATE_KEY) and not PagesManager.uses_pages_directory:  # True: this run is the old mode's
        return
    PagesManager.uses_pages_directory = False
    if not st.session_state.get(_GATE_RETRY_KEY):
        st.session_state[_GATE_RETRY_KEY] = True
        st.rerun()
    st.stop()


def gate_passed(passed: bool) -> None:
    """app.py only: mark whether this session went through the gate (pages draw nothing without it)."""
    if passed:
        st.session_state[GATE_KEY] = True
        st.session_state.pop(_GATE_RETRY_KEY, None)
    else:
        st.session_state.pop(GATE_KEY, None)


def gate_workspace() -> Workspace:
    """app.py's gate only: the workspace before the gate has decided (pages call workspace())."""
    return _open(home())


LOCAL_MODEL_KEY = "local_model"  # session state: the embedded model this session chose in the sidebar


def workspace() -> Workspace:
    """The one workspace per process for the chosen folder (every page calls this first: the page gate),
    seen with the embedded model this session chose: the store and vectors are shared, only the model differs."""
    through_app()
    ws = _open(home())
    chosen = st.session_state.get(LOCAL_MODEL_KEY)
    if chosen and chosen != ws.settings.local_model:
        return dataclasses.replace(ws, settings=ws.settings.with_(local_model=chosen))
    return ws


def clear() -> None:
    """Forget the cached workspace and indices (tests; after the folder changed on disk)."""
    from agentlearn import caches

    st.cache_resource.clear()
    st.cache_data.clear()
    caches.clear_all()


def identity() -> accounts.Identity:
    """The signed-in person (app.py signs in before any page runs; the local user when there are no accounts)."""
    found = st.session_state.get(IDENTITY_KEY)
    if not isinstance(found, accounts.Identity):
        st.error("Nobody is signed in: open the dashboard from its start page.")
        st.stop()
    return found


def client_address() -> str:
    """The visitor's IP address as the server saw it ('' when unknown): sign-in attempts are counted per client."""
    address = st.context.ip_address
    return address if isinstance(address, str) else ""


def request_host() -> str:
    """The Host header of this session's WebSocket request ('' when unknown)."""
    host = st.context.headers.get("Host") if st.context.headers is not None else None
    return host if isinstance(host, str) else ""


def annotator() -> str:
    """The signed-in person's name: recorded on every label, preference and review."""
    return identity().name


def can(action: str) -> bool:
    """True if the signed-in person may do `action` (agentlearn.policy): pages hide what this is False for."""
    return policy.allows(identity(), action)


def allowed(action: str) -> bool:
    """In a callback: True if the signed-in person may do `action`, else False and an error for the next run."""
    try:
        policy.require(workspace().repo, identity(), action)
    except accounts.AccessDenied as e:
        flash(str(e), "error")
        return False
    return True


def require_page(action: str) -> None:
    """Stop the page with a message unless the signed-in person may do `action`."""
    if not can(action):
        what, role = policy.ACTIONS[action][1], policy.role_for(action)
        st.info(f"{what.capitalize()} needs the {role} role; you are signed in as {plain(annotator())} "
                f"({identity().role}). Ask an admin.")
        st.stop()


def cheatsheet(keys: list[tuple[str, str]]) -> None:
    """A one-line list of this page's keys, always visible under the title."""
    st.caption("Keys: " + " · ".join(f"`{k}` {what}" for k, what in keys)
               + " — keys work when no text box has focus (click outside it or press Tab).")


MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#+-.!|~$:")
# Streamlit's Markdown (remark-gfm) turns bare URLs, www. names and e-mail addresses into links after
# escapes are resolved, so backslashes cannot stop it. An invisible word joiner after "://", "www" and
# "@" breaks each pattern and leaves the text looking the same.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(://|\bwww(?=\.)|@)")


def plain(text: str) -> str:
    """Text that Markdown shows literally (for messages that may quote data: names, ids, errors): no
    formatting, and no URL or e-mail address in it becomes a link."""
    text = _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER, str(text))
    return "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in text)


def guidelines(text: str) -> None:
    """Show a suite's guidelines (Markdown a reviewer wrote) with their formatting but nothing that reaches
    out: links, images, autolinks, link definitions and HTML stay literal text, so a guideline can neither
    fetch a remote image in every labeler's browser nor offer a link."""
    st.html(_GUIDELINES_MARKDOWN.render(str(text)))


_GUIDELINES_MARKDOWN = (MarkdownIt("commonmark", {"html": False, "linkify": False})
                        .enable(["table", "strikethrough"])
                        .disable(["link", "image", "autolink", "reference", "html_inline", "html_block"]))


# --- a disk or database that fails while a page runs ------------------------------------------------

# What a full or read-only disk and an unreachable database raise (storage's StoreWriteError is both;
# a PostgreSQL failure is a StoreError naming the host). Each says in one line what failed and where.
STORE_FAILURES = (StoreError, OSError)
_FAILED_KEY = "_store_failed"  # session state: the line of a callback's failure, drawn by the run it starts


def failure_line(e: BaseException) -> str:
    """The error's own message on one line: it names the file or database (never a traceback)."""
    return " ".join(str(e).split()) or type(e).__name__


def action(callback: Callable) -> Callable:
    """Wrap a widget callback that reads or writes the store.

    Callbacks run before app.py, so a failure in one would end the run with a traceback and a page
    with nothing else on it. Wrapped, the failure is kept as a line that app.py's store_failures()
    draws, and the page is drawn as usual: every box still holds what the person entered (nothing
    is cleared before the write succeeded), ready to send again once the disk or database is back.
    """
    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except STORE_FAILURES as e:
            st.session_state[_FAILED_KEY] = failure_line(e)

    return run


@contextmanager
def store_failures() -> Iterator[None]:
    """app.py runs the whole page inside this: a store failure becomes one plain line at the top.

    A failure in the page stops the run there with st.stop(): Streamlit keeps the values of the
    widgets not drawn yet (a run that stops early forgets none), so what the person typed below that
    point is there again on the next run. A callback's failure (see action) is drawn the same way.
    """
    slot = st.empty()
    failed = st.session_state.pop(_FAILED_KEY, None)
    if failed:
        slot.error(plain(failed))
    try:
        yield
    except STORE_FAILURES as e:
        slot.error(plain(failure_line(e)))
        st.stop()


def fragment(run_every: float | None) -> Callable:
    """st.fragment for parts of a page that poll the store: a failure shows its line in the part and
    the next poll tries again. A fragment's reruns do not pass through app.py, so it also draws the
    failure of a callback of its own buttons (a Stop button's)."""
    def wrap(body: Callable) -> Callable:
        @functools.wraps(body)
        def guarded(*args, **kwargs):
            failed = st.session_state.pop(_FAILED_KEY, None)
            if failed:
                st.error(plain(failed))
            try:
                body(*args, **kwargs)
            except STORE_FAILURES as e:
                st.error(plain(failure_line(e)))

        return st.fragment(run_every=run_every)(guarded)

    return wrap


def flash(message: str, kind: str = "success") -> None:
    """Show a message after the next rerun (callbacks run before the page is drawn); shown literally."""
    st.session_state["_flash"] = (kind, plain(message))


def show_flash() -> None:
    """Draw the pending flash message, if any, as a toast."""
    pending = st.session_state.pop("_flash", None)
    if pending:
        kind, message = pending
        icon = {"success": "✅", "error": "⚠️", "info": "ℹ️"}.get(kind, "ℹ️")
        st.toast(message, icon=icon)
        if kind == "error":
            st.error(message)


def keep(*keys: str) -> None:
    """Keep widget values when the page is left and opened again (Streamlit drops them otherwise)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def messages(msgs) -> None:
    """A conversation as plain text, one block per message."""
    for m in msgs:
        st.text(f"[{m.role}]\n{m.content}")


def tool_schema_names(task: Task | None) -> list[str]:
    """The tool names a task offers."""
    if task is None:
        return []
    return [t.get("function", t).get("name", "") for t in task.tools]


def captioned(caption: str, text: str, language: str | None = None) -> None:
    """Text from data (a call, an answer, an observation) in a wrapped code box under a caption written here."""
    st.caption(caption)
    st.code(text, language=language, wrap_lines=True)


@contextmanager
def flaggable(flag_prefix: str, step: int, flagged: list[int]) -> Iterator[None]:
    """Draw a step's body (inside the with block); with flag_prefix a "flag" checkbox beside it, and the
    step appended to `flagged` when it is ticked. The one step flag of every trajectory view."""
    cols = st.columns([3, 1]) if flag_prefix else [st.container()]
    with cols[0]:
        yield
    if flag_prefix:
        with cols[1]:
            if st.checkbox("flag", key=f"{flag_prefix}{step}", help="Mark this step as wrong"):
                flagged.append(step)


def render_verdict(traj: Trajectory) -> None:
    """The automatic verifier's verdict and reason, shown as a suggestion."""
    if traj.verdict is None:
        st.text("Verifier suggests: no verdict")
        return
    word = "success" if traj.verdict.success else "fail"
    st.text(f"Verifier suggests: {word} (reward {traj.verdict.reward:.2f})")
    st.code(traj.verdict.reason, language=None, wrap_lines=True)
    if traj.verdict.scores:
        with st.expander("grader scores"):
            st.dataframe([{"grader": k, "score": v} for k, v in traj.verdict.scores.items()],
                         hide_index=True, width="stretch")


STATUS_COLOURS = {"right": "#d6f5d6", "wrong": "#f9d0d0", "missing": "#fde7c2", "unexpected": "#e3dcf7"}


def reference_panel(ws: Workspace, task: Task | None, trajectory: Trajectory) -> None:
    """The task's expected call beside the run's call, each argument coloured by the grader's status."""
    from agentlearn.feedback import call_diff

    if task is None:
        st.text(f"(task {trajectory.task_id} is not in the store: there is no expected call to compare with)")
        return
    d = call_diff.diff_for(ws, task, trajectory)
    st.text(d.summary)
    expected_col, got_col = st.columns(2)
    with expected_col:
        st.caption("expected call (the task's reference)")
        st.json(d.expected.model_dump(), expanded=True)
    with got_col:
        st.caption("agent's call")
        if d.got is not None:
            st.json(d.got.model_dump(), expanded=True)
        else:
            st.text("(no tool call could be parsed)")
    if d.grades:
        styled = d.table().style.apply(
            lambda row: [f"background-color: {STATUS_COLOURS[row['status']]}; color: #1f1f1f"] * len(row), axis=1)
        st.dataframe(styled, hide_index=True, width="stretch", column_config={
            "score": st.column_config.NumberColumn("score", format="%.2f",
                                                   help="1 or 0; for free text the similarity itself"),
            "status": st.column_config.TextColumn("status", help="right · wrong · missing · unexpected")})
    if d.graded_now and d.got is not None and d.name_right:
        st.caption("Graded now under the suite's argument kinds: this run has no stored per-argument grades.")


def render_memory(ws: Workspace, traj: Trajectory) -> None:
    """The memory the agent was given for this run: exemplars, insights, reflections."""
    mem = traj.memory
    st.text(f"method: {mem.method}" + (f" · exemplar mode: {mem.exemplar_mode}" if mem.exemplar_mode else "")
            + (f" · model: {traj.model}" if traj.model else "") + f" · adapter: {traj.adapter or '(base)'}"
            + f" · trial {traj.trial}")
    if not (mem.exemplar_ids or mem.insight_ids or mem.reflections):
        st.text("no memory was given")
        return
    if mem.exemplar_ids:
        st.caption(f"exemplars ({len(mem.exemplar_ids)})")
        for eid in mem.exemplar_ids:
            ex = ws.repo.get(Exemplar, eid)
            if ex is None:
                st.text(f"{eid} (not in the store any more)")
                continue
            st.text(request_text(ex.input))
            st.code(json.dumps(ex.call.model_dump(), ensure_ascii=False), language="json", wrap_lines=True)
    if mem.insight_ids:
        st.caption(f"insights (version {mem.insights_version})")
        for iid in mem.insight_ids:
            ins = ws.repo.get(Insight, iid)
            st.text(f"- {ins.text}" if ins is not None else f"- {iid} (not in the store any more)")
    if mem.reflections:
        st.caption("reflections")
        for text in mem.reflections:
            st.text(text)


def suites_or_stop(ws: Workspace, key: str = "", hint: str = "import tasks first") -> list[str]:
    """The suite names; stops the page with a hint when there are none. `key`'s selection stays valid."""
    names = suites(ws)
    if not names:
        st.info(f"No suites yet: {hint}.")
        st.stop()
    if key and st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    return names


def suites(ws: Workspace) -> list[str]:
    """Suite names known to the store (tasks, suites, trajectories)."""
    from agentlearn.feedback import index, queue
    from storage.records import Suite

    names = {s.name for s in ws.repo.all(Suite)} | {t.suite for t in index.task_map(ws).values()}
    return sorted(names | set(queue.facets(ws)["suite"]))
