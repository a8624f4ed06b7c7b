"""The agent graph: prompt building, verification, storage of trials, Reflexion retries, real model."""

from __future__ import annotations

import json

import pytest

from agentlearn import prompts
from agentlearn.agent import RunOptions, reference_calls, run_task, run_tasks, token_budget
from agentlearn.memory import insights
from agentlearn.prompts import build_prompt, system_prompt
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
from agentlearn.toolcall import format_tool_call
from storage.records import Reflection, Suite, Trajectory
from tests.seed import as_


def _right(task) -> str:
    return format_tool_call(task.expected)


def test_system_prompt_lists_every_tool_with_its_arguments(ws):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    text = system_prompt(prompts.DEFAULT_INSTRUCTION, task.tools)
    for tool in task.tools:
        assert f"- {tool['name']}(" in text
        for arg in tool["parameters"].get("properties", {}):
            assert arg in text


def test_a_correct_call_is_verified_and_stored_with_its_prompt(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    ws.chat_factory = make_fake_chat([_right(task)])
    [t] = run_task(ws, task)
    stored = ws.repo.get(Trajectory, t.id)
    assert stored.verdict.success and stored.tool_call == task.expected
    assert stored.prompt[0].role == "system" and stored.prompt[-1].role == "user"
    assert "accepted the arguments" in stored.steps[0].observation
    assert stored.memory.method == "none" and stored.memory.exemplar_ids == []


def test_a_wrong_tool_fails_with_a_reason(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    ws.chat_factory = make_fake_chat(['<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'])
    [t] = run_task(ws, task)
    assert not t.verdict.success and t.verdict.reason
    assert "unknown tool 'no_such_tool'" in t.steps[0].observation


def test_exemplars_are_given_as_turns_and_recorded(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    ws.chat_factory = make_fake_chat([_right(task)])
    [t] = run_task(ws, task, method="exemplars", k=3, exemplar_mode="bm25")
    assert len(t.memory.exemplar_ids) == 3 and t.memory.exemplar_mode == "bm25"
    tool_turns = [m for m in t.prompt if m.role == "assistant" and m.content.startswith("<tool_call>")]
    assert len(tool_turns) == 3


def test_reflexion_retries_after_failure_and_feeds_the_reflection(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "train")[0]
    wrong = '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'
    factory = make_fake_chat([wrong, "Call the tool that matches the request.", _right(task)])
    ws.chat_factory = factory
    trials = run_task(ws, task, method="reflexion", trials=3)
    assert [t.trial for t in trials] == [0, 1]
    assert not trials[0].verdict.success and trials[1].verdict.success
    assert len({t.episode_id for t in trials}) == 1
    assert trials[1].memory.reflections == ["Call the tool that matches the request."]
    assert "Call the tool that matches the request." in trials[1].prompt[0].content
    assert len(ws.repo.find(Reflection, task_id=task.id)) == 1


def test_reflexion_stops_after_the_last_trial(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "train")[0]
    ws.chat_factory = make_fake_chat(["nothing useful"])
    trials = run_task(ws, task, method="reflexion", trials=3)
    assert len(trials) == 3 and not any(t.verdict.success for t in trials)
    assert len(ws.repo.find(Reflection, task_id=task.id)) == 2  # none after the last trial


def test_active_insights_go_into_the_prompt(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    rule = insights.add_manual(ws, DEMO_SUITE, "Always copy the username exactly as written.", who=as_("tester"))
    ws.chat_factory = make_fake_chat([_right(task)])
    [t] = run_task(ws, task, method="insights")
    assert t.memory.insight_ids == [rule.id] and t.memory.insights_version > 0
    assert "Always copy the username exactly as written." in t.prompt[0].content


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        RunOptions(method="magic")


def test_a_multi_turn_conversation_becomes_one_transcript_turn(ws):
    ensure_demo_suite(ws)
    multi = [t for t in load_tasks(ws, DEMO_SUITE) if any(m.role == "technician" for m in t.input)]
    assert multi, "the demo suite has multi-turn tasks with a technician"
    prompt = build_prompt(multi[0], [])
    assert [m.role for m in prompt] == ["system", "user"]
    assert "Technician: " in prompt[1].content and "User: " in prompt[1].content


def test_the_suite_instruction_replaces_the_default_and_names_no_domain(ws, make_fake_chat):
    ensure_demo_suite(ws)
    assert "help desk" not in prompts.DEFAULT_INSTRUCTION.lower()
    suite = ws.repo.get(Suite, DEMO_SUITE)
    ws.repo.put(suite.model_copy(update={"instruction": "You route warehouse requests."}))
    task = load_tasks(ws, DEMO_SUITE, "heldout")[0]
    ws.chat_factory = make_fake_chat([_right(task)])
    [t] = run_task(ws, task)
    assert t.prompt[0].content.startswith("You route warehouse requests.")
    assert "<tool_call>" in t.prompt[0].content  # the output format is always stated


def test_many_tasks_run_as_one_batch_and_each_reports_progress(ws, make_fake_chat):
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:5]
    ws.chat_factory = make_fake_chat([_right(t) for t in tasks])
    seen = []
    runs = run_tasks(ws, tasks, RunOptions(), progress=lambda i, n, trials, s: seen.append((i, n)))
    assert seen == [(i, 5) for i in range(1, 6)]
    assert [r[0].task_id for r in runs] == [t.id for t in tasks]
    assert all(r[0].verdict.success for r in runs)  # answers came back in task order


def test_each_answer_is_reported_inside_its_batch(ws, make_fake_chat):
    """An agent run on 17 tasks showed nothing for 210 s: the batch was the unit of progress."""
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:5]
    ws.chat_factory = make_fake_chat([_right(t) for t in tasks])
    seen = []
    run_tasks(ws, tasks, RunOptions(), progress=lambda i, n, trials, s: seen.append(("stored", i)),
              answered=lambda a, n, message: seen.append(("answered", a, n, message)))
    assert seen[0] == ("answered", 0, 5, "answering 5 tasks")  # before the first answer: the total, and what runs
    assert seen[1:6] == [("answered", a, 5, "") for a in range(1, 6)]  # before the batch was stored
    assert seen[6:] == [("stored", i) for i in range(1, 6)]


def test_reflexion_retries_only_the_failed_tasks_together(ws, make_fake_chat):
    ensure_demo_suite(ws)
    a, b = load_tasks(ws, DEMO_SUITE, "train")[:2]
    wrong = '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'
    # trial 0: a right, b wrong; b's reflection; trial 1: b right
    ws.chat_factory = make_fake_chat([_right(a), wrong, "Use the tool the user asks for.", _right(b)])
    runs = run_tasks(ws, [a, b], RunOptions(method="reflexion", trials=3))
    assert [len(r) for r in runs] == [1, 2]
    assert runs[1][1].verdict.success and runs[1][1].memory.reflections == ["Use the tool the user asks for."]


def test_store_false_returns_trajectories_without_writing_them(ws, make_fake_chat):
    ensure_demo_suite(ws)
    task = load_tasks(ws, DEMO_SUITE, "train")[0]
    ws.chat_factory = make_fake_chat([_right(task)])
    [[t]] = run_tasks(ws, [task], RunOptions(store=False))
    assert t.verdict.success and ws.repo.get(Trajectory, t.id) is None


def test_the_token_budget_follows_the_longest_reference_call(ws):
    ensure_demo_suite(ws)
    longest = max(len(format_tool_call(t.expected)) for t in load_tasks(ws, DEMO_SUITE, "train"))
    budget = token_budget(ws, DEMO_SUITE, cap=512)
    from agentlearn import grammar
    from agentlearn.agent import reference_calls

    runaway = max(v for k, v in grammar.value_limits(reference_calls(ws, DEMO_SUITE)).items() if not k.endswith("[]"))
    # tokens, not characters (several characters a token), plus room for one string run to its bound
    assert longest / 4 < budget - runaway < longest
    assert token_budget(ws, DEMO_SUITE, cap=40) == 40


@pytest.mark.slow
def test_batched_greedy_generation_matches_sequential_on_the_real_model(real_ws, monkeypatch):
    """The batched path (left padding, one forward pass a step) gives the sequential answers."""
    from agentlearn.llm import LocalChatModel
    from agentlearn.models import chat_model_dir

    ws = real_ws
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:8]
    chats = [[m.model_dump() for m in build_prompt(t, [])] for t in tasks]
    from agentlearn import grammar

    limits = grammar.value_limits(reference_calls(ws, DEMO_SUITE))
    tools = [grammar.with_value_limits(t.tools, limits) for t in tasks]  # as the agent bounds them
    model_dir = str(chat_model_dir(ws.settings.models_dir))
    budget = token_budget(ws, DEMO_SUITE, cap=512)  # room for the suite's longest call: none is cut off
    one = LocalChatModel(model_dir=model_dir, batch_size=1).complete(chats, tools=tools, max_new_tokens=budget)
    from agentlearn import llm

    ended, inside = [], []
    rest = llm._RowsEnded.rest
    monkeypatch.setattr(llm._RowsEnded, "rest", lambda self, rows: (inside.append(len(self.seen)), rest(self, rows)))
    many = LocalChatModel(model_dir=model_dir, batch_size=8).complete(chats, tools=tools, max_new_tokens=budget,
                                                                      on_row=ended.append)
    assert sorted(ended) == list(range(8))  # every answer reported once
    assert inside[0] >= 1  # rows that ended while the batch was still generating were reported then
    same = sum(a == b for a, b in zip(one, many, strict=True))
    assert same >= 7, [(a, b) for a, b in zip(one, many, strict=True) if a != b]
    # Under the grammar every answer is one call of an offered tool.
    names = {t["name"] for t in tools[0]}
    assert all(prompts_parse(a) in names for a in many), many


def prompts_parse(text: str) -> str:
    from agentlearn.toolcall import parse_tool_call

    parsed = parse_tool_call(text)
    return parsed.call.name if parsed.call else ""


@pytest.mark.slow
def test_the_real_embedded_model_runs_tasks_with_exemplars(real_ws):
    ws = real_ws
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:4]
    runs = run_tasks(ws, tasks, RunOptions(method="exemplars", k=3, exemplar_mode="bm25"))
    stored = ws.repo.find(Trajectory, suite=DEMO_SUITE)
    assert len(stored) == 4 and all(t.output and t.verdict for t in stored)
    assert all(len(r[0].memory.exemplar_ids) == 3 for r in runs)
    # SmolLM2 with three retrieved exemplars writes parseable calls on these tasks.
    assert sum(1 for t in stored if t.tool_call is not None) >= 3
    json.dumps([t.model_dump(mode="json") for t in stored])


