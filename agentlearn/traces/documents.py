"""A trace file's JSON records, each with where it came from, or one line saying what is wrong and where.

A file is one JSON value (an object, or an array whose items are the records) or JSON Lines (one record
a line). Every record must be an object. Text is checked as task files are (tasks.check_text: no NUL,
no lone surrogate, bounded nesting), so nothing read here can fail later in the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentlearn.tasks import check_text
from agentlearn.toolcall import MAX_NESTING

MAX_BYTES = 100 * 2**20  # one import (~85k OTLP spans, ~1 GB of memory parsed); larger: split it, or use `collect`


@dataclass
class Document:
    """One record of a trace file and its place ("FILE, line 3", "FILE, item 2")."""

    where: str
    value: dict[str, Any]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def read_documents(path: str | Path, max_bytes: int = MAX_BYTES) -> list[Document]:
    """Every record of a trace file; ValueError naming the file and line of the first problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such trace file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path}: {size / 2**20:.1f} MiB is over the {max_bytes / 2**20:.0f} MiB limit of one "
                         "import; split the file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}, line {_line_of(raw, e.start)}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                         "save the file as UTF-8") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    try:
        whole = _loads(text)
    except json.JSONDecodeError as e:
        if not _looks_like_lines(text):
            raise ValueError(f"{path}, line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
        return _lines(path, text)
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to read (more than {MAX_NESTING} levels)") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if isinstance(whole, list):
        return [_document(f"{path}, item {i + 1}", item) for i, item in enumerate(whole)]
    return [_document(f"{path}, line 1" if "\n" not in text.strip() else str(path), whole)]


def _looks_like_lines(text: str) -> bool:
    """True if the first non-empty line is a whole JSON value by itself (so the file is JSON Lines)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        _loads(first)
    except (ValueError, RecursionError):
        return False
    return True


def _lines(path: Path, text: str) -> list[Document]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            value = _loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: invalid JSON at column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise ValueError(f"{where}: JSON nested too deeply to read (more than {MAX_NESTING} levels)") from None
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        out.append(_document(where, value))
    return out


def _document(where: str, value: Any) -> Document:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: a trace record is a JSON object, not {type(value).__name__}")
    check_text(value, where)
    return Document(where, value)
