"""Evaluating a BFCL suite: the agent's verify step grades by BFCL's rule (graders.grade_task), and the
evaluation reports call accuracy by that rule, name accuracy and per-argument figures."""

from __future__ import annotations

from agentlearn.agent import run_task
from agentlearn.evaluate import evaluate, summary
from agentlearn.methods import RunOptions
from agentlearn.tasks import import_suite, load_tasks
from agentlearn.toolcall import format_tool_call, format_tool_calls, parse_tool_calls, without_repeats
from storage.records import ToolCall, Trajectory
from tests.seed import ME


def test_eval_on_a_bfcl_suite_reports_call_accuracy_by_bfcls_rule(ws, make_fake_chat):
    import_suite(ws, "simple_python", heldout=1.0, fmt="bfcl", who=ME)
    ws.chat_factory = make_fake_chat([
        # simple_python_0: "unit" may be left out (["units", ""]): right by BFCL's rule
        format_tool_call(ToolCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5})),
        # simple_python_1: 5.0 for an integer is a type error for BFCL (a kind-aware match would take it)
        format_tool_call(ToolCall(name="math.factorial", arguments={"number": 5.0})),
        # simple_python_2: "z": ["", 0] left out, and the right values
        format_tool_call(ToolCall(name="math.hypot", arguments={"x": 4, "y": 5})),
    ])
    run = evaluate(ws, "simple_python", RunOptions(method="none", limit=3, constrained=False))
    assert run.n == 3 and run.name_accuracy == 1.0
    assert abs(run.call_accuracy - 2 / 3) < 1e-9
    assert run.per_argument["math.factorial.number"] == [0, 1]
    assert run.per_argument["calculate_triangle_area.base"] == [1, 1]
    verdicts = {t.task_id: t.verdict for t in ws.repo.all(Trajectory)}
    assert "has type float, expected integer" in verdicts["simple_python:simple_python_1"].reason
    out = summary(ws, [run])
    assert out["call_rule"] == "bfcl" and out["call_accuracy"] == run.call_accuracy
    assert "BFCL's rule" in out["lines"][0]


def test_a_suite_with_no_call_answers_may_be_answered_in_words(ws, make_fake_chat):
    suite = import_suite(ws, "irrelevance", heldout=1.0, fmt="bfcl", who=ME)
    assert suite.may_decline
    ws.chat_factory = make_fake_chat([
        "None of these functions can answer that: it needs a calculator I was not given.",
        format_tool_call(ToolCall(name="determine_body_mass_index", arguments={"weight": 70, "height": 1.75})),
    ])
    run = evaluate(ws, "irrelevance", RunOptions(method="none", limit=2, constrained=False))
    assert run.n == 2 and abs(run.call_accuracy - 1 / 2) < 1e-9  # the words are right, the call is not
    prompt = next(iter(ws.repo.all(Trajectory))).prompt[0].content
    assert "If none of them does, do not call a tool" in prompt


def test_the_embedded_model_declines_under_the_grammar_when_the_suite_allows_it(real_ws):
    """The real model and grammar: one-answer tasks of an irrelevance suite get words, not a forced call
    (before the suite could decline, the single-call grammar made every answer a call: 0% by construction)."""
    import_suite(real_ws, "irrelevance", heldout=1.0, fmt="bfcl", who=ME)
    run = evaluate(real_ws, "irrelevance", RunOptions(method="none", limit=2))
    assert run.constrained and run.n == 2
    outputs = [t.output for t in real_ws.repo.all(Trajectory)]
    assert all("<tool_call>" not in o and o.strip() for o in outputs), outputs
    assert run.call_accuracy == 1.0


def test_the_embedded_model_calls_on_a_parallel_suite_whose_requests_all_need_calls(real_ws):
    """The real model and grammar: a one-answer task of several calls gets calls, never words (offered words
    as well, the 135M model answered all 20 BFCL parallel tasks it was measured on in prose: 0%)."""
    suite = import_suite(real_ws, "parallel", heldout=1.0, fmt="bfcl", who=ME)
    assert suite.max_calls > 1 and not suite.may_decline
    run = evaluate(real_ws, "parallel", RunOptions(method="none", limit=2))
    assert run.constrained and run.n == 2
    trajectories = list(real_ws.repo.all(Trajectory))
    assert all(t.output.startswith("<tool_call>") and t.tool_calls for t in trajectories), [t.output for t in trajectories]
    assert f"Answer with at most {suite.max_calls} calls" in trajectories[0].prompt[0].content
    # An answer ends at its first repeated call, which is not kept (13 of 20 answers used to repeat one call
    # up to the 8 allowed).
    assert all(len(parse_tool_calls(t.output).calls) <= len(t.tool_calls) + 1 for t in trajectories)
    assert all(len(without_repeats(t.tool_calls)) == len(t.tool_calls) for t in trajectories)


def test_answers_are_read_as_the_tools_mean_them(ws, make_fake_chat):
    """BFCL's checker refuses an int inside a list of floats and a percentage for a rate; an answer's repeat of a
    call is the model looping; an optional value the request does not state is made up."""
    import_suite(ws, "simple_python", heldout=0.5, fmt="bfcl", who=ME)  # its train split sets the optional rule
    import_suite(ws, "parallel", heldout=1.0, fmt="bfcl", who=ME)
    area = next(t for t in load_tasks(ws, "simple_python") if t.id.endswith("simple_python_13"))
    interest = next(t for t in load_tasks(ws, "simple_python") if t.id.endswith("simple_python_145"))
    parallel = load_tasks(ws, "parallel")[0]
    calls = parallel.reference.calls
    ws.chat_factory = make_fake_chat([
        format_tool_call(ToolCall(name="calculate_area_under_curve",
                                  arguments={"function": "x**2", "interval": [1, 3]})),
        format_tool_calls([ToolCall(name=c.name, arguments={k: v[0] for k, v in c.arguments.items() if v[0] != ""})
                           for c in [*calls, calls[0]]]),
        # "annual interest rate of 5%" written as 5.0 where BFCL expects 0.05; "Monthly" is not in the request
        format_tool_call(ToolCall(name="calculate_compounded_interest", arguments={
            "principal": 5000, "interest_rate": 5.0, "period": 10, "compounding_frequency": "Monthly"})),
    ])
    [first] = run_task(ws, area, RunOptions(method="none", constrained=False))
    assert first.tool_call.arguments["interval"] == [1.0, 3.0] and first.verdict.success, first.verdict.reason
    [second] = run_task(ws, parallel, RunOptions(method="none", constrained=False))
    assert len(second.tool_calls) == len(calls) and second.verdict.success, second.verdict.reason
    [third] = run_task(ws, interest, RunOptions(method="none", constrained=False))
    assert third.tool_call.arguments == {"principal": 5000, "interest_rate": 0.05, "period": 10}, third.verdict.reason
    assert third.verdict.success
