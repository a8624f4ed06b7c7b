"""Users (admins only): the accounts that may sign in, their roles, new accounts and removals."""

from __future__ import annotations

import streamlit as st

from agentlearn import accounts, users
from pages import _ui

ws = _ui.workspace()
_ui.require_page("manage_users")
ROLE_HELP = "annotator: labels and preferences · reviewer: also insights and disagreements · " \
            "admin: also training, imports and users"


@_ui.action
def _act(fn, *args, done: str) -> None:
    if not _ui.allowed("manage_users"):
        return
    try:
        fn(ws.repo, *args, who=_ui.identity())
    except ValueError as e:
        _ui.flash(str(e), "error")
        return
    _ui.flash(done)


def _add() -> None:
    s = st.session_state
    _act(users.add_user, s.get("usr_name", ""), s.get("usr_role", "annotator"), s.get("usr_password", ""),
         done=f"Added {s.get('usr_name', '')}")
    s["usr_password"] = ""


st.title("Users")
_ui.show_flash()
st.caption(ROLE_HELP)
people = accounts.list_users(ws.repo)
if people:
    st.dataframe([{"name": a.name, "role": a.role, "since": a.created.strftime("%Y-%m-%d")} for a in people],
                 hide_index=True, width="stretch")
else:
    st.info("No accounts yet: this dashboard runs as one local user on 127.0.0.1. The first account must be an "
            "admin; once it exists everyone signs in (you too).")

with st.form("usr_add", clear_on_submit=False):
    st.subheader("Add an account")
    c = st.columns(3)
    c[0].text_input("Name", key="usr_name", max_chars=accounts.MAX_NAME)
    c[1].selectbox("Role", accounts.ROLES, key="usr_role", index=2 if not people else 0)
    c[2].text_input("Password", key="usr_password", type="password",
                    help=f"at least {accounts.MIN_PASSWORD} characters; tell it to the person in person")
    st.form_submit_button("Add", on_click=_add)

if people:
    st.subheader("Change or remove")
    names = [a.name for a in people]
    c = st.columns([2, 2, 1, 1])
    who = c[0].selectbox("Account", names, key="usr_pick")
    role = c[1].selectbox("Role", accounts.ROLES, key="usr_new_role")
    c[2].button("Set role", key="usr_set_role", on_click=_act, args=(users.set_role, who, role),
                kwargs={"done": f"{who} is now {role}"})
    c[3].button("Remove", key="usr_remove", on_click=_act, args=(users.remove_user, who),
                kwargs={"done": f"Removed {who}; their labels stay under that name"})
