"""Corrections: a person fixes a run's call where they read it.

A correction is its own record (storage.records.Correction) beside the run, never an edit of it: the run
stays as the model produced it, which is what makes it the rejected side of a DPO pair (datasets). The
newest correction of a train task is that task's SFT answer, and a correction can become a manual
exemplar. Every correction is checked against the tool's JSON schema before it is stored, and each
problem is reported with the argument it concerns.

The form on the Trajectories page is built from `form_fields` (one typed input per schema property) and
read back with `arguments_from_form`; the JSON mode goes through `parse_call_json`. A corrected response
written as text (edit-to-fix on Preferences) goes through `check_response`, the same schema check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from agentlearn.accounts import Identity
from agentlearn.memory import exemplars
from agentlearn.toolcall import normalise_tool, parse_tool_call, schema_validator, tool_by_name
from agentlearn.workspace import Workspace
from storage.records import Correction, Exemplar, Record, Task, ToolCall, Trajectory

R = TypeVar("R", bound=Record)
WIDGETS = ("text", "integer", "number", "boolean", "choice", "json")


class CorrectionError(ValueError):
    """A correction that cannot be stored; `problems` names each argument that is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class FormField:
    """One input of the correction form: a property of the tool's parameters schema."""

    name: str
    widget: str  # one of WIDGETS
    required: bool
    description: str = ""
    options: tuple[Any, ...] = ()  # for "choice": the schema's enum


# --- the form and the JSON mode ------------------------------------------------------------------------


def tool_names(task: Task) -> list[str]:
    """The tools a task offers, in its order."""
    return [normalise_tool(t)["name"] for t in task.tools]


def form_fields(task: Task, tool: str) -> list[FormField]:
    """One typed field per property of `tool`'s parameters (required ones first); [] if the tool is unknown."""
    found = tool_by_name(task.tools, tool)
    if found is None:
        return []
    params = found["parameters"]
    required = set(params.get("required", []))
    fields = [_field(name, spec if isinstance(spec, dict) else {}, name in required)
              for name, spec in (params.get("properties") or {}).items()]
    return sorted(fields, key=lambda f: not f.required)


def _field(name: str, spec: dict[str, Any], required: bool) -> FormField:
    description = spec.get("description", "") if isinstance(spec.get("description"), str) else ""
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return FormField(name, "choice", required, description, tuple(spec["enum"]))
    kind = spec.get("type")
    widget = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}.get(kind, "json")
    return FormField(name, widget, required, description)


def form_value(field: FormField, call: ToolCall | None) -> Any:
    """What the field starts with: the run's value when it called this tool (JSON text for json fields)."""
    value = call.arguments.get(field.name) if call is not None else None
    if field.widget == "json":
        return "" if value is None else json.dumps(value, ensure_ascii=False)
    if field.widget == "text":
        return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return value


def arguments_from_form(fields: Sequence[FormField], values: dict[str, Any]) -> dict[str, Any]:
    """The arguments the form's values say; empty inputs are left out. CorrectionError names bad JSON fields."""
    args: dict[str, Any] = {}
    problems = []
    for f in fields:
        value = values.get(f.name)
        if f.widget in ("text", "json") and isinstance(value, str) and not value.strip():
            continue
        if value is None:
            continue
        if f.widget == "json":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                problems.append(f"argument {f.name!r}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})")
                continue
        elif f.widget == "integer":
            value = int(value)
        args[f.name] = value
    if problems:
        raise CorrectionError(problems)
    return args


def parse_call_json(text: str) -> ToolCall:
    """A call written as JSON: {"name": ..., "arguments": {...}}; CorrectionError says what is wrong and where."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorrectionError([f"the call is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"]) from None
    if not isinstance(obj, dict):
        raise CorrectionError([f"the call must be a JSON object with name and arguments, not {type(obj).__name__}"])
    extra = sorted(set(obj) - {"name", "arguments"})
    if extra:
        raise CorrectionError([f"the call has keys other than name and arguments: {', '.join(extra)}"])
    name, args = obj.get("name"), obj.get("arguments", {})
    if not isinstance(name, str) or not name.strip():
        raise CorrectionError(["the call needs a non-empty string 'name' (the tool to call)"])
    if not isinstance(args, dict):
        raise CorrectionError([f"'arguments' must be a JSON object, not {type(args).__name__}"])
    return ToolCall(name=name.strip(), arguments=args)


def check_call(task: Task, call: ToolCall) -> ToolCall:
    """The call, if it names an offered tool and fits its parameters schema (declared arguments only);
    else CorrectionError per argument."""
    if not task.tools:
        return call
    tool = tool_by_name(task.tools, call.name)
    if tool is None:
        raise CorrectionError([f"{call.name!r} is not one of the task's tools ({', '.join(tool_names(task))})"])
    try:
        errors = list(schema_validator(tool["parameters"]).iter_errors(call.arguments))
    except SchemaError as e:
        raise CorrectionError([f"{call.name}'s parameters are not a valid JSON schema: {e.message}"]) from None
    except Unresolvable as e:
        raise CorrectionError([f"{call.name}'s schema refers to {e.ref!r}, outside the schema"]) from None
    problems = {_problem(e) for e in errors} | set(_undeclared(tool["parameters"], call.arguments))
    if problems:
        raise CorrectionError(sorted(problems))
    return call


def _undeclared(params: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Arguments the tool does not declare. Many schemas leave additionalProperties unsaid, and then a
    misspelt argument passes the validator; a person's correction is held to the declared ones."""
    declared = params.get("properties")
    if not isinstance(declared, dict) or "additionalProperties" in params:
        return []  # no list to hold it to, or the schema says itself what else it takes
    names = ", ".join(declared) or "none"
    return [f"argument {name!r} is not one of the tool's parameters ({names})" for name in arguments
            if name not in declared]


