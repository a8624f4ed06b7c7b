"""Typed records for everything agentlearn stores.

Every record has a string `id` (a short uuid unless given) and a `created` time. Records are plain
pydantic models so that a backend only needs to store JSON objects by id, one table per kind.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_id() -> str:
    """A short random id, unique enough for one workspace."""
    return uuid.uuid4().hex[:16]


def now() -> datetime:
    """The current time in UTC (stored as ISO 8601)."""
    return datetime.now(UTC)


def store_order(record: Record) -> tuple[float, str]:
    """The stores' order, oldest first: `created`, then the id. A timestamp rather than the datetime:
    comparing aware datetimes asks each for its UTC offset, which made sorting 100k records 8x slower."""
    return record.created.timestamp(), record.id


class Record(BaseModel):
    """Base of every stored record; subclasses set `table`."""

    model_config = ConfigDict(extra="forbid")
    table: ClassVar[str] = ""
    lookup: ClassVar[tuple[str, ...]] = ()  # fields besides the common ones a database backend indexes

    id: str = Field(default_factory=new_id)
    created: datetime = Field(default_factory=now)


# --- tasks -------------------------------------------------------------------------------------


class ToolCall(BaseModel):
    """A function call: the tool's name and its JSON arguments."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The call's id where its source gave one (an OpenAI tool_call_id, a span id); left out of dumps when
    # empty, so a call without one reads, exports and compares as {"name", "arguments"}.
    id: str = Field(default="", exclude_if=lambda v: not v)


OMIT = ""  # in a CallReference's list of acceptable values: the argument may be left out (BFCL's convention)


class CallReference(BaseModel):
    """One expected call with every acceptable value of each argument (BFCL's "possible answer" form).

    `arguments["unit"] == ["units", ""]` means "units", or leaving `unit` out (OMIT).
    """

    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)


class Reference(BaseModel):
    """What a right answer to one user turn is: these calls, in any order; no calls means "call nothing"."""

    calls: list[CallReference] = Field(default_factory=list)


class Message(BaseModel):
    """One chat message. Roles other than system/user/assistant (e.g. technician) are kept."""

    role: str
    content: str


class Task(Record):
    """A tool-calling task: the conversation so far, the tools offered and the expected call.

    A multi-step task may add user turns that arrive after the agent answers (`turns`, the first turn
    being `input`), an environment the tools act on (`environment`), and per turn the reference calls
    (`turn_calls`, executed to grade by state). `reference` lists acceptable alternatives, several
    calls or none for a single-turn task; `expected` stays the one call single-call graders and
    exemplars use (the first acceptable value of each argument of the first reference call).
    """

    table: ClassVar[str] = "tasks"
    suite: str
    sample_id: str
    split: Literal["train", "heldout"]
    input: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    expected: ToolCall
    tags: list[str] = Field(default_factory=list)
    reference: Reference | None = None  # None: `expected` is the whole reference (today's suites)
    turns: list[list[Message]] = Field(default_factory=list)  # user messages of turns after the first
    turn_calls: list[list[ToolCall]] = Field(default_factory=list)  # per turn (first included), the reference calls
    # Tools not offered until a later turn (turn index -> tool names; BFCL multi_turn_miss_func): `tools` holds
    # them all, the agent offers each from its turn on, announced in that turn's user message.
    held_back: dict[int, list[str]] = Field(default_factory=dict)
    # The environment's name (a key of agentlearn.suites.environments.NAMES, never code) -> its initial state.
    environment: dict[str, Any] = Field(default_factory=dict)


ArgKind = Literal["categorical", "extractive", "free_text"]
# How an adapter is trained: declared once (Job.method), read by agentlearn.methods and training.
TrainingMethod = Literal["sft", "dpo", "grpo"]


class ToolBinding(BaseModel):
    """Where some of a suite's tools run. Set by an admin on the server, never read from an imported file.

    kind "python": `target` is "module:function" (one callable per tool, named by `tools`, or the
    module's functions of the tools' names); "environment": `target` names a class of
    agentlearn.suites.environments.NAMES (one instance per episode, made from the task's initial state);
    "mcp": `target` is the command line of a stdio MCP server.
    """

    kind: Literal["python", "environment", "mcp"]
    target: str
    tools: list[str] = Field(default_factory=list)  # the tools it serves; empty: all it offers
    timeout_s: float = Field(default=10.0, gt=0, le=600)  # per call


