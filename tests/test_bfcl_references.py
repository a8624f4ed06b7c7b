"""BFCL's rule on references (agentlearn.suites.references) against BFCL's own checker, and corrections.

tests/data/bfcl_answers.jsonl holds real answers of the embedded model to BFCL tasks (written once by
bench/bfcl_answers.py). Each is graded by references.grade and by bfcl-eval's ast_checker itself; the
verdicts must be equal. ast_checker's module imports bfcl_eval.constants.model_config, which imports
every vendor SDK bfcl-eval declares, for one lookup (whether a model's API renames `.` in function
names); the test puts a stand-in for that one module in place while the checker is imported (no
renaming), and everything else is the package's own code.
"""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from agentlearn.accounts import AccessDenied
from agentlearn.graders import score
from agentlearn.suites import bfcl, references
from agentlearn.tasks import import_suite
from storage.records import CallReference, Reference, Task, ToolCall, Trajectory
from tests.seed import ME

ANSWERS = Path(__file__).parent / "data" / "bfcl_answers.jsonl"
DATA = bfcl.data_dir()


@pytest.fixture(scope="module")
def official():
    """bfcl-eval's ast_checker and is_empty_output (the irrelevance rule)."""
    stand_in = types.ModuleType("bfcl_eval.constants.model_config")

    class NoRenaming(dict):
        def __missing__(self, key):
            return types.SimpleNamespace(underscore_to_dot=False)

    stand_in.MODEL_CONFIG_MAPPING = NoRenaming()
    saved = sys.modules.get(stand_in.__name__)
    sys.modules[stand_in.__name__] = stand_in
    try:
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    finally:
        if saved is None:
            del sys.modules[stand_in.__name__]
        else:
            sys.modules[stand_in.__name__] = saved
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.utils import is_empty_output
    return ast_checker, is_empty_output, Language


def _rows(folder: Path, category: str) -> dict[str, dict]:
    path = folder / f"BFCL_v4_{category}.json"
    return {o["id"]: o for o in map(json.loads, path.read_text().splitlines())}


def _task(draft) -> Task:
    return Task(id=f"t:{draft.sample_id}", suite="t", sample_id=draft.sample_id, split="heldout", input=draft.input,
                tools=draft.tools, expected=draft.expected, tags=draft.tags, reference=draft.reference)


def official_verdict(official, category: str, question: dict, answer: dict | None, calls: list[dict]) -> bool:
    ast_checker, is_empty_output, language = official
    model_output = [{c["name"]: c["arguments"]} for c in calls]
    if category in bfcl.NO_CALL:
        return is_empty_output(model_output)
    lang = {"java": language.JAVA, "javascript": language.JAVASCRIPT}.get(bfcl.language_of(category), language.PYTHON)
    try:
        return ast_checker(question["function"], model_output, answer["ground_truth"], lang, category, "m")["valid"]
    except (KeyError, TypeError, AttributeError, ValueError):  # BFCL's runner counts a checker error as wrong
        return False


def test_verdicts_equal_bfcl_checker_on_real_model_answers(official):
    rows = [json.loads(x) for x in ANSWERS.read_text().splitlines()]
    assert len(rows) >= 500
    by_category: dict[str, list[dict]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(row)
    assert set(by_category) == {"simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"}
    agree, disagreements, right = Counter(), [], Counter()
    for category, answers in by_category.items():
        questions = _rows(DATA, category)
        gold = {} if category in bfcl.NO_CALL else _rows(DATA / "possible_answer", category)
        drafts = {d.sample_id: d for d in bfcl.read(category)["drafts"]}
        for row in answers:
            calls = [ToolCall(name=c["name"], arguments=c["arguments"]) for c in row["calls"]]
            ours = references.grade(_task(drafts[row["id"]]), calls, row["output"]).success
            theirs = official_verdict(official, category, questions[row["id"]], gold.get(row["id"]), row["calls"])
            if ours == theirs:
                agree[category] += 1
                right[category] += ours
            else:
                disagreements.append(f"{row['id']} ({row['mode']}): ours {ours}, BFCL {theirs}: {row['calls']}")
    print("agreement per category:", dict(agree), "right per category:", dict(right))
    assert not disagreements, f"{len(disagreements)} disagreements:\n" + "\n".join(disagreements)
    assert sum(right.values()) and sum(right.values()) < len(rows)  # both outcomes are exercised


def _simple(draft_id: str) -> Task:
    drafts = {d.sample_id: d for d in bfcl.read("simple_python")["drafts"][:10]}
    return _task(drafts[draft_id])


def test_the_rule_case_by_case():
    triangle = _simple("simple_python_0")  # base [10], height [5], unit ["units", ""]
    ok = references.grade(triangle, [ToolCall(name="calculate_triangle_area",
                                              arguments={"base": 10, "height": 5, "unit": "Units"})])
    assert ok.success and ok.scores["call_match"] == 1.0 and ok.scores["name_match"] == 1.0
    assert {a.name: a.status for a in ok.arguments} == {"base": "right", "height": "right", "unit": "right"}
    left_out = references.grade(triangle, [ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5})])
    assert left_out.success  # "" among the values: may be left out
    wrong = references.grade(triangle, [ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 6})])
    assert not wrong.success and "height" in wrong.reason
    assert {a.name: a.status for a in wrong.arguments}["height"] == "wrong"
    assert wrong.scores["name_match"] == 1.0 and 0 < wrong.scores["args_score"] < 1
    extra = references.grade(triangle, [ToolCall(name="calculate_triangle_area",
                                                  arguments={"base": 10, "height": 5, "colour": "red"})])
    assert not extra.success and {a.name: a.status for a in extra.arguments}["colour"] == "unexpected"
    none = references.grade(triangle, [], "I cannot help.")
    assert not none.success and "no call made, 1 call expected" in none.reason
    # an int is fine for a float; a float-typed BFCL parameter is a JSON Schema number
    task = Task(id="f", suite="t", sample_id="f_1", split="heldout", input=[], expected=ToolCall(name="f"),
                tools=[{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}],
                reference=Reference(calls=[CallReference(name="f", arguments={"x": [2.0]})]))
    assert references.grade(task, [ToolCall(name="f", arguments={"x": 2})]).success
    assert not references.grade(task, [ToolCall(name="f", arguments={"x": "2"})]).success


