"""The widget every page uses to start a child process (processes.start) and watch it from its record:
agent runs, evaluations, curves, the demo, improve and training jobs alike.

Progress comes from the Process record that the child updates (processes.report), never from its
output; the newest process of a kind is shown to every session, so a reload or a second browser
finds the work again. The log is shown as plain text.

The page around the widget (its Start button, the tables a run fills) is drawn once from what the
store said then; the widget polls, and redraws the whole page as soon as the newest process of its
kind is another one or has another status (started elsewhere, ended, stopped), so nothing stays stale.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from agentlearn import processes
from pages import _ui
from storage.records import Process

POLL_S = 2


def start(kind: str, args: Sequence[object]) -> Process | None:
    """Start `python -m agentlearn <args>` as a `kind` process; shows the error and returns None if it cannot."""
    try:
        return processes.start(_ui.workspace(), kind, [str(a) for a in args], who=_ui.identity())
    except (OSError, ValueError) as e:  # AccessDenied is a PermissionError, an OSError
        st.error(_ui.plain(f"The process could not start: {e}"))
        return None


def is_running(kind: str) -> bool:
    """True while a process of this kind runs (its Start button stays disabled)."""
    return bool(processes.running(_ui.workspace(), kind))


DRAWN_KEY = "_processes_drawn"  # session state: kind -> (id, status) of the newest process the page was drawn with


def _state(process: Process | None) -> tuple[str, str] | None:
    return None if process is None else (process.id, process.status)


def watch(kind: str, what: str = "tasks") -> None:
    """Progress bar, message, Stop button and log of the newest `kind` process, refreshing by itself."""
    st.session_state.setdefault(DRAWN_KEY, {})[kind] = _state(processes.latest(_ui.workspace(), kind))
    _watch(kind, what)


@_ui.fragment(run_every=POLL_S)
def _watch(kind: str, what: str) -> None:
    ws = _ui.workspace()
    process = processes.latest(ws, kind)
    drawn = st.session_state.setdefault(DRAWN_KEY, {})
    if _state(process) != drawn.get(kind):
        drawn[kind] = _state(process)
        st.rerun()  # started elsewhere or ended: redraw the page (Start button, tables, charts) with it
    if process is None:
        return
    panel(process, what, key=kind)


def panel(process: Process, what: str = "tasks", key: str = "", saves: bool = False, log_lines: int = 40) -> None:
    """One child process: status, progress with elapsed time and ETA, its last message, Stop (and, for a
    child that keeps its work when asked, `saves`, Stop and save), and its log."""
    with st.container(border=True):
        status = "stopping" if processes.stopping(process) else process.status
        st.caption(f"{process.kind} process · started {process.created:%H:%M:%S} · {status}")
        st.code(processes.command(process), language="bash")
        st.progress(processes.fraction(process), text=processes.counted(process, what))
        if process.message:
            st.text(process.message)
        if process.status == "running":
            c = st.columns([1, 1, 4])
            c[0].button("Stop", key=f"{key}_stop_{process.id}", icon=":material/stop:", on_click=_stop,
                        args=(process.id, False))
            if saves:
                c[1].button("Stop and save", key=f"{key}_save_{process.id}", icon=":material/save:", on_click=_stop,
                            args=(process.id, True), disabled=processes.stopping(process),
                            help="stop at the next step and keep what it made")
        elif process.status == "succeeded":
            finished = f" at {process.finished:%H:%M:%S}" if process.finished else ""
            st.success(f"{process.kind} process finished{finished}", icon=":material/check_circle:")
        else:
            st.text(f"{process.status}: {process.error or 'no reason recorded'}")
        with st.expander("log", expanded=process.status == "failed"):
            log(process, log_lines, "(no output yet)")


def _stop(process_id: str, save: bool) -> None:
    """Stop now, or ask to stop and save; the page then redraws (its Start button comes back)."""
    processes.stop(_ui.workspace(), process_id, save=save)


def log(record: object, lines: int, empty: str) -> None:
    """A child's log tail as plain text; a record naming a file outside the jobs folder shows why instead."""
    try:
        st.code(processes.tail(_ui.workspace(), record, lines) or empty, language=None)
    except ValueError as e:
        st.error(_ui.plain(str(e)))
