"""The agent's loop: act -> execute -> observe over several steps, user turns, batches at different steps, replay."""

from __future__ import annotations

import io
import json
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentlearn.agent import RunOptions, conversation, replay_from, run_tasks
from agentlearn.cli import main
from agentlearn.toolcall import format_tool_call
from agentlearn.workspace import open_workspace
from storage.records import Exemplar, Message, Suite, Task, ToolBinding, ToolCall, Trajectory, Verdict
from tests.conftest import link_shared_models
from tests.data.toy_tools import TOOLS
from tests.seed import as_
from tests.test_tool_bindings_cli import _task_file

SUITE = "toy-accounts"


class ScriptedAgent(BaseChatModel):
    """A fake model that decides from the conversation, like an agent: look up, reset, then say so."""

    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=decide(messages)))])


def decide(messages: list[BaseMessage]) -> str:
    last = messages[-1]
    if isinstance(last, ToolMessage):
        if last.name == "find_user" and "user_id" in last.content:
            return format_tool_call(ToolCall(name="reset_password", arguments=json.loads(last.content)))
        return f"Done: {last.content}"
    name = str(last.content).split()[-1].strip(".")
    if isinstance(last, HumanMessage) and "hello" in str(last.content):
        return "Hello! How can I help?"
    return format_tool_call(ToolCall(name="find_user", arguments={"name": name}))


def scripted_factory(model_cls=ScriptedAgent):
    seen: list = []

    def factory(settings, adapter_dir="", temperature=0.0, seed=None):
        model = model_cls()
        model.seen = seen
        return model

    factory.seen = seen
    return factory


def _suite(ws, **fields) -> Suite:
    suite = Suite(id=SUITE, name=SUITE, tools=TOOLS, bindings=[ToolBinding(kind="python", target="tests.data.toy_tools")],
                  **fields)
    ws.repo.put(suite)
    return suite


def _task(ws, text: str, expected: ToolCall, n: int = 0, **fields) -> Task:
    task = Task(suite=SUITE, sample_id=str(n), split="heldout", input=[Message(role="user", content=text)],
                tools=TOOLS, expected=expected, **fields)
    ws.repo.put(task)
    return task


@pytest.fixture
def scripted(ws):
    ws.chat_factory = scripted_factory()
    return ws


def test_an_episode_calls_reads_each_result_and_answers(scripted):
    ws = scripted
    _suite(ws)
    task = _task(ws, "Please reset the password of ada", ToolCall(name="reset_password", arguments={"user_id": "u-17"}))
    [[t]] = run_tasks(ws, [task], RunOptions())
    assert [(s.calls[0].name if s.calls else None) for s in t.steps] == ["find_user", "reset_password", None]
    assert t.steps[0].results[0].content == '{"user_id": "u-17"}' and not t.steps[0].results[0].error
    assert t.steps[0].results[0].call_id == t.steps[0].calls[0].id != ""
    assert t.steps[0].results[0].seconds is not None and t.steps[0].seconds is not None
    assert t.steps[2].answer == "Done: password of u-17 reset" and t.output == t.steps[2].answer
    assert [c.name for c in t.tool_calls] == ["find_user", "reset_password"]
    assert t.verdict.success  # graded on its call of the expected tool
    second = ws.chat_factory.seen[1]  # the model's second step saw the first call and its result
    assert isinstance(second[-1], ToolMessage) and second[-1].tool_call_id == t.steps[0].calls[0].id
    assert second[-2].tool_calls[0]["id"] == t.steps[0].calls[0].id
    assert "Work in steps" in second[0].content
    assert ws.repo.get(Trajectory, t.id).steps[1].results[0].content == "password of u-17 reset"


def test_a_failing_tool_is_an_observation_the_agent_reads(scripted):
    ws = scripted
    _suite(ws)
    task = _task(ws, "Reset the password of grace", ToolCall(name="reset_password", arguments={"user_id": "u-1"}))
    [[t]] = run_tasks(ws, [task], RunOptions())
    [result] = t.steps[0].results
    assert result.error and result.content == "Error: find_user raised KeyError: \"no user named 'grace'\""
    assert t.steps[-1].answer.startswith("Done: Error: find_user raised KeyError")
    assert not t.verdict.success


