"""Task suites: import tool-calling tasks from JSONL (or BFCL, agentlearn.suites.bfcl), split them, keep tools and references.

FORMATS names each format's reader; every reader hands over checked drafts, and one path
(`import_file`) gives them ids and splits and writes them, so the rules below hold for every format.

One task per line:

    {"sample_id": "pw_1",
     "input": [{"role": "user", "content": "..."}, ...],          # any roles: user, system, technician...
     "expected_function_call": {"name": "reset_password", "arguments": {...}},
     "tools": [...],                                                # optional, per task
     "tags": ["accounts"]}                                          # optional

Tools are JSON-schema definitions, OpenAI style or bare; they are stored in the bare form
{"name", "description", "parameters"} (see toolcall.normalise_tool). A task without its own tools gets
the suite's tools: those passed to import_file, those defined on other lines, and for any function
still unknown a schema inferred from its expected calls.

Import is all-or-nothing: every line is validated first and the first bad line raises ValueError
with the file and line number (bad JSON, text that is not UTF-8, a line nested more than MAX_NESTING
levels deep, a number too long to be one or NaN/Infinity, a lone surrogate such as `\ud800` that is
not text, a NUL character `\u0000` that PostgreSQL cannot store, a schema with a `$ref` outside
itself); only then is everything written in one put_many, which both backends write whole or not at all. Ids are
deterministic (task `suite:sample_id`, suite = its name, reference exemplar `suite:sample_id:reference`),
so importing again updates in place.

A suite carries a name, a description and an instruction (the agent's role and rules; see
prompts.instruction_for). The instruction comes, first found wins, from the `instruction` given at
import (or a suite card's), the one already stored (a person's edit survives a re-import), or the
file itself: when every line starts with a `system` message of the same content and has more
messages after it, that message is the suite's instruction and is taken off the task inputs (a lone
system alert stays a task message). A suite card (`load_card`, YAML or JSON) gives name,
description, instruction, tools and argument kinds in one file.

Argument kinds (agentlearn.arg_kinds) are inferred at every import from the tools and all the
suite's tasks; a person's overrides (card, `update_suite`, the Suites page) are kept and win.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentlearn import arg_kinds, policy
from agentlearn.accounts import Identity
from agentlearn.task_lines import Draft, _check_tool, check_text, parse_json_line
from agentlearn.workspace import Workspace
from storage.records import Exemplar, Message, Record, Suite, Task, ToolBinding, ToolCall, now

DEMO_SUITE = "helpdesk-demo"
DATA_DIR = Path(__file__).parent / "data"
SPLITS = ("train", "heldout")


# --- the line format ----------------------------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: str = Field(pattern=r"^[A-Za-z][A-Za-z_]*$")
    content: str


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    sample_id: str = Field(min_length=1)
    input: list[_Message] = Field(min_length=1)
    expected_function_call: _Call
    tools: list[dict[str, Any]] | None = None
    tags: list[str] | None = None


def _pydantic_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def _read_lines(path: Path) -> list[tuple[int, _Line]]:
    """Every task line of a file, validated; raises ValueError naming the first bad line."""
    if not path.is_file():
        raise FileNotFoundError(f"no such task file: {path}")
    out: list[tuple[int, _Line]] = []
    first_seen: dict[str, int] = {}
    with path.open("rb") as f:  # bytes, so that a non-UTF-8 line is reported with its number
        for n, raw in enumerate(f, start=1):
            where = f"{path}, line {n}"
            obj = parse_json_line(raw, n, where)
            if obj is None:
                continue
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: a task must be a JSON object, not {type(obj).__name__}")
            _refuse_code(obj, where)
            check_text(obj, where)
            try:
                line = _Line.model_validate(obj)
            except ValidationError as e:
                raise ValueError(f"{where}: {_pydantic_error(e)}") from None
            if line.sample_id in first_seen:
                raise ValueError(f"{where}: duplicate sample_id {line.sample_id!r} "
                                 f"(first on line {first_seen[line.sample_id]})")
            first_seen[line.sample_id] = n
            if line.tools is not None:
                try:
                    line.tools = [_check_tool(t) for t in line.tools]
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
                _check_offered(line, line.tools, where)
            out.append((n, line))
    if not out:
        raise ValueError(f"{path}: no tasks in the file")
    return out


# Keys by which a task file could name code to run. Where tools run is set by an admin on the server
# (agentlearn.tools.bind); a file that tries is refused before anything is stored or started.
CODE_KEYS = ("bindings", "binding", "module", "command", "mcp", "python", "callable", "entrypoint")


def _refuse_code(obj: dict[str, Any], where: str) -> None:
    tools = obj.get("tools") if isinstance(obj.get("tools"), list) else []
    for place, fields in [("the task", obj), *((f"tool {n + 1}", t) for n, t in enumerate(tools) if isinstance(t, dict))]:
        named = next((k for k in CODE_KEYS if k in fields), None)
        if named:
            raise ValueError(f"{where}: {place} names code to run ({named!r}); a task file never says where tools "
                             "run: an admin binds them (python -m agentlearn suites bind)")


def _shared_system_message(lines: list[tuple[int, _Line]]) -> str:
    """The content of a `system` message that opens every line (with more after it), else ''."""
    first = {line.input[0].content.strip() if line.input[0].role == "system" and len(line.input) > 1 else ""
             for _, line in lines}
    return first.pop() if len(first) == 1 else ""


def _check_offered(line: _Line, tools: list[dict[str, Any]], where: str) -> None:
    names = [t["name"] for t in tools]
    if line.expected_function_call.name not in names:
        raise ValueError(f"{where}: expected_function_call {line.expected_function_call.name!r} is not one "
                         f"of the tools offered ({', '.join(names) or 'none'})")


# --- tools ---------------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _infer_schema(values: list[Any]) -> dict[str, Any]:
    """The loosest simple JSON schema type that admits every value (arrays get item types)."""
    types = {_json_type(v) for v in values}
    if {"integer", "number"} <= types:
        types.discard("integer")
    ordered = sorted(types)
    schema: dict[str, Any] = {"type": ordered[0] if len(ordered) == 1 else ordered}
    items = [x for v in values if isinstance(v, list) for x in v]
    if types == {"array"} and items:
        schema["items"] = _infer_schema(items)
    return schema


def derive_tools(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """One tool per function name, its schema inferred from the calls (types and always-present args)."""
    by_name: dict[str, list[ToolCall]] = {}
    for c in calls:
        by_name.setdefault(c.name, []).append(c)
    tools = []
    for name, group in by_name.items():
        values: dict[str, list[Any]] = {}
        for c in group:
            for k, v in c.arguments.items():
                values.setdefault(k, []).append(v)
        properties = {k: _infer_schema(vs) for k, vs in values.items()}
        required = [k for k in values if all(c.arguments.get(k) is not None for c in group)]
        tools.append({"name": name, "description": f"{name} (schema inferred from {len(group)} example calls)",
                      "parameters": {"type": "object", "properties": properties, "required": required}})
    return tools


def _catalog(lines: list[tuple[int, _Line]], given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The file's tool set: given tools, then tools defined on lines, then inferred ones."""
    tools: dict[str, dict[str, Any]] = {}
    for t in given or []:
        tools.setdefault(t["name"], t)
    for _, line in lines:
        for t in line.tools or []:
            tools.setdefault(t["name"], t)
    unknown = [_to_call(line) for _, line in lines if _to_call(line).name not in tools]
    for t in derive_tools(unknown):
        tools[t["name"]] = t
    return list(tools.values())


