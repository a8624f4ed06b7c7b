"""Label export: people's labels, preferences and corrections, each with its run and task beside it.

One row per stored record, with a `record` column (label, preference, correction) and the fields a
reader needs without the store: the task's request, conversation and expected call, the run's output,
parsed call and verifier verdict. Formats: JSON lines (nested values stay JSON), CSV (nested values as
JSON text), and a Hugging Face `datasets` folder with one split per record kind
(`datasets.load_from_disk(path)`). Files are written atomically and known secrets are redacted, as for
training files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentlearn.datasets import write_jsonl
from agentlearn.feedback.index import task_map
from agentlearn.paths import EXPORT_MARKER, check_out
from agentlearn.redact import redact
from agentlearn.tasks import request_text
from agentlearn.workspace import Workspace
from storage.files import write_atomic
from storage.records import Correction, Label, Preference, Task, Trajectory

KINDS = ("labels", "preferences", "corrections")
FORMATS = ("jsonl", "csv", "hf")


# --- rows --------------------------------------------------------------------------------------------


def rows(ws: Workspace, kinds: Sequence[str] = KINDS, suite: str = "") -> list[dict[str, Any]]:
    """Every label, preference and correction (of `kinds`, of `suite` when given), oldest first within a kind."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown record kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    tasks = task_map(ws)
    runs = {t.id: t for t in ws.repo.all(Trajectory)}
    out: list[dict[str, Any]] = []
    if "labels" in kinds:
        for lab in ws.repo.all(Label):
            run = runs.get(lab.trajectory_id)
            out.append({"record": "label", "id": lab.id, "created": lab.created.isoformat(), "person": lab.annotator,
                        "verdict": lab.verdict, "score": lab.score, "categories": lab.categories,
                        "comment": lab.comment, "step_flags": lab.step_flags,
                        **_run(run, lab.trajectory_id), **_task(tasks.get(run.task_id) if run else None)})
    if "preferences" in kinds:
        for p in ws.repo.all(Preference):
            out.append({"record": "preference", "id": p.id, "created": p.created.isoformat(), "person": p.annotator,
                        "choice": p.choice, "response_a": p.response_a, "response_b": p.response_b,
                        "trajectory_a": p.trajectory_a, "trajectory_b": p.trajectory_b, "swapped": p.swapped,
                        "corrected": p.corrected, **_task(tasks.get(p.task_id), p.task_id)})
    if "corrections" in kinds:
        for c in ws.repo.all(Correction):
            out.append({"record": "correction", "id": c.id, "created": c.created.isoformat(), "person": c.author,
                        "corrected_call": c.call.model_dump(), "note": c.note,
                        **_run(runs.get(c.trajectory_id), c.trajectory_id), **_task(tasks.get(c.task_id), c.task_id)})
    return [r for r in out if not suite or r.get("suite") == suite]


def _run(run: Trajectory | None, trajectory_id: str) -> dict[str, Any]:
    verdict = run.verdict if run is not None else None
    return {"trajectory_id": trajectory_id, "suite": run.suite if run else "", "split": run.split if run else "",
            "output": run.output if run else "", "tool_call": run.tool_call.model_dump() if run and run.tool_call else None,
            "verifier_success": verdict.success if verdict else None,
            "verifier_reward": verdict.reward if verdict else None, "verifier_reason": verdict.reason if verdict else "",
            "model": run.model if run else "", "adapter": run.adapter if run else "",
            "method": run.memory.method if run else ""}


def _task(task: Task | None, task_id: str = "") -> dict[str, Any]:
    out = {"task_id": task.id if task else task_id, "request": request_text(task.input) if task else "",
           "conversation": [m.model_dump() for m in task.input] if task else [],
           "expected_call": task.expected.model_dump() if task else None}
    if task is not None:
        out["suite"] = task.suite  # a preference has no run of its own: its task names the suite
        out["split"] = task.split
    return out


# --- formats -----------------------------------------------------------------------------------------


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row with nested values (lists, objects) as JSON text: what CSV and a fixed-schema dataset need."""
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in row.items()}


def columns(found: list[dict[str, Any]]) -> list[str]:
    """Every column of the rows, in first-seen order."""
    return list(dict.fromkeys(k for r in found for k in r))


def to_jsonl(found: list[dict[str, Any]]) -> bytes:
    """The rows as JSON lines (for a download button), with known secrets redacted."""
    return redact("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in found)).encode("utf-8")


def to_csv(found: list[dict[str, Any]]) -> bytes:
    """The rows as CSV with a header (nested values as JSON text), with known secrets redacted."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(found) or ["record"], extrasaction="ignore")
    writer.writeheader()
    for r in found:
        writer.writerow(flat(r))
    return redact(buf.getvalue()).encode("utf-8")


def write(ws: Workspace, fmt: str, out: str | Path | None = None, kinds: Sequence[str] = KINDS, suite: str = "",
          force: bool = False) -> tuple[Path, int]:
    """Write the rows as `fmt` (jsonl, csv: a file; hf: a folder); returns the path and the row count."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    found = rows(ws, kinds, suite)
    if not found:
        raise ValueError("nothing to export: no labels, preferences or corrections"
                         + (f" in suite {suite!r}" if suite else "") + " yet")
    path = check_out(ws.settings, out or default_path(ws, fmt), force, folder=fmt == "hf", suffixes=(f".{fmt}",))
    if fmt == "hf":
        _write_hf(path, found)
    else:
        if fmt == "jsonl":
            write_jsonl(path, found)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, to_csv(found))
    return path, len(found)


def default_path(ws: Workspace, fmt: str) -> Path:
    """Where an export goes unless told: the workspace's label-exports folder, named by the time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    return ws.settings.label_exports_dir / (f"labels-{stamp}" + ("" if fmt == "hf" else f".{fmt}"))


def _write_hf(path: Path, found: list[dict[str, Any]]) -> None:
    """Write the dataset folder beside `path`, then swap it in (check_out allowed replacing what is there)."""
    from datasets import Dataset, DatasetDict

    splits = {}
    for kind in KINDS:
        part = [flat(r) for r in found if r["record"] == kind.rstrip("s")]
        if part:
            # One column set per split, so every row has every column (None where a field is absent).
            cols = columns(part)
            splits[kind] = Dataset.from_list([{c: _redact_value(r.get(c)) for c in cols} for r in part])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    for leftover in (tmp, old):  # only ever this process's own scratch folders
        shutil.rmtree(leftover, ignore_errors=True)
    DatasetDict(splits).save_to_disk(str(tmp))
    (tmp / EXPORT_MARKER).write_text("a label export (agentlearn labels export --format hf)\n")
    if path.exists():
        os.replace(path, old)  # an earlier export (marked) or an empty folder
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value