class Looper(ScriptedAgent):
    """Never answers: calls find_user at every step."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        call = format_tool_call(ToolCall(name="find_user", arguments={"name": "ada"}))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=call))])


def test_the_step_limit_ends_an_episode_that_never_answers(ws):
    ws.chat_factory = scripted_factory(Looper)
    _suite(ws, max_steps=3)
    task = _task(ws, "reset ada", ToolCall(name="reset_password", arguments={"user_id": "u-17"}))
    [[t]] = run_tasks(ws, [task], RunOptions())
    assert len(t.steps) == 3 and all(s.calls and not s.answer for s in t.steps)
    assert not t.verdict.success


def test_episodes_at_different_steps_share_a_batch(scripted):
    ws = scripted
    _suite(ws)
    quick = _task(ws, "hello", ToolCall(name="find_user", arguments={"name": "x"}), n=1)
    long = _task(ws, "Please reset the password of linus", ToolCall(name="reset_password",
                                                                    arguments={"user_id": "u-42"}), n=2)
    [[a], [b]] = run_tasks(ws, [quick, long], RunOptions())
    assert len(a.steps) == 1 and a.steps[0].answer == "Hello! How can I help?"
    assert len(b.steps) == 3 and b.verdict.success
    assert len(ws.chat_factory.seen) == 4  # step 1 of both, then steps 2 and 3 of the long one alone


def test_a_task_with_more_user_turns_continues_after_each_answer(scripted):
    ws = scripted
    _suite(ws)
    task = _task(ws, "hello", ToolCall(name="reset_password", arguments={"user_id": "u-17"}),
                 turns=[[Message(role="user", content="Reset the password of ada")]])
    [[t]] = run_tasks(ws, [task], RunOptions())
    assert [s.turn for s in t.steps] == [0, 1, 1, 1]
    assert t.steps[1].user == "Reset the password of ada" and t.steps[0].user == ""
    assert t.steps[-1].answer == "Done: password of u-17 reset" and t.verdict.success
    last_prompt = ws.chat_factory.seen[-1]
    assert [type(m).__name__ for m in last_prompt[-6:]] == ["AIMessage", "HumanMessage", "AIMessage", "ToolMessage",
                                                            "AIMessage", "ToolMessage"]


def test_a_tool_held_back_until_a_later_turn_is_offered_and_announced_from_that_turn(scripted):
    """BFCL multi_turn_miss_func: a function missing at first arrives with a later user turn."""
    ws = scripted
    _suite(ws)
    task = _task(ws, "hello", ToolCall(name="reset_password", arguments={"user_id": "u-17"}),
                 turns=[[Message(role="user", content="Reset the password of ada")]],
                 held_back={1: ["reset_password"]})
    [[t]] = run_tasks(ws, [task], RunOptions())
    system = str(ws.chat_factory.seen[0][0].content)
    assert "find_user" in system and "reset_password" not in system  # not offered at the first turn
    assert t.steps[1].user.startswith("New tools you can call now:\n- reset_password(user_id: string)")
    assert t.steps[1].user.endswith("Reset the password of ada")
    assert [c.name for c in t.tool_calls] == ["find_user", "reset_password"] and t.verdict.success


def test_an_unbound_suite_may_make_several_calls_in_one_answer(ws, make_fake_chat):
    ws.repo.put(Suite(id=SUITE, name=SUITE, tools=TOOLS, max_calls=2))
    task = _task(ws, "reset ada", ToolCall(name="find_user", arguments={"name": "ada"}))
    two = (format_tool_call(ToolCall(name="find_user", arguments={"name": "ada"})) + "\n"
           + format_tool_call(ToolCall(name="reset_password", arguments={"user_id": "u-17"})))
    ws.chat_factory = make_fake_chat([two])
    [[t]] = run_tasks(ws, [task], RunOptions())
    assert len(t.steps) == 1 and [c.name for c in t.tool_calls] == ["find_user", "reset_password"]
    assert t.tool_call.name == "find_user" and t.verdict.success
    assert "accepted the arguments" in t.steps[0].observation and not t.steps[0].results  # nothing ran
    system = str(ws.chat_factory.seen[0][0].content)
    assert "Answer with at most 2 calls" in system and "plain words" not in system  # calls, not steps or words


def test_a_train_answer_of_several_calls_becomes_an_exemplar_with_every_call(ws, make_fake_chat):
    from agentlearn.memory.exemplars import sync_bank

    ws.repo.put(Suite(id=SUITE, name=SUITE, tools=TOOLS, max_calls=2))
    task = Task(suite=SUITE, sample_id="7", split="train", input=[Message(role="user", content="reset ada")],
                tools=TOOLS, expected=ToolCall(name="find_user", arguments={"name": "ada"}))
    ws.repo.put(task)
    calls = [ToolCall(name="find_user", arguments={"name": "ada"}), ToolCall(name="reset_password", arguments={"user_id": "u-17"})]
    ws.chat_factory = make_fake_chat(["\n".join(format_tool_call(c) for c in calls)])
    [[t]] = run_tasks(ws, [task], RunOptions())
    assert t.verdict.success and sync_bank(ws, SUITE) == 1
    [learned] = [e for e in ws.repo.find(Exemplar, suite=SUITE) if e.kind == "learned"]
    assert learned.answer_calls() == calls and learned.call == calls[0]


def test_graders_for_turns_and_for_references_are_the_suites_own(scripted, monkeypatch):
    ws = scripted
    _suite(ws)
    seen = {}
    multi = types.ModuleType("agentlearn.suites.multi_turn")
    multi.grade_episode = lambda task, traj: seen.setdefault("turns", Verdict(success=True, reward=1, reason="state"))
    refs = types.ModuleType("agentlearn.suites.references")
    refs.grade = lambda task, calls, output: seen.setdefault(
        "reference", Verdict(success=False, reward=0, reason=f"{len(calls)} calls; {output}"))
    import agentlearn.suites

    for name, module in (("multi_turn", multi), ("references", refs)):
        monkeypatch.setitem(sys.modules, f"agentlearn.suites.{name}", module)
        monkeypatch.setattr(agentlearn.suites, name, module, raising=False)
    expected = ToolCall(name="reset_password", arguments={"user_id": "u-17"})
    by_turns = _task(ws, "reset ada", expected, n=1, turn_calls=[[expected]])
    from storage.records import CallReference, Reference

    by_reference = _task(ws, "reset linus", expected, n=2,
                         reference=Reference(calls=[CallReference(name="reset_password",
                                                                  arguments={"user_id": ["u-42"]})]))
    [[a], [b]] = run_tasks(ws, [by_turns, by_reference], RunOptions())
    assert a.verdict.reason == "state" and b.verdict.reason == "2 calls; Done: password of u-42 reset"


def test_replay_from_a_corrected_step_runs_the_rest_and_stores_a_new_episode(scripted):
    ws = scripted
    _suite(ws)
    task = _task(ws, "Please reset the password of grace", ToolCall(name="reset_password",
                                                                    arguments={"user_id": "u-42"}))
    [[first]] = run_tasks(ws, [task], RunOptions())
    assert not first.verdict.success and len(first.steps) == 2
    fixed = replay_from(ws, first, 0, ToolCall(name="find_user", arguments={"name": "linus"}), who=as_("ann"))
    assert fixed.source == "replay" and fixed.id != first.id and ws.repo.get(Trajectory, fixed.id)
    assert fixed.steps[0].calls[0].arguments == {"name": "linus"}
    assert fixed.steps[0].results[0].content == '{"user_id": "u-42"}'
    assert fixed.steps[1].calls[0].name == "reset_password" and fixed.verdict.success
    assert fixed.prompt == first.prompt
    with pytest.raises(ValueError, match="no step 9"):
        replay_from(ws, first, 9, ToolCall(name="find_user"), who=as_("ann"))


def test_the_conversation_of_an_episode_pairs_each_result_with_its_call(scripted):
    from agentlearn.agent import Episode
    from storage.records import Step, ToolResult

    call = ToolCall(name="find_user", arguments={"name": "ada"}, id="call_0_0")
    ep = Episode(task=Task(suite="s", sample_id="1", split="train", input=[], expected=call),
                 prompt=[Message(role="system", content="s"), Message(role="user", content="u")],
                 steps=[Step(calls=[call], results=[ToolResult(call_id="call_0_0", name="find_user", content="x")])],
                 user="next")
    messages = conversation(ep)
    assert messages[2].tool_calls[0]["id"] == messages[3].tool_call_id == "call_0_0"
    assert isinstance(messages[-1], HumanMessage) and messages[-1].content == "next"


def test_run_json_on_the_real_model_with_tools_that_execute(tmp_path, monkeypatch, capsys, shared_models):
    home = link_shared_models(tmp_path / "home", shared_models)
    monkeypatch.setenv("AGENTLEARN_HOME", str(home))
    monkeypatch.setenv("AGENTLEARN_MAX_NEW_TOKENS", "48")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"name": "acc", "max_steps": 2,
                                "bindings": [{"kind": "python", "target": "tests.data.toy_tools"}]}))
    assert main(["tasks", "import", str(_task_file(tmp_path)), "--card", str(card)]) == 0
    capsys.readouterr()
    assert main(["run", "--suite", "acc", "--split", "heldout", "--limit", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    names = {"find_user", "reset_password"}
    for row in rows:
        assert 1 <= len(row["steps"]) <= 2 and row["verdict"]["reason"]
        for step in row["steps"]:
            assert step["calls"] or step["answer"] or step["observation"].startswith("Error")
            for call in step["calls"]:  # the grammar: only offered tools; each ran and answered
                assert call["name"] in names and call["observation"] and call["seconds"] is not None
                assert call["error"] == call["observation"].startswith("Error:")
        stored = open_workspace().repo.get(Trajectory, row["trajectory_id"])
        assert stored.constrained and len(stored.steps) == len(row["steps"])


class _OpenAIEndpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that plays an agent: look up, reset, then answer."""

    requests: list[dict] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        last = body["messages"][-1]
        if last["role"] == "tool" and "user_id" in last["content"]:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "srv_2", "type": "function",
                 "function": {"name": "reset_password", "arguments": last["content"]}}]}
        elif last["role"] == "tool":
            message = {"role": "assistant", "content": f"Done: {last['content']}"}
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "srv_1", "type": "function",
                 "function": {"name": "find_user", "arguments": json.dumps({"name": "ada"})}}]}
        reply = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@contextmanager
