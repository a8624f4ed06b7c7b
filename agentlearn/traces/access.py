"""Who may send to `collect` and `proxy`: the same rule for both, and the one way both start and check.

Without accounts they listen on loopback only and every request acts for the local user. With accounts
they may listen anywhere, and every request presents a per-account ingest token in TOKEN_HEADER; the
account it names needs the "import" action (agentlearn.policy), checked against the store on each
request, so a role changed or a token revoked counts at once on every server sharing the store.
Both build their app with `receiver`, ask `sender` who a request acts for, and start with `serve`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from agentlearn import accounts, policy
from agentlearn.accounts import AccessDenied, Identity
from storage import Repository
from storage.records import Account, IngestToken

TOKEN_HEADER = "x-agentlearn-token"
ACTION = "import"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(repo: Repository, name: str, *, who: Identity) -> str:
    """A new ingest token for the account `name` (printed once; the store keeps only its hash).

    `who` needs manage_users; the account must exist and its role must allow importing.
    """
    policy.require(repo, who, "manage_users")
    account = accounts.existing(repo, name)
    if not accounts.identity_of(account).can(policy.role_for(ACTION)):
        raise ValueError(f"{account.name!r} is {account.role}; sending traces needs the "
                         f"{policy.role_for(ACTION)} role (python -m agentlearn users set-role)")
    token = secrets.token_urlsafe(32)
    repo.put(IngestToken(id=_digest(token), account=account.id))
    return token


def revoke_tokens(repo: Repository, name: str, *, who: Identity) -> int:
    """Delete every ingest token of an account; returns how many. `who` needs manage_users."""
    policy.require(repo, who, "manage_users")
    account = accounts.existing(repo, name)
    found = repo.find(IngestToken, account=account.id)
    for record in found:
        repo.delete(IngestToken, record.id)
    return len(found)


def listen_problem(host: str, repo: Repository) -> str:
    """Why a receiver must not listen on `host` ('' when it may): off loopback only with accounts."""
    if accounts.is_loopback(host) or accounts.configured(repo):
        return ""
    return (f"no accounts exist, so anyone reaching {host} could send as the local user: listen on 127.0.0.1, "
            "or add an account (python -m agentlearn users add NAME --role admin) and give senders a token "
            "(python -m agentlearn users token NAME)")


def caller(repo: Repository, headers: Mapping[str, str]) -> Identity:
    """Who a request acts for: the local user without accounts, else the account of its ingest token.

    Raises AccessDenied with the reason (no token, an unknown token, a role that may not import).
    Without accounts a Host header other than a loopback name is refused (DNS rebinding).
    """
    if not accounts.configured(repo):
        problem = accounts.host_problem(headers.get("host"), repo)
        if problem:
            raise AccessDenied(f"Host {headers.get('host')!r} refused: without accounts only loopback names are answered")
        return policy.require(repo, accounts.local_identity(), ACTION)
    token = headers.get(TOKEN_HEADER, "").strip()
    if not token:
        raise AccessDenied(f"accounts exist: send an ingest token in the {TOKEN_HEADER} header "
                           "(python -m agentlearn users token NAME prints one)")
    record = repo.get(IngestToken, _digest(token))
    account = repo.get(Account, record.account) if record is not None else None
    if account is None:
        raise AccessDenied("unknown or revoked ingest token")
    return policy.require(repo, accounts.identity_of(account), ACTION)


async def sender(repo: Repository, request: Request) -> Identity:
    """`caller` of a request being answered, read off the event loop (it reads the store). An AccessDenied
    it raises becomes the receiver's 401 (`receiver`)."""
    return await run_in_threadpool(caller, repo, request.headers)


def receiver(title: str, refusal: Callable[[int, str], Response], lifespan=None) -> FastAPI:
    """A receiver's app: no API docs, and an AccessDenied raised while answering a request goes back as
    HTTP 401 in the receiver's own error shape (`refusal(status, message)`)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    async def refused(_: Request, e: Exception) -> Response:
        return refusal(401, str(e))

    app.add_exception_handler(AccessDenied, refused)
    return app


def serve(make_app: Callable[[], FastAPI], repo: Repository, *, host: str, port: int) -> None:
    """Run a receiver until interrupted; refuses an address off loopback while no accounts exist."""
    import uvicorn

    problem = listen_problem(host, repo)
    if problem:
        raise ValueError(problem)
    uvicorn.run(make_app(), host=host, port=port, log_level="warning")