def check_response(task: Task, text: str) -> ToolCall:
    """The call a written response makes (e.g. edit-to-fix on Preferences), held to `check_call`'s schema check.

    A response is a model answer: the call may sit in `<tool_call>` tags after some reasoning, as the model
    writes it. Text with no readable call is refused, since every task expects one.
    """
    parsed = parse_tool_call(text)
    if parsed.call is None:
        raise CorrectionError([f"the response holds no tool call: {parsed.error}"])
    return check_call(task, parsed.call)


def _problem(error) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and not path:
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"argument {missing!r} is required"
    if error.validator == "additionalProperties" and not path:
        return f"{error.message} (the tool's schema allows no other arguments)"
    if not path:
        return f"arguments: {error.message}"
    return f"argument {path[0]!r}{''.join(f'[{p}]' for p in path[1:])}: {error.message}"


# --- stored corrections ----------------------------------------------------------------------------


def stored(ws: Workspace, kind: type[R], record_id: str, missing: str) -> R:
    """The stored record of `kind` with this id; CorrectionError(`missing`) when the store has none."""
    found = ws.repo.get(kind, record_id)
    if found is None:
        raise CorrectionError([missing])
    return found


def correction(ws: Workspace, correction_id: str) -> Correction:
    """A stored correction; CorrectionError when there is none."""
    return stored(ws, Correction, correction_id, f"no correction with id {correction_id!r}")


def run_and_task(ws: Workspace, trajectory_id: str) -> tuple[Trajectory, Task]:
    """A stored run and its task, which a correction of it is checked against; CorrectionError names the missing one."""
    traj = stored(ws, Trajectory, trajectory_id, f"no trajectory with id {trajectory_id!r}")
    return traj, stored(ws, Task, traj.task_id,
                        f"the run's task {traj.task_id!r} is not in the store; there is nothing to check against")


def save(ws: Workspace, trajectory_id: str, author: str, call: ToolCall, note: str = "") -> Correction:
    """Check a corrected call against the run's task and store it under the author's name."""
    author = author.strip()
    if not author:
        raise CorrectionError(["the author is empty: sign in before correcting a call"])
    traj, task = run_and_task(ws, trajectory_id)
    check_call(task, call)
    return ws.repo.put(Correction(trajectory_id=traj.id, task_id=task.id, suite=traj.suite, author=author,
                                  call=call, note=note.strip()))


def of_trajectory(ws: Workspace, trajectory_id: str) -> list[Correction]:
    """Every correction of one run, newest first."""
    return _newest_first(ws.repo.find(Correction, trajectory_id=trajectory_id))


def latest_by_task(ws: Workspace, task_ids: Sequence[str] | None = None) -> dict[str, Correction]:
    """The newest correction of each task (of `task_ids` only, when given)."""
    wanted = set(task_ids) if task_ids is not None else None
    out: dict[str, Correction] = {}
    for c in reversed(_newest_first(ws.repo.all(Correction))):
        if wanted is None or c.task_id in wanted:
            out[c.task_id] = c
    return out


def to_exemplar(ws: Workspace, correction_id: str, *, who: Identity) -> Exemplar:
    """Make a correction a manual exemplar of its suite (train tasks only: a held-out answer would leak).

    `who` needs manage_exemplars (agentlearn.policy).
    """
    c = correction(ws, correction_id)
    task = stored(ws, Task, c.task_id, f"the correction's task {c.task_id!r} is not in the store")
    if task.split != "train":
        raise CorrectionError([f"task {task.id!r} is held out for evaluation: an exemplar of it would give the "
                               "evaluation its own answer"])
    made = exemplars.add_manual(ws, c.suite, task.input, c.call, tags=task.tags, who=who)
    # add_manual knows nothing of runs; the link back to the corrected run is kept for audit.
    return ws.repo.put(made.model_copy(update={"trajectory_id": c.trajectory_id}))


def _newest_first(items: Sequence[Correction]) -> list[Correction]:
    return sorted(items, key=lambda c: (c.created, c.id), reverse=True)
