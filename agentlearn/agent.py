"""The agent: a LangGraph graph that runs a batch of tool-calling tasks and stores every trial.

    recall -> prompt -> act -> execute --(an episode still acting)--> act
                                       \\-> verify -> store --(failed, trials left, Reflexion on)--> reflect -> recall
                                                          \\-> END

An episode acts in a loop when its tools execute (the suite's bindings, or the environments its task
names: agentlearn.tools) or its task has further user turns: each step the model either calls up to
Suite.max_calls offered tools, whose results come back as tool messages, or answers in words; an answer
ends the user turn (the next user message, if any, opens the next), and Suite.max_steps steps without
one end the episode. Episodes of a batch may be at different steps: each row has its own conversation
and grammar. A single-call suite without executed tools keeps one step and a made-up observation.

The state is a batch of episodes (one per task), so `act` sends every prompt of a trial to the model at
once: the embedded model generates them together (llm.LocalChatModel.complete), an OpenAI-compatible
endpoint gets them as concurrent requests. `recall` gathers the memory the method asks for (retrieved
exemplars, active insights, this episode's last reflections), `prompt` renders it with the suite's
instruction and the task (prompts.build_prompt), `act` calls the model (constrained to the suite's
tool-call grammar unless turned off), `verify` parses the call, checks it against the tool's schema and
grades it with each argument's kind, `store` writes the trajectories with everything they were given.
With Reflexion the failed episodes write reflections and go round again, together, up to `trials` times.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph

from agentlearn import adapters, arg_kinds, graders, grammar, optional_args, prompts, tools
from agentlearn.accounts import Identity
from agentlearn.answer_values import with_fractions, with_typed_numbers
from agentlearn.episode_text import is_episode
from agentlearn.memory import exemplars, insights, playbook, reflexion, retrieval, tool_retrieval
from agentlearn.methods import METHODS, RunOptions
from agentlearn.paths import confined
from agentlearn.tasks import tools_added_at, tools_at
from agentlearn.toolcall import (
    format_tool_call,
    format_tool_calls,
    parse_tool_call,
    parse_tool_calls,
    without_repeats,
)
from agentlearn.workspace import Workspace
from storage.records import (
    Exemplar,
    Insight,
    MemoryUsed,
    Message,
    Reflection,
    Step,
    Suite,
    Task,
    ToolBinding,
    ToolCall,
    ToolResult,
    Trajectory,
    Verdict,
    new_id,
)

__all__ = ["METHODS", "Agent", "RunOptions", "reference_calls", "replay_from", "run_task", "run_tasks", "token_budget"]

Progress = Callable[[int, int, list[Trajectory], float], None]
Answered = Callable[[int, int, str], None]  # (tasks answered so far, tasks in all, what is happening)


@dataclass
class Episode:
    """One task's trials within a batch."""

    task: Task
    episode_id: str = field(default_factory=new_id)
    trial: int = 0
    memory: MemoryUsed = field(default_factory=MemoryUsed)
    shots: list[Exemplar] = field(default_factory=list)
    rules: list[Insight] = field(default_factory=list)
    notes: list[Reflection] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)  # the tools offered (all, or a shortlist)
    prompt: list[Message] = field(default_factory=list)
    output: str = ""
    constrained: bool = False
    trajectory: Trajectory | None = None
    done: list[Trajectory] = field(default_factory=list)
    finished: bool = False
    # The loop (episodes whose tools execute or whose task has more user turns):
    looping: bool = False
    max_calls: int = 1  # calls one step may make (several in one answer when > 1, looping or not)
    may_decline: bool = False  # a one-answer task may be answered in words (Suite.may_decline)
    max_steps: int = 10
    bindings: list[ToolBinding] = field(default_factory=list)
    runner: tools.EpisodeTools | None = None
    steps: list[Step] = field(default_factory=list)
    turn: int = 0
    turn_steps: int = 0  # steps taken in the current user turn
    user: str = ""  # the next user turn's message, until the step that answers it records it
    acting: bool = False
    seconds: float = 0.0  # the model's time for the latest act
    kept: list[Step] = field(default_factory=list)  # replay: steps re-executed before acting, then the loop goes on
    fixed_prompt: bool = False  # replay: the stored prompt is reused, memory is not recalled again


class State(TypedDict, total=False):
    episodes: list[Episode]