def _to_call(line: _Line) -> ToolCall:
    c = line.expected_function_call
    return ToolCall(name=c.name, arguments=c.arguments)


# --- import --------------------------------------------------------------------------------------


def split_for(sample_id: str, heldout: float) -> str:
    """'heldout' or 'train' for a sample, fixed by the SHA-256 of its id (same answer every time)."""
    h = int.from_bytes(hashlib.sha256(sample_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return "heldout" if h < heldout else "train"


def _tags(line: _Line) -> list[str]:
    if line.tags is not None:
        return list(line.tags)
    # Public files often encode the category in the id ("password_12"): the id without its trailing
    # digits and one separator, if that has a letter. String methods, not a regex: a backtracking
    # pattern took seconds on a 16k-character id.
    head = line.sample_id
    while head and head[-1].isdecimal():
        head = head[:-1]
    if head == line.sample_id:
        return []
    head = head[:-1] if head[-1:] in ("_", "-", ".") else head
    return [head] if _ASCII_LETTER.search(head) else []


_ASCII_LETTER = re.compile("[A-Za-z]")


# Who speaks for the agent's side of a conversation; every other role is someone the agent serves.
AGENT_ROLES = frozenset({"system", "assistant", "tool"})


def request_text(messages: Sequence[Message]) -> str:
    """The request of a task (or an exemplar): the last message of whoever the agent serves, in any role
    (user, customer, technician...); the last message when there is no such one (a lone system alert)."""
    people = [m.content for m in messages if m.role not in AGENT_ROLES]
    return people[-1] if people else (messages[-1].content if messages else "")


def task_id(suite: str, sample_id: str) -> str:
    """The deterministic id of a task."""
    return f"{suite}:{sample_id}"


def reference_id(suite: str, sample_id: str) -> str:
    """The deterministic id of a train task's reference exemplar."""
    return f"{suite}:{sample_id}:reference"


def _read_jsonl(source: str, answers: str, given: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The JSONL format of the module docstring, as drafts (see FORMATS)."""
    if answers:
        raise ValueError("--answers is for the bfcl format; a JSONL line carries its own expected call")
    path = Path(source)
    lines = _read_lines(path)
    shared = _shared_system_message(lines)
    if shared:
        for _, line in lines:
            line.input = line.input[1:]
    catalog = _catalog(lines, given)
    if given is not None:  # tools were named: a task calling anything else is a mistake, not a new tool
        defined = given + [t for _, line in lines for t in line.tools or []]
        for n, line in lines:
            if line.tools is None:
                _check_offered(line, defined, f"{path}, line {n}")
    drafts = [Draft(sample_id=line.sample_id, input=[Message(role=m.role, content=m.content) for m in line.input],
                    expected=_to_call(line), tools=line.tools, tags=_tags(line)) for _, line in lines]
    return {"drafts": drafts, "catalog": catalog, "instruction": shared, "source": str(path)}


def _read_bfcl(source: str, answers: str, given: list[dict[str, Any]] | None) -> dict[str, Any]:
    from agentlearn.suites import bfcl

    if given is not None:
        raise ValueError("a BFCL task brings its own functions; a card's tools do not apply")
    return bfcl.read(source, answers)


# Task file formats: name -> reader(source, answers, tools) returning {"drafts", "catalog", and optionally
# "instruction" (a shared system message), "source", "max_steps", "max_calls"}; ValueError names file and line.
FORMATS = {"jsonl": _read_jsonl, "bfcl": _read_bfcl}


def import_jsonl(ws: Workspace, path: str | Path, suite: str, heldout: float = 0.5, **options: Any) -> Suite:
    """`import_file` for a JSONL task file."""
    return import_file(ws, path, suite, heldout, fmt="jsonl", **options)


def import_file(ws: Workspace, path: str | Path, suite: str, heldout: float = 0.5, *, fmt: str = "jsonl",
                answers: str = "", tools: list[dict[str, Any]] | None = None, description: str = "",
                source: str = "", instruction: str = "",
                kind_overrides: dict[str, dict[str, str]] | None = None) -> Suite:
    """Import (or re-import) a task file in format `fmt` (FORMATS) into `suite`; every task is checked before
    anything is written. `path` is a file, or for the bfcl format also a category name; `answers` the
    bfcl format's answer file.

    An empty `description` or `instruction` keeps the stored one (the instruction then falls back on
    the file's shared leading system message); `kind_overrides` (tool -> argument -> kind) are added
    to the suite's overrides.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown task format {fmt!r} (formats: {', '.join(FORMATS)})")
    if not suite or not suite.strip():
        raise ValueError("the suite needs a name")
    if not 0.0 <= heldout <= 1.0:
        raise ValueError(f"heldout must be a fraction between 0 and 1, not {heldout}")
    for what, text in (("the suite name", suite), ("the description", description), ("the instruction", instruction)):
        check_text(text, what)
    try:
        if tools is not None:
            check_text(tools, "tools")
        given = [_check_tool(t) for t in tools] if tools is not None else None
    except ValueError as e:
        raise ValueError(f"tools for suite {suite!r}: {e}") from None
    read = FORMATS[fmt](str(path), answers, given)
    drafts, catalog = read["drafts"], read["catalog"]

    old_suite = ws.repo.get(Suite, suite)
    merged = {t["name"]: t for t in (old_suite.tools if old_suite else [])}
    merged.update({t["name"]: t for t in catalog})
    start = now()
    records: list[Record] = []
    for i, draft in enumerate(drafts):
        records.extend(_task_records(ws, suite, draft, catalog, heldout, start + timedelta(microseconds=i)))
    new_tasks = [r for r in records if isinstance(r, Task)]
    fresh = {t.id for t in new_tasks}
    all_tasks = new_tasks + [t for t in ws.repo.find(Task, suite=suite) if t.id not in fresh]
    suite_tools = list(merged.values())
    inferred = arg_kinds.infer(all_tasks, suite_tools)
    overrides = _merged_overrides(old_suite.arg_kind_overrides if old_suite else {}, kind_overrides or {},
                                  suite_tools, inferred)
    # A re-import keeps what people set on the suite: its model, retrieval choice, queue, rubric and bindings.
    # The step and call limits come from the file where its format sets them, else stay as they were.
    limits = {k: read[k] for k in ("max_steps", "max_calls") if k in read}
    if any(d.reference is not None and not d.reference.calls and not d.turn_calls for d in drafts):
        limits["may_decline"] = True  # some request is rightly answered without a call: the agent may decline
    kept = old_suite.model_dump(include={"retrieval", "adapter", "overlap", "error_categories", "guidelines",
                                         "bindings", "max_steps", "max_calls", "may_decline"} - set(limits)) \
        if old_suite else {}
    record = Suite(
        id=suite, name=suite, tools=suite_tools, heldout_fraction=heldout,
        description=description or (old_suite.description if old_suite else ""),
        instruction=instruction or (old_suite.instruction if old_suite else "") or read.get("instruction", ""),
        arg_kinds=inferred, arg_kind_overrides=overrides,
        source=source or read.get("source", str(path)), created=old_suite.created if old_suite else start,
        **limits, **kept,
    )
    ws.repo.put_many([record, *records])
    return record


def _task_records(ws: Workspace, suite: str, draft: Draft, catalog: list[dict[str, Any]], heldout: float,
                  created: Any) -> list[Record]:
    tid = task_id(suite, draft.sample_id)
    old = ws.repo.get(Task, tid)
    split = split_for(draft.sample_id, heldout)
    call = draft.expected
    task = Task(id=tid, suite=suite, sample_id=draft.sample_id, split=split, input=draft.input,
                tools=draft.tools if draft.tools is not None else catalog, expected=call, tags=draft.tags,
                reference=draft.reference, turns=draft.turns, turn_calls=draft.turn_calls,
                held_back=draft.held_back, environment=draft.environment, created=old.created if old else created)
    out: list[Record] = [task]
    ref = ws.repo.get(Exemplar, reference_id(suite, draft.sample_id))
    if split == "train" and call.name:  # a task whose right answer is no call has no call to show
        # Keep a person's retirement of a reference, unless it was retired only for being held out.
        active = ref is None or ref.active or (old is not None and old.split == "heldout")
        out.append(Exemplar(id=reference_id(suite, draft.sample_id), suite=suite, task_id=tid, kind="reference",
                            input=draft.input, call=call, tool=call.name, tags=draft.tags, active=active,
                            calls=_several_calls(draft), created=ref.created if ref else created))
    elif ref is not None and ref.active:
        out.append(ref.model_copy(update={"active": False}))  # a held-out answer must not leak as an exemplar
    return out


def _several_calls(draft: Draft) -> list[ToolCall]:
    """A reference of several calls as the exemplar's answer (Exemplar.calls); [] for one call."""
    from agentlearn.suites.bfcl import expected_calls

    calls = expected_calls(draft.reference) if draft.reference is not None else []
    return calls if len(calls) > 1 else []


# --- suite cards and edits ---------------------------------------------------------------------


class SuiteCard(BaseModel):
    """What a suite says about itself: name, description, instruction, tools, argument kinds."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    description: str = ""
    instruction: str = ""
    tools: list[dict[str, Any]] | None = None
    arg_kinds: dict[str, dict[str, str]] = Field(default_factory=dict)  # tool -> argument -> kind
    # Where tools run (a card is a file on the server, used by an admin: agentlearn.tools.bind checks each).
    bindings: list[ToolBinding] = Field(default_factory=list)
    max_steps: int | None = Field(default=None, ge=1, le=100)
    max_calls: int | None = Field(default=None, ge=1, le=16)
    may_decline: bool | None = None  # whether a request may be answered in words, without a call


def load_card(path: str | Path) -> SuiteCard:
    """A suite card from a YAML or JSON file; ValueError saying what is wrong and where."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such suite card: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start + 1})") from None
    try:  # JSON is YAML, so one parser reads both
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {e}") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to read") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a suite card is a mapping with name, description, instruction, tools, arg_kinds")
    check_text(data, str(path))
    try:
        return SuiteCard.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{path}: {_pydantic_error(e)}") from None


def import_suite(ws: Workspace, path: str | Path, suite: str = "", heldout: float = 0.5, *, card: str | Path = "",
                 instruction: str = "", description: str = "", fmt: str = "jsonl", answers: str = "",
                 who: Identity) -> Suite:
    """Import a task file (or, for the bfcl format, a category by name), with an optional suite card;
    `suite`, `instruction` and `description` win over the card's. A bfcl import without a name is named
    after the category or file.

    `who` needs the import action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "import")
    found = load_card(card) if card else SuiteCard()
    name = suite or found.name or (Path(str(path)).stem.removeprefix("BFCL_v4_") if fmt == "bfcl" else "")
    if not name.strip():
        raise ValueError("the suite needs a name: give one, or a card with 'name'")
    if found.bindings:
        policy.require(ws.repo, who, "bind_tools")
        from agentlearn import tools

        found.bindings = [tools.check_binding(b) for b in found.bindings]
    record = import_file(ws, path, name, heldout, fmt=fmt, answers=answers, tools=found.tools,
                         description=description or found.description,
                         instruction=instruction or found.instruction, kind_overrides=found.arg_kinds)
    loop = {k: v for k, v in {"max_steps": found.max_steps, "max_calls": found.max_calls,
                              "may_decline": found.may_decline}.items() if v is not None}
    if found.bindings or loop:
        record = record.model_copy(update={**loop, **({"bindings": found.bindings} if found.bindings else {})})
        ws.repo.put(record)
    return record


def import_upload(ws: Workspace, who: Identity | None, filename: str, data: bytes, suite: str = "",
                  heldout: float = 0.5, description: str = "") -> Suite:
    """A task file uploaded on the Suites page, through `import_suite`'s checks; errors name the upload's
    own file name and line. `who` needs the import action (agentlearn.policy), checked here, not only by the page."""
    policy.require(ws.repo, who, "import")
    shown = Path(filename or "upload.jsonl").name
    with tempfile.TemporaryDirectory(prefix="agentlearn-upload-") as folder:
        path = Path(folder) / "upload.jsonl"  # never the uploaded name: it only ever appears in messages
        path.write_bytes(data)
        try:
            return import_file(ws, path, suite or Path(shown).stem, heldout, description=description,
                               source=f"uploaded {shown}")
        except ValueError as e:
            raise ValueError(str(e).replace(str(path), shown)) from None


def update_suite(ws: Workspace, name: str, instruction: str | None = None, description: str | None = None,
                 kind_overrides: dict[str, dict[str, str]] | None = None, *, who: Identity) -> Suite:
    """Change a suite's instruction, description or argument kinds (None leaves a field as it is).

    An override equal to the inferred kind is dropped, so that argument follows inference again. `who`
    needs the edit_suite action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "edit_suite")
    suite = get_suite(ws, name)
    update: dict[str, Any] = {}
    if instruction is not None:
        update["instruction"] = instruction.strip()
    if description is not None:
        update["description"] = description.strip()
    if kind_overrides:
        update["arg_kind_overrides"] = _merged_overrides(suite.arg_kind_overrides, kind_overrides, suite.tools,
                                                         suite.arg_kinds)
    if not update:
        return suite
    changed = suite.model_copy(update=update)
    ws.repo.put(changed)
    return changed


def _merged_overrides(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]], tools: list[dict[str, Any]],
                      inferred: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """`old` overrides with `new` ones applied; ValueError for an unknown tool, argument or kind."""
    args_of = {t["name"]: list((t.get("parameters") or {}).get("properties") or {}) for t in tools}
    for tool, args in inferred.items():
        args_of.setdefault(tool, []).extend(a for a in args if a not in args_of[tool])
    out = {tool: dict(args) for tool, args in old.items()}
    for tool, args in new.items():
        if tool not in args_of:
            raise ValueError(f"arg_kinds: no tool {tool!r} in the suite (tools: {', '.join(args_of) or 'none'})")
        if not isinstance(args, dict):
            raise ValueError(f"arg_kinds: {tool!r} needs a mapping of argument -> kind")
        for arg, kind in args.items():
            if arg not in args_of[tool]:
                raise ValueError(f"arg_kinds: tool {tool!r} has no argument {arg!r} "
                                 f"(arguments: {', '.join(args_of[tool]) or 'none'})")
            try:
                arg_kinds.check_kind(kind)
            except ValueError as e:
                raise ValueError(f"arg_kinds: {tool}.{arg}: {e}") from None
            if inferred.get(tool, {}).get(arg) == kind:
                out.get(tool, {}).pop(arg, None)
            else:
                out.setdefault(tool, {})[arg] = kind
    return {tool: args for tool, args in out.items() if args}


