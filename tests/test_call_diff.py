"""The reference beside the answer: per-argument rows and the grader's sentence, on real TinyDB files."""

from __future__ import annotations

from agentlearn.feedback import call_diff
from storage.records import ArgGrade, Message, Suite, Task, ToolCall, Trajectory, Verdict

TOOLS = [{"name": "open_ticket", "parameters": {"type": "object", "properties": {
    "user": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "high"]},
    "reason": {"type": "string"}}, "required": ["user"]}}]
EXPECTED = ToolCall(name="open_ticket", arguments={"user": "akhan", "priority": "high",
                                                   "reason": "laptop screen is broken after a fall"})


def _task() -> Task:
    return Task(id="s:t0", suite="s", sample_id="t0", split="train", tools=TOOLS, expected=EXPECTED,
                input=[Message(role="user", content="akhan dropped the laptop, screen broken, urgent")])


def _run(call: ToolCall | None, verdict: Verdict | None = None) -> Trajectory:
    return Trajectory(task_id="s:t0", suite="s", split="train", tool_call=call, verdict=verdict)


def test_graded_now_under_the_suites_kinds(ws):
    ws.repo.put(Suite(id="s", name="s", tools=TOOLS,
                      arg_kinds={"open_ticket": {"user": "extractive", "priority": "categorical",
                                                 "reason": "free_text"}}))
    task = ws.repo.put(_task())
    run = ws.repo.put(_run(ToolCall(name="open_ticket", arguments={
        "user": "akhan", "priority": "low", "reason": "the laptop screen is broken", "site": "B2"})))
    d = call_diff.diff_for(ws, ws.repo.get(Task, task.id), ws.repo.get(Trajectory, run.id))
    assert d.graded_now and d.name_right
    rows = {r["argument"]: r for r in d.rows()}
    assert [rows[a]["status"] for a in ("user", "priority", "reason", "site")] == ["right", "wrong", "right",
                                                                                 "unexpected"]
    assert rows["priority"]["kind"] == "categorical" and rows["reason"]["kind"] == "free_text"
    assert rows["site"]["expected"] == "" and rows["site"]["got"] == "B2"
    assert d.summary.startswith("Right tool; 2 of 4 arguments right")
    assert "`reason` is free text, similarity 0.67 (needs 0.50)" in d.summary
    assert "`priority` is wrong" in d.summary and "`site` was not expected" in d.summary
    assert list(d.table().columns) == list(call_diff.COLUMNS)
    assert call_diff.status_counts(d) == {"right": 2, "wrong": 1, "missing": 0, "unexpected": 1}


def test_stored_grades_win_and_a_missing_argument_is_named(ws):
    stored = [ArgGrade(name="user", kind="extractive", status="right", score=1.0, expected="akhan", got="akhan"),
              ArgGrade(name="priority", kind="categorical", status="missing", score=0.0, expected="high")]
    run = _run(ToolCall(name="open_ticket", arguments={"user": "akhan"}),
               Verdict(success=False, reward=0.4, reason="x", arguments=stored))
    d = call_diff.diff(_task(), run)
    assert not d.graded_now
    assert [r["status"] for r in d.rows()] == ["right", "missing"]
    assert d.rows()[1]["got"] == ""
    assert d.summary == "Right tool; 1 of 2 arguments right; `priority` is missing; verifier: fail, reward 0.40"


def test_wrong_tool_and_no_call_say_so():
    d = call_diff.diff(_task(), _run(ToolCall(name="close_ticket", arguments={"user": "akhan"})))
    assert not d.name_right
    assert d.summary.startswith("Wrong tool: called `close_ticket`, expected `open_ticket`")
    none = call_diff.diff(_task(), _run(None, Verdict(success=False, reward=0.0, reason="no call")))
    assert none.grades == [] and none.table().empty
    assert none.summary == "No tool call could be read from the output; verifier: fail, reward 0.00"
