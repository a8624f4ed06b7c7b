"""BFCL categories as suites: `tasks import --format bfcl CATEGORY_OR_FILE [--answers FILE]`.

BFCL (the Berkeley Function Calling Leaderboard) ships its data in the `bfcl-eval` wheel
(Apache-2.0): `bfcl_eval/data/BFCL_v4_<category>.json` holds the questions, one JSON object a line
({"id", "question": [[messages] per turn], "function": [function docs]}), and
`bfcl_eval/data/possible_answer/BFCL_v4_<category>.json` the answers ({"id", "ground_truth": [{function:
{argument: [every acceptable value]}}]}, "" among the values: the argument may be left out). A category
is read by name from the installed package, or a question file with its answer file (given, or in a
`possible_answer/` folder beside it, as BFCL lays them out).

Single-turn categories (simple_python, simple_java, simple_javascript, multiple, parallel,
parallel_multiple, irrelevance, live_simple, live_multiple, live_parallel, live_parallel_multiple,
live_irrelevance) become one task per line:
- `tools`: the line's functions through schema.tool_schema. Java and JavaScript functions first go
  through BFCL's own pre-processing (bfcl_eval.utils._func_doc_language_specific_pre_processing: every
  parameter is a string holding the language's source text, its type said in the description), and
  each property keeps its original type as `x-bfcl-type` (`x-bfcl-items-type` for arrays) because
  BFCL's checker converts the text back by that type (references.grade);
- `reference`: every ground-truth call with every acceptable value (nested objects as BFCL writes
  them: a dict of lists of acceptable values); irrelevance categories: `Reference(calls=[])`, no call
  is right;
- `expected`: the first reference call with the first acceptable value of each argument (an argument
  whose first value is "" is left out); for irrelevance `ToolCall(name="")`: there is no call to
  expect, and no reference exemplar is made from such a task.

Multi-turn categories (multi_turn_base, multi_turn_miss_func, multi_turn_miss_param,
multi_turn_long_context) become one task per line with `input` = the first turn, `turns` = the user
messages of the others, `turn_calls` = each turn's ground-truth calls (agentlearn.suites.multi_turn.
parse_calls reads BFCL's `func(arg=value)` text), `environment` = {class: its initial_config entry}
for the line's involved_classes, and `tools` = those classes' function docs from
bfcl_eval/data/multi_turn_func_doc, less the line's excluded_function. A class outside
ENVIRONMENT_CLASSES (the installed package's own list) is refused: an imported file never names code
to run. multi_turn_miss_func's functions held back until a later turn (`missed_function`) keep their schemas in
`tools` and are listed in `Task.held_back`: the agent offers them from that turn on, whose empty user
message becomes BFCL's own ("I have updated some more functions you can choose from. What about now?"),
with the new functions' signatures before it. The AST rule does not grade multi-turn tasks, so they carry no `reference`.

A question line that names code (`module`, `command` or `bindings` keys) is refused with its file and
line; so is any line the JSONL import would refuse (text the store cannot keep, a bad schema). The
categories BFCL scores without an answer file (live_relevance: any call is right) or as agentic
episodes (memory, web_search, format_sensitivity) are not imported.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from agentlearn.suites.schema import tool_schema
from storage.records import CallReference, Message, Reference, ToolCall

SINGLE_TURN = ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
               "irrelevance", "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
               "live_irrelevance")
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
CATEGORIES = SINGLE_TURN + MULTI_TURN
NO_CALL = ("irrelevance", "live_irrelevance")  # the right answer to every task is no call
NAMES_CODE = ("module", "command", "bindings")  # keys of a task line that would name code to run
OMIT = ""  # among an argument's acceptable values: it may be left out
# The user message of a turn that brings held-back functions (bfcl_eval.constants.default_prompts'
# DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC, as BFCL's inference sends it).
TOOLS_ADDED_PROMPT = "I have updated some more functions you can choose from. What about now?"
MULTI_TURN_STEPS = 20  # model steps per user turn: BFCL's own limit (bfcl_eval.constants.default_prompts)


def data_dir() -> Path:
    """The installed bfcl-eval package's data folder."""
    try:
        import bfcl_eval
    except ImportError:
        raise ValueError("BFCL categories are read from the bfcl-eval package: install it with "
                         "`pip install --no-deps bfcl-eval`, or give a question file") from None
    return Path(bfcl_eval.__file__).parent / "data"


