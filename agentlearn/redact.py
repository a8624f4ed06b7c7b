"""Secrets kept out of what is written down: process errors, child logs, exports and training files.

An endpoint may echo the API key in an error message ("Incorrect API key provided: sk-..."), a library
may print an Authorization header, and a database error may quote its URL. Whatever text leaves the
process for the store, a log or a file goes through `redact` first: the values of secret-looking
environment variables, bearer tokens, well-known key shapes and passwords in URLs become [redacted].
"""

from __future__ import annotations

import io
import os
import re

MASK = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter values ("1", "true") would blot out ordinary words
_SECRET_NAME = re.compile(r"(_KEY|_TOKEN|SECRET|PASSWORD|PASSWD)", re.IGNORECASE)
_SECRET_NAMES = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "ANTHROPIC_API_KEY")
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{MASK}"),  # Authorization: Bearer ...
    # api_key=..., "access_token": "...", password: ... (a value of 8 or more characters)
    (re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|auth[_-]?token|secret|password)([\"']?\s*[:=]\s*[\"']?)"
                r"[^\s\"',;&]{8,}"), rf"\1\2{MASK}"),
    (re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}"), MASK),  # OpenAI-style keys: sk-..., sk-proj-...
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}"), MASK),  # Hugging Face tokens
    (re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{8,}"), MASK),  # GitHub tokens
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), rf"\1{MASK}@"),  # scheme://user:PASSWORD@
)


def secrets(env: dict[str, str] | None = None) -> list[str]:
    """The values of this environment's secret-looking variables, longest first."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items()
             if (k in _SECRET_NAMES or _SECRET_NAME.search(k)) and len(v) >= MIN_SECRET_CHARS}
    return sorted(found, key=len, reverse=True)


def redact(text: str, env: dict[str, str] | None = None) -> str:
    """`text` with every secret replaced by [redacted]."""
    text = str(text)
    for value in secrets(env):
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that redacts each line before passing it on (a child's stdout and stderr).

    Whole lines are redacted, so a secret written in several pieces is still caught; what is left
    without a newline is written on flush.
    """

    def __init__(self, inner: io.TextIOBase) -> None:
        self.inner, self._pending = inner, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, self._pending = self._pending.rsplit("\n", 1)
            self.inner.write(redact(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.inner.write(redact(self._pending))
            self._pending = ""
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        return self.inner.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")


def install() -> None:
    """Redact this process's own stdout and stderr (a child whose output is a log people read)."""
    import sys

    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