def parse_kind_override(text: str) -> tuple[str, str, str]:
    """('tool', 'argument', 'kind') from 'TOOL.ARG=KIND'; ValueError saying what the form is."""
    target, sep, kind = text.partition("=")
    tool, dot, arg = target.rpartition(".")
    if not (sep and dot and tool and arg and kind):
        raise ValueError(f"--kind {text!r}: write it as TOOL.ARGUMENT=KIND, e.g. reset_password.reason=free_text")
    return tool.strip(), arg.strip(), arg_kinds.check_kind(kind.strip())


def card_of(suite: Suite) -> dict[str, Any]:
    """The suite as a JSON-able card: name, description, instruction, tools, kinds in use, inferred, overrides."""
    return {"name": suite.name, "description": suite.description, "instruction": suite.instruction,
            "tools": suite.tools, "arg_kinds": arg_kinds.kinds_for(suite), "inferred_kinds": suite.arg_kinds,
            "kind_overrides": suite.arg_kind_overrides, "source": suite.source,
            "bindings": [b.model_dump() for b in suite.bindings], "max_steps": suite.max_steps,
            "max_calls": suite.max_calls, "may_decline": suite.may_decline}


# --- reading -------------------------------------------------------------------------------------


def suites(ws: Workspace) -> list[Suite]:
    """Every suite in the workspace, oldest first."""
    return ws.repo.all(Suite)


