"""The agentlearn dashboard: `streamlit run app.py`. Pages are registered here; the sidebar shows who is
signed in (or the local user), the workspace folder and the model backend in use.

The workspace is AGENTLEARN_HOME of whoever starts the server. Without accounts the dashboard is one
local user and serves 127.0.0.1 only; on any other address it shows nothing until accounts exist.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import streamlit as st

from agentlearn import accounts, policy, processes, sessions
from agentlearn.models import EMBEDDED_MODELS
from pages import _progress, _ui
from storage.records import Adapter, Task, Trajectory

st.set_page_config(page_title="agentlearn", page_icon=":material/psychology:", layout="wide")


WANTED_KEY = "_wanted_url"
TICKET_KEY = "_session_ticket"  # the one-time ticket the browser trades for the session cookie


def _back_to_the_link(pages: list, current) -> None:
    """After signing in, open the page and query the visitor's link asked for (e.g. ?trajectory=ID)."""
    wanted = st.session_state.pop(WANTED_KEY, None)
    if not wanted:
        return
    path, query = wanted
    target = next((p for p in pages if p.url_path == path.rstrip("/").rsplit("/", 1)[-1]), None)
    if target is not None and target is not current:
        st.switch_page(target, query_params=query)


def _alone(page_function) -> None:
    """Run one page and nothing else, whichever page the link named: no real page is registered or listed."""
    _ui.gate_passed(False)
    paths = [p.url_path for p in _pages() if p.url_path]  # the default page's is ""
    st.navigation([st.Page(page_function, title="agentlearn", default=True)]
                  + [st.Page(page_function, title="agentlearn", url_path=path) for path in paths],
                  position="hidden").run()
    st.stop()


def _refusal() -> None:
    repo = _ui.gate_workspace().repo
    st.error(_ui.plain(accounts.serving_problem(st.get_option("server.address"), repo)
                       or accounts.host_problem(_ui.request_host(), repo)))


def _sign_in_form() -> None:
    """The username/password form; a correct pair puts the identity in this session's state."""
    repo = _ui.gate_workspace().repo
    # The link opened (page and query, e.g. ?trajectory=ID): shown once signed in.
    st.session_state.setdefault(WANTED_KEY, (urlsplit(st.context.url or "").path, st.query_params.to_dict()))
    st.title("agentlearn")
    st.caption("Sign in: every label, preference and review is recorded under your name.")
    with st.form("sign_in"):
        name = st.text_input("Name", key="signin_name", max_chars=accounts.MAX_NAME)
        password = st.text_input("Password", type="password", key="signin_password")
        sent = st.form_submit_button("Sign in", type="primary")
    if sent:
        try:
            who = accounts.sign_in(repo, name, password, client=_ui.client_address())
        except ValueError as e:
            st.error(_ui.plain(str(e)))
        else:
            token, ticket = sessions.open_session(repo, accounts.name_key(who.name))
            st.session_state[_ui.SESSION_KEY], st.session_state[TICKET_KEY] = token, ticket
            st.session_state.pop("signin_password", None)
            st.rerun()


def _fetch_cookie() -> None:
    """Have the browser trade this sign-in's ticket for the HttpOnly session cookie (serve.py's route).

    An image is the one request a page can make without JavaScript; a reload or a link opened later
    then carries the cookie. Under plain `streamlit run app.py` the route is missing: the sign-in then
    lasts as long as the browser tab.
    """
    ticket = st.session_state.get(TICKET_KEY)
    if ticket:
        base = "/" + st.get_option("server.baseUrlPath").strip("/")
        url = f"{base.rstrip('/')}{sessions.CLAIM_PATH}?ticket={ticket}"
        st.sidebar.html(f'<img src="{url}" alt="" width="1" height="1" style="position:absolute;opacity:0">')


@_ui.action
def _sign_out() -> None:
    sessions.revoke(_ui.gate_workspace().repo, st.session_state.get(_ui.SESSION_KEY))  # its cookie signs nobody in
    for key in list(st.session_state):
        del st.session_state[key]  # nothing of the last person's session stays


def _identity_sidebar() -> accounts.Identity:
    """Who this session acts for: the local user without accounts, else the signed-in account (or the form)."""
    repo = _ui.gate_workspace().repo
    problem = accounts.serving_problem(st.get_option("server.address"), repo)
    if problem or accounts.host_problem(_ui.request_host(), repo):
        _alone(_refusal)
    if not accounts.configured(repo):
        who = st.session_state[_ui.IDENTITY_KEY] = accounts.local_identity()
        st.sidebar.text(f"Local mode: {who.name} (admin)")
        st.sidebar.caption("No accounts: served on this machine only (127.0.0.1). Add accounts with "
                           "`python -m agentlearn users add NAME --role ROLE` to serve a team.")
        return who
    # This tab's session, else the one the browser's cookie names (a reload, a typed URL, a shared link).
    token = st.session_state.get(_ui.SESSION_KEY) or sessions.token_of(repo, st.context.cookies.get(sessions.COOKIE))
    who = accounts.session_identity(repo, token)
    if who is None:  # never signed in, signed out, session expired or revoked, or the account is gone
        for key in (_ui.IDENTITY_KEY, _ui.SESSION_KEY, TICKET_KEY):
            st.session_state.pop(key, None)
        _alone(_sign_in_form)
    st.session_state[_ui.IDENTITY_KEY], st.session_state[_ui.SESSION_KEY] = who, token
    _fetch_cookie()
    st.sidebar.text(f"Signed in: {who.name} ({who.role})")
    st.sidebar.button("Sign out", key="sign_out", on_click=_sign_out, icon=":material/logout:")
    return who


