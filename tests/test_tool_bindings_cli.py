"""Bindings are an admin's: `suites bind/unbind`, suite cards with bindings, task files that name code refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn.cli import main
from agentlearn.tools import bind
from agentlearn.workspace import open_workspace
from storage.records import Suite, Task, ToolBinding
from tests.data.toy_tools import TOOLS
from tests.seed import as_

PEOPLE = [("ada", "u-17"), ("linus", "u-42"), ("grace", "u-99"), ("alan", "u-3"), ("edsger", "u-8"), ("barbara", "u-5")]


def _task_file(tmp_path: Path, extra: dict | None = None, at: int = 2) -> Path:
    lines = [{"sample_id": f"t{n}", "input": [{"role": "user", "content": f"Reset the password of {name}."}],
              "tools": TOOLS, "expected_function_call": {"name": "reset_password", "arguments": {"user_id": uid}}}
             for n, (name, uid) in enumerate(PEOPLE)]
    if extra:
        lines[at - 1].update(extra)
    path = tmp_path / "accounts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_bind_and_unbind_from_the_command_line(tmp_path, capsys):
    assert main(["tasks", "import", str(_task_file(tmp_path)), "--suite", "acc"]) == 0
    assert main(["suites", "bind", "acc", "--python", "tests.data.toy_tools", "--timeout", "2"]) == 0
    assert "python tests.data.toy_tools\ttools: all\ttimeout 2 s" in capsys.readouterr().out
    assert main(["suites", "bind", "acc", "--mcp", "python srv.py", "--tools", "find_user"]) == 0
    [py, mcp] = open_workspace().repo.get(Suite, "acc").bindings
    assert (py.tools, mcp.kind, mcp.tools) == (["reset_password"], "mcp", ["find_user"])  # taken from the other
    assert main(["suites", "bind", "acc", "--python", "os:system", "--tools", "nope"]) == 2
    assert "suite 'acc' has no tool 'nope'" in capsys.readouterr().err
    assert main(["suites", "unbind", "acc", "--tools", "find_user"]) == 0
    assert [b.kind for b in open_workspace().repo.get(Suite, "acc").bindings] == ["python"]
    assert main(["tasks", "import", str(_task_file(tmp_path)), "--suite", "acc"]) == 0  # a re-import keeps them
    assert main(["suites", "unbind", "acc"]) == 0
    assert open_workspace().repo.get(Suite, "acc").bindings == []


def test_only_an_admin_binds_tools(ws):
    from agentlearn.accounts import AccessDenied, find, identity_of
    from agentlearn.users import add_user

    ws.repo.put(Suite(id="acc", name="acc", tools=TOOLS))
    add_user(ws.repo, "root", "admin", "correct horse battery", who=as_("local"))
    root = identity_of(find(ws.repo, "root"))
    add_user(ws.repo, "rita", "reviewer", "correct horse battery", who=root)
    with pytest.raises(AccessDenied):
        bind(ws, "acc", ToolBinding(kind="python", target="tests.data.toy_tools"), who=identity_of(find(ws.repo, "rita")))
    assert ws.repo.get(Suite, "acc").bindings == []
    assert bind(ws, "acc", ToolBinding(kind="python", target="tests.data.toy_tools"), who=root).bindings


@pytest.mark.parametrize("extra", [{"bindings": [{"kind": "python", "target": "os:system"}]},
                                   {"module": "os"}, {"mcp": "rm -rf /"}])
def test_a_task_file_that_names_code_is_refused_and_nothing_is_stored(tmp_path, capsys, extra):
    path = _task_file(tmp_path, extra, at=3)
    assert main(["tasks", "import", str(path), "--suite", "acc"]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line 3: the task names code to run ({next(iter(extra))!r})" in err
    assert open_workspace().repo.get(Suite, "acc") is None and open_workspace().repo.find(Task, suite="acc") == []


def test_a_tool_in_a_task_file_that_names_a_command_is_refused(tmp_path, capsys):
    tools = [dict(TOOLS[0], command="python evil.py"), TOOLS[1]]
    assert main(["tasks", "import", str(_task_file(tmp_path, {"tools": tools}, at=1)), "--suite", "acc"]) == 2
    assert "line 1: tool 1 names code to run ('command')" in capsys.readouterr().err


def test_a_suite_card_on_the_server_may_bind_tools(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("name: acc\nmax_steps: 4\nbindings:\n  - kind: python\n    target: tests.data.toy_tools\n"
                    "    timeout_s: 3\n")
    assert main(["tasks", "import", str(_task_file(tmp_path)), "--card", str(card)]) == 0
    suite = open_workspace().repo.get(Suite, "acc")
    assert suite.max_steps == 4 and suite.bindings[0].target == "tests.data.toy_tools"
    card.write_text("name: acc\nbindings:\n  - kind: python\n    target: 'rm -rf /'\n")
    assert main(["tasks", "import", str(_task_file(tmp_path)), "--card", str(card)]) == 2
