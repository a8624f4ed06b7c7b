"""Learning from multi-step episodes: exemplars, Reflexion, error analysis and exports read steps with
calls, results (errors and timings), answers and user turns. Episodes are written straight into a real
TinyDB store, the way the agent loop and the trace importers store them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import cli, datasets, prompts
from agentlearn.episode_text import is_episode
from agentlearn.memory import error_analysis, exemplars, proposals, reflexion
from agentlearn.toolcall import format_tool_call
from storage.records import (
    Correction,
    Exemplar,
    InsightProposal,
    Message,
    Preference,
    Step,
    Suite,
    Task,
    ToolCall,
    ToolResult,
    Trajectory,
    Verdict,
)

SUITE = "files"
TOOLS = [
    {"name": "ls", "description": "list a folder", "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}}, "required": ["path"]}},
    {"name": "cd", "description": "change folder", "parameters": {"type": "object", "properties": {
        "folder": {"type": "string"}}, "required": ["folder"]}},
    {"name": "cat", "description": "print a file", "parameters": {"type": "object", "properties": {
        "file_name": {"type": "string"}}, "required": ["file_name"]}},
    {"name": "rm", "description": "remove a file", "parameters": {"type": "object", "properties": {
        "file_name": {"type": "string"}}, "required": ["file_name"]}},
]
REQUESTS = {
    "t1": "Go into the reports folder and show me what budget.txt says.",
    "t2": "Delete the file old.log that sits in the logs folder.",
    "t3": "List what is in the photos folder.",
    "t4": "Open the notes folder and print todo.md for me.",
}


def call(name: str, call_id: str = "", **args) -> ToolCall:
    return ToolCall(name=name, arguments=args, id=call_id)


def step(*calls: ToolCall, results: tuple[tuple[str, bool], ...] = (), answer: str = "", turn: int = 0,
         user: str = "") -> Step:
    rs = [ToolResult(call_id=c.id, name=c.name, content=text, error=err, seconds=0.01)
          for c, (text, err) in zip(calls, results, strict=True)]
    obs = "\n".join(r.content for r in rs)
    return Step(calls=list(calls), results=rs, answer=answer, turn=turn, user=user, observation=obs,
                action="".join(format_tool_call(c) for c in calls) or answer, seconds=0.2, tokens_in=50, tokens_out=9)


def make_task(ws, sid: str, turn_calls: list[list[ToolCall]], split: str = "train", turns=()) -> Task:
    return ws.repo.put(Task(
        id=f"task-{sid}", suite=SUITE, sample_id=sid, split=split, input=[Message(role="user", content=REQUESTS[sid])],
        tools=TOOLS, expected=turn_calls[0][0], turns=[[Message(role="user", content=t)] for t in turns],
        turn_calls=turn_calls, environment={"GorillaFileSystem": {"root": {}}}))


def episode(ws, task: Task, steps: list[Step], success: bool, reason: str = "", source: str = "agent",
            tid: str = "") -> Trajectory:
    first = next((c for s in steps for c in s.calls), None)
    return ws.repo.put(Trajectory(
        **({"id": tid} if tid else {}), task_id=task.id, suite=SUITE, split=task.split, steps=steps,
        output=steps[-1].action, tool_call=first, source=source,
        verdict=Verdict(success=success, reward=float(success), reason=reason or ("ok" if success else "failed"))))


@pytest.fixture
def suite(ws):
    """Four train tasks; t1 has a second user turn. Successful episodes of t1 and t2 (t1's with a failed step)."""
    ws.repo.put(Suite(name=SUITE, tools=TOOLS, max_calls=4))
    t1 = make_task(ws, "t1", [[call("cd", folder="reports"), call("cat", file_name="budget.txt")],
                              [call("rm", file_name="budget.txt")]], turns=["Now delete it."])
    t2 = make_task(ws, "t2", [[call("cd", folder="logs"), call("rm", file_name="old.log")]])
    t3 = make_task(ws, "t3", [[call("ls", path="photos")]])
    t4 = make_task(ws, "t4", [[call("cd", folder="notes"), call("cat", file_name="todo.md")]], split="heldout")
    good1 = episode(ws, t1, [
        step(call("cd", "c1", folder="report"), results=(("No such folder: report", True),)),
        step(call("cd", "c2", folder="reports"), results=(("Now in reports", False),)),
        step(call("cat", "c3", file_name="budget.txt"), results=(("Q1 travel 1200 EUR; Q2 " + "x" * 900, False),)),
        step(answer="budget.txt lists Q1 travel at 1200 EUR."),
        step(call("rm", "c4", file_name="budget.txt"), results=(("Removed", False),), turn=1, user="Now delete it."),
        step(answer="Deleted budget.txt.", turn=1),
    ], success=True, tid="good-t1")
    good2 = episode(ws, t2, [
        step(call("cd", "d1", folder="logs"), results=(("Now in logs", False),)),
        step(call("rm", "d2", file_name="old.log"), results=(("Removed", False),)),
        step(answer="old.log is deleted."),
    ], success=True, tid="good-t2", source="traces")
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "good1": good1, "good2": good2}


