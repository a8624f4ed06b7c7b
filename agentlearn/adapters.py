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


def export_merged(ws: Workspace, ref: str, out: str | Path) -> Path:
    """A standalone model folder: the adapter `ref` names merged into its base model, with the tokenizer's prompt
    format (chat template, and the response template that turns `<tool_call>` text back into native tool calls).
    Any OpenAI-compatible server that loads a transformers folder serves it (`transformers serve FOLDER`), so an
    agent that is not ours runs on what was learned here. `out` must be new or empty."""
    import shutil

    from agentlearn import llm, models

    adapter = find(ws, ref)
    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} is not an empty folder; name a new one for the merged model")
    base = models.adapter_base(adapter.path) or models.embedded_model(ws.settings.local_model)
    model, tokenizer = llm.load_local(str(models.chat_model_dir(ws.settings.models_dir, base.name)), adapter.path)
    tokenizer.padding_side = "right"  # load_local pads on the left for its batches; a server pads as it needs
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    models.write_prompt_format(partial, base.prompt_format)
    if target.exists():
        target.rmdir()
    partial.rename(target)
    return target
