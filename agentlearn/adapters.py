"""One way to name a trained LoRA adapter: its id, the id of the job that made it, or its folder."""

from __future__ import annotations

from pathlib import Path

from agentlearn.workspace import Workspace
from storage.records import Adapter, Suite


def find(ws: Workspace, ref: str) -> Adapter:
    """The adapter `ref` names (adapter id, job id or folder); ValueError saying what exists otherwise."""
    ref = (ref or "").strip()
    if not ref:
        raise ValueError("name an adapter: its id, the id of the job that made it, or its folder")
    adapter = ws.repo.get(Adapter, ref)
    if adapter is not None:
        return adapter
    from agentlearn.training import jobs  # its status is its process's

    job = jobs.get(ws, ref)
    if job is not None:
        if not job.adapter_id:
            raise ValueError(f"job {ref} ({job.status}) made no adapter" + (f": {job.error}" if job.error else ""))
        found = ws.repo.get(Adapter, job.adapter_id)
        if found is not None:
            return found
    folder = Path(ref).expanduser()
    if folder.exists():
        target = folder.resolve()
        for candidate in ws.repo.all(Adapter):
            if Path(candidate.path).resolve() == target:
                return candidate
    known = ", ".join(a.id for a in ws.repo.all(Adapter)) or "none yet"
    raise ValueError(f"no adapter, job or adapter folder {ref!r} (adapters: {known}; see `python -m agentlearn "
                     "adapters`)")


AUTO = "auto"  # the suite's promoted adapter (Suite.adapter), or the base model when it has none
BASE = ("", "none", "base")  # the base model, whatever the suite has promoted


def resolve(ws: Workspace, suite: str, ref: str) -> str:
    """The adapter id a run on `suite` uses for `ref`: "auto" the suite's model, ""/"none" the base model
    (returned as ""), anything else what `find` names; ValueError when it names nothing."""
    ref = (ref or "").strip()
    if ref.lower() in BASE:
        return ""
    if ref.lower() == AUTO:
        return suite_adapter(ws, suite)
    return find(ws, ref).id


def suite_adapter(ws: Workspace, suite: str) -> str:
    """The suite's promoted adapter id ("" = the base model; an adapter since deleted reads as the base model)."""
    record = ws.repo.get(Suite, suite) if suite else None
    if record is None or not record.adapter:
        return ""
    return record.adapter if ws.repo.get(Adapter, record.adapter) is not None else ""


def newest_first(ws: Workspace) -> list[Adapter]:
    """Every registered adapter, newest first."""
    return sorted(ws.repo.all(Adapter), key=lambda a: (a.created, a.id), reverse=True)