def _endpoint_workspace(handler: type[_OpenAIEndpoint], home: Path) -> Iterator[Any]:
    """A workspace on the OpenAI path whose endpoint is `handler`, served on a free local port meanwhile."""
    from agentlearn.settings import Settings

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.requests = []
    try:
        ws = open_workspace(Settings(home=home, backend="openai", openai_model="served",
                                     openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1"))
        _suite(ws)
        yield ws
    finally:
        server.shutdown()


def test_an_openai_compatible_endpoint_gets_native_tool_calls_and_tool_messages(tmp_path):
    with _endpoint_workspace(_OpenAIEndpoint, tmp_path / "home") as ws:
        task = _task(ws, "Reset the password of ada", ToolCall(name="reset_password", arguments={"user_id": "u-17"}))
        [[t]] = run_tasks(ws, [task], RunOptions())
    first, second, third = _OpenAIEndpoint.requests
    assert [tool["function"]["name"] for tool in first["tools"]] == ["find_user", "reset_password"]
    assert first["tool_choice"] == "required" and second["tool_choice"] == "auto"  # a turn's first step calls
    assistant, result = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "find_user"
    assert result == {"role": "tool", "content": '{"user_id": "u-17"}', "tool_call_id": assistant["tool_calls"][0]["id"]}
    assert third["messages"][-1]["content"] == "password of u-17 reset"
    assert [len(s.calls) for s in t.steps] == [1, 1, 0] and t.steps[-1].answer == "Done: password of u-17 reset"
    assert t.verdict.success


class _FailingForGrace(_OpenAIEndpoint):
    """The same endpoint, but every request about grace gets HTTP 500 (as a server whose parser chokes)."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        length = int(self.headers["Content-Length"])
        raw = self.rfile.read(length)
        if b"grace" in raw:
            self.requests.append(json.loads(raw))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.rfile = io.BytesIO(raw)
        super().do_POST()


def test_an_endpoint_error_on_one_episode_is_its_observation_and_the_batch_goes_on(tmp_path):
    with _endpoint_workspace(_FailingForGrace, tmp_path / "home") as ws:
        ada = _task(ws, "Reset the password of ada", ToolCall(name="reset_password", arguments={"user_id": "u-17"}))
        grace = _task(ws, "Reset the password of grace", ToolCall(name="reset_password", arguments={"user_id": "u-9"}),
                      n=1)
        [[a], [g]] = run_tasks(ws, [ada, grace], RunOptions())
    assert a.verdict.success and [len(s.calls) for s in a.steps] == [1, 1, 0]
    [step] = g.steps  # asked with tools, then again without them: both answered 500; the turn ends there
    assert step.calls == [] and step.answer == ""
    assert step.observation == "Error: the model endpoint did not answer: OpenAIAPIError: Error code: 500"
    assert not g.verdict.success
    asked = [r for r in _FailingForGrace.requests if b"grace" in json.dumps(r).encode()]
    assert [("tools" in r) for r in asked][:1] == [True] and not asked[-1].get("tools")
