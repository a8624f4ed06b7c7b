"""An episode's steps read two ways: as a compact transcript (prompts) and as chat messages (training files).

An episode is a Trajectory whose steps hold the model's calls and what running them answered
(storage.records.Step). Exemplars, Reflexion, error analysis and exports all read it through here, so a
step renders the same way wherever it is shown or learned from; `step_parts` is the one walk over a
step that every text rendering of it (these prompts, a preference's stored continuation) writes out.
A single-call trajectory (one step, no executed results) is not an episode: every learning method keeps
its single-call form for it.
"""

from __future__ import annotations

import json
from typing import Any

from agentlearn.toolcall import format_tool_call, normalise_tool
from storage.records import Step, Task, ToolCall, ToolResult, Trajectory

TRUNCATED = " [...]"


def is_episode(trajectory: Trajectory) -> bool:
    """True for a multi-step run: more than one step, a later user turn, calls that were executed, or an answer
    in words (an imported run). The one rule: labeling views, exemplars, Reflexion, error analysis and exports
    read it; a single graded call (today's single-call suites, several calls included) is not an episode."""
    steps = trajectory.steps
    return len(steps) > 1 or any(s.results or s.turn or s.answer for s in steps)


def shorten(text: str, limit: int) -> str:
    """The text on one line, cut to `limit` characters (marked) when longer."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    if limit <= len(TRUNCATED):
        return text[:max(limit, 0)]
    return text[:limit - len(TRUNCATED)].rstrip() + TRUNCATED


def result_for(step: Step, n: int) -> ToolResult | None:
    """The result of the step's n-th call: matched by call id where both have one, else by position."""
    call = step.calls[n]
    if call.id:
        found = next((r for r in step.results if r.call_id == call.id), None)
        if found is not None:
            return found
    return step.results[n] if n < len(step.results) else None


def observation(result: ToolResult | None) -> str:
    """What a call answered: errors are marked as such (once: the tool layer's own errors already say "Error:")."""
    if result is None:
        return "(no result)"
    return f"Error: {result.content}" if result.error and not result.content.startswith("Error") else result.content


def user_turns(task: Task) -> list[str]:
    """The user message of each turn: the task's input for turn 0, then each later turn's messages."""
    first = "\n".join(m.content for m in task.input if m.role == "user") or "\n".join(m.content for m in task.input)
    return [first, *("\n".join(m.content for m in turn) for turn in task.turns)]


def _turn_user(task: Task | None, step: Step) -> str:
    if step.user.strip():
        return step.user
    turns = user_turns(task) if task is not None else []
    return turns[step.turn] if step.turn < len(turns) else ""


def step_parts(step: Step) -> list[tuple[str, ToolCall | ToolResult | str | None]]:
    """What a step shows, in order: ("call", ToolCall) then ("result", its ToolResult, None when none was
    kept) for each call, then ("answer", text), or ("output", the model's raw text) for a step that made
    neither a call nor an answer."""
    parts: list[tuple[str, ToolCall | ToolResult | str | None]] = []
    for n, call in enumerate(step.calls):
        parts += [("call", call), ("result", result_for(step, n))]
    if step.answer.strip():
        parts.append(("answer", step.answer))
    elif not step.calls and step.action.strip():
        parts.append(("output", step.action))
    return parts


# --- the compact transcript: prompts (exemplars, Reflexion) -----------------------------------------

PROMPT_LABELS = {"call": "Call", "result": "Observation", "answer": "Answer", "output": "Output"}


def step_lines(step: Step, observation_chars: int, number: int | None = None) -> list[str]:
    """One step as lines: each call and its shortened observation, or the answer (labels numbered if asked)."""
    no = "" if number is None else f" {number}"
    lines = []
    for kind, value in step_parts(step):
        if kind == "call":
            text = format_tool_call(value)
        else:
            text = shorten(observation(value) if kind == "result" else value, observation_chars)
        lines.append(f"{PROMPT_LABELS[kind]}{no}: {text}")
    return lines


def transcript(steps: list[Step], task: Task | None, observation_chars: int, first_user: str = "") -> str:
    """The steps as a compact transcript: each user turn's request, each call and its observation, answers."""
    lines: list[str] = []
    turn = None
    for step in steps:
        if step.turn != turn:
            turn = step.turn
            user = first_user if turn == 0 and first_user else _turn_user(task, step)
            if user.strip():
                lines.append(f"User: {shorten(user, max(observation_chars, 300))}")
        lines += step_lines(step, observation_chars)
    return "\n".join(lines)


# --- chat messages: training files (TRL's tool-calling format and OpenAI's) -------------------------


def call_id(step_no: int, n: int, call: ToolCall) -> str:
    """The call's own id where its source gave one, else a stable one from its place in the episode."""
    return call.id or f"call_{step_no}_{n}"


def assistant_calls(calls: list[ToolCall], step_no: int, openai: bool, content: str = "") -> dict[str, Any]:
    """An assistant message with tool calls: TRL's (arguments as an object) or OpenAI's (a JSON string)."""
    tool_calls = []
    for n, call in enumerate(calls):
        arguments: Any = json.dumps(call.arguments, ensure_ascii=False) if openai else call.arguments
        tool_calls.append({"id": call_id(step_no, n, call), "type": "function",
                           "function": {"name": call.name, "arguments": arguments}})
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": tool_calls}
    if openai and not content:
        del message["content"]  # OpenAI's form leaves it out rather than empty
    return message


def tool_message(call: ToolCall, result: ToolResult | None, step_no: int, n: int, openai: bool) -> dict[str, Any]:
    """The tool's answer to one call: OpenAI's names the call id; TRL's the tool (what chat templates read)."""
    if openai:
        return {"role": "tool", "tool_call_id": call_id(step_no, n, call), "content": observation(result)}
    return {"role": "tool", "name": call.name, "content": observation(result)}


def step_messages(steps: list[Step], task: Task, openai: bool, start: int = 0) -> list[dict[str, Any]]:
    """Chat messages after the task's first request: later users' turns, calls, tool answers and answers.

    `start` is the index of steps[0] in its episode (call ids count from there).
    """
    out: list[dict[str, Any]] = []
    turn = steps[0].turn if steps else 0
    for no, step in enumerate(steps, start):
        if step.turn != turn:
            turn = step.turn
            out.append({"role": "user", "content": _turn_user(task, step)})
        if step.calls:
            out.append(assistant_calls(step.calls, no, openai))
            out += [tool_message(call, result_for(step, n), no, n, openai) for n, call in enumerate(step.calls)]
        elif step.answer.strip() or step.action.strip():
            out.append({"role": "assistant", "content": step.answer if step.answer.strip() else step.action})
    return out


def openai_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tools as OpenAI's and TRL's `tools` list: {"type": "function", "function": {name, description, parameters}}."""
    return [{"type": "function", "function": normalise_tool(t)} for t in tools]


def episode_tools(task: Task, trajectory: Trajectory | None) -> list[dict[str, Any]]:
    """The tools the episode's agent was offered: an imported episode's own, else its task's."""
    return openai_tools(trajectory.tools if trajectory is not None and trajectory.tools else task.tools)