@pytest.mark.slow
def test_an_episode_step_continued_from_its_kept_prompt_answers_as_one_prefilled_afresh(real_ws):
    """Steps of episodes reuse the keys and values of the prompt they extend (llm.RowPrefixes): the answers
    equal those of a full prefill, in a batch that mixes continued rows and new ones."""
    from agentlearn import grammar, llm
    from agentlearn.llm import LocalChatModel
    from agentlearn.models import chat_model_dir

    ws = real_ws
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:3]
    limits = grammar.value_limits(reference_calls(ws, DEMO_SUITE))
    tools = [grammar.with_value_limits(t.tools, limits) for t in tasks]
    model_dir = str(chat_model_dir(ws.settings.models_dir))
    budget = token_budget(ws, DEMO_SUITE, cap=256)
    model = LocalChatModel(model_dir=model_dir, batch_size=8)
    opening = [[m.model_dump() for m in build_prompt(t, [])] for t in tasks]

    def step(chats, rows):
        return model.complete([chats[i] for i in rows], tools=[tools[i] for i in rows], max_new_tokens=budget,
                              steps=[1] * len(rows))

    llm.row_prefixes.cache_clear()
    first = step(opening, [0, 1])
    kept = llm.row_prefixes(model_dir, "")  # as LocalChatModel asks for it
    assert len(kept.entries) == 2 and kept.hits == 0
    # The next step: the model's answer and a tool's result added to the first two; the third task starts.
    later = [c + [{"role": "assistant", "content": a}, {"role": "user", "content": "Result: ticket 4711 is open."}]
             for c, a in zip(opening[:2], first, strict=True)] + [opening[2]]
    continued = step(later, [0, 1, 2])
    # The two episodes' first prompts were reused whole; the new row may start from one of them (the system message).
    assert kept.hits >= 2 and kept.reused_tokens > sum(len(str(c)) for c in opening[:2]) / 8
    assert len(kept.entries) == 3  # each continued prompt replaced the one it extends; the new row was kept
    llm.row_prefixes.cache_clear()
    afresh = step(later, [0, 1, 2])
    assert continued == afresh