DEFAULT_ERROR_CATEGORIES = ("wrong tool", "wrong argument", "missing argument", "invented value", "format")


class Suite(Record):
    """A named set of tasks with its tools, how it was split, and what the agent is told about it."""

    table: ClassVar[str] = "suites"
    name: str
    description: str = ""
    instruction: str = ""  # the agent's role and rules; empty means prompts.DEFAULT_INSTRUCTION
    tools: list[dict[str, Any]] = Field(default_factory=list)
    heldout_fraction: float = 0.5
    source: str = ""  # file it was imported from, or "builtin"
    # tool name -> argument name -> kind, as inferred at import (arg_kinds.infer)...
    arg_kinds: dict[str, dict[str, ArgKind]] = Field(default_factory=dict)
    # ...and as a person set it in the suite card; an override wins over the inferred kind.
    arg_kind_overrides: dict[str, dict[str, ArgKind]] = Field(default_factory=dict)
    # The retrieval chosen by `auto` (retrieval.choose): mode, k, tool_aware, and the figures behind it.
    retrieval: dict[str, Any] = Field(default_factory=dict)
    # How many different people must label each of its trajectories before the queue stops offering it.
    overlap: int = Field(default=1, ge=1, le=5)
    # The labeling rubric: what a failure can be ticked as, and the owner's guidance (Markdown) for labelers.
    error_categories: list[str] = Field(default_factory=lambda: list(DEFAULT_ERROR_CATEGORIES))
    guidelines: str = ""
    # The suite's model: the id of the promoted LoRA adapter the agent uses by default ("" = the base model).
    adapter: str = ""
    # How its tools execute (server-side configuration set by an admin; none: calls are graded, not run).
    bindings: list[ToolBinding] = Field(default_factory=list)
    max_steps: int = Field(default=10, ge=1, le=100)  # model turns per user turn before the episode stops
    max_calls: int = Field(default=1, ge=1, le=16)  # calls one answer may make (1: today's single call)
    # Some requests are rightly answered without a call (BFCL irrelevance): the agent may answer in words.
    may_decline: bool = False


# --- runs ----------------------------------------------------------------------------------------


class ToolResult(BaseModel):
    """What running one call answered: its text, whether it failed (an exception, a timeout), how long it took."""

    call_id: str = ""
    name: str = ""
    content: str = ""
    error: bool = False
    seconds: float | None = None


class Step(BaseModel):
    """One model turn of an episode: what the model said and called, and what each call answered.

    A step with `calls` and `results` is an executed step; one with `answer` ended its user turn.
    Single-call suites without executed tools keep one step whose `observation` is the verifier's note.
    """

    thought: str = ""
    action: str = ""  # the raw text the model produced
    observation: str = ""  # what the tool layer answered, as one text (all results, or the verifier's note)
    calls: list[ToolCall] = Field(default_factory=list)
    results: list[ToolResult] = Field(default_factory=list)  # one per call, in order
    answer: str = ""  # the text the model answered with, when it called nothing
    turn: int = 0  # the user turn it belongs to (0: the task's input)
    user: str = ""  # the user message that opened this turn, on the turn's first step (imported traces)
    seconds: float | None = None  # the model's time for this step
    tokens_in: int | None = None
    tokens_out: int | None = None


class ArgGrade(BaseModel):
    """How one argument of a call was graded under its kind's rule."""

    name: str
    kind: str  # categorical | extractive | free_text
    status: Literal["right", "wrong", "missing", "unexpected"]
    score: float  # 1 or 0; for free text the similarity itself
    expected: Any = None
    got: Any = None


class Verdict(BaseModel):
    """The automatic verifier's result for one trajectory."""

    success: bool
    reward: float
    reason: str
    scores: dict[str, float] = Field(default_factory=dict)  # grader name -> score
    arguments: list[ArgGrade] = Field(default_factory=list)  # per argument, when the name was right


