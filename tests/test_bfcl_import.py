"""BFCL categories imported from the installed bfcl-eval package data (agentlearn.suites.bfcl, tasks.FORMATS)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from agentlearn import tasks
from agentlearn.cli import main
from agentlearn.suites import bfcl
from storage.records import Exemplar, Suite, Task, ToolCall
from tests.seed import ME

DATA = bfcl.data_dir()


def lines_of(category: str, folder: Path = DATA) -> list[dict]:
    return [json.loads(x) for x in (folder / f"BFCL_v4_{category}.json").read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("category", bfcl.SINGLE_TURN)
def test_every_single_turn_category_reads_all_its_lines(category):
    read = bfcl.read(category)
    questions = lines_of(category)
    assert [d.sample_id for d in read["drafts"]] == [q["id"] for q in questions]
    answers = {} if category in bfcl.NO_CALL else \
        {a["id"]: a["ground_truth"] for a in lines_of(category, DATA / "possible_answer")}
    for draft, q in zip(read["drafts"], questions, strict=True):
        assert [t["name"] for t in draft.tools] == [f["name"] for f in q["function"]]
        assert draft.tags == [category]
        if category in bfcl.NO_CALL:
            assert draft.reference.calls == [] and draft.expected == ToolCall(name="")
        else:
            assert [{c.name: c.arguments} for c in draft.reference.calls] == answers[q["id"]]
            assert draft.expected.name == draft.reference.calls[0].name
    assert read["max_steps"] == 1


def test_import_stores_tasks_references_and_converted_schemas(ws):
    suite = tasks.import_suite(ws, "simple_python", heldout=0.5, fmt="bfcl", who=ME)
    assert suite.name == "simple_python" and suite.max_calls == 1
    stored = tasks.load_tasks(ws, "simple_python")
    assert len(stored) == len(lines_of("simple_python"))
    first = ws.repo.get(Task, "simple_python:simple_python_0")
    props = first.tools[0]["parameters"]
    assert props["type"] == "object" and props["properties"]["base"]["type"] == "integer"
    # "unit": ["units", ""]: either value, or left out; expected takes the first acceptable value
    assert first.reference.calls[0].arguments["unit"] == ["units", ""]
    assert first.expected == ToolCall(name="calculate_triangle_area",
                                      arguments={"base": 10, "height": 5, "unit": "units"})
    hypot = ws.repo.get(Task, "simple_python:simple_python_2")  # "z": ["", 0]: first value is "leave it out"
    assert "z" not in hypot.expected.arguments
    floats = [t for t in stored if any(p.get("type") == "number" for p in
                                       t.tools[0]["parameters"]["properties"].values())]
    assert floats  # BFCL "float" became JSON Schema "number"
    assert not any('"type": "dict"' in json.dumps(t.tools) or '"type": "float"' in json.dumps(t.tools) for t in stored)
    train = [t for t in stored if t.split == "train"]
    assert ws.repo.count(Exemplar) == len(train) > 0


def test_parallel_has_several_calls_and_irrelevance_none(ws):
    par = tasks.import_suite(ws, "parallel", fmt="bfcl", who=ME)
    several = [t for t in tasks.load_tasks(ws, "parallel") if len(t.reference.calls) > 1]
    assert several and par.max_calls == max(len(t.reference.calls) for t in tasks.load_tasks(ws, "parallel")) > 1
    suite = tasks.import_suite(ws, "irrelevance", fmt="bfcl", who=ME)
    assert "" not in suite.arg_kinds  # no-call tasks add no nameless tool to the argument kinds
    irrelevant = tasks.load_tasks(ws, "irrelevance")
    assert len(irrelevant) == len(lines_of("irrelevance"))
    assert all(t.reference is not None and t.reference.calls == [] and t.expected.name == "" for t in irrelevant)
    assert not ws.repo.find(Exemplar, suite="irrelevance")  # no call to show as an example
    assert suite.may_decline and not par.may_decline  # only a suite with no-call answers lets the agent decline


def test_miss_func_holds_functions_back_until_their_turn(ws):
    tasks.import_suite(ws, "multi_turn_miss_func", fmt="bfcl", who=ME)
    line = lines_of("multi_turn_miss_func")[0]
    task = ws.repo.get(Task, f"multi_turn_miss_func:{line['id']}")
    (turn, names), = line["missed_function"].items()
    assert task.held_back == {int(turn): names} and line["question"][int(turn)] == []
    assert task.turns[int(turn) - 1][0].content == bfcl.TOOLS_ADDED_PROMPT
    offered_first = {t["name"] for t in tasks.tools_at(task, 0)}
    assert not offered_first & set(names) and set(names) <= {t["name"] for t in tasks.tools_at(task, int(turn))}
    assert all(t.held_back for t in tasks.load_tasks(ws, "multi_turn_miss_func"))


def test_a_missed_function_that_no_class_offers_is_refused_with_its_line(tmp_path, ws):
    lines = lines_of("multi_turn_miss_func")[:2]
    lines[1]["missed_function"] = {"1": ["no_such_function"]}
    questions = tmp_path / "BFCL_v4_multi_turn_miss_func.json"
    questions.write_text("".join(json.dumps(x) + "\n" for x in lines))
    answers = DATA / "possible_answer" / "BFCL_v4_multi_turn_miss_func.json"
    with pytest.raises(ValueError, match=r"line 2.*'no_such_function', which none of the line's classes offers"):
        tasks.import_suite(ws, str(questions), fmt="bfcl", answers=str(answers), who=ME)
    assert not tasks.suites(ws)


def test_java_keeps_bfcl_types_for_the_checker(ws):
    tasks.import_suite(ws, "simple_java", fmt="bfcl", who=ME)
    task = ws.repo.get(Task, "simple_java:simple_java_0")
    controller = task.tools[0]["parameters"]["properties"]["controller"]
    assert controller["type"] == "string" and controller["x-bfcl-type"] == "any"
    assert "Java" in controller["description"]  # BFCL's own pre-processing wrote the hint


def test_reimport_updates_in_place_and_keeps_people_settings(ws):
    tasks.import_suite(ws, "live_parallel", fmt="bfcl", who=ME)
    before = {t.id: t.created for t in tasks.load_tasks(ws, "live_parallel")}
    suite = ws.repo.get(Suite, "live_parallel")
    ws.repo.put(suite.model_copy(update={"guidelines": "check units"}))
    tasks.import_suite(ws, "live_parallel", fmt="bfcl", who=ME)
    after = {t.id: t.created for t in tasks.load_tasks(ws, "live_parallel")}
    assert after == before and ws.repo.get(Suite, "live_parallel").guidelines == "check units"


def _copy(tmp_path: Path, category: str, rows: list[dict] | None = None) -> Path:
    """A question file and its possible_answer/ beside it, laid out as BFCL lays them out."""
    (tmp_path / "possible_answer").mkdir(exist_ok=True)
    q = tmp_path / f"BFCL_v4_{category}.json"
    q.write_text("".join(json.dumps(r) + "\n" for r in rows or lines_of(category)))
    (tmp_path / "possible_answer" / q.name).write_text((DATA / "possible_answer" / q.name).read_text())
    return q


def test_bad_files_are_refused_with_file_and_line_and_nothing_is_stored(ws, tmp_path):
    rows = lines_of("live_parallel")
    for key, value in (("module", "os"), ("command", "rm -rf /"), ("bindings", [{"kind": "python"}])):
        bad = [dict(r) for r in rows]
        bad[3][key] = value
        path = _copy(tmp_path, "live_parallel", bad)
        with pytest.raises(ValueError, match=rf"{path}, line 4: the task names code to run \('{key}'\)"):
            tasks.import_suite(ws, path, "mine", fmt="bfcl", who=ME)
    bad = [dict(r) for r in rows]
    bad[5]["function"] = [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "Colour"}}}}]
    path = _copy(tmp_path, "live_parallel", bad)
    with pytest.raises(ValueError, match=rf"{path}, line 6: function 'f': properties\.x\.type: unknown type"):
        tasks.import_suite(ws, path, "mine", fmt="bfcl", who=ME)
    path = _copy(tmp_path, "live_parallel", rows)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=rf"{path}, line {len(rows) + 1}: invalid JSON"):
        tasks.import_suite(ws, path, "mine", fmt="bfcl", who=ME)
    assert ws.repo.count(Task) == 0 and ws.repo.count(Suite) == 0


def test_a_file_with_its_answers_imports_like_the_category(ws, tmp_path):
    path = _copy(tmp_path, "live_parallel_multiple")
    tasks.import_suite(ws, path, fmt="bfcl", who=ME)  # answers found in possible_answer/ beside it
    assert len(tasks.load_tasks(ws, "live_parallel_multiple")) == len(lines_of("live_parallel_multiple"))
    (tmp_path / "possible_answer" / path.name).unlink()
    with pytest.raises(ValueError, match=rf"{path}, line 1: no answer for 'live_parallel_multiple_0-0-0'"):
        tasks.import_suite(ws, path, "other", fmt="bfcl", who=ME)


def test_command_line_imports_a_category(tmp_path, capsys):
    assert main(["tasks", "import", "--format", "bfcl", "live_parallel", "--suite", "lp", "--heldout", "0.25"]) == 0
    assert "imported 16 tasks into suite 'lp'" in capsys.readouterr().out
    assert main(["tasks", "import", "--format", "bfcl", "no_such_category"]) == 2
    assert "neither a file nor a BFCL category" in capsys.readouterr().err


def test_multi_turn_import_fills_turns_environment_and_tools(ws):
    """What the reader does with a multi-turn line, with the real call reader (multi_turn.parse_calls)."""
    from agentlearn.suites.multi_turn import parse_calls

    suite = tasks.import_suite(ws, "multi_turn_base", fmt="bfcl", who=ME)
    assert suite.max_steps == bfcl.MULTI_TURN_STEPS and suite.max_calls > 1
    question = lines_of("multi_turn_base")[0]
    gold = lines_of("multi_turn_base", DATA / "possible_answer")[0]["ground_truth"]
    task = ws.repo.get(Task, "multi_turn_base:multi_turn_base_0")
    assert [m.content for m in task.input] == [m["content"] for m in question["question"][0]]
    assert [[m.content for m in turn] for turn in task.turns] == [[m["content"] for m in t]
                                                                  for t in question["question"][1:]]
    assert task.turn_calls == [[c for text in turn for c in parse_calls(text)] for turn in gold]
    assert task.turn_calls[0][:2] == [ToolCall(name="cd", arguments={"folder": "document"}),
                                      ToolCall(name="mkdir", arguments={"dir_name": "temp"})]
    assert task.turn_calls[2] == [ToolCall(name="sort", arguments={"file_name": "final_report.pdf"})]  # positional
    assert set(task.environment) == set(question["involved_classes"])
    assert task.environment["GorillaFileSystem"] == question["initial_config"]["GorillaFileSystem"]
    names = {t["name"] for t in task.tools}
    assert {"cd", "mv", "post_tweet"} <= names and not names & set(question["excluded_function"])
    assert task.expected.name == "cd" and task.reference is None
    assert len(tasks.load_tasks(ws, "multi_turn_base")) == 200


def test_multi_turn_names_only_the_package_environments(ws, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "agentlearn.suites.multi_turn",
                        types.SimpleNamespace(parse_calls=lambda text: [ToolCall(name="cd")]))
    rows = lines_of("multi_turn_base")[:3]
    rows[1]["involved_classes"] = ["GorillaFileSystem", "os.system"]
    path = _copy(tmp_path, "multi_turn_base", rows)
    with pytest.raises(ValueError, match=rf"{path}, line 2: unknown environment class 'os.system'"):
        tasks.import_suite(ws, path, "mt", fmt="bfcl", who=ME)
    assert ws.repo.count(Task) == 0



def test_an_answer_of_several_calls_is_shown_and_trained_on_whole(ws):
    """A parallel task's exemplar and SFT rows carry every call, not only the first (a shot of one call for a
    request of three taught the model to make one)."""
    from agentlearn import datasets, prompts
    from agentlearn.toolcall import parse_tool_calls

    tasks.import_suite(ws, "parallel", heldout=0.0, fmt="bfcl", who=ME)
    train = {t.id: t for t in tasks.load_tasks(ws, "parallel", "train")}
    task = next(t for t in train.values() if len(t.reference.calls) == 3)
    [shot] = [e for e in ws.repo.find(Exemplar, suite="parallel") if e.task_id == task.id]
    assert [c.name for c in shot.answer_calls()] == [c.name for c in task.reference.calls]
    assert shot.answer_calls() == bfcl.expected_calls(task.reference) and shot.call == task.expected
    prompt = prompts.build_prompt(task, [shot])
    assert len(parse_tool_calls(prompt[-2].content).calls) == 3 and prompt[-2].role == "assistant"
    rows = {json.dumps(r["messages"][-2]["content"]): r for r in datasets.sft_rows(ws, train).rows}
    row = rows[json.dumps(task.input[0].content)]
    assert len(parse_tool_calls(row["messages"][-1]["content"]).calls) == 3
    openai = [r for r in datasets.openai_sft_rows(ws, train).rows if r["messages"][0]["content"] == task.input[0].content]
    assert len(openai[0]["messages"][-1]["tool_calls"]) == 3
    single = tasks.import_suite(ws, "simple_python", heldout=0.0, fmt="bfcl", who=ME)
    assert all(e.calls == [] for e in ws.repo.find(Exemplar, suite=single.name))  # one call: `call` alone