def environment_classes() -> dict[str, str]:
    """Class name -> its function-doc file: the multi-turn environments the installed package defines."""
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    return dict(MULTI_TURN_FUNC_DOC_FILE_MAPPING)


def category_of(sample_id: str) -> str:
    """The BFCL category an id belongs to ("live_simple_0-0-0" -> "live_simple"), or ''."""
    found = [c for c in CATEGORIES if sample_id.startswith(c + "_")]
    return max(found, key=len) if found else ""


def language_of(category: str) -> str:
    """'java', 'javascript' or 'python': how BFCL's checker reads the category's argument values."""
    return {"simple_java": "java", "simple_javascript": "javascript"}.get(category, "python")


def files_for(source: str, answers: str = "") -> tuple[Path, Path | None, str]:
    """(question file, answer file or None, category) for a category name or a question file."""
    path = Path(source)
    if path.is_file():
        answer = Path(answers) if answers else path.parent / "possible_answer" / path.name
        if answers and not answer.is_file():
            raise FileNotFoundError(f"no such answer file: {answer}")
        return path, answer if answer.is_file() else None, ""
    if source not in CATEGORIES:
        raise ValueError(f"{source!r} is neither a file nor a BFCL category (categories: {', '.join(CATEGORIES)})")
    data = data_dir()
    question = data / f"BFCL_v4_{source}.json"
    answer = Path(answers) if answers else data / "possible_answer" / question.name
    if not answer.is_file():
        answer = None
    if answers and answer is None:
        raise FileNotFoundError(f"no such answer file: {answers}")
    return question, answer, source


def read(source: str, answers: str = "") -> dict[str, Any]:
    """Every task of a category or file, checked; ValueError naming the file and line of the first problem.

    Returns {"drafts": [tasks.Draft], "catalog": tools of the whole file, "max_steps", "max_calls", "source"}.
    """
    from agentlearn.task_lines import Draft, check_task_tools, check_text

    question_path, answer_path, category = files_for(source, answers)
    lines = _jsonl(question_path)
    gold = {obj.get("id"): (n, obj) for n, obj in _jsonl(answer_path)} if answer_path else {}
    drafts: list[Draft] = []
    catalog: dict[str, dict[str, Any]] = {}
    checked: dict[str, dict[str, Any]] = {}
    most_calls = 1
    multi = False
    for n, obj in lines:
        where = f"{question_path}, line {n}"
        check_text(obj, where)
        named = [k for k in NAMES_CODE if k in obj]
        if named:
            raise ValueError(f"{where}: the task names code to run ({named[0]!r}); an imported task never does: "
                             "tools are bound by an admin on the suite")
        sample_id = obj.get("id")
        if not isinstance(sample_id, str) or not sample_id:
            raise ValueError(f"{where}: a BFCL task needs an 'id'")
        cat = category or category_of(sample_id)
        turns = _turns(obj.get("question"), where)
        if cat in MULTI_TURN or "involved_classes" in obj:
            multi = True
            draft = _multi_turn(obj, turns, gold.get(sample_id), where, answer_path)
        else:
            draft = _single_turn(obj, turns, cat, gold.get(sample_id), where, answer_path)
        try:  # many lines offer the same functions: each distinct one is checked once
            draft.tools = [checked.get(key) or checked.setdefault(key, check_task_tools([t])[0])
                           for t in draft.tools or [] for key in [json.dumps(t, sort_keys=True)]]
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        offered = {t["name"] for t in draft.tools}
        for call in draft.reference.calls if draft.reference else []:
            if call.name not in offered:
                raise ValueError(f"{where}: the answer calls {call.name!r}, which is not one of the functions "
                                 f"offered ({', '.join(sorted(offered)) or 'none'})")
        if draft.reference:
            most_calls = max(most_calls, len(draft.reference.calls))
        most_calls = max([most_calls, *(len(calls) for calls in draft.turn_calls)])
        for t in draft.tools:
            catalog.setdefault(t["name"], t)
        drafts.append(draft)
    if len({d.sample_id for d in drafts}) != len(drafts):
        seen: set[str] = set()
        dup = next(d.sample_id for d in drafts if d.sample_id in seen or seen.add(d.sample_id))
        raise ValueError(f"{question_path}: duplicate id {dup!r}")
    return {"drafts": drafts, "catalog": list(catalog.values()), "source": str(question_path),
            "max_steps": MULTI_TURN_STEPS if multi else 1, "max_calls": min(most_calls, 16)}


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    from agentlearn.task_lines import parse_json_line

    if not path.is_file():
        raise FileNotFoundError(f"no such BFCL file: {path}")
    out = []
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            obj = parse_json_line(raw, n, f"{path}, line {n}")
            if obj is None:
                continue
            if not isinstance(obj, dict):
                raise ValueError(f"{path}, line {n}: a BFCL line must be a JSON object, not {type(obj).__name__}")
            out.append((n, obj))
    if not out:
        raise ValueError(f"{path}: no tasks in the file")
    return out