class MemoryUsed(BaseModel):
    """What the agent was given besides the task: needed to learn from and to audit a run."""

    method: str = "none"
    exemplar_ids: list[str] = Field(default_factory=list)
    exemplar_mode: str = ""
    insight_ids: list[str] = Field(default_factory=list)
    insights_version: int = 0
    reflections: list[str] = Field(default_factory=list)
    tools_offered: list[str] = Field(default_factory=list)  # a tool shortlist, when not every tool was offered
    k: int = 0  # exemplars asked for (the suite's choice when the mode was auto); fewer may exist
    tool_aware: bool = False
    ranker: str = ""  # the tool ranker that ranked the tools to offer (and ordered the shots), when one did


class Trajectory(Record):
    """One run of the agent on one task (one Reflexion trial)."""

    table: ClassVar[str] = "trajectories"
    task_id: str
    suite: str
    split: str
    prompt: list[Message] = Field(default_factory=list)  # the exact messages sent to the model
    steps: list[Step] = Field(default_factory=list)
    output: str = ""  # the final answer's raw text (single-call suites: the one model output)
    tool_call: ToolCall | None = None  # the answer's first call (single-call graders, exemplars)
    tool_calls: list[ToolCall] = Field(default_factory=list)  # every call of a single-turn answer (several or none)
    verdict: Verdict | None = None
    model: str = ""
    adapter: str = ""
    memory: MemoryUsed = Field(default_factory=MemoryUsed)
    trial: int = 0
    episode_id: str = ""  # trials of one Reflexion episode share it
    source: str = "agent"  # agent | import | eval | traces | collect | proxy
    constrained: bool = False  # generated under the suite's tool-call grammar
    trace_id: str = ""  # imported, collected or proxied episodes: the trace or conversation id they came from
    tools: list[dict[str, Any]] = Field(default_factory=list)  # imported episodes: the tools their agent was offered


class Span(Record):
    """One OpenTelemetry span as `collect` received it, kept until its trace becomes an episode.

    The id is "<trace id>:<span id>", so a span sent twice is stored once. Collectors keep no state of
    their own: every collector on one store sees every span, so halves of a trace sent to two of them
    make one episode. `status` turns "assembled" when the episode was (re)built with this span in it.
    Spans are looked up by trace: a database backend indexes `trace_id` (and `status`, as for every kind).
    """

    table: ClassVar[str] = "spans"
    lookup: ClassVar[tuple[str, ...]] = ("trace_id",)
    trace_id: str
    span_id: str
    parent_id: str = ""
    suite: str = ""  # the suite the collector was told to use ("" = the service's name)
    sender: str = ""  # the account whose ingest token sent it ("" = the local user, no accounts)
    data: dict[str, Any] = Field(default_factory=dict)  # the span as traces.otlp.spans_from_otlp_json gives it
    status: Literal["open", "assembled"] = "open"


# --- human feedback ------------------------------------------------------------------------------


class Label(Record):
    """A person's judgement of a trajectory. Two people labeling = two records."""

    table: ClassVar[str] = "labels"
    trajectory_id: str
    annotator: str
    verdict: Literal["success", "fail"]
    score: int | None = Field(default=None, ge=1, le=5)
    comment: str = ""
    step_flags: list[int] = Field(default_factory=list)  # indices of steps flagged as wrong
    categories: list[str] = Field(default_factory=list)  # the suite's error categories the person ticked
    seconds: float | None = None  # from opening the item (its claim) to submitting; None when unknown


class Claim(Record):
    """A person has a trajectory open in the labeling queue; others skip it until `expires`.

    One claim per person (its id is derived from the name): opening the next item replaces it.
    """

    table: ClassVar[str] = "claims"
    trajectory_id: str
    annotator: str
    since: datetime  # when this person opened this item (time per item is measured from here)
    expires: datetime


class Resolution(Record):
    """A reviewer's ruling on a trajectory people disagreed about: the verdict learning uses from then on."""

    table: ClassVar[str] = "resolutions"
    trajectory_id: str
    reviewer: str
    verdict: Literal["success", "fail"]
    note: str = ""


class Correction(Record):
    """A person's fix of a run's call: the chosen answer for its task (SFT) and over the run's own (DPO)."""

    table: ClassVar[str] = "corrections"
    trajectory_id: str
    task_id: str
    suite: str
    author: str
    call: ToolCall
    note: str = ""
    step: int = 0  # the step whose call it corrects (replaying from there shows what follows)
    add_alternative: bool = False  # also accept the corrected values as alternatives in the task's reference


