"""Grading against a reference that lists every acceptable value: BFCL's AST rule.

A task's `reference` (records.Reference) holds the calls a right answer makes, in any order, each
argument with every acceptable value ("" among them: the argument may be left out); no calls means
the right answer calls nothing (BFCL's irrelevance categories). `grade` applies the rule of BFCL's
checker, bfcl_eval/eval_checker/ast_eval/ast_checker.py (bfcl-eval, Apache-2.0). That module cannot be
imported without the vendor SDKs bfcl-eval declares (it imports bfcl_eval.constants.model_config for
one name lookup), so its logic is adapted here, function by function, with the same Python semantics
(`type(v) == t` checks, `in` on lists, so True counts as 1 where BFCL's does):
- `standardize`: ast_checker.standardize_string (spaces and `,./-_*^` removed, lower case, ' -> ");
- `_type_error`: ast_checker.type_checker (a value of the answer's own type is accepted as a
  "variable"; arrays check their items one level deep);
- `_string_error`, `_list_error`, `_dict_error`, `_list_dict_error`: string_checker, list_checker,
  dict_checker, list_dict_checker;
- `_call_errors`: simple_function_checker (required arguments, unexpected ones, an int accepted for
  a float in Python, Java and JavaScript values converted from their source text by bfcl-eval's own
  java_type_converter / js_type_converter, optional arguments);
- `grade`: ast_checker's dispatch: the number of calls must equal the reference's; several are
  matched in any order the way parallel_function_checker_no_order does (each reference call takes
  the first unmatched answer call it accepts); no reference call: right only when nothing is called
  (BFCL scores irrelevance as "the answer holds no call").
Where BFCL's checker stops at the first error, `grade` goes on to grade every argument, so that
Verdict.arguments says which were right (ArgGrade.expected is the list of acceptable values); success
is the same. Function names compare as written (BFCL's model-specific `.` -> `_` renaming is a
property of vendors' APIs, not of the answer). The parameter types come from the task's tools: a
property's `x-bfcl-type` where the BFCL import kept one (Java, JavaScript), else its JSON Schema type
read back (number -> float, object -> dict, no type -> any).

`add_alternative` makes a corrected value one more acceptable answer (the labeling view calls it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.arg_kinds import kind_of
from agentlearn.suites.bfcl import CATEGORIES, category_of, first_value, language_of
from agentlearn.workspace import Workspace
from storage.records import ArgGrade, CallReference, Reference, Task, ToolCall, Verdict

OMIT = ""
# BFCL's Python types as the checker holds them (ast_checker.PYTHON_TYPE_MAPPING).
PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                                 "tuple": list, "dict": dict, "any": str}
NESTED = ("array", "tuple")  # Python types whose items are checked too
JSON_TO_BFCL = {"string": "string", "integer": "integer", "number": "float", "boolean": "boolean",
                "array": "array", "object": "dict"}
_STANDARDIZE = re.compile(r"[ \,\.\/\-\_\*\^]")


def standardize(text: str) -> str:
    """BFCL's string standardisation: no spaces or `,./-_*^`, lower case, single quotes as double."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def reference_of(task: Task) -> Reference:
    """The task's reference; a task without one is graded against its expected call, each value the only one."""
    if task.reference is not None:
        return task.reference
    return Reference(calls=[CallReference(name=task.expected.name,
                                          arguments={k: [v] for k, v in task.expected.arguments.items()})])