@st.cache_resource(show_spinner=False)
def _demo_child(home: str, _who: accounts.Identity) -> str | None:
    """On a fresh default workspace, create the demo (real agent runs) in a child process, once per server.

    Returns the id of its Process record; a demo already running (another server, a restart) is watched
    instead of started twice.
    """
    if os.environ.get("AGENTLEARN_DEMO", "1") == "0":
        return None
    ws = _ui.workspace()
    already = processes.running(ws, "demo")
    if already:
        return already[0].id
    if ws.repo.count(Task) or ws.repo.count(Trajectory):
        return None
    return processes.start(ws, "demo", ["demo"], who=_who).id


@_ui.fragment(run_every=5)
def _demo_progress(process_id: str) -> None:
    process = processes.get(_ui.workspace(), process_id)
    if process is None:
        return
    if process.status == "running":
        st.progress(processes.fraction(process),
                    text=f"Creating the demo workspace: {processes.counted(process, 'steps')}")
        st.info("The agent runs real tasks in the background; pages fill in as results arrive.",
                icon=":material/hourglass_top:")
        if process.message:
            st.text(process.message)
        if st.button("Stop creating the demo", key="demo_stop", icon=":material/stop:"):
            processes.stop(_ui.workspace(), process.id)
            st.rerun()
        if st.session_state.setdefault("demo_done", process.done) != process.done:
            st.session_state["demo_done"] = process.done
            st.rerun()  # a step finished: redraw the page with what it stored, as the notice promises
    elif process.status == "stopped":
        st.warning("Creating the demo workspace was stopped; the pages show what it stored until then. "
                   "`python -m agentlearn demo` finishes it.", icon=":material/stop_circle:")
    elif process.status != "succeeded":
        st.error("The demo workspace could not be created (`python -m agentlearn demo` failed):")
        st.code(process.error or "no reason recorded", language=None)
        _progress.log(process, 30, "(no output)")
    elif not st.session_state.get("demo_seen"):
        st.session_state["demo_seen"] = True
        st.rerun()  # redraw the page with the finished demo


def _sidebar() -> None:
    with st.sidebar:
        settings = _ui.workspace().settings
        st.caption("Workspace")
        st.text(str(settings.home))
        adapters = _ui.workspace().repo.count(Adapter)
        st.caption("Model backend")
        if settings.backend == "embedded":
            names = list(EMBEDDED_MODELS)
            st.selectbox("Embedded model", names, index=names.index(settings.local_model), key=_ui.LOCAL_MODEL_KEY,
                         format_func=lambda name: EMBEDDED_MODELS[name].label,
                         help="The model this session runs, evaluates and trains (AGENTLEARN_LOCAL_MODEL sets the "
                              "default). Jobs started from here train it.")
        st.text(f"{settings.backend}: {settings.model_label or '(no model set)'}\n{adapters} trained adapter(s)")


def _pages() -> list:
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/trajectories.py", title="Trajectories", icon=":material/label:"),
        st.Page("pages/review.py", title="Disagreements", icon=":material/gavel:"),
        st.Page("pages/preferences.py", title="Preferences", icon=":material/compare:"),
        st.Page("pages/insights.py", title="Insights", icon=":material/lightbulb:"),
        st.Page("pages/exemplars.py", title="Exemplars", icon=":material/library_books:"),
        st.Page("pages/suites.py", title="Suites", icon=":material/inventory_2:"),
        st.Page("pages/run.py", title="Run", icon=":material/play_arrow:"),
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/bar_chart:"),
        st.Page("pages/users.py", title="Users", icon=":material/group:"),
    ]
    return pages


# Pages only a role may open (from agentlearn.policy); the others are not registered for the session,
# so they cannot be reached.
NEEDS_ROLE = policy.page_roles()


def _allowed(pages: list, who: accounts.Identity) -> list:
    return [p for p in pages if who.can(NEEDS_ROLE.get(p.url_path, "annotator"))]


# A full or read-only disk or an unreachable database, met anywhere in the gate or the page, is one
# plain line at the top; what the person typed stays in its box for when the store is back.
with _ui.store_failures():
    who = _identity_sidebar()
    _ui.gate_passed(True)  # only now may a page draw (pages/_ui.py through_app)
    allowed = _allowed(_pages(), who)
    page = st.navigation(allowed)
    _back_to_the_link(allowed, page)
    _sidebar()
    demo = _demo_child(_ui.home(), who)
    if demo is not None:
        _demo_progress(demo)
    page.run()