class Preference(Record):
    """A pairwise choice between two responses to the same prompt."""

    table: ClassVar[str] = "preferences"
    task_id: str = ""
    prompt: list[Message]
    response_a: str  # as shown on the left
    response_b: str  # as shown on the right
    trajectory_a: str = ""
    trajectory_b: str = ""
    swapped: bool = False  # True if the pair's first source was shown on the right
    choice: Literal["A", "B", "tie", "both_bad"]
    corrected: str = ""  # "edit to fix": becomes the chosen response
    annotator: str
    step: int = 0  # two continuations of one episode from this step (0: whole answers)


# --- learning without weights ------------------------------------------------------------------


class InsightChange(BaseModel):
    """One entry in an insight's history."""

    at: datetime = Field(default_factory=now)
    by: str
    operation: str  # ADD | EDIT | AGREE | REMOVE | MERGE | MERGED | PROMOTE | DEMOTE | MANUAL_EDIT | RESTORE | OUTCOMES
    text: str
    importance: int
    evidence: list[str] = Field(default_factory=list)  # trajectory ids
    proposal_id: str = ""


class Insight(Record):
    """A playbook bullet: an ExpeL rule with its importance, ACE-style outcome counters and full history.

    helpful / harmful / neutral count the train runs that were shown the bullet (memory/playbook.py).
    """

    table: ClassVar[str] = "insights"
    suite: str
    text: str
    importance: int = 2
    status: Literal["active", "removed"] = "active"
    section: str = "domain rules"  # memory.playbook.SECTIONS
    helpful: int = 0
    harmful: int = 0
    neutral: int = 0
    history: list[InsightChange] = Field(default_factory=list)


class InsightProposal(Record):
    """An ADD/EDIT/REMOVE/AGREE/MERGE operation waiting for (or past) human review."""

    table: ClassVar[str] = "insight_proposals"
    suite: str
    operation: Literal["ADD", "EDIT", "REMOVE", "AGREE", "MERGE"]
    target_id: str = ""  # insight id for EDIT/REMOVE/AGREE/MERGE (MERGE: the bullet that stays)
    merge_ids: list[str] = Field(default_factory=list)  # MERGE: the other bullets folded into the target
    text: str
    section: str = ""  # the playbook section an ADD goes to ("" = inferred from the text)
    source: str = "model"  # model (ExpeL), curator (ACE deltas), errors (error analysis), person, attribution
    rationale: str = ""  # why it was drafted, in words (counts, the pattern, who asked)
    pattern: str = ""  # error analysis: the failure pattern's key, so a rerun does not propose it twice
    evidence: list[str] = Field(default_factory=list)
    status: Literal["pending", "approved", "rejected"] = "pending"
    reviewer: str = ""
    reviewed: datetime | None = None
    raw: str = ""  # the line the model wrote


class Reflection(Record):
    """A Reflexion plan written after a failed trial of a task."""

    table: ClassVar[str] = "reflections"
    task_id: str
    trajectory_id: str
    episode_id: str = ""
    trial: int = 0
    text: str


class Exemplar(Record):
    """A few-shot example: a task input with a correct call, or a whole successful episode (reference or learned)."""

    table: ClassVar[str] = "exemplars"
    suite: str
    task_id: str
    kind: Literal["reference", "learned", "manual"]
    input: list[Message]
    call: ToolCall
    tool: str  # the call's tool name, for retrieval by type
    tags: list[str] = Field(default_factory=list)
    trajectory_id: str = ""
    active: bool = True
    # A whole episode: the steps that led to success (calls, observations, the answer); `call` is its
    # first call. Empty for a single-call exemplar.
    steps: list[Step] = Field(default_factory=list)
    # A one-answer task answered with several calls (BFCL parallel): all of them in order, `call` the first.
    # Empty when the answer is the one call.
    calls: list[ToolCall] = Field(default_factory=list)

    def answer_calls(self) -> list[ToolCall]:
        """The calls the exemplar's answer makes: `calls`, or the one `call`."""
        return list(self.calls) or [self.call]


# --- learning with weights ---------------------------------------------------------------------