def _to_langchain(messages: list[Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in messages]


CHARS_PER_TOKEN = prompts.CHARS_PER_TOKEN
# How an executed step's observation begins when the model's output held no readable call (and no answer).
UNREADABLE = "Error: the call could not be read"
# What a step's answer is when the model's endpoint failed to answer it (an HTTP error, a timeout): the episode
# records it as that step's observation and ends the turn; the other episodes of the batch go on.
ENDPOINT_FAILED = "Error: the model endpoint did not answer"


def reference_calls(ws: Workspace, suite: str) -> list[ToolCall]:
    """The suite's reference calls: the train split's expected calls, what exemplars show."""
    return [t.expected for t in ws.repo.find(Task, suite=suite) if t.split == "train"]


def token_budget(ws: Workspace, suite: str, cap: int, calls: list[ToolCall] | None = None) -> int:
    """New tokens an answer may take: the suite's longest reference call plus a margin, within `cap`.

    Reference calls are the train split's expected calls (what exemplars show), counted at
    CHARS_PER_TOKEN characters a token (fewer than typical JSON, where a made-up value can break
    into short pieces), plus half again: a row stops at the end of its call, so room costs nothing.
    On top, room for one string to run to its grammar bound a token per character (a small model that
    repeats a digit fills its string that way; without the room the budget cut the call unparseable).
    """
    calls = reference_calls(ws, suite) if calls is None else calls
    if not calls:
        return min(cap, 128)
    longest = max(len(format_tool_call(c)) for c in calls)
    runaway = max(v for k, v in grammar.value_limits(calls).items() if not k.endswith("[]"))
    return max(32, min(cap, math.ceil(longest / CHARS_PER_TOKEN * 1.5) + 16 + runaway))


@dataclass
class Agent:
    """One configured agent: a workspace, run options and the compiled graph."""

    ws: Workspace
    options: RunOptions = field(default_factory=RunOptions)
    on_answer: Callable[[Episode], None] | None = None  # as each answer arrives, inside a batch too
    # Before each generation: how many tasks are answering and at which step (a long first batch shows work).
    on_step: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        adapter_dir, self.model_name = "", self.ws.settings.model_label
        if self.options.adapter_id.strip().lower() in (adapters.AUTO, *adapters.BASE):
            # "auto" is resolved by run_task(s), which know the suite; an agent built without one runs the base model.
            self.options.adapter_id = ""
        if self.options.adapter_id:
            adapter = adapters.find(self.ws, self.options.adapter_id)
            self.options.adapter_id = adapter.id  # runs record the adapter's id, however it was named
            # A record names the folder; only one inside the workspace is ever loaded.
            adapter_dir = str(confined(self.ws.settings.home, adapter.path, f"the folder of adapter {adapter.id}"))
        self.chat = self.ws.chat(adapter_dir=adapter_dir, temperature=self.options.temperature,
                                 seed=self.options.seed)
        self._suites: dict[str, Suite | None] = {}
        self._decoding: dict[str, tuple[int, dict[str, int], optional_args.OptionalRule]] = {}
        self._resolved: dict[str, RunOptions] = {}
        self.graph = self._compile()

    def _compile(self):
        g = StateGraph(State)
        for name in ("recall", "prompt", "act", "execute", "verify", "store", "reflect"):
            g.add_node(name, getattr(self, name))
        g.add_edge(START, "recall")
        g.add_edge("recall", "prompt")
        g.add_edge("prompt", "act")
        g.add_edge("act", "execute")
        g.add_conditional_edges("execute", self.act_or_verify, {"act": "act", "verify": "verify"})
        g.add_edge("verify", "store")
        g.add_conditional_edges("store", self.retry_or_end, {"reflect": "reflect", "end": END})
        g.add_edge("reflect", "recall")
        return g.compile()

    def suite(self, name: str) -> Suite | None:
        if name not in self._suites:
            self._suites[name] = self.ws.repo.get(Suite, name)
        return self._suites[name]

    def options_for(self, suite: str) -> RunOptions:
        """The options for a suite's tasks with every "auto" resolved (retrieval.resolve_options), read once."""
        if suite not in self._resolved:
            self._resolved[suite] = retrieval.resolve_options(self.ws, suite, self.options)
        return self._resolved[suite]

    # --- nodes: each works on every unfinished episode of the batch ----------------------------

    def recall(self, state: State) -> State:
        for ep in _active(state):
            if ep.fixed_prompt:
                continue
            task = ep.task
            o = self.options_for(task.suite)
            shots, ep.tools = [], list(task.tools)
            if o.uses_exemplars:
                shots = [s.exemplar for s in exemplars.select(self.ws, task, o.exemplar_mode, k=o.k,
                                                              tool_aware=o.tool_aware, bank_size=o.bank_size,
                                                              bank_seed=o.bank_seed)]
            if o.narrows_tools:
                ep.tools, ranked = tool_retrieval.shortlist(self.ws, task, int(o.tools), ranker=o.ranker)
                # Shots of the likeliest tool first (so nearest the task in the prompt): a small model
                # leans on the closest example.
                rank = {name: n for n, name in enumerate(ranked)}
                shots.sort(key=lambda e: rank.get(e.tool, len(rank)))
            if shots:
                shots = prompts.fit_shots(shots, self.ws.settings.exemplar_tokens)
            rules = (playbook.for_prompt(insights.active(self.ws, task.suite), self.ws.settings.playbook_tokens,
                                         exclude=o.ablate) if o.uses_insights else [])
            notes = reflexion.recent(self.ws, task.id, n=3, episode_id=ep.episode_id) if o.uses_reflexion else []
            shortlist = len(ep.tools) < len(task.tools)
            ep.memory = MemoryUsed(
                method=o.method, exemplar_ids=[s.id for s in shots], exemplar_mode=o.exemplar_mode if shots else "",
                k=o.k if shots else 0, tool_aware=o.tool_aware and bool(shots), ranker=o.ranker if o.narrows_tools else "",
                insight_ids=[r.id for r in rules],
                tools_offered=[t["name"] for t in ep.tools] if shortlist else [],
                insights_version=insights.insights_version(self.ws, task.suite) if rules else 0,
                reflections=[r.text for r in notes],
            )
            ep.shots, ep.rules, ep.notes = shots, rules, notes
        return {"episodes": state["episodes"]}

    def prompt(self, state: State) -> State:
        for ep in _active(state):
            self._start_episode(ep)
            if ep.fixed_prompt:
                self._replay_kept(ep)
                continue
            blocks = (prompts.playbook_block(playbook.grouped(ep.rules)) if ep.rules else "",
                      reflexion.prompt_block(ep.notes) if ep.notes else "")
            instruction = prompts.instruction_for(self.suite(ep.task.suite))
            shots = prompts.order_shots(ep.shots)
            if self.options.shot_seed is not None:
                random.Random(f"{self.options.shot_seed}:{ep.task.id}").shuffle(shots)
            rules = prompts.step_format_rules(ep.max_calls) if ep.looping else \
                prompts.answer_format_rules(ep.max_calls, ep.may_decline)
            ep.prompt = prompts.build_prompt(ep.task, shots, instruction, "\n\n".join(b for b in blocks if b),
                                             tools=ep.tools, rules=rules)
        return {"episodes": state["episodes"]}

    def _start_episode(self, ep: Episode) -> None:
        """Set a trial going: how it acts (one call, several, or a loop), its tools' runners, no steps yet."""
        suite = self.suite(ep.task.suite)
        ep.bindings = tools.bindings_for(suite, ep.task)
        ep.looping = bool(ep.bindings or ep.task.turns)
        ep.max_calls = suite.max_calls if suite else 1
        ep.max_steps = suite.max_steps if suite else 10
        ep.may_decline = bool(suite and suite.may_decline)
        ep.runner = self._toolbox.episode(ep.bindings, ep.task) if ep.bindings else None
        ep.steps, ep.turn, ep.turn_steps, ep.user, ep.acting = [], 0, 0, "", True
        if not ep.tools:
            ep.tools = list(ep.task.tools)
        if ep.task.held_back:  # a shortlist or the whole list, less what a later turn brings
            first = {t["name"] for t in tools_at(ep.task, 0)}
            ep.tools = [t for t in ep.tools if t["name"] in first]

    def _replay_kept(self, ep: Episode) -> None:
        """Replay: run the kept steps' calls again in this episode's fresh tools (their state follows), then act on."""
        for kept in ep.kept:
            results = [self._run(ep, call) for call in kept.calls]
            ep.steps.append(kept.model_copy(update={"results": results, "observation": _observations(results)}))
        ep.turn = ep.steps[-1].turn  # the last kept step is the corrected call
        ep.turn_steps = sum(1 for st in ep.steps if st.turn == ep.turn)

    def act(self, state: State) -> State:
        active = [ep for ep in _active(state) if ep.acting]
        if not active:
            return {"episodes": state["episodes"]}
        # New tokens an answer may generate: one call's room (token_budget) per call the answer may make. Not the
        # prompt's exemplar room (prompts.fit_shots, settings.exemplar_tokens): that caps what is read, this what
        # is written; both count tokens by prompts.CHARS_PER_TOKEN.
        budget = max(self._decoding_for(ep.task.suite)[0] * ep.max_calls for ep in active)
        offered = [self._offered(ep) for ep in active]
        on_row = (lambda i: self.on_answer(active[i])) if self.on_answer else None
        if self.on_step:
            self.on_step(len(active), max(len(ep.steps) for ep in active) + 1)
        started = time.perf_counter()
        outputs, constrained = complete(self.chat, [conversation(ep) for ep in active], offered,
                                        constrained=self.options.constrained, max_new_tokens=budget,
                                        concurrency=self.ws.settings.concurrency, on_row=on_row,
                                        steps=[_calls_per_step(ep) for ep in active],
                                        may_answer=[_may_answer(ep) for ep in active])
        seconds = time.perf_counter() - started
        for ep, out in zip(active, outputs, strict=True):
            ep.output, ep.constrained, ep.seconds = out, constrained, seconds
        return {"episodes": state["episodes"]}

    def execute(self, state: State) -> State:
        """Run each acting episode's calls and record the step; an answer (or the step limit) ends its turn."""
        for ep in _active(state):
            if not ep.acting:
                continue
            if not ep.looping:
                ep.acting = False  # one answer, graded by verify
                continue
            parsed = parse_tool_calls(ep.output)
            calls = [c.model_copy(update={"id": c.id or f"call_{len(ep.steps)}_{n}"})
                     for n, c in enumerate(self._read_calls(ep, parsed.calls))]
            results = [self._run(ep, call) for call in calls]
            note = f"{UNREADABLE}: {parsed.error}" if parsed.error and not calls else ""
            if ep.output.startswith(ENDPOINT_FAILED):
                calls, results, note = [], [], ep.output
            ep.steps.append(Step(thought=parsed.thought, action=ep.output, calls=calls, results=results,
                                 answer="" if calls or note else parsed.answer, observation=note or _observations(results),
                                 turn=ep.turn, user=ep.user, seconds=round(ep.seconds, 4)))
            ep.user, ep.turn_steps = "", ep.turn_steps + 1
            if not calls:
                self._end_turn(ep)
            elif ep.turn_steps >= ep.max_steps:
                ep.acting = False  # the step limit: the episode stops without an answer
        return {"episodes": state["episodes"]}

    def _end_turn(self, ep: Episode) -> None:
        """After an answer: the task's next user message opens the next turn, or the episode is over."""
        if ep.turn < len(ep.task.turns):
            ep.user = "\n".join(m.content for m in prompts.task_messages(ep.task.turns[ep.turn]))
            ep.turn, ep.turn_steps = ep.turn + 1, 0
            added = tools_added_at(ep.task, ep.turn)
            if added:  # a held-back tool arrives: offered from now on, and shown to the model with the message
                ep.tools = ep.tools + [t for t in added if t not in ep.tools]
                ep.user = prompts.tools_added_message(added, ep.user)
        else:
            ep.acting = False

    def _run(self, ep: Episode, call: ToolCall) -> ToolResult:
        if ep.runner is not None:
            return ep.runner.run(call)
        started = time.perf_counter()  # no tool runs: the tool layer's note on the call, as for single calls
        note = _observation(format_tool_call(call), parse_tool_call(format_tool_call(call)), ep.task)
        return ToolResult(call_id=call.id, name=call.name, content=note, error=note.startswith("Error"),
                          seconds=time.perf_counter() - started)

    def act_or_verify(self, state: State) -> str:
        return "act" if any(ep.acting for ep in _active(state)) else "verify"

    def verify(self, state: State) -> State:
        for ep in _active(state):
            task = ep.task
            if ep.looping:
                steps = ep.steps
                calls = [c for st in steps for c in st.calls]
                output = next((st.answer for st in reversed(steps) if not st.calls), steps[-1].action if steps else "")
            else:
                output = ep.output
                parsed = parse_tool_call(output)
                calls = self._read_calls(ep, parse_tool_calls(output).calls if ep.max_calls > 1 else
                                         [parsed.call] if parsed.call else [])
                steps = [Step(thought=parsed.thought, action=output, observation=_observation(output, parsed, task),
                              calls=calls if ep.max_calls > 1 else [], seconds=round(ep.seconds, 4))]
            ep.trajectory = Trajectory(
                task_id=task.id, suite=task.suite, split=task.split, prompt=ep.prompt, steps=steps,
                output=output, tool_call=calls[0] if calls else None, tool_calls=calls, model=self.model_name,
                adapter=self.options.adapter_id, memory=ep.memory, trial=ep.trial, episode_id=ep.episode_id,
                source=self.options.source, constrained=ep.constrained,
            )
            ep.trajectory.verdict = self._grade(task, ep.trajectory)
        return {"episodes": state["episodes"]}

    def _grade(self, task: Task, trajectory: Trajectory) -> Verdict:
        """The task's grader: by state turn by turn (turn_calls), by acceptable alternatives (reference), or
        by the expected call and each argument's kind; an episode is graded on its call of the expected tool."""
        if task.turn_calls:
            from agentlearn.suites import multi_turn

            return multi_turn.grade_episode(task, trajectory)
        if task.reference is not None:
            return graders.grade_task(task, trajectory.output, trajectory.tool_calls)
        suite = self.suite(task.suite)
        kinds = arg_kinds.kinds_for(suite).get(task.expected.name) if suite else None
        call = next((c for c in trajectory.tool_calls if c.name == task.expected.name), trajectory.tool_call)
        # The graders read the call's own text; a one-step answer keeps the model's whole output (its format counts).
        text = format_tool_call(call) if call is not None and (is_episode(trajectory) or call is not trajectory.tool_call) \
            else trajectory.output
        return graders.grade_task(task, text, [call] if call is not None else [], kinds=kinds)

    def store(self, state: State) -> State:
        active = _active(state)
        if self.options.store and active:
            self.ws.repo.put_many([ep.trajectory for ep in active])
            playbook.count_outcomes(self.ws, [ep.trajectory for ep in active])
        for ep in active:
            ep.done.append(ep.trajectory)
            failed = not (ep.trajectory.verdict and ep.trajectory.verdict.success)
            ep.finished = not (failed and self.options.uses_reflexion and ep.trial + 1 < self.options.trials)
        return {"episodes": state["episodes"]}

    def retry_or_end(self, state: State) -> str:
        return "reflect" if _active(state) else "end"

    def reflect(self, state: State) -> State:
        active = _active(state)
        reflexion.reflect_many(self.ws, [(ep.task, ep.trajectory) for ep in active], chat=self.chat)
        for ep in active:
            ep.trial += 1
        return {"episodes": state["episodes"]}

    def _decoding_for(self, suite: str) -> tuple[int, dict[str, int], optional_args.OptionalRule]:
        """(token budget, string and array bounds, optional arguments' rule) for a suite's answers, all from its
        train split's references, read once."""
        if suite not in self._decoding:
            train = self.ws.repo.find(Task, suite=suite, split="train")
            calls = [t.expected for t in train]
            optional = (optional_args.rule(train) if self.options.optional_args == "auto"
                        else optional_args.OptionalRule())
            self._decoding[suite] = (token_budget(self.ws, suite, self.ws.settings.max_new_tokens, calls),
                                     grammar.value_limits(calls) if calls else {}, optional)
        return self._decoding[suite]

    def _offered(self, ep: Episode) -> list[dict[str, Any]]:
        """The tools an answer may call as the grammar (or an endpoint) is given them: strings and arrays bounded."""
        return grammar.with_value_limits(ep.tools, self._decoding_for(ep.task.suite)[1])

    def _read_calls(self, ep: Episode, calls: list[ToolCall]) -> list[ToolCall]:
        """The calls an answer makes: a repeat of an earlier call dropped, at most the suite's most calls, numbers
        read as the tool means them (answer_values), and optional values the conversation does not state dropped
        where the suite's references leave them out (optional_args)."""
        optional, said = self._decoding_for(ep.task.suite)[2], _said(ep)
        read = [with_fractions(with_typed_numbers(c, ep.tools), ep.tools, said)
                for c in without_repeats(calls)[:ep.max_calls]]
        return [optional_args.stated_only(c, ep.tools, optional, said) for c in read]

    # --- entry --------------------------------------------------------------------------------

    def run_batch(self, tasks: list[Task]) -> list[list[Trajectory]]:
        """Run the tasks together (all their trials); returns each task's trials in order."""
        if not tasks:
            return []
        return self._invoke([Episode(task=t) for t in tasks])

    def _invoke(self, episodes: list[Episode]) -> list[list[Trajectory]]:
        steps = max(self._steps_per_trial(ep.task) for ep in episodes)
        with tools.Toolbox() as self._toolbox:  # MCP servers run for this batch, then stop
            self.graph.invoke({"episodes": episodes}, {"recursion_limit": (8 + 2 * steps) * self.options.trials + 8})
        return [ep.done for ep in episodes]

    def _steps_per_trial(self, task: Task) -> int:
        suite = self.suite(task.suite)
        return (suite.max_steps if suite else 10) * (1 + len(task.turns))

    def run(self, task: Task) -> list[Trajectory]:
        """Run one task (all its trials). Returns the trials in order."""
        return self.run_batch([task])[0]


def _active(state: State) -> list[Episode]:
    return [ep for ep in state["episodes"] if not ep.finished]


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


# --- talking to the model ------------------------------------------------------------------------


def complete(chat: BaseChatModel, prompts_: list[list[Message]] | list[list[BaseMessage]],
             tools: list[list[dict[str, Any]]], constrained: bool, max_new_tokens: int, concurrency: int = 4,
             on_row: Callable[[int], None] | None = None, steps: list[int] | None = None,
             may_answer: list[bool] | None = None) -> tuple[list[str], bool]:
    """The model's answers to many prompts, and whether they were decoded under the tool-call grammar.

    `on_row(i)` is called as prompt i's answer arrives (inside a batch too), for progress.

    - The embedded model generates them in batches, under the grammar when `constrained`.
    - An OpenAI-compatible endpoint gets concurrent requests (at most `concurrency` in flight); when
      `constrained`, through native tool calling with a required tool choice.
    - Any other chat model (tests' fakes) answers one prompt after another, in order.

    `steps[i]` > 0 makes prompt i a step of an episode: up to that many calls, or an answer in words (the
    embedded model's step grammar; an endpoint's tool choice "auto" instead of "required"). A row whose
    `may_answer` is False must call (the grammar has no answer branch; an endpoint gets "required").
    """
    from agentlearn.llm import LocalChatModel

    chats = [_to_langchain(p) if p and isinstance(p[0], Message) else list(p) for p in prompts_]
    steps = steps or [0] * len(chats)
    if isinstance(chat, LocalChatModel):
        dicts = [[_local_message(m) for m in c] for c in chats]
        return chat.complete(dicts, tools=tools if constrained else None, max_new_tokens=max_new_tokens,
                             on_row=on_row, steps=steps, may_answer=may_answer), constrained
    if type(chat).__name__ == "ChatOpenAI":
        return _complete_openai(chat, chats, tools, constrained, concurrency, on_row, steps, may_answer)
    answers = []
    for i, c in enumerate(chats):
        answers.append(str(chat.invoke(c).content))
        if on_row:
            on_row(i)
    return answers, False


def _complete_openai(chat: BaseChatModel, chats: list[list[BaseMessage]], tools: list[list[dict[str, Any]]],
                     constrained: bool, concurrency: int, on_row: Callable[[int], None] | None = None,
                     steps: list[int] | None = None, may_answer: list[bool] | None = None) -> tuple[list[str], bool]:
    """Requests with native tool calling (when `constrained` or a step of an episode); the rows the endpoint
    refused with tools are asked again without them, and a row that still fails reads ENDPOINT_FAILED."""
    config = {"max_concurrency": max(1, concurrency)}
    steps, may_answer = steps or [0] * len(chats), may_answer or [True] * len(chats)
    rows = list(range(len(chats)))
    answers: list[str] = [""] * len(chats)
    native = constrained or any(steps)  # an episode's steps always go through native tool calling
    if native:
        try:
            bound = [chat.bind_tools([{"type": "function", "function": t} for t in ts],
                                     tool_choice="auto" if n and a else "required")
                     for ts, n, a in zip(tools, steps, may_answer, strict=True)]
            replies = _batch_each(bound, chats, config, on_row)
        except Exception as e:  # noqa: BLE001 - a tool list the client library cannot send: every row in text
            replies = [e] * len(chats)
        for i, reply in enumerate(replies):
            if not isinstance(reply, Exception):
                answers[i] = _openai_text(reply)
        rows = [i for i, reply in enumerate(replies) if isinstance(reply, Exception)]
        if rows:
            import sys

            first = replies[rows[0]]
            print(f"[agent] {len(rows)} of {len(chats)} requests with tools failed ({type(first).__name__}: {first}); "
                  "asking them again without tools", file=sys.stderr)
    if rows:
        replies = _batch_each([chat] * len(rows), [chats[i] for i in rows], config,
                              (lambda j: on_row(rows[j])) if on_row and not native else None)
        for i, reply in zip(rows, replies, strict=True):
            answers[i] = (f"{ENDPOINT_FAILED}: {type(reply).__name__}: {reply}" if isinstance(reply, Exception)
                          else str(reply.content))
    return answers, native and len(rows) < len(chats)


def _batch_each(models: list[Any], chats: list[list[BaseMessage]], config: dict,
                on_row: Callable[[int], None] | None = None) -> list[AIMessage | Exception]:
    """Concurrent requests (at most max_concurrency in flight); `on_row(i)` as each reply arrives. A request that
    fails gives its exception in its place, so one bad answer does not lose the others."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=config["max_concurrency"]) as pool:
        futures = {pool.submit(model.invoke, chat): i for i, (model, chat) in enumerate(zip(models, chats, strict=True))}
        replies: list[Any] = [None] * len(chats)
        for future in as_completed(futures):
            i = futures[future]
            error = future.exception()
            replies[i] = error if error is not None else future.result()
            if on_row:
                on_row(i)
    return replies


def _openai_text(reply: AIMessage) -> str:
    """A reply's calls in the canonical text form (one a line), or its words when it called nothing."""
    calls = getattr(reply, "tool_calls", None) or []
    if calls:
        return format_tool_calls([ToolCall(name=c["name"], arguments=c.get("args") or {}) for c in calls])
    return str(reply.content)


# --- an episode as a conversation ------------------------------------------------------------------


def conversation(ep: Episode) -> list[BaseMessage]:
    """What the model sees at an episode's next step: the prompt, then each step's calls and their results
    as tool messages (each naming its call's id), each answer, and the next user turn's message."""
    messages = _to_langchain(ep.prompt)
    for step in ep.steps:
        if step.user:
            messages.append(HumanMessage(content=step.user))
        if step.calls:
            messages.append(AIMessage(content=step.action, tool_calls=[
                {"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"} for c in step.calls]))
            messages += [ToolMessage(content=r.content, tool_call_id=r.call_id, name=r.name) for r in step.results]
        else:
            messages.append(AIMessage(content=step.answer or step.action))
    if ep.user:
        messages.append(HumanMessage(content=ep.user))
    return messages


def _local_message(m: BaseMessage) -> dict[str, str]:
    """A message for the embedded model's chat template: calls as the text it wrote, results as tool turns."""
    if isinstance(m, ToolMessage):
        return {"role": "tool", "content": f"{m.name}: {m.content}" if m.name else str(m.content)}
    if isinstance(m, AIMessage) and m.tool_calls and not str(m.content).strip():
        text = format_tool_calls([ToolCall(name=c["name"], arguments=c["args"]) for c in m.tool_calls])
        return {"role": "assistant", "content": text}
    return {"role": {"human": "user", "ai": "assistant"}.get(m.type, m.type), "content": str(m.content)}


# Whether the first step of a user turn, in an episode whose tools execute, must call a tool. The embedded
# 135M model, offered "calls or an answer" there, answered all 8 toy episodes of bench.bench_episodes in
# prose at once (no call, nothing executed); later steps may answer.
FIRST_STEP_CALLS = True


def _said(ep: Episode) -> str:
    """The conversation's words so far that may state an argument's value: its messages (not the system's), the
    later turns' user messages reached, and the tools' results."""
    messages = [m.content for m in ep.task.input if m.role != "system"]
    messages += [m.content for turn in ep.task.turns[:ep.turn] for m in turn]
    return "\n".join(messages + [r.content for st in ep.steps for r in st.results])


def _calls_per_step(ep: Episode) -> int:
    """0 for exactly one call (the single-call grammar), else the step grammar's most calls: an episode's step,
    an answer of several calls, or one that may be given in words instead (`may_decline`)."""
    return ep.max_calls if ep.looping or ep.max_calls > 1 or ep.may_decline else 0


def _may_answer(ep: Episode) -> bool:
    """Whether this step may answer in words instead of calling: a one-answer task only where its suite may
    decline (offered words, the 135M model answered every BFCL parallel request in prose); an episode's step
    unless it is the first of a turn with tools bound (see FIRST_STEP_CALLS)."""
    if not ep.looping:
        return ep.may_decline
    return not (FIRST_STEP_CALLS and ep.runner is not None and ep.turn_steps == 0)


def _observations(results: list[ToolResult]) -> str:
    """A step's results as one text (Step.observation)."""
    return "\n".join(f"{r.name}: {r.content}" for r in results)


# --- convenience -----------------------------------------------------------------------------------


def run_task(ws: Workspace, task: Task, options: RunOptions | None = None, **fields: Any) -> list[Trajectory]:
    """Run one task with these options (and/or RunOptions fields; greedy unless temperature > 0); the trials."""
    options = (options or RunOptions()).replace(**fields) if fields else (options or RunOptions())
    return run_tasks(ws, [task], options)[0]


def run_tasks(ws: Workspace, tasks: list[Task], options: RunOptions, progress: Progress | None = None,
              chunk: int | None = None, answered: Answered | None = None) -> list[list[Trajectory]]:
    """Run many tasks with one agent, a batch at a time; `progress(i, n, trials, seconds)` after each task.

    Batches are `settings.batch_size` tasks (or `chunk`), so a stopped run keeps what it finished.
    Inside a batch `answered(a, n, message)` is called before each generation (what is being answered, so a
    long first batch shows its total and its work at once) and as each task gets its first answer (a batch
    of 16 answers takes minutes on a CPU: progress must not wait for the whole batch).
    """
    if not tasks:
        return []
    suites = sorted({t.suite for t in tasks})
    # One suite: its options resolved here, its model loaded. Tasks of several suites could want different
    # models: they run on the base model, and the agent resolves the rest per suite.
    options = retrieval.resolve_options(ws, suites[0], options) if len(suites) == 1 else \
        options.replace(adapter_id=adapters.resolve(ws, "", options.adapter_id))
    agent = Agent(ws, options)
    if options.uses_exemplars and tasks:
        for suite in suites:
            exemplars.sync_bank(ws, suite)
    size = max(1, chunk or ws.settings.batch_size)
    results: list[list[Trajectory]] = []
    first: set[str] = set()  # episodes answered at least once (a Reflexion retry is not a new task)

    def on_answer(ep: Episode) -> None:
        if ep.episode_id not in first:
            first.add(ep.episode_id)
            answered(len(first), len(tasks), "")

    def on_step(acting: int, step: int) -> None:
        what = f"answering {acting} task{'s' if acting != 1 else ''}" + (f", step {step}" if step > 1 else "")
        answered(len(first), len(tasks), what)

    agent.on_answer = on_answer if answered else None
    agent.on_step = on_step if answered else None
    started = time.perf_counter()
    for start in range(0, len(tasks), size):
        for trials in agent.run_batch(tasks[start:start + size]):
            results.append(trials)
            if progress:
                progress(len(results), len(tasks), trials, time.perf_counter() - started)
    return results


def run_with_agent(ws: Workspace, tasks: list[Task], config: retrieval.Config,
                   on_task: Callable[[int], None] = lambda done: None, tools: int | None = None,
                   ranker: str = "auto") -> list[list[Trajectory]]:
    """retrieval.choose's stage b: the agent with exemplars retrieved by `config`, batched, storing nothing."""
    options = config.options(tools, ranker).replace(store=False, source="auto")
    return run_tasks(ws, tasks, options, progress=lambda done, n, trials, seconds: on_task(done))


def replay_from(ws: Workspace, trajectory: Trajectory, step: int, call: ToolCall, *, who: Identity | None) -> Trajectory:
    """Run an episode again from a corrected call: its steps before `step` kept (their calls re-executed in
    fresh tools, so the environment reaches the same state), `call` executed at `step` in place of what the
    model did, then the loop goes on as before. Stored as a new trajectory with source "replay"."""
    from agentlearn.policy import require

    require(ws.repo, who, "label")
    task = ws.repo.get(Task, trajectory.task_id)
    if task is None:
        raise ValueError(f"trajectory {trajectory.id}: its task {trajectory.task_id!r} is no longer stored")
    if not 0 <= step <= len(trajectory.steps):
        raise ValueError(f"trajectory {trajectory.id} has {len(trajectory.steps)} steps; no step {step} to replay from")
    at = trajectory.steps[step] if step < len(trajectory.steps) else None
    corrected = Step(action=format_tool_call(call), calls=[call.model_copy(update={"id": call.id or f"call_{step}_0"})],
                     turn=at.turn if at else (trajectory.steps[-1].turn if trajectory.steps else 0),
                     user=at.user if at else "", thought="corrected by a person")
    agent = Agent(ws, RunOptions(adapter_id=trajectory.adapter or "none", constrained=trajectory.constrained,
                                 source="replay", store=False))
    episode = Episode(task=task, prompt=list(trajectory.prompt), memory=trajectory.memory, fixed_prompt=True,
                      kept=[*trajectory.steps[:step], corrected])
    [[replayed]] = agent._invoke([episode])
    replayed.episode_id = trajectory.episode_id or trajectory.id
    ws.repo.put(replayed)
    return replayed
