"""Managing accounts: adding people, changing roles and passwords, removing them.

Each change needs the manage_users action (agentlearn.policy); before any account exists the local user
may make the first admin. Kept apart from `accounts` (names, passwords, signing in) because the policy
reads accounts to decide, and these functions ask the policy.
"""

from __future__ import annotations

from agentlearn import accounts, policy, sessions
from agentlearn.accounts import Identity
from storage import Repository
from storage.records import Account


def add_user(repo: Repository, name: str, role: str, password: str, *, who: Identity) -> Account:
    """Create an account; refuses a name taken in any spelling, an unknown role, a short password.

    `who` needs the manage_users action (agentlearn.policy); before any account exists that is the local user.
    """
    _may_manage(repo, who)
    shown, key = accounts.clean_name(name), accounts.name_key(name)
    accounts.check_role(role)
    if role != "admin" and not accounts.configured(repo):
        raise ValueError("the first account must be an admin (--role admin): someone has to manage the others")
    taken = repo.get(Account, key)
    if taken is not None:
        raise ValueError(f"the name {shown!r} is taken (by {taken.name!r}): names are unique regardless of case "
                         "and Unicode form")
    return repo.put(Account(id=key, name=shown, role=role, password_hash=accounts.hash_password(password, shown)))


def _admins_after(repo: Repository, key: str, role: str | None) -> int:
    return sum(1 for a in repo.all(Account) if (role if a.id == key else a.role) == "admin")


def set_role(repo: Repository, name: str, role: str, *, who: Identity) -> Account:
    """Change an account's role; the last admin keeps theirs (someone must manage users). `who`: manage_users."""
    _may_manage(repo, who)
    account = accounts.existing(repo, name)
    accounts.check_role(role)
    if account.role == "admin" and role != "admin" and not _admins_after(repo, account.id, role):
        raise ValueError(f"{account.name!r} is the last admin: make another admin first")
    return repo.update(Account, account.id, lambda a: a.model_copy(update={"role": role}))


def set_password(repo: Repository, name: str, password: str, *, who: Identity) -> Account:
    """Replace an account's password (one's own, or anyone's with manage_users); every open session of the
    account ends (it signs in again)."""
    if accounts.configured(repo) and not (who is not None and not who.local and accounts.find(repo, who.name) is not None
                                 and accounts.name_key(who.name) == accounts.name_key(name)):
        _may_manage(repo, who)
    account = accounts.existing(repo, name)
    digest = accounts.hash_password(password, account.name)
    updated = repo.update(Account, account.id, lambda a: a.model_copy(update={"password_hash": digest}))
    sessions.revoke_account(repo, account.id)
    return updated


def remove_user(repo: Repository, name: str, *, who: Identity) -> Account:
    """Delete an account (their labels stay, under their name); refuses the last admin while others remain.

    `who` needs manage_users.
    """
    _may_manage(repo, who)
    account = accounts.existing(repo, name)
    others = repo.count(Account) - 1
    if account.role == "admin" and others and not _admins_after(repo, account.id, None):
        raise ValueError(f"{account.name!r} is the last admin: make another admin first")
    repo.delete(Account, account.id)
    sessions.revoke_account(repo, account.id)
    return account


def _may_manage(repo: Repository, who: Identity) -> None:
    policy.require(repo, who, "manage_users")