def test_several_calls_in_any_order_and_no_call():
    tool = {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]}}
    task = Task(id="p", suite="t", sample_id="parallel_1", split="heldout", input=[], expected=ToolCall(name="weather"),
                tools=[tool], reference=Reference(calls=[CallReference(name="weather", arguments={"city": ["Paris"]}),
                                                         CallReference(name="weather", arguments={"city": ["Rome"]})]))
    rome, paris = ToolCall(name="weather", arguments={"city": "rome"}), ToolCall(name="weather", arguments={"city": "Paris"})
    both = references.grade(task, [rome, paris])
    assert both.success and [a.name for a in both.arguments] == ["weather[0].city", "weather[1].city"]
    assert score([Trajectory(task_id="p", suite="t", split="heldout", tool_call=rome, verdict=both)])[
        "per_argument"] == {"weather[0].city": [1, 1], "weather[1].city": [1, 1]}
    assert not references.grade(task, [rome, rome]).success
    assert not references.grade(task, [paris]).success
    nothing = task.model_copy(update={"reference": Reference(calls=[])})
    assert references.grade(nothing, [], "No tool fits.").success
    called = references.grade(nothing, [paris])
    assert not called.success and "no call is right" in called.reason


def test_add_alternative_makes_a_corrected_value_acceptable(ws):
    import_suite(ws, "simple_python", fmt="bfcl", who=ME)
    task = ws.repo.get(Task, "simple_python:simple_python_0")
    corrected = ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5, "unit": "cm"})
    assert not references.grade(task, [corrected]).success
    with pytest.raises(AccessDenied):
        references.add_alternative(ws, task.id, corrected, who=None)
    changed = references.add_alternative(ws, task.id, corrected, who=ME)
    stored = ws.repo.get(Task, task.id)
    assert stored.reference == changed.reference
    assert stored.reference.calls[0].arguments["unit"] == ["units", "", "cm"]
    assert references.grade(stored, [corrected]).success
    assert references.grade(stored, [ToolCall(name="calculate_triangle_area",
                                              arguments={"base": 10, "height": 5})]).success  # still optional
    assert stored.expected == task.expected  # the first alternative stays the expected call
    with pytest.raises(ValueError, match="has no call of 'other'"):
        references.add_alternative(ws, task.id, ToolCall(name="other"), who=ME)


def _mutated(rnd, value):
    if isinstance(value, bool):
        return rnd.choice([not value, "true", 1])
    if isinstance(value, (int, float)):
        return rnd.choice([float(value), value + 1, str(value), int(value)])
    if isinstance(value, str):
        return rnd.choice([value.upper(), value + " x", value.replace(" ", ""), 5, [value]])
    if isinstance(value, list):
        return rnd.choice([list(reversed(value)), value[:-1], value + value[:1], [str(x) for x in value], ""])
    if isinstance(value, dict):
        return rnd.choice([dict(list(value.items())[:-1]), {**value, "zz": 1}, json.dumps(value)])
    return value


@pytest.mark.parametrize("category", ["simple_java", "simple_javascript", "live_simple", "live_parallel_multiple"])
def test_verdicts_equal_bfcl_checker_on_varied_reference_answers(official, category):
    """The categories the model's answers do not cover (Java and JavaScript source text, live data): answers
    built from each task's acceptable values, some left out, changed, renamed, dropped or reordered (seeded)."""
    import random

    rnd = random.Random(category)
    questions, gold = _rows(DATA, category), _rows(DATA / "possible_answer", category)
    compared, right = 0, 0
    disagreements = []
    for draft in bfcl.read(category)["drafts"]:
        task = _task(draft)
        for _ in range(3):
            calls = []
            for ref in draft.reference.calls:
                args = {}
                for arg, acceptable in ref.arguments.items():
                    value = bfcl.first_value([rnd.choice(acceptable)]) if acceptable else ""
                    if value == "" and rnd.random() < 0.7:
                        continue
                    args[arg] = _mutated(rnd, value) if rnd.random() < 0.25 else value
                if args and rnd.random() < 0.1:
                    args.pop(rnd.choice(list(args)))
                calls.append({"name": ref.name if rnd.random() > 0.05 else "other", "arguments": args})
            rnd.shuffle(calls)
            ours = references.grade(task, [ToolCall(**c) for c in calls]).success
            theirs = official_verdict(official, category, questions[draft.sample_id], gold[draft.sample_id], calls)
            compared, right = compared + 1, right + ours
            if ours != theirs:
                disagreements.append(f"{draft.sample_id}: ours {ours}, BFCL {theirs}: {calls}")
    assert not disagreements, "\n".join(disagreements[:20])
    assert 0 < right < compared
