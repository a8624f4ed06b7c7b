"""Tools that execute: python bindings, environments, a real MCP server over stdio, timeouts and errors."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest

from agentlearn import tools
from storage.records import Message, Suite, Task, ToolBinding, ToolCall

SERVER = Path(__file__).parent / "data" / "mcp_counter_server.py"


def _task(**fields) -> Task:
    return Task(suite="s", sample_id="1", split="train", input=[Message(role="user", content="hi")],
                expected=ToolCall(name="find_user"), tools=[{"name": "find_user"}, {"name": "reset_password"},
                                                            {"name": "slow"}], **fields)


def test_a_python_module_binding_runs_the_functions_named_like_the_tools():
    binding = ToolBinding(kind="python", target="tests.data.toy_tools")
    with tools.Toolbox() as box:
        episode = box.episode([binding], _task())
        found = episode.run(ToolCall(id="c1", name="find_user", arguments={"name": "Ada"}))
        reset = episode.run(ToolCall(name="reset_password", arguments={"user_id": "u-17"}))
    assert not found.error and found.content == '{"user_id": "u-17"}' and found.call_id == "c1"
    assert reset.content == "password of u-17 reset" and reset.seconds is not None and reset.seconds < 1


def test_a_module_function_binding_serves_the_tool_it_names():
    binding = ToolBinding(kind="python", target="tests.data.toy_tools:find_user", tools=["lookup"])
    with tools.Toolbox() as box:
        episode = box.episode([binding], _task())
        assert episode.run(ToolCall(name="lookup", arguments={"name": "linus"})).content == '{"user_id": "u-42"}'
        missing = episode.run(ToolCall(name="find_user", arguments={"name": "linus"}))
    assert missing.error and "no tool 'find_user' runs here; tools that run: lookup" in missing.content


def test_an_exception_and_bad_arguments_become_error_observations():
    with tools.Toolbox() as box:
        episode = box.episode([ToolBinding(kind="python", target="tests.data.toy_tools")], _task())
        raised = episode.run(ToolCall(name="reset_password", arguments={"user_id": "u-1"}))
        wrong = episode.run(ToolCall(name="find_user", arguments={"nom": "ada"}))
    assert raised.error and raised.content.startswith("Error: reset_password raised ValueError: unknown user id")
    assert wrong.error and "TypeError" in wrong.content


def test_a_call_past_its_timeout_is_an_error_and_the_episode_goes_on():
    binding = ToolBinding(kind="python", target="tests.data.toy_tools", timeout_s=0.2)
    with tools.Toolbox() as box:
        episode = box.episode([binding], _task())
        started = time.perf_counter()
        late = episode.run(ToolCall(name="slow", arguments={"seconds": 5}))
        assert time.perf_counter() - started < 1.5
        after = episode.run(ToolCall(name="find_user", arguments={"name": "ada"}))
    assert late.error and "timed out" in late.content and not after.error


def test_a_binding_that_cannot_start_answers_why_instead_of_crashing():
    with tools.Toolbox() as box:
        episode = box.episode([ToolBinding(kind="python", target="no_such_module_here", tools=["find_user"])], _task())
        result = episode.run(ToolCall(name="find_user", arguments={"name": "ada"}))
    assert result.error and "could not start: ModuleNotFoundError" in result.content


def test_bindings_are_checked_for_their_kind():
    with pytest.raises(ValueError, match="'module' or 'module:function'"):
        tools.check_binding(ToolBinding(kind="python", target="rm -rf /"))
    with pytest.raises(ValueError, match="one function: bind it to one tool"):
        tools.check_binding(ToolBinding(kind="python", target="m:f", tools=["a", "b"]))
    assert tools.check_binding(ToolBinding(kind="mcp", target=" srv --x ")).target == "srv --x"


@pytest.fixture
def toy_environments(monkeypatch):
    """agentlearn.suites.environments with one toy class (the real registry lists BFCL's classes)."""
    from tests.data import toy_tools

    module = types.ModuleType("agentlearn.suites.environments")
    module.NAMES = ("Counter",)
    module.create = lambda name, state: {"Counter": toy_tools.Counter}[name](**state)
    monkeypatch.setitem(sys.modules, "agentlearn.suites.environments", module)
    import agentlearn.suites

    monkeypatch.setattr(agentlearn.suites, "environments", module, raising=False)
    return module


def test_a_task_naming_an_environment_gets_its_own_instance_from_its_initial_state(toy_environments):
    task = _task(environment={"Counter": {"start": 10}, "NotInTheRegistry": {}}).model_copy(
        update={"tools": [{"name": "add"}]})
    bindings = tools.bindings_for(Suite(name="s"), task)
    assert [(b.kind, b.target) for b in bindings] == [("environment", "Counter")]
    with tools.Toolbox() as box:
        first, second = box.episode(bindings, task), box.episode(bindings, task)
        assert first.run(ToolCall(name="add", arguments={"amount": 5})).content == "15"
        assert first.run(ToolCall(name="add", arguments={"amount": 1})).content == "16"
        assert second.run(ToolCall(name="add", arguments={"amount": 1})).content == "11"
    with pytest.raises(ValueError, match="unknown environment 'os'; choose one of Counter"):
        tools.check_binding(ToolBinding(kind="environment", target="os"))


def test_a_real_mcp_server_over_stdio_runs_calls_reports_errors_and_timeouts_and_stops():
    binding = ToolBinding(kind="mcp", target=f"{sys.executable} {SERVER}", tools=["add", "fail", "sleep"],
                          timeout_s=2)
    box = tools.Toolbox()
    try:
        one, two = box.episode([binding], _task()), box.episode([binding], _task())
        [server] = box._servers.values()  # started once for the batch
        assert {"add", "echo", "fail", "sleep"} <= set(server.tools)
        assert one.run(ToolCall(name="add", arguments={"amount": 2})).content == "counter is 2"
        assert two.run(ToolCall(name="add", arguments={"amount": 3})).content == "counter is 5"  # one server
        failed = one.run(ToolCall(name="fail", arguments={"reason": "boom"}))
        assert failed.error and failed.content.startswith("Error:")
        late = one.run(ToolCall(name="sleep", arguments={"seconds": 3}))
        assert late.error and "timed out" in late.content
        assert one.run(ToolCall(name="echo", arguments={"text": "x"})).error  # not among the binding's tools
    finally:
        box.close()
    assert not box._servers
