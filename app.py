"""The agentlearn dashboard: `streamlit run app.py`. Pages are registered here; the sidebar holds the
workspace folder, the annotator's name and the model backend in use."""

from __future__ import annotations

import os

import streamlit as st

from agentlearn import processes
from agentlearn.settings import Settings
from pages import _ui
from storage.records import Adapter, Task, Trajectory

st.set_page_config(page_title="agentlearn", page_icon=":material/psychology:", layout="wide")


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _annotator_sidebar() -> None:
    if _auth_configured():
        if not st.user.is_logged_in:
            st.sidebar.info("This dashboard asks you to log in: labels record who made them.")
            st.sidebar.button("Log in", on_click=st.login)
            st.stop()
        name = str(st.user.get("name") or st.user.get("email") or "")
        st.session_state["annotator_name"] = name
        st.sidebar.text(f"Annotator: {name}")
        st.sidebar.button("Log out", on_click=st.logout)
        return
    if "annotator_name" not in st.session_state:
        st.session_state["annotator_name"] = st.query_params.get("annotator", "")
    name = st.sidebar.text_input("Annotator", key="annotator_name", max_chars=80,
                                 help="Your name: recorded on every label, preference and review.",
                                 placeholder="your name")
    if name.strip() and st.query_params.get("annotator") != name.strip():
        st.query_params["annotator"] = name.strip()  # a bookmark or reload keeps it


@st.cache_resource(show_spinner=False)
def _demo_child(home: str) -> str | None:
    """On a fresh default workspace, create the demo (real agent runs) in a child process, once per server.

    Returns the id of its Process record; a demo already running (another server, a restart) is watched
    instead of started twice.
    """
    if os.environ.get("AGENTLEARN_DEMO", "1") == "0" or home != str(Settings.from_env().home):
        return None  # switched off, or a folder chosen in the sidebar: shown as it is
    ws = _ui.workspace()
    already = processes.running(ws, "demo")
    if already:
        return already[0].id
    if ws.repo.count(Task) or ws.repo.count(Trajectory):
        return None
    return processes.start(ws, "demo", ["demo"]).id


@st.fragment(run_every=5)
def _demo_progress(process_id: str) -> None:
    process = processes.get(_ui.workspace(), process_id)
    if process is None:
        return
    if process.status == "running":
        steps = f"step {process.done} of {process.total}" if process.total else "starting"
        st.progress(processes.fraction(process), text=f"Creating the demo workspace: {steps}")
        st.info("The agent runs real tasks in the background; pages fill in as results arrive.",
                icon=":material/hourglass_top:")
        if process.message:
            st.text(process.message)
    elif process.status != "succeeded":
        st.error("The demo workspace could not be created (`python -m agentlearn demo` failed):")
        st.code(f"{process.error}\n{processes.tail(process)}", language=None)
    elif not st.session_state.get("demo_seen"):
        st.session_state["demo_seen"] = True
        st.rerun()  # redraw the page with the finished demo


def _sidebar() -> None:
    with st.sidebar:
        if "home" not in st.session_state:
            st.session_state["home"] = str(Settings.from_env().home)
        st.text_input("Workspace (AGENTLEARN_HOME)", key="home",
                      help="The folder that holds the store, vectors, models, exports and adapters.")
        _annotator_sidebar()
        settings = _ui.workspace().settings
        adapters = _ui.workspace().repo.count(Adapter)
        st.caption("Model backend")
        st.text(f"{settings.backend}: {settings.model_label or '(no model set)'}\n{adapters} trained adapter(s)")


def _pages() -> list:
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/trajectories.py", title="Trajectories", icon=":material/label:"),
        st.Page("pages/preferences.py", title="Preferences", icon=":material/compare:"),
        st.Page("pages/insights.py", title="Insights", icon=":material/lightbulb:"),
        st.Page("pages/exemplars.py", title="Exemplars", icon=":material/library_books:"),
        st.Page("pages/suites.py", title="Suites", icon=":material/inventory_2:"),
        st.Page("pages/run.py", title="Run", icon=":material/play_arrow:"),
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/bar_chart:"),
    ]
    return pages


page = st.navigation(_pages())
_sidebar()
demo = _demo_child(_ui.home())
if demo is not None:
    _demo_progress(demo)
page.run()