# --- exemplars ----------------------------------------------------------------------------------------


def test_a_successful_episode_becomes_an_exemplar_of_the_steps_that_led_to_success(ws, suite):
    assert exemplars.sync_bank(ws, SUITE) == 2
    ex = ws.repo.get(Exemplar, exemplars.learned_id("good-t1"))
    assert ex.input[0].content == REQUESTS["t1"] and ex.call.name == "cd" and ex.call.arguments == {"folder": "reports"}
    # The failed cd (the tool reported an error) did not lead to success; every other step did.
    assert [c.arguments for s in ex.steps for c in s.calls] == [{"folder": "reports"}, {"file_name": "budget.txt"},
                                                                 {"file_name": "budget.txt"}]
    assert [s.answer for s in ex.steps if s.answer] == ["budget.txt lists Q1 travel at 1200 EUR.", "Deleted budget.txt."]


def test_episode_exemplar_is_retrieved_by_first_request_and_shown_as_a_transcript_within_budget(ws, suite):
    exemplars.sync_bank(ws, SUITE)
    new = suite["t4"].model_copy(update={"input": [Message(role="user", content="Go into the reports folder and "
                                                                                 "show what summary.txt says.")]})
    best = exemplars.select(ws, new, "bm25", k=2)
    assert best[0].exemplar.trajectory_id == "good-t1"

    shots = [s.exemplar for s in best]
    roomy = prompts.fit_shots(shots, 2000)
    assert [s.id for s in roomy] == [s.id for s in shots]
    block = prompts.episodes_block(roomy)
    assert prompts.approx_tokens(block) <= 2000
    text = prompts.episode_transcript(roomy[0])
    assert text.splitlines()[0] == f"User: {REQUESTS['t1']}"
    assert f"Call: {format_tool_call(call('cat', file_name='budget.txt'))}" in text
    assert "Observation: Q1 travel 1200 EUR" in text and "[...]" in text  # the long observation is shortened
    assert "User: Now delete it." in text and "Answer: Deleted budget.txt." in text
    assert "No such folder" not in text

    # A tight budget shortens observations further, then leaves out what still does not fit.
    one = prompts.approx_tokens(prompts.EPISODES_HEADER) + prompts.approx_tokens(
        "Example 1:\n" + prompts.episode_transcript(prompts.shortened(shots[0], 30))) + 1
    tight = prompts.fit_shots(shots, one)
    assert [s.id for s in tight] == [shots[0].id]
    assert prompts.approx_tokens(prompts.episodes_block(tight)) <= one
    assert "x" * 40 not in prompts.episodes_block(tight)
    assert prompts.fit_shots(shots, 20) == []

    # In the prompt: the transcripts sit in the system message; single-call shots stay chat turns.
    single = Exemplar(suite=SUITE, task_id="task-t3", kind="reference", input=suite["t3"].input,
                      call=call("ls", path="photos"), tool="ls")
    fitted = prompts.fit_shots([single, *shots], 2000)
    assert fitted[0] is single
    prompt = prompts.build_prompt(new, fitted)
    assert prompts.EPISODES_HEADER in prompt[0].content and "Example 1:" in prompt[0].content
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[2].content == format_tool_call(single.call) and prompt[-1].content == new.input[0].content