def grade(task: Task, calls: list[ToolCall], output: str = "") -> Verdict:
    """BFCL's AST rule applied to the answer's calls (see the module docstring); `output` is kept for the reason."""
    reference = reference_of(task)
    language = language_of(next((t for t in task.tags if t in CATEGORIES), "") or category_of(task.sample_id))
    wanted = reference.calls
    names_right = sorted(c.name for c in calls) == sorted(c.name for c in wanted)
    if not wanted:
        success = not calls
        reason = "Correct: no tool call, and none of the tools fits the request." if success else \
            f"Failed: called {', '.join(c.name for c in calls)}, but no call is right for this request."
        return _verdict(success, names_right, 1.0 if success else 0.0, reason, [], calls, reference)
    if len(calls) != len(wanted):
        reason = (f"Failed: {_count(len(calls))} made, {_count(len(wanted))} expected"
                  f"{' (' + _no_call_note(output) + ')' if not calls and output.strip() else ''}.")
        graded = _pair_for_report(task, calls, wanted, language)
        return _verdict(False, names_right, _args_score(graded), reason, graded, calls, reference)
    matched: dict[int, int] = {}  # reference call -> answer call, BFCL's greedy order
    first_error = ""
    for i, ref in enumerate(wanted):
        for j, call in enumerate(calls):
            if j in matched.values():
                continue
            errors = _call_errors(task, call, ref, language)
            if not any(errors.values()):
                matched[i] = j
                break
        else:
            if not first_error:
                first_error = _first_error(task, calls, ref, language, matched)
    success = len(matched) == len(wanted)
    graded = _pair_for_report(task, calls, wanted, language, matched)
    reason = f"Correct: {_count(len(wanted))} matching the reference." if success else f"Failed: {first_error}."
    return _verdict(success, names_right, _args_score(graded), reason, graded, calls, reference)


def _count(n: int) -> str:
    return f"{n} call{'s' if n != 1 else ''}" if n else "no call"


def _no_call_note(output: str) -> str:
    text = output.strip().replace("\n", " ")
    return f"answered {json.dumps(text[:60] + ('...' if len(text) > 60 else ''), ensure_ascii=False)}"


def _first_error(task: Task, calls: list[ToolCall], ref: CallReference, language: str, matched: dict[int, int]) -> str:
    free = [j for j in range(len(calls)) if j not in matched.values()]
    same = [j for j in free if calls[j].name == ref.name]
    if not same:
        return f"no call of {ref.name} among the answer's calls ({', '.join(calls[j].name for j in free) or 'none'})"
    errors = _call_errors(task, calls[same[0]], ref, language)
    return next(e for e in errors.values() if e)


def _pair_for_report(task: Task, calls: list[ToolCall], wanted: list[CallReference], language: str,
                     matched: dict[int, int] | None = None) -> list[ArgGrade]:
    """Per-argument grades: each reference call against its matched call, else the first unused call of its name."""
    matched = dict(matched or {})
    used = set(matched.values())
    out: list[ArgGrade] = []
    for i, ref in enumerate(wanted):
        j = matched.get(i)
        if j is None:
            j = next((k for k, c in enumerate(calls) if k not in used and c.name == ref.name), None)
            if j is not None:
                used.add(j)
        call = calls[j] if j is not None else ToolCall(name=ref.name)
        prefix = f"{ref.name}[{i}]." if len(wanted) > 1 else ""
        errors = _call_errors(task, call, ref, language)
        for arg, error in errors.items():
            if not arg:
                continue
            value = call.arguments.get(arg)
            if arg not in call.arguments:
                status = "missing" if error else "right"  # left out: right only where it may be
            elif arg not in ref.arguments:
                status = "unexpected"
            else:
                status = "wrong" if error else "right"
            out.append(ArgGrade(name=prefix + arg, kind=kind_of({}, ref.name, arg, value if value is not None
                                                                 else first_value(ref.arguments.get(arg, [OMIT]))),
                                status=status, score=0.0 if error else 1.0, expected=ref.arguments.get(arg),
                                got=value))
    return out


def _args_score(graded: list[ArgGrade]) -> float:
    return sum(a.score for a in graded) / len(graded) if graded else 1.0


def _verdict(success: bool, names_right: bool, args_score: float, reason: str, graded: list[ArgGrade],
             calls: list[ToolCall], reference: Reference) -> Verdict:
    exact = sorted(json.dumps([c.name, c.arguments], sort_keys=True) for c in calls) == sorted(
        json.dumps([r.name, {k: first_value(v) for k, v in r.arguments.items() if first_value(v) != OMIT}],
                   sort_keys=True) for r in reference.calls)
    scores = {"name_match": float(names_right), "call_match": float(success),
              "args_score": round(args_score if names_right else 0.0, 4), "args_exact": float(exact and success)}
    reward = 0.5 * scores["call_match"] + 0.25 * scores["name_match"] + 0.25 * scores["args_score"]
    return Verdict(success=success, reward=round(reward, 4), reason=reason, scores=scores, arguments=graded)