class DatasetExport(Record):
    """A written training file with its lineage."""

    table: ClassVar[str] = "exports"
    kind: str  # sft | dpo | grpo | openai-sft | openai-dpo
    suite: str
    path: str
    rows: int
    trajectory_ids: list[str] = Field(default_factory=list)
    label_ids: list[str] = Field(default_factory=list)
    preference_ids: list[str] = Field(default_factory=list)
    exemplar_ids: list[str] = Field(default_factory=list)
    correction_ids: list[str] = Field(default_factory=list)


class JobEvent(BaseModel):
    """One progress event of a training job (a TRL log line)."""

    step: int
    at: datetime = Field(default_factory=now)
    values: dict[str, float] = Field(default_factory=dict)


class Job(Record):
    """What a training job trains and what it made: config, logged metrics (the charts), steps, adapter.

    A job started here runs as a `train` child process (`process_id`): its status, heartbeat, progress,
    ETA, log and stop are that Process record's (agentlearn.training.jobs.get reads them from it).
    """

    table: ClassVar[str] = "jobs"
    method: TrainingMethod
    config: dict[str, Any]
    config_path: str = ""
    export_id: str = ""
    process_id: str = ""
    # How a job without a process ended: an imported bundle (trained elsewhere), or a store written before
    # jobs ran as processes. A job with a process_id reads these three from its Process.
    status: Literal["queued", "running", "stopping", "succeeded", "failed", "stopped"] = "queued"
    error: str = ""
    finished: datetime | None = None
    step: int = 0  # steps trained, written when the job ends (the Process counts them while it runs)
    max_steps: int = 0
    events: list[JobEvent] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    adapter_id: str = ""
    # Read from stores written before jobs ran as processes; not written any more.
    pid: int | None = None
    heartbeat: datetime | None = None
    step_at: datetime | None = None
    log_path: str = ""


class Adapter(Record):
    """A trained LoRA adapter the agent can run with."""

    table: ClassVar[str] = "adapters"
    name: str
    path: str
    base_model: str
    job_id: str = ""
    method: str = ""


class EvalRun(Record):
    """One evaluation of a method (and adapter) on a suite split."""

    table: ClassVar[str] = "eval_runs"
    suite: str
    split: str
    method: str
    exemplar_mode: str = ""
    k: int = 0
    adapter: str = ""
    model: str = ""
    n: int
    name_accuracy: float
    call_accuracy: float  # name right and every argument right under its kind's rule
    args_score: float = 0.0  # mean per-argument score over name-correct calls
    exact_accuracy: float = 0.0  # name and arguments exactly as expected (JSON equality)
    # task id -> {"name": 0/1, "call": 0/1, "exact": 0/1, "args": score or -1 if the name was wrong}:
    # what paired statistics (stats.paired) compare between two runs on the same tasks.
    results: dict[str, dict[str, float]] = Field(default_factory=dict)
    # "tool.argument" -> [right, graded]: per-argument accuracy over name-correct calls
    per_argument: dict[str, list[int]] = Field(default_factory=dict)
    constrained: bool = False
    temperature: float = 0.0
    tool_aware: bool = False
    tools: int = 0  # how many likeliest tools were offered (0 = every tool)
    ranker: str = ""  # which tool ranker chose them (tool_retrieval.RANKERS), when tools > 0
    group: str = ""  # runs made together (repeats, a learning curve) share it
    bank_size: int | None = None  # exemplars the bank was cut to (learning curve), None = all
    ablated: list[str] = Field(default_factory=list)  # insight ids left out of the playbook (A/B of a bullet)
    trajectory_ids: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    # The options the run used, with every "auto" resolved (methods.RunOptions.to_dict); {} before they were kept.
    options: dict[str, Any] = Field(default_factory=dict)


class ProgressEvent(BaseModel):
    """One progress report of a child process: how much of its work was done, and when."""

    done: int
    total: int
    at: datetime = Field(default_factory=now)