def test_the_agent_fits_episode_exemplars_to_the_settings_budget(ws, suite):
    from agentlearn import tools
    from agentlearn.agent import Agent, Episode, RunOptions

    exemplars.sync_bank(ws, SUITE)
    shown = {}
    for budget in (60, 2000):
        ws.settings = ws.settings.with_(exemplar_tokens=budget)
        agent = Agent(ws, RunOptions(method="exemplars", exemplar_mode="bm25", k=2))
        with tools.Toolbox() as agent._toolbox:  # what run_batch opens around a batch (the task's tools run)
            shown[budget] = agent.prompt(agent.recall({"episodes": [Episode(task=suite["t4"])]}))["episodes"][0]
    assert shown[60].shots == [] and shown[60].memory.exemplar_ids == []  # neither transcript fits 60 tokens
    assert len(shown[2000].memory.exemplar_ids) == 2
    assert "Example 2:" in shown[2000].prompt[0].content


# --- Reflexion ------------------------------------------------------------------------------------------


def failed_episode(ws, task: Task, n_steps: int = 7) -> Trajectory:
    steps = [step(call("ls", f"l{i}", path=f"dir{i}"), results=((f"a b c {i}", False),)) for i in range(n_steps - 2)]
    steps += [step(call("cat", "z1", file_name="budget.txt"), results=(("cat: budget.txt: No such file", True),)),
              step(answer="I could not find it.")]
    return episode(ws, task, steps, success=False, reason="state differs: cd(folder='reports') was never called")


def test_reflexion_on_an_episode_reads_the_last_observations_and_the_graders_reason(ws, suite):
    task = suite["t1"]
    traj = failed_episode(ws, task)
    system, human = reflexion.reflection_messages(task, traj, [])
    assert system.content == prompts.REFLEXION_EPISODE_FRAMING
    query = human.content
    assert "Observation 6: Error: cat: budget.txt: No such file" in query
    assert f"Call 6: {format_tool_call(call('cat', file_name='budget.txt'))}" in query
    assert "Answer 7: I could not find it." in query
    assert "(steps 1 to 2 left out)" in query and "dir0" not in query and "dir2" in query
    assert "STATUS: FAIL\nReason: state differs: cd(folder='reports') was never called" in query
    # A single-call trial keeps the original query.
    single = Trajectory(task_id=task.id, suite=SUITE, split="train", output="<tool_call>{}</tool_call>",
                        steps=[Step(action="x", observation="wrong tool")],
                        verdict=Verdict(success=False, reward=0, reason="wrong tool"))
    assert not is_episode(single)
    s_system, s_human = reflexion.reflection_messages(task, single, [])
    assert s_system.content == prompts.REFLEXION_FRAMING and "Reason:" not in s_human.content


@pytest.mark.slow
def test_reflexion_with_the_embedded_model_writes_a_plan_for_an_episode(real_ws, suite):
    ws = real_ws
    for t in suite.values():
        ws.repo.put(t)
    task = suite["t1"]
    traj = failed_episode(ws, task, n_steps=3)
    made = reflexion.reflect(ws, task, traj)
    assert made.text.strip() and made.trajectory_id == traj.id
    assert ws.repo.get(type(made), made.id).text == made.text


# --- error analysis -------------------------------------------------------------------------------------