# --- one call against one reference call (ast_checker.simple_function_checker) ---------------------


def _bfcl_type(spec: dict[str, Any]) -> tuple[str, str | None]:
    """(BFCL type, item type) of a property: as the import kept it, else read back from JSON Schema."""
    if "x-bfcl-type" in spec:
        return spec["x-bfcl-type"], spec.get("x-bfcl-items-type")
    kind = spec.get("type")
    items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
    item_kind = items.get("type")
    read = JSON_TO_BFCL.get(kind, "any") if isinstance(kind, str) else "any"
    return read, (JSON_TO_BFCL.get(item_kind, "any") if isinstance(item_kind, str) else "any") if read in NESTED \
        else None


def _call_errors(task: Task, call: ToolCall, ref: CallReference, language: str) -> dict[str, str]:
    """argument -> why it is wrong ('' when right), for every argument given, required or in the reference;
    key '' holds an error of the call itself (the wrong function)."""
    if call.name != ref.name:
        return {"": f"called {call.name} instead of {ref.name}"}
    tool = next((t for t in task.tools if t.get("name") == ref.name), None) or {}
    params = tool.get("parameters") or {}
    props = params.get("properties") or {}
    errors: dict[str, str] = {}
    for arg in params.get("required") or []:
        if arg not in call.arguments:
            errors[arg] = f"required argument {arg!r} is missing"
    for arg, value in call.arguments.items():
        if arg not in props or arg not in ref.arguments:
            errors[arg] = f"argument {arg!r} was not expected"
            continue
        errors[arg] = _value_error(arg, value, ref.arguments[arg], props[arg], language)
    for arg, acceptable in ref.arguments.items():
        if arg not in call.arguments and arg not in errors:
            errors[arg] = "" if OMIT in acceptable else f"argument {arg!r} is missing (it may not be left out)"
    return errors


def _value_error(arg: str, value: Any, acceptable: list[Any], spec: dict[str, Any], language: str) -> str:
    kind, item_kind = _bfcl_type(spec)
    nested = None
    if language in ("java", "javascript"):
        from bfcl_eval.constants.type_mappings import JAVA_TYPE_CONVERSION, JS_TYPE_CONVERSION
        from bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter import java_type_converter
        from bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter import js_type_converter

        table, convert = (JAVA_TYPE_CONVERSION, java_type_converter) if language == "java" else \
            (JS_TYPE_CONVERSION, js_type_converter)
        if kind not in table:
            return f"argument {arg!r} has type {kind!r}, which BFCL's {language} checker does not know"
        expected_type = table[kind]
        if type(value) is not str:
            return f"argument {arg!r} must be {language} source text (a string), not {type(value).__name__}"
        if kind in ("Array", "ArrayList", "array"):
            nested = table.get(item_kind or "")
            value = convert(value, kind, item_kind)
        else:
            value = convert(value, kind)
    else:
        if kind not in PYTHON_TYPES:
            kind = "any"
        expected_type = PYTHON_TYPES[kind]
        if kind in NESTED:
            nested = PYTHON_TYPES.get(item_kind or "any", str)
        if kind == "float" and type(value) is int:  # Python's own int -> float
            value = float(value)
    error, is_variable = _type_error(arg, value, acceptable, kind, expected_type, nested)
    if error:
        return error
    if not is_variable:
        if expected_type is dict:
            return _dict_error(arg, value, acceptable)
        if expected_type is list and nested is dict:
            return _list_dict_error(arg, value, acceptable)
        if expected_type is str:
            return _string_error(arg, value, acceptable)
        if expected_type is list:
            return _list_error(arg, value, acceptable)
    if value not in acceptable:
        return f"argument {arg!r} is {_show(value)}; acceptable: {_show(acceptable)}"
    return ""


