"""Corrections on real TinyDB files: checked against the tool schema, stored as their own record, and fed to
SFT (the task's answer), DPO (chosen over the run it corrects) and the exemplar bank."""

from __future__ import annotations

import json

import pytest

from agentlearn import datasets
from agentlearn.feedback import corrections
from agentlearn.feedback.corrections import CorrectionError
from storage.records import Correction, Exemplar, Task, ToolCall, Trajectory
from tests.seed import SUITE

FIX = ToolCall(name="reset_password", arguments={"username": "akhan", "delivery": "sms"})


def _rows(path: str) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_a_call_that_breaks_the_schema_is_refused_per_argument(seeded):
    task = seeded.repo.get(Task, f"{SUITE}:t0")
    with pytest.raises(CorrectionError) as e:
        corrections.check_call(task, ToolCall(name="reset_password", arguments={"delivery": 3}))
    assert e.value.problems == ["argument 'delivery': 3 is not of type 'string'", "argument 'username' is required"]
    with pytest.raises(CorrectionError, match="'send_mail' is not one of the task's tools"):
        corrections.check_call(task, ToolCall(name="send_mail"))
    with pytest.raises(CorrectionError) as e:  # the schema leaves additionalProperties unsaid
        corrections.check_call(task, ToolCall(name="reset_password", arguments={"username": "a", "user": "a"}))
    assert e.value.problems == ["argument 'user' is not one of the tool's parameters (username, delivery)"]
    open_tools = [{**t, "parameters": {**t["parameters"], "additionalProperties": True}} for t in task.tools]
    lenient = task.model_copy(update={"tools": open_tools})  # a schema that says it takes more is believed
    corrections.check_call(lenient, ToolCall(name="reset_password", arguments={"username": "a", "user": "a"}))
    before = seeded.repo.count(Correction)
    with pytest.raises(CorrectionError, match="'username' is required"):
        corrections.save(seeded, "tr0bad", "carol", ToolCall(name="reset_password", arguments={}))
    with pytest.raises(CorrectionError, match="author is empty"):
        corrections.save(seeded, "tr0bad", "  ", FIX)
    assert seeded.repo.count(Correction) == before  # nothing half-stored


def test_json_mode_says_what_is_wrong_and_where():
    with pytest.raises(CorrectionError, match="not valid JSON: Expecting ',' delimiter at line 2, column 3"):
        corrections.parse_call_json('{"name": "x"\n  "arguments": {}}')
    with pytest.raises(CorrectionError, match="'arguments' must be a JSON object, not list"):
        corrections.parse_call_json('{"name": "x", "arguments": []}')
    with pytest.raises(CorrectionError, match="keys other than name and arguments: args"):
        corrections.parse_call_json('{"name": "x", "args": {}}')
    assert corrections.parse_call_json('{"name": " x ", "arguments": {"a": [1]}}') == ToolCall(name="x",
                                                                                             arguments={"a": [1]})


def test_form_fields_are_typed_by_the_schema_and_read_back():
    task = Task(id="s:t", suite="s", sample_id="t", split="train", input=[], expected=FIX, tools=[{
        "name": "book", "parameters": {"type": "object", "required": ["room"], "properties": {
            "size": {"type": "integer"}, "room": {"type": "string", "description": "room code"},
            "mode": {"enum": ["a", "b"]}, "ok": {"type": "boolean"}, "tags": {"type": "array"}}}}])
    fields = corrections.form_fields(task, "book")
    assert [(f.name, f.widget, f.required) for f in fields] == [
        ("room", "text", True), ("size", "integer", False), ("mode", "choice", False), ("ok", "boolean", False),
        ("tags", "json", False)]
    assert fields[2].options == ("a", "b") and fields[0].description == "room code"
    run_call = ToolCall(name="book", arguments={"room": "R1", "tags": ["x"]})
    assert [corrections.form_value(f, run_call) for f in fields] == ["R1", None, None, None, '["x"]']
    args = corrections.arguments_from_form(fields, {"room": "R2", "size": 3.0, "mode": "b", "ok": None, "tags": ""})
    assert args == {"room": "R2", "size": 3, "mode": "b"}
    with pytest.raises(CorrectionError, match=r"argument 'tags': not valid JSON \(Expecting value at line 1"):
        corrections.arguments_from_form(fields, {"room": "R2", "tags": "[x"})


def test_a_correction_is_the_sft_answer_and_beats_the_run_in_dpo(seeded, tmp_path):
    fix = corrections.save(seeded, "tr0bad", "carol", FIX, note="she asked for a text")
    stored = seeded.repo.get(Correction, fix.id)
    assert (stored.author, stored.task_id, stored.suite, stored.call) == ("carol", f"{SUITE}:t0", SUITE, FIX)
    assert corrections.of_trajectory(seeded, "tr0bad") == [stored]
    # t0 has a successful run and a reference exemplar, but a person's correction wins over both.
    sft = datasets.export(seeded, "sft", SUITE, out_path=tmp_path / "sft.jsonl")
    answers = [r["messages"][-1]["content"] for r in _rows(sft.path)]
    assert sum(json.dumps(FIX.arguments)[1:-1] in a for a in answers) == 1
    assert sft.correction_ids == [fix.id] and "tr0bad" in sft.trajectory_ids
    dpo = datasets.export(seeded, "dpo", SUITE, out_path=tmp_path / "dpo.jsonl")
    original = seeded.repo.get(Trajectory, "tr0bad").output
    pairs = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in _rows(dpo.path)]
    assert [p for p in pairs if p[1] == original and '"sms"' in p[0]]
    assert dpo.correction_ids == [fix.id]
    # A newer correction of the same task replaces the older one as the SFT answer.
    newer = corrections.save(seeded, "tr0ok", "dave", ToolCall(name="reset_password", arguments={"username": "akhan"}))
    assert corrections.latest_by_task(seeded)[f"{SUITE}:t0"].id == newer.id
    again = datasets.export(seeded, "sft", SUITE, out_path=tmp_path / "sft2.jsonl")
    assert again.correction_ids == [newer.id]


def test_a_train_correction_becomes_a_manual_exemplar_and_a_heldout_one_does_not(seeded):
    fix = corrections.save(seeded, "tr0bad", "carol", FIX)
    ex = corrections.to_exemplar(seeded, fix.id)
    stored = seeded.repo.get(Exemplar, ex.id)
    assert (stored.kind, stored.suite, stored.call, stored.trajectory_id, stored.active) == (
        "manual", SUITE, FIX, "tr0bad", True)
    heldout = corrections.save(seeded, "tr1bad", "carol", ToolCall(name="create_ticket",
                                                                   arguments={"title": "printer jam"}))
    with pytest.raises(CorrectionError, match="held out for evaluation"):
        corrections.to_exemplar(seeded, heldout.id)