def get_suite(ws: Workspace, suite: str) -> Suite:
    """The suite record; ValueError naming the known suites if there is none by that name."""
    found = ws.repo.get(Suite, suite)
    if found is None:
        known = ", ".join(s.name for s in suites(ws)) or "none yet"
        raise ValueError(f"no suite named {suite!r} (known: {known})")
    return found


def load_tasks(ws: Workspace, suite: str, split: str | None = None) -> list[Task]:
    """The suite's tasks in file order, optionally only one split ('train' or 'heldout')."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    get_suite(ws, suite)
    if split is None:
        return ws.repo.find(Task, suite=suite)
    return ws.repo.find(Task, suite=suite, split=split)


def tools_at(task: Task, turn: int) -> list[dict[str, Any]]:
    """The task's tools offered at a user turn: all but those held back until a later turn (Task.held_back)."""
    later = {name for at, names in task.held_back.items() if at > turn for name in names}
    return [t for t in task.tools if t["name"] not in later]


def tools_added_at(task: Task, turn: int) -> list[dict[str, Any]]:
    """The tools first offered at this turn."""
    names = set(task.held_back.get(turn, []))
    return [t for t in task.tools if t["name"] in names]


def has_answer(task: Task) -> bool:
    """Whether the task says what a right answer is (an expected call, a reference, even "call nothing", or
    per-turn calls). A request imported from traces has none until a person gives one: it can be labeled,
    but not scored, so evaluations and the retrieval choice leave it out."""
    return task.reference is not None or bool(task.expected.name) or bool(task.turn_calls)


def gradable_tasks(ws: Workspace, suite: str, split: str) -> list[Task]:
    """The split's tasks that can be scored (has_answer), in file order."""
    return [t for t in load_tasks(ws, suite, split) if has_answer(t)]


def tools_for(ws: Workspace, suite: str) -> list[dict[str, Any]]:
    """The suite's tools, each {"name", "description", "parameters"}."""
    return get_suite(ws, suite).tools


def demo_tools() -> list[dict[str, Any]]:
    """The tool definitions of the built-in help-desk suite."""
    return json.loads((DATA_DIR / "demo_tools.json").read_text(encoding="utf-8"))


def ensure_demo_suite(ws: Workspace) -> Suite:
    """The built-in help-desk suite, imported from agentlearn/data on first use."""
    existing = ws.repo.get(Suite, DEMO_SUITE)
    if existing is not None:
        return existing
    return import_file(ws, DATA_DIR / "demo_suite.jsonl", DEMO_SUITE, heldout=0.5, tools=demo_tools(),
                       description="IT help desk and operations requests, one tool call each.", source="builtin")