def _answer_type(acceptable: list[Any]) -> type | None:
    return next((type(a) for a in acceptable if a != OMIT), None)


def _type_error(arg: str, value: Any, acceptable: list[Any], kind: str, expected_type: type,
                nested: type | None) -> tuple[str, bool]:
    """ast_checker.type_checker: (error or '', whether the value stands for a variable)."""
    answer_type = _answer_type(acceptable)
    is_variable = answer_type is not None and answer_type != expected_type
    if type(value) is expected_type:
        if nested is None:
            return "", is_variable
        for item in acceptable:
            if type(item) is list and any(_type_error(arg, v, item, str(nested), nested, None)[0] for v in value):
                continue
            return "", is_variable
        return f"argument {arg!r}: an item of {_show(value)} has the wrong type (expected {kind} of " \
               f"{nested.__name__})", False
    if answer_type is not None and type(value) is answer_type:
        return "", True
    return f"argument {arg!r} has type {type(value).__name__}, expected {kind}", False


def _string_error(arg: str, value: str, acceptable: list[Any]) -> str:
    if standardize(value) not in [standardize(a) for a in acceptable if type(a) is str]:
        return f"argument {arg!r} is {_show(value)}; acceptable: {_show(acceptable)} (case, spaces and ,./-_*^ ignored)"
    return ""


def _standardized_items(items: list[Any] | str) -> list[Any]:
    return [standardize(v) if type(v) is str else v for v in items]


def _list_error(arg: str, value: list[Any], acceptable: list[Any]) -> str:
    # BFCL walks every acceptable value as a sequence: "" (may be left out) reads as [], so [] is accepted there.
    options = [_standardized_items(a) for a in acceptable if isinstance(a, (list, str))]
    if _standardized_items(list(value)) not in options:
        return f"argument {arg!r} is {_show(value)}; acceptable: {_show(acceptable)}"
    return ""


def _dict_error(arg: str, value: dict[str, Any], acceptable: list[Any]) -> str:
    error = f"argument {arg!r} is {_show(value)}; acceptable: {_show(acceptable)}"
    for answer in acceptable:
        if answer == OMIT:
            continue
        ok = all(key in answer and (standardize(v) if type(v) is str else v) in _standardized_items(answer[key])
                 for key, v in value.items())
        ok = ok and all(key in value or OMIT in options for key, options in answer.items())
        if ok:
            return ""
    return error


def _list_dict_error(arg: str, value: list[Any], acceptable: list[Any]) -> str:
    for answer in acceptable:
        if len(value) == len(answer) and all(not _dict_error(arg, v, [a]) for v, a in zip(value, answer, strict=True)):
            return ""
    return f"argument {arg!r} is {_show(value)}; acceptable: {_show(acceptable)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "..."


# --- corrections ---------------------------------------------------------------------------------


def add_alternative(ws: Workspace, task_id: str, call: ToolCall, *, who: Identity) -> Task:
    """Accept a corrected call's values as alternatives in the task's reference, and store the task.

    The reference call of the same name takes each given value that is not acceptable yet; an argument
    the correction leaves out becomes optional ("" added); an argument the reference did not have is
    added as optional with the given value. A task without a reference first gets one from its expected
    call. `who` needs the edit_suite action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "edit_suite")
    task = ws.repo.get(Task, task_id)
    if task is None:
        raise ValueError(f"no task {task_id!r}")
    reference = reference_of(task).model_copy(deep=True)
    target = next((c for c in reference.calls if c.name == call.name), None)
    if target is None:
        names = ", ".join(c.name for c in reference.calls) or "no call"
        raise ValueError(f"task {task_id!r}: the reference has no call of {call.name!r} (it expects {names}); "
                         "an alternative adds values to a call the reference already makes")
    for arg, value in call.arguments.items():
        options = target.arguments.setdefault(arg, [OMIT])
        if not any(type(v) is type(value) and v == value for v in options):
            options.append(value)
    for arg, options in target.arguments.items():
        if arg not in call.arguments and OMIT not in options:
            options.append(OMIT)
    changed = task.model_copy(update={"reference": reference})
    ws.repo.put(changed)
    return changed