def _turns(question: Any, where: str) -> list[list[Message]]:
    if not isinstance(question, list) or not question:
        raise ValueError(f"{where}: 'question' must be a list of turns, each a list of messages")
    turns = []
    for i, turn in enumerate(question):
        if not isinstance(turn, list):
            raise ValueError(f"{where}: question[{i}] must be a list of messages")
        messages = []
        for j, m in enumerate(turn):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise ValueError(f"{where}: question[{i}][{j}] must be a message with a 'role' and a 'content'")
            messages.append(Message(role=m["role"], content=m["content"]))
        turns.append(messages)
    if not turns[0]:
        raise ValueError(f"{where}: the first turn has no message")
    return turns


def _tools(functions: Any, category: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
        raise ValueError(f"{where}: 'function' must be a list of function documents")
    language = language_of(category)
    try:
        if language == "python":
            return [tool_schema(f) for f in functions]
        from bfcl_eval.utils import _func_doc_language_specific_pre_processing

        written = _func_doc_language_specific_pre_processing(copy.deepcopy(functions), category)
        tools = [tool_schema(f) for f in written]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from None
    for original, tool in zip(functions, tools, strict=True):
        for name, spec in ((original.get("parameters") or {}).get("properties") or {}).items():
            target = tool["parameters"]["properties"].get(name)
            if isinstance(spec, dict) and isinstance(target, dict):
                target["x-bfcl-type"] = spec.get("type", "any")
                if isinstance(spec.get("items"), dict) and "type" in spec["items"]:
                    target["x-bfcl-items-type"] = spec["items"]["type"]
    return tools


def _reference(ground_truth: Any, where: str) -> Reference:
    if not isinstance(ground_truth, list):
        raise ValueError(f"{where}: 'ground_truth' must be a list of calls")
    calls = []
    for i, entry in enumerate(ground_truth):
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise ValueError(f"{where}: ground_truth[{i}] must be one {{function: {{argument: [values]}}}}")
        (name, args), = entry.items()
        if not isinstance(args, dict) or not all(isinstance(v, list) for v in args.values()):
            raise ValueError(f"{where}: ground_truth[{i}] ({name}): each argument needs a list of acceptable values")
        calls.append(CallReference(name=name, arguments=args))
    return Reference(calls=calls)


def first_value(acceptable: list[Any]) -> Any:
    """The first acceptable value, nested objects' own lists resolved the same way; OMIT if that is OMIT."""
    return _first(acceptable[0]) if acceptable else OMIT


def _first(value: Any) -> Any:
    if isinstance(value, dict):  # a nested object as BFCL writes it: each key's acceptable values
        return {k: first_value(v) if isinstance(v, list) else v for k, v in value.items()
                if not (isinstance(v, list) and first_value(v) == OMIT)}
    if isinstance(value, list):
        return [_first(v) for v in value]
    return value


def expected_call(reference: Reference) -> ToolCall:
    """The first reference call with the first acceptable value of each argument; ToolCall(name="") for none."""
    return next(iter(expected_calls(reference)), ToolCall(name=""))


def expected_calls(reference: Reference) -> list[ToolCall]:
    """Every reference call with the first acceptable value of each argument (an answer to show or train on)."""
    return [ToolCall(name=call.name, arguments={k: first_value(v) for k, v in call.arguments.items()
                                                if first_value(v) != OMIT}) for call in reference.calls]


def _single_turn(obj: dict[str, Any], turns: list[list[Message]], category: str,
                 answer: tuple[int, dict[str, Any]] | None, where: str, answer_path: Path | None):
    from agentlearn.task_lines import Draft

    tools = _tools(obj.get("function"), category, where)
    if category in NO_CALL:
        reference = Reference(calls=[])
    elif answer is None:
        raise ValueError(f"{where}: no answer for {obj['id']!r} in "
                         f"{answer_path or 'any answer file (give one with --answers)'}")
    else:
        reference = _reference(answer[1].get("ground_truth"), f"{answer_path}, line {answer[0]}")
    return Draft(sample_id=obj["id"], input=[m for turn in turns for m in turn], expected=expected_call(reference),
                 tools=tools, tags=[category] if category else [], reference=reference)


def _held_back(missed: Any, offered: set[str], n_turns: int, where: str) -> dict[int, list[str]]:
    """`missed_function` ({"3": ["sort"]}: functions first offered at turn 3) checked against the line's turns
    and functions."""
    if missed is None:
        return {}
    if not isinstance(missed, dict):
        raise ValueError(f"{where}: 'missed_function' must be an object of turn index -> function names")
    out: dict[int, list[str]] = {}
    for key, names in missed.items():
        if not (isinstance(key, str) and key.isdigit() and 0 < int(key) < n_turns):
            raise ValueError(f"{where}: 'missed_function' key {key!r} is not a turn after the first "
                             f"(1 to {n_turns - 1})")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: 'missed_function'[{key!r}] must be a list of function names")
        unknown = [n for n in names if n not in offered]
        if unknown:
            raise ValueError(f"{where}: 'missed_function'[{key!r}] names {unknown[0]!r}, which none of the "
                             "line's classes offers")
        out[int(key)] = list(names)
    return out


def _multi_turn(obj: dict[str, Any], turns: list[list[Message]], answer: tuple[int, dict[str, Any]] | None,
                where: str, answer_path: Path | None):
    try:
        from agentlearn.suites.multi_turn import parse_calls
    except ImportError as e:
        raise ValueError(f"{where}: reading multi-turn answers needs agentlearn.suites.multi_turn ({e})") from None
    from agentlearn.task_lines import Draft

    known = environment_classes()
    classes = obj.get("involved_classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{where}: 'involved_classes' must be a list of class names")
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise ValueError(f"{where}: unknown environment class {unknown[0]!r}; a BFCL task may only name the "
                         f"installed package's environments ({', '.join(known)})")
    if answer is None:
        raise ValueError(f"{where}: no answer for {obj['id']!r} in "
                         f"{answer_path or 'any answer file (give one with --answers)'}")
    gold = answer[1].get("ground_truth")
    if not (isinstance(gold, list) and all(isinstance(t, list) and all(isinstance(c, str) for c in t) for t in gold)):
        raise ValueError(f"{answer_path}, line {answer[0]}: 'ground_truth' must be a list of turns, each a list "
                         "of call texts")
    if len(gold) != len(turns):
        raise ValueError(f"{answer_path}, line {answer[0]}: {len(gold)} turns of answers for {len(turns)} turns "
                         "of questions")
    excluded = set(obj.get("excluded_function") or [])
    docs_dir = data_dir() / "multi_turn_func_doc"
    tools = []
    for cls in classes:
        for _, doc in _jsonl(docs_dir / known[cls]):
            if doc.get("name") not in excluded:
                tools.append(doc)
    config = obj.get("initial_config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"{where}: 'initial_config' must be an object")
    try:
        turn_calls = [[c for text in turn for c in parse_calls(text)] for turn in gold]
    except ValueError as e:
        raise ValueError(f"{answer_path}, line {answer[0]}: {e}") from None
    first = next((c for c in turn_calls[0]), ToolCall(name=""))
    held_back = _held_back(obj.get("missed_function"), {d["name"] for d in tools}, len(turns), where)
    turns = [[Message(role="user", content=TOOLS_ADDED_PROMPT)] if at in held_back and not turn else turn
             for at, turn in enumerate(turns)]
    return Draft(sample_id=obj["id"], input=turns[0], expected=first,
                 tools=[tool_schema(d) for d in tools], tags=[category_of(obj["id"]) or "multi_turn"],
                 turns=turns[1:], turn_calls=turn_calls, held_back=held_back,
                 environment={cls: copy.deepcopy(config.get(cls, {})) for cls in classes})

