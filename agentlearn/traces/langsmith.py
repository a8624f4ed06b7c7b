"""LangSmith run exports to episodes: runs (JSON array, JSON Lines, or `{"runs": [...]}`) grouped by trace.

A run is what `langsmith.Client.list_runs` yields (`Run.model_dump()` / `.dict()`): id, trace_id,
parent_run_id, run_type (llm, tool, chain...), name, start_time, end_time, inputs, outputs, error,
extra, prompt_tokens, completion_tokens. An `llm` run is a model call: its inputs hold the messages
(`messages`, a list or LangChain's list of lists, as chat dicts or serialised LangChain messages), its
outputs the answer (LangChain `generations`, or an OpenAI-style message or `choices`), its
extra.invocation_params the tools and model. A `tool` run is a tool execution (its name, inputs,
outputs or error). Runs without a trace_id belong to the trace of their root run.
"""

from __future__ import annotations

import ast
from typing import Any

from agentlearn.traces import assemble
from agentlearn.traces.assemble import ModelTurn, Msg, ToolRun
from agentlearn.traces.documents import Document
from agentlearn.traces.episode import ImportedEpisode

MODEL_RUNS = ("llm", "chat_model")  # LangSmith's tracer records chat models as "llm"; other tracers as "chat_model"
MAX_LITERAL = 10_000  # longest Python-literal tool input read with ast.literal_eval


def looks_like(value: dict) -> bool:
    """True for a run, or a {"runs": [...]} export of runs (for `--format auto`)."""
    if isinstance(value.get("runs"), list):
        return bool(value["runs"]) and isinstance(value["runs"][0], dict) and looks_like(value["runs"][0])
    return "run_type" in value and "inputs" in value


def read(documents: list[Document]) -> list[ImportedEpisode]:
    """One episode per trace, traces in order of first appearance."""
    runs: list[tuple[str, dict]] = []
    for doc in documents:
        wrapped = isinstance(doc.value.get("runs"), list)
        for i, run in enumerate(doc.value["runs"] if wrapped else [doc.value]):
            where = f"{doc.where}, runs[{i}]" if wrapped else doc.where
            if not isinstance(run, dict) or "run_type" not in run or not run.get("id"):
                raise ValueError(f"{where}: not a LangSmith run (it needs 'id' and 'run_type')")
            if assemble.seconds_of(run.get("start_time")) is None:
                raise ValueError(f"{where}: start_time {str(run.get('start_time'))[:40]!r} is not an ISO 8601 time")
            runs.append((where, run))
    by_id = {str(run["id"]): run for _, run in runs}
    traces: dict[str, list[dict]] = {}
    for _, run in runs:
        traces.setdefault(_trace_of(run, by_id), []).append(run)
    out = []
    for trace_id, members in traces.items():
        turns = [_turn(r) for r in members if r["run_type"] in MODEL_RUNS]
        tool_runs = [_tool(r) for r in members if r["run_type"] == "tool"]
        root = next((r for r in members if not r.get("parent_run_id")), members[0])
        found = assemble.episode(trace_id, turns, tool_runs, fmt="langsmith", agent=str(root.get("name") or ""),
                                 request=assemble.request_of(root.get("inputs")))
        if found is not None:
            out.append(found)
    return out


def _trace_of(run: dict, by_id: dict[str, dict]) -> str:
    if run.get("trace_id"):
        return str(run["trace_id"])
    hops = 0
    while run.get("parent_run_id") and str(run["parent_run_id"]) in by_id and hops < 1000:
        run, hops = by_id[str(run["parent_run_id"])], hops + 1
    return str(run["id"])


def _duration(run: dict) -> float | None:
    return assemble.duration_of(run.get("start_time"), run.get("end_time"))


def _messages(inputs: Any) -> list[Msg]:
    found = inputs.get("messages") if isinstance(inputs, dict) else None
    if isinstance(found, list) and found and isinstance(found[0], list):  # a batch of one prompt
        found = found[0]
    return [m for m in map(assemble.message_of, found if isinstance(found, list) else []) if m is not None]


def _answer(outputs: Any) -> Msg | None:
    if not isinstance(outputs, dict):
        return None
    generations = outputs.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0][0] if isinstance(generations[0], list) and generations[0] else generations[0]
        if isinstance(first, dict):
            return (assemble.message_of(first.get("message"), "assistant")
                    or Msg(role="assistant", text=assemble.as_text(first.get("text"))))
    choices = outputs.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return assemble.message_of(choices[0].get("message"), "assistant")
    if isinstance(outputs.get("output"), dict):
        return assemble.message_of(outputs["output"], "assistant")
    return assemble.message_of(outputs, "assistant") if "content" in outputs or "tool_calls" in outputs else None


def _turn(run: dict) -> ModelTurn:
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    params = extra.get("invocation_params") if isinstance(extra.get("invocation_params"), dict) else {}
    meta = extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}
    inputs = run.get("inputs") or {}
    tools = params.get("tools") or (inputs.get("tools") if isinstance(inputs, dict) else None)
    return ModelTurn(start=assemble.seconds_of(run["start_time"]) or 0.0, input=_messages(inputs),
                     output=_answer(run.get("outputs")),
                     seconds=_duration(run), tokens_in=assemble.count_of(run.get("prompt_tokens")),
                     tokens_out=assemble.count_of(run.get("completion_tokens")),
                     model=str(params.get("model") or params.get("model_name") or meta.get("ls_model_name") or ""),
                     tools=assemble.tools_of(tools))


def _tool_input(inputs: Any) -> dict[str, Any]:
    """A tool run's arguments: its inputs, or the one `input` string LangChain writes (JSON or a Python literal)."""
    if isinstance(inputs, dict) and set(inputs) == {"input"} and isinstance(inputs["input"], str):
        text = inputs["input"]
        args = assemble.arguments_of(text)
        if args == {"input": text} and len(text) <= MAX_LITERAL:
            try:
                literal = ast.literal_eval(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                return args
            return literal if isinstance(literal, dict) else args
        return args
    return assemble.arguments_of(inputs)


def _tool(run: dict) -> ToolRun:
    outputs = run.get("outputs")
    output = outputs.get("output", outputs) if isinstance(outputs, dict) else outputs
    call_id = ""
    if isinstance(output, dict) and ("lc" in output or "tool_call_id" in output):  # a serialised ToolMessage
        message = output.get("kwargs", output)
        call_id, output = str(message.get("tool_call_id") or ""), message.get("content")
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    call_id = call_id or str(extra.get("tool_call_id") or "")
    error = run.get("error")
    return ToolRun(start=assemble.seconds_of(run["start_time"]) or 0.0, name=str(run.get("name") or ""),
                   arguments=_tool_input(run.get("inputs")), content=assemble.as_text(error or output),
                   error=bool(error),
                   seconds=_duration(run), call_id=call_id)