def test_error_analysis_groups_each_kind_of_step_failure_and_cites_the_episodes(ws, suite):
    t2, t3 = suite["t2"], suite["t3"]
    wrong = [episode(ws, t2, [step(call("cd", folder="logs"), results=(("ok", False),)),
                              step(call("cat", file_name="old.log"), results=(("log lines", False),)),
                              step(answer="done")], success=False, tid=f"wrong-{i}") for i in range(3)]
    errors = [episode(ws, t3, [step(call("ls", path=f"/photos{i}"), results=(("ls: no such folder", True),)),
                               step(answer="It failed.")], success=False, tid=f"err-{i}") for i in range(3)]
    loops = [episode(ws, t3, [step(call("ls", path="photos"), results=(("a.jpg", False),)),
                              step(call("ls", path="photos"), results=(("a.jpg", False),)),
                              step(call("ls", path="photos"), results=(("a.jpg", False),))],
                     success=False, tid=f"loop-{i}") for i in range(3)]
    early = [episode(ws, t3, [step(answer="There are no photos."), step(answer="Really none.")], success=False,
                     tid=f"early-{i}") for i in range(3)]

    analysis = error_analysis.analyse(ws, SUITE)
    drafts = {d.pattern: d for d in analysis.drafts}
    assert set(drafts) >= {"step-tool:rm:cat", "tool-error:ls", "loop:ls", "early:ls", "early:rm"}, list(drafts)
    assert sorted(drafts["step-tool:rm:cat"].evidence) == sorted(t.id for t in wrong)
    assert "at step 2" in drafts["step-tool:rm:cat"].rationale and "call rm, not cat" in drafts["step-tool:rm:cat"].text
    assert sorted(drafts["tool-error:ls"].evidence) == sorted(t.id for t in errors)
    assert "ls: no such folder" in drafts["tool-error:ls"].rationale
    assert sorted(drafts["loop:ls"].evidence) == sorted(t.id for t in loops)
    assert "steps 2, 3" in drafts["loop:ls"].rationale
    assert sorted(drafts["early:ls"].evidence) == sorted(t.id for t in early)
    assert "3 before any call" in drafts["early:ls"].rationale and "at steps 1, 2" in drafts["early:ls"].rationale
    assert sorted(drafts["early:rm"].evidence) == sorted(t.id for t in wrong)  # they answered before rm, too

    made = proposals.propose(ws, SUITE, sources=["errors"])
    stored = {p.pattern: p for p in ws.repo.find(InsightProposal, suite=SUITE)}
    assert made.counts["errors"] >= 3 and "tool-error:ls" in stored
    assert sorted(stored["tool-error:ls"].evidence) == sorted(t.id for t in errors)


def test_a_persons_correction_of_a_step_names_the_right_tool(ws, suite):
    t3 = suite["t3"].model_copy(update={"turn_calls": []})  # no reference: the correction says what was right
    ws.repo.put(t3)
    runs = [episode(ws, t3, [step(call("cd", folder="photos"), results=(("ok", False),)), step(answer="ok")],
                    success=False, tid=f"corr-{i}") for i in range(3)]
    ws.repo.put_many([Correction(trajectory_id=r.id, task_id=t3.id, suite=SUITE, author="ann",
                                 call=call("cat", file_name="photos/index.txt"), step=0) for r in runs])
    drafts = {d.pattern: d for d in error_analysis.analyse(ws, SUITE).drafts}
    assert sorted(drafts["step-tool:cat:cd"].evidence) == sorted(r.id for r in runs)
    assert "step-tool:ls:cd" not in drafts  # the person's correction wins over the task's expected call


# --- exports --------------------------------------------------------------------------------------------


