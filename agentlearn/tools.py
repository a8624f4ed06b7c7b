"""Tools that execute: a suite's bindings (storage.records.ToolBinding) turned into calls that really run.

A binding is server-side configuration an admin set (the CLI's `suites bind`, a suite card); a task file
never names code. Three kinds:

- "python": `target` "module:function" binds that function (to the tool named in `tools`, or its own
  name); a bare "module" binds the module's functions named like the tools (`tools`, or every tool of
  the suite the module has).
- "environment": `target` names a class of agentlearn.suites.environments (a fixed list, never code from
  a file); one instance per episode, made from the task's initial state, whose methods are the tools.
  A task whose `environment` names such a class is bound to it without a binding on its suite.
- "mcp": `target` is the command line of a stdio MCP server, started once per batch (`Toolbox`), its
  tools listed, each call sent with the binding's timeout, the server stopped when the batch closes.

Every call runs with its binding's timeout; an exception or a timeout becomes a ToolResult with
`error=True` and "Error: ..." the agent reads on its next step, never a crash of the batch. An
environment's method that returns {"error": ...} (BFCL's way of refusing) is an error too, in its own words. A Python
call that overruns keeps running in its (daemon) thread: Python cannot stop a thread, and the episode
must go on.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from agentlearn import policy
from agentlearn.accounts import Identity
from agentlearn.workspace import Workspace
from storage.records import Suite, Task, ToolBinding, ToolCall, ToolResult

MAX_RESULT_CHARS = 4000  # an observation longer than this is cut: it goes back into a small model's prompt
# Seconds an MCP server may take to start and list its tools (a Python server importing the SDK took over
# 2 s on a busy 2-core machine); each call then has its binding's own timeout.
MCP_START_S = 60.0


def environment_names() -> tuple[str, ...]:
    """The environment classes a binding or a task may name (agentlearn.suites.environments.NAMES)."""
    from agentlearn.suites import environments

    return tuple(environments.NAMES)


def check_binding(binding: ToolBinding) -> ToolBinding:
    """The binding if its target is well formed for its kind; ValueError saying what is wrong otherwise."""
    target = binding.target.strip()
    if not target:
        raise ValueError(f"a {binding.kind} binding needs a target")
    if binding.kind == "python":
        module, _, function = target.partition(":")
        if not all(part.isidentifier() for part in module.split(".")) or (function and not function.isidentifier()):
            raise ValueError(f"python target {target!r} must be 'module' or 'module:function'")
        if function and len(binding.tools) > 1:
            raise ValueError(f"python target {target!r} is one function: bind it to one tool, not {len(binding.tools)}")
    elif binding.kind == "environment":
        names = environment_names()
        if target not in names:
            raise ValueError(f"unknown environment {target!r}; choose one of {', '.join(names)}")
    elif not shlex.split(target):
        raise ValueError(f"mcp target {target!r} is not a command line")
    return binding.model_copy(update={"target": target})


def bind(ws: Workspace, suite: str, binding: ToolBinding, *, who: Identity | None) -> Suite:
    """Bind some of a suite's tools (or all: `binding.tools` empty); replaces a binding of the same kind and
    target and takes the named tools from any other. `who` needs the bind_tools action."""
    policy.require(ws.repo, who, "bind_tools")
    record = _suite(ws, suite)
    binding = check_binding(binding)
    known = {t.get("name") for t in record.tools}
    unknown = [name for name in binding.tools if known and name not in known]
    if unknown:
        raise ValueError(f"suite {suite!r} has no tool {unknown[0]!r}; its tools: {', '.join(sorted(known))}")
    kept = [b for b in record.bindings if (b.kind, b.target) != (binding.kind, binding.target)]
    kept = _without(kept, set(binding.tools), record) if binding.tools else []
    record = record.model_copy(update={"bindings": [*kept, binding]})
    ws.repo.put(record)
    return record


def unbind(ws: Workspace, suite: str, tools: list[str] | None = None, *, who: Identity | None) -> Suite:
    """Unbind the named tools of a suite (all of them without names). `who` needs the bind_tools action."""
    policy.require(ws.repo, who, "bind_tools")
    record = _suite(ws, suite)
    record = record.model_copy(update={"bindings": _without(record.bindings, set(tools), record) if tools else []})
    ws.repo.put(record)
    return record


def _suite(ws: Workspace, name: str) -> Suite:
    record = ws.repo.get(Suite, name)
    if record is None:
        raise ValueError(f"no suite named {name!r}")
    return record


def _without(bindings: list[ToolBinding], names: set[str], suite: Suite) -> list[ToolBinding]:
    """The bindings with `names` taken out (a binding of all tools keeps the suite's others); emptied ones dropped."""
    everything = [t.get("name", "") for t in suite.tools]
    out = []
    for b in bindings:
        serves = b.tools or everything
        left = [n for n in serves if n not in names]
        if len(left) == len(serves):
            out.append(b)
        elif left:
            out.append(b.model_copy(update={"tools": left}))
    return out


def bindings_for(suite: Suite | None, task: Task) -> list[ToolBinding]:
    """Where the task's tools run: its suite's bindings, then the environments the task names."""
    bound = list(suite.bindings) if suite else []
    if task.environment:
        names = environment_names()
        bound += [ToolBinding(kind="environment", target=name) for name in task.environment if name in names]
    return bound


def _content(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + f" ... [{len(text)} chars, cut]"


def _error(call: ToolCall, message: str, seconds: float | None = None) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=f"Error: {message}", error=True, seconds=seconds)


def run_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """fn() in a daemon thread, waited on for `timeout_s`; TimeoutError if it has not returned by then."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller, whatever it was
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _call_python(fn: Callable[..., Any], call: ToolCall, timeout_s: float,
                 refused: Callable[[Any], bool] = lambda value: False) -> ToolResult:
    """Run one call; `refused(value)` says whether a value returned (not raised) is the tool's own error."""
    started = time.perf_counter()
    try:
        value = run_with_timeout(lambda: fn(**call.arguments), timeout_s)
    except TimeoutError as e:
        return _error(call, f"{call.name} timed out: {e}", time.perf_counter() - started)
    except Exception as e:  # a tool's failure is an observation for the agent
        return _error(call, f"{call.name} raised {type(e).__name__}: {e}", time.perf_counter() - started)
    return ToolResult(call_id=call.id, name=call.name, content=_content(value), error=refused(value),
                      seconds=time.perf_counter() - started)


def _environment_refused(value: Any) -> bool:
    """BFCL's environment classes answer misuse with {"error": "..."} instead of raising: a tool error too.

    The content stays the class's own text: BFCL's grader compares results as the environment wrote them."""
    return isinstance(value, dict) and "error" in value


def python_functions(binding: ToolBinding, tool_names: list[str]) -> dict[str, Callable[..., Any]]:
    """Tool name -> function for a python binding (imports the module)."""
    module_name, _, function = binding.target.partition(":")
    module = importlib.import_module(module_name)
    if function:
        fn = getattr(module, function, None)
        if not callable(fn):
            raise ValueError(f"python target {binding.target!r}: no function {function!r} in {module_name}")
        return {(binding.tools or [function])[0]: fn}
    names = binding.tools or tool_names
    return {name: getattr(module, name) for name in names if callable(getattr(module, name, None))}


class McpServer:
    """One stdio MCP server for a batch: started, its tools listed, called with a timeout, stopped by close()."""

    def __init__(self, command: str, start_s: float = MCP_START_S) -> None:
        from anyio.from_thread import start_blocking_portal
        from mcp.client.session import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        argv = shlex.split(command)
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._errlog = open(os.devnull, "w")  # noqa: SIM115 - open as long as the server runs
        try:
            params = StdioServerParameters(command=argv[0], args=argv[1:])
            self._streams_cm = self.portal.wrap_async_context_manager(stdio_client(params, errlog=self._errlog))
            read, write = self._streams_cm.__enter__()
            self._session_cm = self.portal.wrap_async_context_manager(ClientSession(read, write))
            self.session = self._session_cm.__enter__()
            self.portal.call(lambda: _with_timeout(self.session.initialize(), start_s))
            listed = self.portal.call(lambda: _with_timeout(self.session.list_tools(), start_s))
        except BaseException:
            self.close()
            raise
        self.tools = {t.name: {"name": t.name, "description": t.description or "", "parameters": t.input_schema}
                      for t in listed.tools}

    def call(self, call: ToolCall, timeout_s: float) -> ToolResult:
        started = time.perf_counter()
        try:
            result = self.portal.call(lambda: self.session.call_tool(call.name, call.arguments,
                                                                     read_timeout_seconds=timeout_s))
        except Exception as e:  # a timeout (MCPError) or a broken server: the agent reads it
            return _error(call, f"{call.name}: {e}", time.perf_counter() - started)
        texts = [getattr(c, "text", "") for c in result.content if getattr(c, "text", None) is not None]
        body = "\n".join(texts) if texts else _content(result.structured_content)
        seconds = time.perf_counter() - started
        if result.is_error:
            return _error(call, body or f"{call.name} failed", seconds)
        return ToolResult(call_id=call.id, name=call.name, content=_content(body), seconds=seconds)

    def close(self) -> None:
        for name in ("_session_cm", "_streams_cm", "_portal_cm"):
            cm = self.__dict__.pop(name, None)
            if cm is not None:
                try:
                    cm.__exit__(None, None, None)
                except Exception:  # noqa: BLE001 - a server that died already is stopped
                    pass
        self._errlog.close()


async def _with_timeout(awaitable: Any, timeout_s: float) -> Any:
    import anyio

    with anyio.fail_after(timeout_s):
        return await awaitable


class EpisodeTools:
    """The tools one episode may run: name -> runner. Environments are this episode's own instances."""

    def __init__(self, runners: dict[str, Callable[[ToolCall], ToolResult]]) -> None:
        self.runners = runners

    def run(self, call: ToolCall) -> ToolResult:
        """Run one call; never raises."""
        runner = self.runners.get(call.name)
        if runner is None:
            bound = ", ".join(sorted(self.runners)) or "none"
            return _error(call, f"no tool {call.name!r} runs here; tools that run: {bound}", 0.0)
        return runner(call)


class Toolbox:
    """The bindings of one batch: modules imported and MCP servers started once, environments per episode.

    Use as a context manager (or call close()): MCP servers stop when the batch ends.
    """

    def __init__(self) -> None:
        self._functions: dict[str, dict[str, Callable[..., Any]]] = {}
        self._servers: dict[str, McpServer] = {}

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop every MCP server this batch started."""
        while self._servers:
            self._servers.popitem()[1].close()

    def episode(self, bindings: list[ToolBinding], task: Task) -> EpisodeTools:
        """The runners of one episode of `task`; a binding that cannot start makes its tools answer why."""
        runners: dict[str, Callable[[ToolCall], ToolResult]] = {}
        tool_names = [t.get("name", "") for t in task.tools]
        for binding in bindings:
            try:
                runners.update(self._runners(binding, task, tool_names))
            except Exception as e:  # a binding that fails to start: its tools answer with the reason
                reason = f"{binding.kind} binding {binding.target!r} could not start: {type(e).__name__}: {e}"
                for name in binding.tools or tool_names:
                    runners.setdefault(name, lambda call, reason=reason: _error(call, reason, 0.0))
        return EpisodeTools(runners)

    def _runners(self, binding: ToolBinding, task: Task,
                 tool_names: list[str]) -> dict[str, Callable[[ToolCall], ToolResult]]:
        timeout = binding.timeout_s
        if binding.kind == "python":
            key = f"{binding.target}|{','.join(binding.tools)}"
            if key not in self._functions:
                self._functions[key] = python_functions(binding, tool_names)
            return {name: (lambda call, fn=fn: _call_python(fn, call, timeout))
                    for name, fn in self._functions[key].items()}
        if binding.kind == "environment":
            from agentlearn.suites import environments

            instance = environments.create(binding.target, task.environment.get(binding.target, {}))
            methods = {name: getattr(instance, name, None) for name in binding.tools or tool_names
                       if not name.startswith("_")}
            return {name: (lambda call, fn=fn: _call_python(fn, call, timeout, _environment_refused))
                    for name, fn in methods.items() if callable(fn)}
        server = self._servers.get(binding.target)
        if server is None:
            server = self._servers[binding.target] = McpServer(binding.target, max(timeout, MCP_START_S))
        names = [n for n in (binding.tools or server.tools) if n in server.tools]
        return {name: (lambda call, s=server: s.call(call, timeout)) for name in names}

