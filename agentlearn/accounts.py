"""Who is using the dashboard: accounts with roles, password checks, and where the server may listen.

    annotator < reviewer < admin
    annotators label and judge preferences; reviewers also approve insights and resolve disagreements;
    admins also train, import and manage users.

Names are unique after NFKC normalisation and case folding ("Alice" and "ＡＬＩＣＥ" are one account),
and a name that mixes scripts (a Cyrillic "а" in a Latin "alice") is refused: it would look like
someone else's. Passwords are hashed with argon2id (argon2-cffi); only the hash is stored.

With no account in the store the dashboard is one local user on 127.0.0.1; listening anywhere else
needs accounts (`python -m agentlearn users add NAME --role admin`).
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from agentlearn import sessions
from storage import Repository
from storage.records import Account

ROLES = ("annotator", "reviewer", "admin")
MAX_NAME = 64
MIN_PASSWORD = 8
MIN_STRENGTH = 3  # zxcvbn's score: 3 is "safely unguessable" for an online attack slowed by the throttle
# Letters of these scripts are written together (Japanese, Korean): one script for the mixing rule.
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "IDEOGRAPHIC": "CJK"}
_NAME_PUNCTUATION = set(" .-_'@")
_HASHER = PasswordHasher()
# Verified when a name has no account, so an unknown name takes as long to refuse as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class AccessDenied(PermissionError):
    """The signed-in person's role does not allow this action."""


@dataclass(frozen=True)
class Identity:
    """The person a session acts for. `local` means no accounts: the one user of a loopback server."""

    name: str
    role: str
    local: bool = False

    def can(self, role: str) -> bool:
        """True if this identity's role is `role` or above."""
        return ROLES.index(self.role) >= ROLES.index(check_role(role))


# --- names and roles ---------------------------------------------------------------------------