class Process(Record):
    """A child `python -m agentlearn ...` process started by the dashboard, and its progress."""

    table: ClassVar[str] = "processes"
    kind: str  # run | eval | demo | curve | auto | improve | train | ...
    args: list[str] = Field(default_factory=list)
    by: str = ""  # who started it: the child acts for this account (agentlearn.policy)
    status: Literal["running", "succeeded", "failed", "stopped"] = "running"
    pid: int | None = None
    done: int = 0
    total: int = 0
    message: str = ""
    log_path: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    heartbeat: datetime | None = None
    finished: datetime | None = None
    request: str = ""  # "stop_and_save": asked to stop at its next step and keep its work (processes.stop)
    # The first report and the latest ones (agentlearn.processes keeps a bounded list): the ETA's rate.
    events: list[ProgressEvent] = Field(default_factory=list)


class LearningCurve(Record):
    """Accuracy against the number of experiences in the bank, several draws per size."""

    table: ClassVar[str] = "curves"
    suite: str
    split: str = "heldout"
    method: str = "exemplars"
    exemplar_mode: str = ""
    k: int = 0
    model: str = ""
    # one point per (bank size, draw): {"bank_size", "draw", "n", "name_accuracy", "call_accuracy", "eval_id"}
    points: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0


class Promotion(Record):
    """A gate's decision on a candidate adapter for a suite, with the figures it was made on."""

    table: ClassVar[str] = "promotions"
    suite: str
    adapter_id: str  # the candidate ("" when a rollback returns to the base model)
    previous: str = ""  # the suite's adapter before ("" = the base model)
    decision: Literal["promoted", "refused", "rollback", "use"]
    p_value: float = 1.0
    before: float = 0.0  # heldout accuracy (`metric`) of the previous model
    after: float = 0.0  # heldout accuracy (`metric`) of the candidate
    n: int = 0
    metric: Literal["name", "call"] = "name"  # name or call accuracy (training.gate.metric_for)
    eval_before: str = ""  # EvalRun ids the decision compared
    eval_after: str = ""
    per_kind: dict[str, dict[str, float]] = Field(default_factory=dict)  # kind -> before, after, n
    reasons: list[str] = Field(default_factory=list)
    by: str = ""
    improvement_id: str = ""


class StageRun(BaseModel):
    """One stage of an improvement: its status and what it produced."""

    name: str
    status: Literal["pending", "running", "done", "skipped", "failed", "stopped"] = "pending"
    output: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    started: datetime | None = None
    finished: datetime | None = None


class Improvement(Record):
    """One improve pipeline for a suite: its stages in order, each stage's output kept for a resume."""

    table: ClassVar[str] = "improvements"
    suite: str
    methods: list[str] = Field(default_factory=lambda: ["sft"])
    status: Literal["running", "succeeded", "failed", "stopped"] = "running"
    stages: list[StageRun] = Field(default_factory=list)
    process_id: str = ""
    promoted: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    finished: datetime | None = None


class Account(Record):
    """A person who may use the dashboard: a unique name, a role and an argon2 password hash.

    The id is the name's key (NFKC, case folded), so two spellings of one name are one account.
    """

    table: ClassVar[str] = "accounts"
    name: str  # as the person wrote it (NFKC); shown on labels, preferences and reviews
    role: Literal["annotator", "reviewer", "admin"]
    password_hash: str


class SignIn(Record):
    """One signed-in browser session: the cookie's token is not stored, only its SHA-256 (the id).

    `claim` is the SHA-256 of a one-time ticket the browser trades, within a minute, for the HttpOnly
    cookie; `pending` holds the token until then. Signing out or a password change deletes the record.
    """

    table: ClassVar[str] = "sign_ins"
    account: str  # the Account id
    expires: datetime
    claim: str = ""
    pending: str = ""


class IngestToken(Record):
    """A token that lets a program send traces to `collect` or requests through `proxy` for an account.

    Like a SignIn, the store keeps only the token's SHA-256 (the id): a copy of the store sends nothing.
    """

    table: ClassVar[str] = "ingest_tokens"
    account: str  # the Account id the token acts for (with that account's role, as the store says now)


class Secret(Record):
    """A server secret that every dashboard server on this store shares (the id names its use)."""

    table: ClassVar[str] = "secrets"
    value: str


ALL_RECORDS: tuple[type[Record], ...] = (
    Task, Suite, Trajectory, Label, Claim, Resolution, Correction, Preference, Insight, InsightProposal, Reflection, Exemplar,
    DatasetExport, Job, Adapter, EvalRun, Process, LearningCurve, Account, Promotion, Improvement,
    SignIn, Secret, IngestToken, Span,
)
