"""Signed-in sessions that survive a reload: a SignIn record in the store and a signed cookie naming it.

    open_session -> (token, ticket)     at sign-in; the page keeps the token for its own reruns
    claim(ticket) -> cookie value       once, within CLAIM_S: the browser trades the ticket for the cookie
    account_of(cookie or token)         every run: the account it signs in, or None
    revoke / revoke_account             sign-out; a password change or a removed account

The store keeps only the SHA-256 of a token, so a copy of the store (a backup, a shared database) signs
nobody in. The cookie is the token signed with itsdangerous under a key kept in the store, so every
server on one store accepts it; the record's expiry and existence are checked on every use, so
revocation is immediate everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from storage import Repository
from storage.records import Secret, SignIn, now

COOKIE = "agentlearn_session"
TTL_S = 12 * 3600  # a working day: then sign in again
CLAIM_S = 60  # a ticket not traded for the cookie within a minute is void
_KEY_ID = "session-signing"
CLAIM_PATH = "/api/session"  # serve.py answers it; app.py points the browser at it after signing in


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _serializer(repo: Repository) -> URLSafeTimedSerializer:
    key = repo.get(Secret, _KEY_ID)
    if key is None:
        key = repo.put(Secret(id=_KEY_ID, value=secrets.token_urlsafe(32)))
    return URLSafeTimedSerializer(key.value, salt="agentlearn-session")


def open_session(repo: Repository, account_id: str) -> tuple[str, str]:
    """A new session for an account: its token and the one-time ticket that fetches its cookie."""
    for old in repo.find(SignIn, account=account_id):  # the account's expired sessions go: records stay few
        if old.expires <= now():
            repo.delete(SignIn, old.id)
    token, ticket = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    repo.put(SignIn(id=_digest(token), account=account_id, expires=now() + timedelta(seconds=TTL_S),
                    claim=_digest(ticket), pending=token))
    return token, ticket


def claim(repo: Repository, ticket: str) -> str | None:
    """The cookie value for a ticket not yet used and under CLAIM_S old (None otherwise); voids the ticket."""
    if not ticket:
        return None
    found = repo.find(SignIn, claim=_digest(ticket))
    if not found or not found[0].pending or now() - found[0].created > timedelta(seconds=CLAIM_S):
        return None
    record = repo.update(SignIn, found[0].id, lambda r: r.model_copy(update={"claim": "", "pending": ""}))
    return _serializer(repo).dumps(found[0].pending) if record is not None else None


def token_of(repo: Repository, cookie: str | None) -> str | None:
    """The token inside a cookie value, if its signature holds and it is under TTL_S old."""
    if not cookie:
        return None
    try:
        return str(_serializer(repo).loads(cookie, max_age=TTL_S))
    except BadSignature:  # also a cookie too old (SignatureExpired is one)
        return None


def account_of(repo: Repository, token: str | None) -> str | None:
    """The account id a session token signs in, or None (unknown, expired or revoked)."""
    if not token:
        return None
    record = repo.get(SignIn, _digest(token))
    if record is None or record.expires <= now():
        return None
    return record.account


def revoke(repo: Repository, token: str | None) -> None:
    """End one session (signing out): its cookie signs nobody in any more, on any server."""
    if token and repo.get(SignIn, _digest(token)) is not None:
        repo.delete(SignIn, _digest(token))


def revoke_account(repo: Repository, account_id: str) -> int:
    """End every session of an account (password changed, account removed); returns how many."""
    ended = repo.find(SignIn, account=account_id)
    for record in ended:
        repo.delete(SignIn, record.id)
    return len(ended)