def check_role(role: str) -> str:
    """The role, if it is one of ROLES; else a ValueError listing them."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0] if name else "UNKNOWN"
    return _SCRIPT_GROUPS.get(first, first)


def clean_name(name: str) -> str:
    """The name as stored (NFKC, trimmed), or a ValueError saying what is wrong with it."""
    text = unicodedata.normalize("NFKC", str(name)).strip()
    if not text:
        raise ValueError("a user name cannot be empty")
    if len(text) > MAX_NAME:
        raise ValueError(f"a user name has at most {MAX_NAME} characters, not {len(text)}")
    odd = [ch for ch in text if not (ch.isalnum() or ch in _NAME_PUNCTUATION
                                     or unicodedata.category(ch).startswith("M"))]  # marks: Devanagari vowels
    if odd:
        raise ValueError(f"user name {text!r}: use letters, digits, spaces and . - _ ' @ only, not {odd[0]!r}")
    scripts = sorted({_script(ch) for ch in text if ch.isalpha()})
    if len(scripts) > 1:
        raise ValueError(f"user name {text!r} mixes scripts ({', '.join(s.title() for s in scripts)}): it could "
                         "pass for someone else's name; write it in one script")
    return text


def name_key(name: str) -> str:
    """The key two spellings of one name share: NFKC, case folded, NFKC again (the account's id)."""
    return unicodedata.normalize("NFKC", clean_name(name).casefold())


# --- accounts ----------------------------------------------------------------------------------


def configured(repo: Repository) -> bool:
    """True once at least one account exists (then everyone signs in)."""
    return repo.count(Account) > 0


def list_users(repo: Repository) -> list[Account]:
    """Every account, by name."""
    return sorted(repo.all(Account), key=lambda a: a.id)


def find(repo: Repository, name: str) -> Account | None:
    """The account for a name in any spelling, or None (also for a name that is not valid)."""
    try:
        return repo.get(Account, name_key(name))
    except ValueError:
        return None


def existing(repo: Repository, name: str) -> Account:
    """The account for a name, or a ValueError that says how to list them."""
    account = repo.get(Account, name_key(name))
    if account is None:
        raise ValueError(f"no user named {clean_name(name)!r}; `python -m agentlearn users list` shows them")
    return account


def hash_password(password: str, name: str = "") -> str:
    """The argon2id hash of a password strong enough to keep (see _check_password)."""
    return _HASHER.hash(_check_password(password, name))


def _check_password(password: str, name: str = "") -> str:
    """The password, or a ValueError saying why it is too easy to guess.

    zxcvbn (Dropbox's estimator, with its lists of common passwords, names and words, keyboard patterns
    and repeats) scores it 0-4; below MIN_STRENGTH it is refused with zxcvbn's own advice.
    """
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    verdict = zxcvbn(password[:100], user_inputs=[name] if name else [])  # its cost grows with the length
    if verdict["score"] < MIN_STRENGTH:
        why = verdict["feedback"]["warning"] or "it is easy to guess"
        advice = " ".join(verdict["feedback"]["suggestions"])
        raise ValueError(f"that password is too weak: {why.rstrip('.')}. {advice}".strip())
    return password


def identity_of(account: Account) -> Identity:
    """The identity a session holds for an account."""
    return Identity(name=account.name, role=account.role)


def session_identity(repo: Repository, token: str | None) -> Identity | None:
    """The identity a session token signs in (roles as the store says now), or None."""
    account_id = sessions.account_of(repo, token)
    account = repo.get(Account, account_id) if account_id else None
    return identity_of(account) if account is not None else None


def local_identity() -> Identity:
    """The one user of a server without accounts: AGENTLEARN_LOCAL_USER, else the login name."""
    name = os.environ.get("AGENTLEARN_LOCAL_USER", "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name (some containers)
            name = "local"
    return Identity(name=clean_name(name), role="admin", local=True)


def require(identity: Identity | None, role: str, action: str) -> Identity:
    """The identity, if its role allows `action`; else AccessDenied saying which role it needs."""
    if identity is None:
        raise AccessDenied(f"sign in to {action}")
    if not identity.can(role):
        raise AccessDenied(f"{action} needs the {role} role; {identity.name} is {identity.role}")
    return identity


# --- signing in --------------------------------------------------------------------------------


class LoginThrottle:
    """Sign-in attempts per client and per name, checked and counted in one step under one lock.

    Every attempt counts as a failure when it is let through (a success takes its count back), so
    simultaneous guesses cannot all pass the check before any of them is counted. A client with FREE
    failures waits twice as long after each further one (to MAX_WAIT_S): it is refused until then. A name
    with FREE failures (from anyone) is not refused: its attempts are spaced NAME_SPACING_S apart, each
    waiting at most NAME_MAX_WAIT_S, so guessing one name from many clients is slow while its owner, from a
    client that has not failed, still gets in after a bounded delay. Counts are forgotten FORGET_S after
    their last failure: no lockout is permanent.
    """

    FREE = 5
    MAX_WAIT_S = 300.0
    NAME_SPACING_S = 1.0
    NAME_MAX_WAIT_S = 10.0
    FORGET_S = 900.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[int, float]] = {}  # client -> (failures, time of the last one)
        self._names: dict[str, tuple[int, float]] = {}  # name key -> (failures, time of the last one)
        self._name_next: dict[str, float] = {}  # name key -> earliest time its next attempt may run

    def _count(self, table: dict[str, tuple[int, float]], key: str, now: float) -> tuple[int, float]:
        count, last = table.get(key, (0, 0.0))
        if count and now - last > self.FORGET_S:
            table.pop(key, None)
            return 0, 0.0
        return count, last

    def _client_wait(self, client: str, now: float) -> float:
        count, last = self._count(self._clients, client, now)
        if count < self.FREE:
            return 0.0
        return max(0.0, last + min(self.MAX_WAIT_S, 2.0 ** (count - self.FREE + 1)) - now)

    def wait_s(self, client: str) -> float:
        """Seconds before this client may try again (0 when it may try now)."""
        with self._lock:
            return self._client_wait(client, self._clock())

    def admit(self, client: str, name: str) -> float:
        """Let one attempt through and count it, or ValueError; returns the seconds it must wait first."""
        with self._lock:
            now = self._clock()
            wait = self._client_wait(client, now)
            if wait > 0:
                raise ValueError(f"too many failed sign-ins from this address: try again in {wait:.0f} s")
            delay = 0.0
            if self._count(self._names, name, now)[0] >= self.FREE:
                slot = max(now, self._name_next.get(name, 0.0))
                delay = slot - now
                if delay > self.NAME_MAX_WAIT_S:
                    raise ValueError(f"too many failed sign-ins for this name: try again in "
                                     f"{delay - self.NAME_MAX_WAIT_S:.0f} s")
                self._name_next[name] = slot + self.NAME_SPACING_S
            for table, key in ((self._clients, client), (self._names, name)):
                count, _ = self._count(table, key, now)
                table[key] = (count + 1, now)
            return delay

    def succeeded(self, client: str, name: str) -> None:
        """Take back the count of an attempt that signed in; the name's failures are forgotten."""
        with self._lock:
            count, last = self._clients.get(client, (0, 0.0))
            if count > 1:
                self._clients[client] = (count - 1, last)
            else:
                self._clients.pop(client, None)
            self._names.pop(name, None)
            self._name_next.pop(name, None)


THROTTLE = LoginThrottle()  # one per server process: every session's attempts count
# At most this many password hashes are checked at once: argon2id takes 64 MiB each, so 32 simultaneous
# sign-ins would otherwise take 2 GiB before anyone is signed in. The others wait their turn.
HASH_SLOTS = threading.BoundedSemaphore(2)
HASH_QUEUE_S = 30.0


def _verify(digest: str, password: str) -> bool:
    """True if the password matches the argon2 hash, checked in one of HASH_SLOTS."""
    if not HASH_SLOTS.acquire(timeout=HASH_QUEUE_S):
        raise ValueError("the server is busy checking other sign-ins: try again in a moment")
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False
    finally:
        HASH_SLOTS.release()


def sign_in(repo: Repository, name: str, password: str, throttle: LoginThrottle | None = None, client: str = "",
            sleep: Callable[[float], None] = time.sleep) -> Identity:
    """The identity for a name and password; ValueError (the same for a wrong name or password) otherwise.

    `client` is where the attempt comes from (the visitor's address): failures are counted per client and
    per name (LoginThrottle).
    """
    throttle = throttle or THROTTLE
    try:
        key = name_key(name)
    except ValueError:
        key = unicodedata.normalize("NFKC", str(name)).casefold().strip()
    delay = throttle.admit(client, key)
    if delay > 0:
        sleep(delay)
    account = repo.get(Account, key) if key else None
    if not _verify(account.password_hash if account else _DUMMY_HASH, password) or account is None:
        raise ValueError("wrong name or password")
    throttle.succeeded(client, key)
    if _HASHER.check_needs_rehash(account.password_hash):  # parameters got stronger since it was made
        digest = _HASHER.hash(password)
        account = repo.update(Account, account.id, lambda a: a.model_copy(update={"password_hash": digest}))
    return identity_of(account)


# --- where the server listens ------------------------------------------------------------------


def is_loopback(address: str | None) -> bool:
    """True for addresses only this machine reaches (127.x, ::1, localhost). Unset means every interface."""
    text = (address or "").strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def serving_problem(address: str | None, repo: Repository) -> str:
    """Why the dashboard must not serve pages on this address ('' when it may)."""
    if is_loopback(address) or configured(repo):
        return ""
    where = f"address {address}" if (address or "").strip() else "every network interface (no server.address set)"
    return (f"This dashboard is listening on {where}, but no accounts exist, so anyone who reaches it would "
            "act as the local user. Add an account first: `python -m agentlearn users add NAME --role admin`, "
            "then restart; or serve on 127.0.0.1 only (the default of `./manage dashboard` and "
            ".streamlit/config.toml).")


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts() -> set[str]:
    """Host names a server without accounts answers to: loopback, plus AGENTLEARN_ALLOWED_HOSTS (commas)."""
    extra = os.environ.get("AGENTLEARN_ALLOWED_HOSTS", "")
    return set(LOOPBACK_NAMES) | {h.strip().lower().rstrip(".") for h in extra.split(",") if h.strip()}


def host_problem(host: str | None, repo: Repository) -> str:
    """Why a request naming this Host must get no page ('' when it may).

    Without accounts everyone who reaches the server acts as the local user, so a web page elsewhere
    must not reach it through DNS rebinding (attacker.example resolving to 127.0.0.1): only loopback
    names are answered unless AGENTLEARN_ALLOWED_HOSTS lists more. With accounts, signing in protects it.
    """
    if not host or configured(repo):
        return ""
    name = urlsplit(f"//{host.strip()}").hostname or ""  # lower case, port and [] of IPv6 removed
    if name.rstrip(".") in allowed_hosts():
        return ""
    return (f"This dashboard has no accounts and answers only to this machine's own names ({', '.join(LOOPBACK_NAMES)}), "
            f"not {host!r}. Open it as http://localhost:PORT, or list the name in AGENTLEARN_ALLOWED_HOSTS.")
