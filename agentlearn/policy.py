"""Who may do what: the one table of actions and the least role each needs (annotator < reviewer < admin).

The library function that does a thing checks it (`require`), so a page, the command line and a script
are refused alike; pages read the same table to hide what a person may not use, and app.py derives
which pages a role may open from `PAGES`.

    label             annotator   label runs, judge preferences, correct calls, suggest a rule
    review            reviewer    approve or reject playbook proposals, resolve disagreements
    edit_playbook     reviewer    add, edit, promote, demote, restore bullets, propose rules from runs
    edit_suite        reviewer    a suite's card (description, instruction), argument kinds, rubric, annotators per item
    manage_exemplars  reviewer    add, retire or learn exemplars, choose a suite's retrieval
    run               reviewer    run the agent, evaluate, measure a learning curve
    export            reviewer    write labels, preferences and corrections out of the store
    train             admin       train, stop jobs, choose or roll back a suite's model, improve
    import            admin       import task suites and trained adapters
    bind_tools        admin       bind a suite's tools to code that runs (python, environments, MCP servers)
    manage_users      admin       add accounts, set roles and passwords, remove accounts

With no accounts in the store (local mode) the one local user is an admin and may do everything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from agentlearn.accounts import (
    ROLES,
    AccessDenied,
    Identity,
    clean_name,
    configured,
    find,
    identity_of,
    local_identity,
    name_key,
    sign_in,
)
from agentlearn.settings import PROCESS_ID_ENV
from storage import Repository

# action -> (least role, what it covers: the words a refusal uses)
ACTIONS: dict[str, tuple[str, str]] = {
    "label": ("annotator", "labeling"),
    "review": ("reviewer", "reviewing proposals and disagreements"),
    "edit_playbook": ("reviewer", "changing the playbook"),
    "edit_suite": ("reviewer", "changing a suite's card, argument kinds, rubric or assignment"),
    "manage_exemplars": ("reviewer", "adding or retiring exemplars"),
    "run": ("reviewer", "running the agent or an evaluation"),
    "export": ("reviewer", "exporting labels"),
    "train": ("admin", "training and choosing a suite's model"),
    "import": ("admin", "importing suites and adapters"),
    "bind_tools": ("admin", "binding a suite's tools to code that runs"),
    "manage_users": ("admin", "managing users"),
}
assert all(role in ROLES for role, _ in ACTIONS.values())

# Pages (url paths) a role must hold an action's role to open; every other page is open to all.
PAGES: dict[str, str] = {"review": "review", "run": "run", "training": "train", "users": "manage_users"}

# What each kind of child process (processes.start) does.
PROCESS_ACTIONS: dict[str, str] = {"run": "run", "eval": "run", "curve": "run", "improve": "train", "train": "train",
                                   "auto": "manage_exemplars", "propose": "edit_playbook",
                                   "demo": "label",  # the demo builds a fresh workspace for whoever opens it first
                                   "replay": "label"}  # a labeler replays a run from the step they corrected


def role_for(action: str) -> str:
    """The least role that may do `action`."""
    try:
        return ACTIONS[action][0]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}") from None


def page_roles() -> dict[str, str]:
    """Page url path -> the least role that may open it (app.NEEDS_ROLE)."""
    return {page: role_for(action) for page, action in PAGES.items()}


def allows(who: Identity | None, action: str) -> bool:
    """True if this identity's role may do `action` (what a page asks before it shows a button)."""
    return who is not None and who.can(role_for(action))


def require(repo: Repository, who: Identity | None, action: str) -> Identity:
    """The identity acting, as the store knows it now, if it may do `action`; else AccessDenied naming both.

    Local mode (no accounts): the local user, an admin. With accounts the role is read from the store, so
    a role changed a moment ago counts and a name without an account (or the local user of before) is
    refused.
    """
    role = role_for(action)
    what = ACTIONS[action][1]
    if who is not None and not isinstance(who, Identity):
        raise TypeError(f"{what}: give the acting accounts.Identity, not {type(who).__name__}")
    if not configured(repo):
        if who is None:
            raise AccessDenied(f"{what} needs an acting person")
        return Identity(name=who.name, role="admin", local=True)
    now = _as_stored(repo, who)
    if now is None:
        raise AccessDenied(f"{what} needs the {role} role and a signed-in account"
                           + (f"; {who.name!r} has none" if who is not None else "")
                           + " (on the command line: set AGENTLEARN_USER and AGENTLEARN_PASSWORD)")
    if not now.can(role):
        raise AccessDenied(f"{what} needs the {role} role; {now.name} is {now.role}")
    return now


def _as_stored(repo: Repository, who: Identity | None) -> Identity | None:
    """The identity with the role the store holds now; None for the local user or a name without an account."""
    if who is None or who.local:
        return None
    account = find(repo, who.name)
    return identity_of(account) if account is not None else None


# --- who acts on the command line ----------------------------------------------------------------

USER_ENV, PASSWORD_ENV = "AGENTLEARN_USER", "AGENTLEARN_PASSWORD"


def command_line_identity(repo: Repository, environ: Mapping[str, str], typed: str = "") -> Identity:
    """Who a `python -m agentlearn` command acts for; `typed` is a --by name, checked against it.

    No accounts: the local user (AGENTLEARN_LOCAL_USER or the login name), an admin; --by names it.
    With accounts: the account AGENTLEARN_USER names, signed in with AGENTLEARN_PASSWORD; or, in a child
    the dashboard started (processes.start), the person who started it, as recorded on its Process record;
    otherwise the login name with no account, which `require` refuses. --by must then name the same account.
    """
    if not configured(repo):
        if typed.strip():
            return Identity(name=clean_name(typed), role="admin", local=True)
        return local_identity()
    who = _signed_in(repo, environ) or _starter(repo, environ) or local_identity()
    if typed.strip() and (who.local or name_key(typed) != name_key(who.name)):
        raise ValueError(f"--by {typed.strip()!r}: this command acts for {who.name!r}"
                         + (" (no account)" if who.local else "") + "; with accounts, --by can only name the "
                         f"account that signs in ({USER_ENV} and {PASSWORD_ENV})")
    return who


def _signed_in(repo: Repository, environ: Mapping[str, str]) -> Identity | None:
    name = environ.get(USER_ENV, "").strip()
    if not name:
        return None
    try:
        return sign_in(repo, name, environ.get(PASSWORD_ENV, ""))
    except ValueError as e:
        raise ValueError(f"{USER_ENV}={name!r}: {e} ({PASSWORD_ENV} holds the password)") from None


def _starter(repo: Repository, environ: Mapping[str, str]) -> Identity | None:
    """The person who started this child from the dashboard: its running Process record says who."""
    from storage.records import Process

    process_id = environ.get(PROCESS_ID_ENV, "")
    record = repo.get(Process, process_id) if process_id else None
    if record is None or record.status != "running" or not record.by:
        return None
    if record.pid is not None and record.pid != os.getpid():  # another process's record
        return None
    account = find(repo, record.by)
    return identity_of(account) if account is not None else None