def read(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def row_for(rows: list[dict], request: str) -> dict:
    key = "messages" if "messages" in rows[0] else "prompt"
    return next(r for r in rows if any(m.get("content") == request for m in r[key]))


def test_sft_exports_episodes_in_trls_tool_calling_format_and_the_embedded_model_renders_them(real_ws, suite,
                                                                                              tmp_path):
    from transformers import AutoTokenizer

    from agentlearn.models import chat_model_dir
    from agentlearn.training import chat_template, runner
    from agentlearn.training.config import SFTJobConfig

    ws = real_ws
    for rec in suite.values():
        ws.repo.put(rec)
    ws.repo.put(Exemplar(suite=SUITE, task_id="task-t3", kind="reference", input=suite["t3"].input,
                         call=call("ls", path="photos"), tool="ls"))
    made = datasets.export(ws, "sft", SUITE, out_path=tmp_path / "sft.jsonl")
    rows = read(made.path)
    assert set(made.trajectory_ids) == {"good-t1", "good-t2"}
    row = row_for(rows, REQUESTS["t1"])
    msgs = row["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant",
                                         "tool", "assistant", "user", "assistant", "tool", "assistant"]
    first = msgs[2]["tool_calls"][0]
    assert first == {"id": "c1", "type": "function", "function": {"name": "cd", "arguments": {"folder": "report"}}}
    assert msgs[3] == {"role": "tool", "name": "cd", "content": "Error: No such folder: report"}
    assert msgs[9] == {"role": "user", "content": "Now delete it."}
    assert msgs[-1] == {"role": "assistant", "content": "Deleted budget.txt."}
    assert {t["function"]["name"] for t in row["tools"]} == {"ls", "cd", "cat", "rm"}
    single = row_for(rows, REQUESTS["t3"])  # t3 has only its reference exemplar: today's single-call row
    assert single == {"messages": datasets.prompt_for(suite["t3"], ws.repo.get(Suite, SUITE))
                      + [{"role": "assistant", "content": format_tool_call(call("ls", path="photos"))}]}

    tokenizer = AutoTokenizer.from_pretrained(str(chat_model_dir(ws.settings.models_dir)))
    # A converted SmolLM2 carries the tool-calling template (its own drops tool calls): nothing to swap in.
    assert not chat_template.ensure_tool_calling(tokenizer)
    assert tokenizer.chat_template == chat_template.TEMPLATE.read_text()
    text = tokenizer.apply_chat_template(msgs, tools=row["tools"], tokenize=False)
    for m in msgs:
        for c in m.get("tool_calls") or []:
            assert format_tool_call(ToolCall(name=c["function"]["name"], arguments=c["function"]["arguments"])) in text
        assert m["content"] in text
    # The runner loads the file with each call's arguments exactly as written (no merged keys).
    config = SFTJobConfig(dataset_path=made.path, max_length=4096)
    dataset, dropped = runner.load_rows(config, AutoTokenizer.from_pretrained(str(chat_model_dir(ws.settings.models_dir))))
    loaded = [r for r in dataset if r["prompt"][1]["content"] == REQUESTS["t1"]][0]
    assert dropped == 0 and loaded["prompt"][2]["tool_calls"][0]["function"]["arguments"] == {"folder": "report"}
    assert loaded["tools"] == row["tools"]


def test_openai_sft_episode_rows_and_a_corrected_step(ws, suite, tmp_path):
    bad = episode(ws, suite["t3"], [step(call("cd", "e1", folder="photos"), results=(("ok", False),)),
                                    step(call("cat", "e2", file_name="photos"), results=(("is a folder", True),)),
                                    step(answer="Nothing there.")], success=False, tid="bad-t3")
    ws.repo.put(Correction(trajectory_id=bad.id, task_id=bad.task_id, suite=SUITE, author="ann",
                           call=call("ls", path="photos"), step=1))
    rows = read(datasets.export(ws, "openai-sft", SUITE, out_path=tmp_path / "o.jsonl").path)
    t2 = row_for(rows, REQUESTS["t2"])
    assert [m["role"] for m in t2["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    tc = t2["messages"][1]["tool_calls"][0]
    assert "content" not in t2["messages"][1] and json.loads(tc["function"]["arguments"]) == {"folder": "logs"}
    assert t2["messages"][2] == {"role": "tool", "tool_call_id": tc["id"], "content": "Now in logs"}
    assert all(t["type"] == "function" for t in t2["tools"])
    fixed = row_for(rows, REQUESTS["t3"])  # the steps before the corrected one, then the corrected call
    assert [m["role"] for m in fixed["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert fixed["messages"][-1]["tool_calls"][0]["function"] == {"name": "ls", "arguments": '{"path": "photos"}'}


def test_dpo_pairs_from_step_preferences_and_step_corrections(ws, suite, tmp_path):
    t2 = suite["t2"]
    base = episode(ws, t2, [step(call("cd", "f1", folder="logs"), results=(("Now in logs", False),)),
                            step(call("cat", "f2", file_name="old.log"), results=(("lines", False),))],
                   success=False, tid="pref-a")
    good, worse = format_tool_call(call("rm", file_name="old.log")), format_tool_call(call("cat", file_name="old.log"))
    ws.repo.put(Preference(task_id=t2.id, prompt=[], response_a=worse, response_b=good, trajectory_a=base.id,
                           trajectory_b="good-t2", choice="B", annotator="ann", step=1))
    rows = read(datasets.export(ws, "dpo", SUITE, out_path=tmp_path / "d.jsonl").path)
    row = next(r for r in rows if r["chosen"][0]["content"] == good)
    system_and_user = datasets.prompt_for(t2, ws.repo.get(Suite, SUITE))
    assert row["prompt"][:2] == system_and_user
    assert row["prompt"][2]["tool_calls"][0]["function"] == {"name": "cd", "arguments": {"folder": "logs"}}
    assert row["prompt"][3] == {"role": "tool", "name": "cd", "content": "Now in logs"} and len(row["prompt"]) == 4
    assert row["rejected"] == [{"role": "assistant", "content": worse}] and "tools" in row

    openai = read(datasets.export(ws, "openai-dpo", SUITE, out_path=tmp_path / "od.jsonl").path)
    orow = next(r for r in openai if r["input"]["messages"][0]["content"] == REQUESTS["t2"])
    assert orow["preferred_output"][0]["tool_calls"][0]["function"] == {"name": "rm",
                                                                        "arguments": '{"file_name": "old.log"}'}
    assert orow["input"]["messages"][2]["tool_call_id"] == "f1" and orow["input"]["tools"]

    # A correction of step 1 of an episode: the corrected call over the step's own, after step 0.
    ws.repo.put(Correction(trajectory_id=base.id, task_id=t2.id, suite=SUITE, author="ann",
                           call=call("rm", file_name="old.log"), step=1))
    rows = read(datasets.export(ws, "dpo", SUITE, out_path=tmp_path / "d2.jsonl", force=True).path)
    assert sum(1 for r in rows if r["chosen"][0]["content"] == good and len(r["prompt"]) == 4) == 1  # deduplicated


def test_grpo_rows_carry_what_the_environment_checker_needs(ws, suite, tmp_path):
    rows = read(datasets.export(ws, "grpo", SUITE, out_path=tmp_path / "g.jsonl").path)
    t1 = next(r for r in rows if r["task_id"] == suite["t1"].id)
    assert t1["suite"] == SUITE and t1["environment"] == ["GorillaFileSystem"] and t1["turns"] == 2


def test_exports_filter_episodes_by_source(ws, suite, tmp_path, capsys):
    only = datasets.export(ws, "sft", SUITE, out_path=tmp_path / "traces.jsonl", sources=("traces",))
    assert only.trajectory_ids == ["good-t2"]
    assert cli.main(["export", "openai-sft", "--suite", SUITE, "--source", "agent", "--out",
                     str(tmp_path / "agent.jsonl")]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = read(printed["path"])
    assert any(r["messages"][0]["content"] == REQUESTS["t1"] and len(r["messages"]) > 2 for r in rows)
    assert not any(r["messages"][0]["content"] == REQUESTS["t2"] and len(r["messages"]) > 2 for r in rows)
    with pytest.raises(ValueError, match="only trajectories from: proxy"):
        datasets.export(ws, "dpo", SUITE, sources=("proxy",))
