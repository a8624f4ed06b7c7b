"""The agent: a LangGraph graph that runs one tool-calling task and stores every trial.

    recall -> prompt -> act -> verify -> store --(failed, trials left, reflexion on)--> reflect -> recall
                                             \\-> END

`recall` gathers the memory the method asks for (retrieved exemplars, active insights, the last
reflections of this task), `prompt` renders it with the task into chat messages, `act` calls the
model, `verify` parses the call, checks it against the tool's schema and grades it against the
expected call, `store` writes the trajectory with everything it was given. With Reflexion, a failed
trial writes a reflection and the task is tried again, up to `trials` times.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph

from agentlearn import exemplars, graders, insights, reflexion
from agentlearn.toolcall import format_tool_call, parse_tool_call
from agentlearn.workspace import Workspace
from storage.records import Adapter, Exemplar, MemoryUsed, Message, Step, Task, Trajectory, new_id

METHODS = ("none", "exemplars", "reflexion", "insights", "all")

INSTRUCTION = (
    "You are an IT help desk agent. Answer the conversation with exactly one tool call, written as\n"
    '<tool_call>{"name": "<tool name>", "arguments": {<argument>: <value>, ...}}</tool_call>\n'
    "Use only these tools and take argument values from the conversation."
)


def _tool_signature(tool: dict[str, Any]) -> str:
    # One compact line per tool: small models follow a signature better than a JSON schema dump.
    params = tool.get("parameters", {}) or {}
    required = set(params.get("required", []))
    args = []
    for name, spec in (params.get("properties") or {}).items():
        kind = spec.get("type", "any")
        if "enum" in spec:
            kind = "|".join(str(v) for v in spec["enum"])
        args.append(f"{name}{'' if name in required else '?'}: {kind}")
    desc = tool.get("description", "")
    return f"- {tool['name']}({', '.join(args)}){': ' + desc if desc else ''}"


def system_prompt(tools: list[dict[str, Any]], extra: str = "") -> str:
    """The system message: instruction, the tools as signatures, then insights/reflections if any."""
    lines = [INSTRUCTION, "", "Tools:", *(_tool_signature(t) for t in tools)]
    if extra:
        lines += ["", extra]
    return "\n".join(lines)


def task_messages(messages: list[Message]) -> list[Message]:
    """A task's conversation as the user turn the agent answers.

    A one-message request stays as it is. A longer conversation (a technician asking back, a system
    alert) becomes one transcript with each speaker named: the agent's own turns are tool calls
    only, so a technician's words must not look like something the agent said (a small model then
    answers in chat instead of calling a tool).
    """
    if len(messages) == 1 and messages[0].role == "user":
        return [Message(role="user", content=messages[0].content)]
    return [Message(role="user", content="\n".join(f"{m.role.capitalize()}: {m.content}" for m in messages))]


def build_prompt(task: Task, shots: list[Exemplar], extra: str = "") -> list[Message]:
    """The full prompt: system message, exemplars as (conversation, tool call) turns, then the task."""
    prompt = [Message(role="system", content=system_prompt(task.tools, extra))]
    for shot in shots:
        prompt += task_messages(shot.input)
        prompt.append(Message(role="assistant", content=format_tool_call(shot.call)))
    return prompt + task_messages(task.input)


def _to_langchain(messages: list[Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in messages]


@dataclass
class RunOptions:
    """How to run: which memory to use and how many Reflexion trials."""

    method: str = "none"
    k: int = 3
    exemplar_mode: str = "semantic"
    trials: int = 1
    adapter_id: str = ""
    source: str = "agent"
    temperature: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method == "reflexion" and self.trials < 2:
            self.trials = 3  # Reflexion with one trial would never use a reflection
        if self.exemplar_mode not in exemplars.MODES:
            raise ValueError(f"unknown exemplar mode {self.exemplar_mode!r}; choose one of {exemplars.MODES}")

    @property
    def uses_exemplars(self) -> bool:
        return self.method in ("exemplars", "all")

    @property
    def uses_insights(self) -> bool:
        return self.method in ("insights", "all")

    @property
    def uses_reflexion(self) -> bool:
        return self.method in ("reflexion", "all") and self.trials > 1


class State(TypedDict, total=False):
    task: Task
    trial: int
    episode_id: str
    shots: list[Exemplar]
    memory: MemoryUsed
    prompt: list[Message]
    output: str
    trajectory: Trajectory
    done: list[Trajectory]


@dataclass
class Agent:
    """One configured agent: a workspace, run options and the compiled graph."""

    ws: Workspace
    options: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        adapter_dir, self.model_name = "", self.ws.settings.model_label
        if self.options.adapter_id:
            adapter = self.ws.repo.get(Adapter, self.options.adapter_id)
            if adapter is None:
                raise ValueError(f"no adapter with id {self.options.adapter_id!r}; see `python -m agentlearn adapters`")
            adapter_dir = adapter.path
        self.chat = self.ws.chat(adapter_dir=adapter_dir, temperature=self.options.temperature,
                                 seed=self.options.seed)
        self.graph = self._compile()

    def _compile(self):
        g = StateGraph(State)
        g.add_node("recall", self.recall)
        g.add_node("prompt", self.prompt)
        g.add_node("act", self.act)
        g.add_node("verify", self.verify)
        g.add_node("store", self.store)
        g.add_node("reflect", self.reflect)
        g.add_edge(START, "recall")
        g.add_edge("recall", "prompt")
        g.add_edge("prompt", "act")
        g.add_edge("act", "verify")
        g.add_edge("verify", "store")
        g.add_conditional_edges("store", self.retry_or_end, {"reflect": "reflect", "end": END})
        g.add_edge("reflect", "recall")
        return g.compile()

    # --- nodes --------------------------------------------------------------------------------

    def recall(self, state: State) -> State:
        task, o = state["task"], self.options
        shots = [s.exemplar for s in exemplars.select(self.ws, task, o.exemplar_mode, k=o.k)] if o.uses_exemplars else []
        rules = insights.active(self.ws, task.suite) if o.uses_insights else []
        notes = reflexion.recent(self.ws, task.id, n=3, episode_id=state["episode_id"]) if o.uses_reflexion else []
        memory = MemoryUsed(
            method=o.method, exemplar_ids=[s.id for s in shots], exemplar_mode=o.exemplar_mode if shots else "",
            insight_ids=[r.id for r in rules],
            insights_version=insights.insights_version(self.ws, task.suite) if rules else 0,
            reflections=[r.text for r in notes],
        )
        extra = "\n\n".join(b for b in (insights.prompt_block(rules) if rules else "",
                                        reflexion.prompt_block(notes) if notes else "") if b)
        return {"shots": shots, "memory": memory, "prompt": build_prompt(task, shots, extra)}

    def prompt(self, state: State) -> State:
        return {}  # the prompt is built in recall; a node of its own keeps the graph readable in traces

    def act(self, state: State) -> State:
        reply = self.chat.invoke(_to_langchain(state["prompt"]))
        return {"output": str(reply.content)}

    def verify(self, state: State) -> State:
        task, output = state["task"], state["output"]
        parsed = parse_tool_call(output)
        verdict = graders.grade(output, parsed.call, task.expected, task.tools)
        observation = _observation(output, parsed, task)
        trajectory = Trajectory(
            task_id=task.id, suite=task.suite, split=task.split, prompt=state["prompt"],
            steps=[Step(thought=parsed.thought, action=output, observation=observation)],
            output=output, tool_call=parsed.call, verdict=verdict, model=self.model_name,
            adapter=self.options.adapter_id, memory=state["memory"], trial=state["trial"],
            episode_id=state["episode_id"], source=self.options.source,
        )
        return {"trajectory": trajectory}

    def store(self, state: State) -> State:
        self.ws.repo.put(state["trajectory"])
        return {"done": [*state.get("done", []), state["trajectory"]]}

    def retry_or_end(self, state: State) -> str:
        t = state["trajectory"]
        failed = not (t.verdict and t.verdict.success)
        more = state["trial"] + 1 < self.options.trials
        return "reflect" if failed and more and self.options.uses_reflexion else "end"

    def reflect(self, state: State) -> State:
        reflexion.reflect(self.ws, state["task"], state["trajectory"], chat=self.chat)
        return {"trial": state["trial"] + 1}

    # --- entry --------------------------------------------------------------------------------

    def run(self, task: Task) -> list[Trajectory]:
        """Run the task (all its trials); every trial is stored. Returns the trials in order."""
        state = self.graph.invoke({"task": task, "trial": 0, "episode_id": new_id(), "done": []},
                                  {"recursion_limit": 8 * self.options.trials + 8})
        return state["done"]


def _observation(output: str, parsed: Any, task: Task) -> str:
    """What the tool layer answers: the call it received, or why it could not run it."""
    if parsed.call is None:
        return f"No tool was called: {parsed.error}"
    names = {t["name"] for t in task.tools}
    if parsed.call.name not in names:
        return f"Error: unknown tool {parsed.call.name!r}; available: {', '.join(sorted(names))}"
    schema = graders.schema_valid(output, parsed.call, task.expected, task.tools)
    args = json.dumps(parsed.call.arguments, ensure_ascii=False)
    if schema.score < 1:
        return f"Error: {parsed.call.name} rejected the arguments {args}: {schema.reason}"
    return f"{parsed.call.name} accepted the arguments {args}"


def run_task(ws: Workspace, task: Task, method: str = "none", k: int = 3, exemplar_mode: str = "semantic",
             trials: int = 1, adapter_id: str = "", source: str = "agent", temperature: float = 0.0,
             seed: int | None = None) -> list[Trajectory]:
    """Run one task with the given memory method (greedy unless temperature > 0); returns the stored trials."""
    agent = Agent(ws, RunOptions(method=method, k=k, exemplar_mode=exemplar_mode, trials=trials,
                                 adapter_id=adapter_id, source=source, temperature=temperature, seed=seed))
    return agent.run(task)


def run_tasks(ws: Workspace, tasks: list[Task], options: RunOptions, progress=None) -> list[list[Trajectory]]:
    """Run many tasks with one agent (the model loads once); `progress(i, n, trials)` after each."""
    agent = Agent(ws, options)
    if options.uses_exemplars and tasks:
        exemplars.sync_bank(ws, tasks[0].suite)
    results = []
    started = time.perf_counter()
    for i, task in enumerate(tasks, 1):
        results.append(agent.run(task))
        if progress:
            progress(i, len(tasks), results[-1], time.perf_counter() - started)
    return results
