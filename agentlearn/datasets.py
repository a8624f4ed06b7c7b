"""Training files from the store: SFT, DPO and GRPO sets in TRL's formats, and OpenAI fine-tuning JSONL.

Only TRAIN-split tasks feed an export, so held-out tasks never leak into training. Prompts are rebuilt
from the task with the agent's own zero-shot prompt (system message with the tools, then the
conversation), because that is the prompt an adapter is run with. People win over the verifier: a
trajectory whose labels say "fail" is never an SFT target, one they call "success" is. A person's
correction of a run (feedback.corrections) wins over both: it is the SFT answer for its task, and in DPO
(with the "preferences" source, since it is a person's choice too) it is chosen over the run it corrects.

Multi-step episodes (episode_text.is_episode: the agent's, or imported, collected or proxied ones)
export as whole conversations: each user turn, the assistant's `tool_calls`, a `tool` message per
result, the answer, with the tools offered in a `tools` column. "sft" writes TRL's tool-calling format
(arguments as JSON objects, tool messages named by their tool), "openai-sft" OpenAI's fine-tuning form
(arguments as JSON strings, tool messages carrying the call id). A person's correction of step k of an
episode is the episode up to step k followed by the corrected call. A preference between two
continuations of one episode (Preference.step) is a DPO pair whose prompt is the episode up to that step.
Single-call trajectories export exactly as before. `sources` keeps only trajectories of those sources
(agent, traces, collect, proxy, ...).

Every export is written as JSONL, read back with `datasets.load_dataset("json", ...)` the way TRL reads
it, checked for the columns its trainer needs, and stored as a DatasetExport with its lineage.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlearn import arg_kinds, verdicts
from agentlearn.episode_text import assistant_calls, episode_tools, is_episode, openai_tools, step_messages
from agentlearn.feedback import corrections
from agentlearn.methods import EXPORT_KINDS
from agentlearn.paths import check_out, file_part
from agentlearn.prompts import build_prompt, instruction_for, task_messages
from agentlearn.redact import redact
from agentlearn.toolcall import format_tool_call, format_tool_calls, normalise_tool, parse_tool_call
from agentlearn.workspace import Workspace
from storage.files import write_atomic
from storage.records import (
    Correction,
    DatasetExport,
    Exemplar,
    Label,
    Preference,
    Step,
    Suite,
    Task,
    ToolCall,
    Trajectory,
    new_id,
)

KINDS = EXPORT_KINDS
PAIR_SOURCES = ("preferences", "ratings", "verifier")
MIN_ROWS = 1
# Columns each trainer reads; extra GRPO columns reach the reward functions as keyword arguments.
COLUMNS = {
    "sft": ("messages",),
    "dpo": ("prompt", "chosen", "rejected"),
    "grpo": ("prompt", "expected_name", "expected_arguments", "required_args", "tools"),
    "openai-sft": ("messages", "tools"),
    "openai-dpo": ("input", "preferred_output", "non_preferred_output"),
}


@dataclass
class _Rows:
    """Rows being built plus the records they came from."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    trajectory_ids: list[str] = field(default_factory=list)
    label_ids: list[str] = field(default_factory=list)
    preference_ids: list[str] = field(default_factory=list)
    exemplar_ids: list[str] = field(default_factory=list)
    correction_ids: list[str] = field(default_factory=list)


# --- public ------------------------------------------------------------------------------------


def export(ws: Workspace, kind: str, suite: str, out_path: str | Path | None = None,
           pairs_from: tuple[str, ...] = ("preferences",), force: bool = False,
           sources: tuple[str, ...] = ()) -> DatasetExport:
    """Write one training file for a suite's train split, check it loads as TRL loads it, store its lineage.

    `out_path` passes paths.check_out (never the workspace's own files; an existing file is replaced only
    with force, and only if it is a .jsonl file). `sources`: only trajectories of these sources (all if empty).
    """
    if out_path:
        out_path = check_out(ws.settings, out_path, force, suffixes=(".jsonl",))
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}; choose one of {', '.join(KINDS)}")
    unknown = [p for p in pairs_from if p not in PAIR_SOURCES]
    if unknown:
        raise ValueError(f"unknown pair source(s) {unknown}; choose from {', '.join(PAIR_SOURCES)}")
    sources = tuple(x.strip() for x in sources if x.strip())
    tasks = train_tasks(ws, suite)
    if kind == "grpo":
        data = grpo_rows(ws, tasks)
    elif kind in ("sft", "openai-sft"):
        data = (sft_rows if kind == "sft" else openai_sft_rows)(ws, tasks, sources)
    else:
        data = _pair_rows(ws, suite, tasks, pairs_from, openai=kind == "openai-dpo", sources=sources)
    if len(data.rows) < MIN_ROWS:
        raise ValueError(_empty_message(kind, suite, pairs_from)
                         + (f" (only trajectories from: {', '.join(sources)})" if sources else ""))
    export_id = new_id()
    path = Path(out_path) if out_path else ws.settings.exports_dir / f"{file_part(suite, 'suite')}-{kind}-{export_id}.jsonl"
    write_jsonl(path, data.rows)
    check_file(path, kind, cache_dir=ws.settings.home / "cache" / "datasets")
    record = DatasetExport(id=export_id, kind=kind, suite=suite, path=str(path.resolve()), rows=len(data.rows),
                           trajectory_ids=_unique(data.trajectory_ids), label_ids=_unique(data.label_ids),
                           preference_ids=_unique(data.preference_ids), exemplar_ids=_unique(data.exemplar_ids),
                           correction_ids=_unique(data.correction_ids))
    ws.repo.put(record)
    return record


def train_tasks(ws: Workspace, suite: str) -> dict[str, Task]:
    """The suite's train-split tasks by id; a clear error if the suite has none."""
    tasks = {t.id: t for t in ws.repo.find(Task, suite=suite) if t.split == "train"}
    if not tasks:
        raise ValueError(f"suite {suite!r} has no train tasks; import one with `python -m agentlearn tasks import`")
    return tasks


def prompt_for(task: Task, suite: Suite | None = None) -> list[dict[str, str]]:
    """The zero-shot prompt the agent sends for a task (with its suite's instruction), as chat dicts."""
    return _dicts(build_prompt(task, [], instruction_for(suite)))


def _prompter(ws: Workspace):
    """prompt_for with each task's suite looked up once: an adapter is run with its suite's instruction."""
    found: dict[str, Suite | None] = {}

    def prompt(task: Task) -> list[dict[str, str]]:
        if task.suite not in found:
            found[task.suite] = ws.repo.get(Suite, task.suite)
        return prompt_for(task, found[task.suite])

    return prompt


def check_file(path: str | Path, kind: str, cache_dir: str | Path | None = None) -> int:
    """Load a JSONL file with `datasets` as TRL does and check its columns and message shapes; returns rows."""
    from datasets import load_dataset

    try:
        ds = load_dataset("json", data_files=str(path), split="train",
                          cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as e:  # datasets raises many types for unreadable JSON
        raise ValueError(f"{path}: cannot be loaded as a JSON lines dataset: {e}") from None
    missing = [c for c in COLUMNS[kind] if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path}: a {kind} dataset needs the column(s) {missing}; found {ds.column_names}")
    if len(ds) == 0:
        raise ValueError(f"{path}: the file has no rows")
    for i, row in enumerate(ds):
        problem = row_problem(row, kind)
        if problem:
            raise ValueError(f"{path}, row {i + 1}: {problem}")
    return len(ds)


def row_problem(row: dict[str, Any], kind: str) -> str:
    """Why a row does not fit the trainer of `kind` ("" if it does)."""
    if kind in ("sft", "openai-sft"):
        msgs = row.get("messages")
        if err := _messages_problem(msgs, "messages", allow_tool_calls=True) or _tools_problem(row, msgs):
            return err
        return "" if msgs[-1]["role"] == "assistant" else "the last message must be the assistant's answer"
    if kind == "dpo":
        for key in ("prompt", "chosen", "rejected"):
            if err := _messages_problem(row.get(key), key, allow_tool_calls=key == "prompt"):
                return err
        if row["chosen"][-1]["role"] != "assistant" or row["rejected"][-1]["role"] != "assistant":
            return "chosen and rejected must end with an assistant message"
        return ""
    if kind == "grpo":
        if err := _messages_problem(row.get("prompt"), "prompt"):
            return err
        if not row.get("expected_name"):
            return "expected_name is empty"
        for key in ("expected_arguments", "tools"):
            try:
                json.loads(row.get(key) or "")
            except (TypeError, json.JSONDecodeError):
                return f"{key} must be a JSON string"
        return ""
    if kind == "openai-dpo":
        msgs = (row.get("input") or {}).get("messages")
        if err := _messages_problem(msgs, "input.messages", allow_tool_calls=True):
            return err
        for key in ("preferred_output", "non_preferred_output"):
            if err := _messages_problem(row.get(key), key, allow_tool_calls=True):
                return err
        return ""
    return f"unknown kind {kind!r}"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as JSON lines atomically, with secrets redacted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(redact(json.dumps(row, ensure_ascii=False)) + "\n" for row in rows).encode())


# --- SFT ---------------------------------------------------------------------------------------


@dataclass
class Target:
    """What one train task's SFT row teaches: a call, or an episode's steps (before `upto`, then `call`)."""

    call: ToolCall | None
    episode: Trajectory | None = None  # a multi-step run: its steps are the conversation
    upto: int | None = None  # a correction of this step of the episode: the steps before it, then `call`
    more: list[ToolCall] = field(default_factory=list)  # a one-answer target's calls after `call` (BFCL parallel)

    def calls(self) -> list[ToolCall]:
        """The calls a one-answer target teaches, in order."""
        return [self.call, *self.more] if self.call is not None else []


def sft_targets(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> tuple[dict[str, Target], _Rows]:
    """One target per train task: a person's newest correction, else a success, else a reference/manual exemplar."""
    labels = _labels_by_trajectory(ws)
    judge = verdicts.judge(ws)
    chosen: dict[str, Target] = {}
    lineage = _Rows()
    for task_id, fix in corrections.latest_by_task(ws, list(tasks)).items():
        run = ws.repo.get(Trajectory, fix.trajectory_id)
        if sources and (run is None or run.source not in sources):
            continue
        episode = run if run is not None and is_episode(run) and fix.step < len(run.steps) else None
        chosen[task_id] = Target(fix.call, episode, fix.step if episode is not None else None)
        lineage.correction_ids.append(fix.id)
        lineage.trajectory_ids.append(fix.trajectory_id)
    for t in _trajectories(ws, tasks, sources):
        if t.task_id in chosen or judge.succeeded(t) is not True:
            continue
        if is_episode(t):
            chosen[t.task_id] = Target(next((c for s in t.steps for c in s.calls), None), t)
        elif t.tool_call is not None:
            chosen[t.task_id] = Target(t.tool_call, more=list(t.tool_calls[1:]))
        else:
            continue
        lineage.trajectory_ids.append(t.id)
        lineage.label_ids += [lab.id for lab in labels.get(t.id, [])]
    for ex in ws.repo.all(Exemplar):
        if ex.active and ex.kind in ("reference", "manual") and ex.task_id in tasks and ex.task_id not in chosen:
            chosen[ex.task_id] = Target(ex.call, more=ex.answer_calls()[1:])
            lineage.exemplar_ids.append(ex.id)
    return chosen, lineage


def episode_messages(task: Task, target: Target, openai: bool) -> list[dict[str, Any]]:
    """An episode target's messages after the task's first request, ending with the assistant's last turn."""
    assert target.episode is not None
    steps = target.episode.steps
    if target.upto is not None and target.call is not None:
        fixed = steps[target.upto]
        steps = [*steps[:target.upto], Step(calls=[target.call], turn=fixed.turn, user=fixed.user)]
    messages = step_messages(steps, task, openai)
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()  # the corrected call's result is unknown; an episode cut off ends at its last turn
    return messages


def sft_rows(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> _Rows:
    """Conversational SFT rows: the agent's prompt, then the canonical tool call as the assistant turn;
    an episode in TRL's tool-calling format (assistant `tool_calls`, `tool` messages, a `tools` column)."""
    targets, out = sft_targets(ws, tasks, sources)
    prompt = _prompter(ws)
    for task_id, target in targets.items():
        task = tasks[task_id]
        if target.episode is not None:
            steps = episode_messages(task, target, openai=False)
            if steps:
                out.rows.append({"messages": prompt(task) + steps, "tools": episode_tools(task, target.episode)})
        elif target.call is not None:
            messages = prompt(task) + [{"role": "assistant", "content": format_tool_calls(target.calls())}]
            out.rows.append({"messages": messages})
    return out


def openai_sft_rows(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> _Rows:
    """OpenAI chat fine-tuning rows: the conversation, the tools, and the answer as native tool calls
    (an episode: every call, each tool's answer, each later user turn and the answers)."""
    targets, out = sft_targets(ws, tasks, sources)
    for i, (task_id, target) in enumerate(targets.items()):
        task = tasks[task_id]
        if target.episode is not None:
            steps = episode_messages(task, target, openai=True)
            if steps:
                out.rows.append({"messages": _dicts(task_messages(task.input)) + steps,
                                 "tools": episode_tools(task, target.episode)})
        elif target.call is not None:
            answer = {"role": "assistant", "tool_calls": [{
                "id": f"call_{i}" + (f"_{n}" if n else ""), "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            } for n, call in enumerate(target.calls())]}
            out.rows.append({"messages": _dicts(task_messages(task.input)) + [answer], "tools": openai_tools(task.tools)})
    return out


# --- GRPO --------------------------------------------------------------------------------------


def grpo_rows(ws: Workspace, tasks: dict[str, Task]) -> _Rows:
    """Prompt-only rows with the ground truth the reward functions grade against."""
    out, prompt = _Rows(), _prompter(ws)
    kinds_by_suite: dict[str, dict[str, dict[str, str]]] = {}
    for task in tasks.values():
        if task.suite not in kinds_by_suite:
            suite = ws.repo.get(Suite, task.suite)
            kinds_by_suite[task.suite] = arg_kinds.kinds_for(suite) if suite else {}
        tools = [normalise_tool(t) for t in task.tools]
        tool = next((t for t in tools if t["name"] == task.expected.name), None)
        required = list(tool["parameters"].get("required", [])) if tool else list(task.expected.arguments)
        out.rows.append({
            "prompt": prompt(task),
            "expected_name": task.expected.name,
            "expected_arguments": json.dumps(task.expected.arguments, ensure_ascii=False),
            "required_args": [str(r) for r in required],
            "tools": json.dumps(tools, ensure_ascii=False),
            # The expected tool's argument kinds, so the reward grades each argument by its kind's rule.
            "arg_kinds": json.dumps(kinds_by_suite[task.suite].get(task.expected.name, {}), ensure_ascii=False),
            # The task's id and suite: an environment task is graded by its checker, which reruns the task's
            # reference calls on a fresh environment from the stored task.
            "task_id": task.id,
            "suite": task.suite,
            "environment": sorted(task.environment),
            "turns": 1 + len(task.turns),
        })
    return out


# --- DPO ---------------------------------------------------------------------------------------


@dataclass
class Pair:
    """A preferred and a dispreferred answer to one task (or continuation of an episode from one step)."""

    task_id: str
    chosen: str
    rejected: str
    trajectory_ids: list[str] = field(default_factory=list)
    label_ids: list[str] = field(default_factory=list)
    preference_ids: list[str] = field(default_factory=list)
    correction_ids: list[str] = field(default_factory=list)
    # A step pair: the episode whose steps before `step` are the shared context of both continuations.
    episode: Trajectory | None = None
    step: int = 0


def _step_output(step: Step) -> str:
    """What the model produced at a step: its raw text, or its calls (or answer) written out."""
    if step.action.strip():
        return step.action
    return format_tool_calls(step.calls) or step.answer


def correction_pairs(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> list[Pair]:
    """Pairs from corrections on Trajectories: the corrected call chosen over the run's own output
    (over the corrected step's own output, in the context of the steps before it, for an episode)."""
    pairs = []
    for fix in sorted(ws.repo.all(Correction), key=lambda c: (c.created, c.id)):
        run = ws.repo.get(Trajectory, fix.trajectory_id)
        if fix.task_id not in tasks or run is None or (sources and run.source not in sources):
            continue
        if is_episode(run) and fix.step < len(run.steps):
            own = _step_output(run.steps[fix.step])
            if own.strip():
                pairs.append(Pair(fix.task_id, format_tool_call(fix.call), own, [run.id], correction_ids=[fix.id],
                                  episode=run, step=fix.step))
        elif run.output.strip():
            pairs.append(Pair(fix.task_id, format_tool_call(fix.call), run.output, [run.id],
                              correction_ids=[fix.id]))
    return pairs


def _step_context(ws: Workspace, p: Preference) -> Trajectory | None:
    """The episode a step preference continues (either side's: both share the steps before `step`)."""
    for tid in (p.trajectory_a, p.trajectory_b):
        run = ws.repo.get(Trajectory, tid) if tid else None
        if run is not None and is_episode(run) and p.step <= len(run.steps):
            return run
    return None


def preference_pairs(ws: Workspace, suite: str, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> list[Pair]:
    """Pairs from people's A/B choices; ties left out, a correction becomes the chosen answer. A choice
    between two continuations of an episode (Preference.step) keeps the steps before it as the context."""
    pairs = []
    for p in ws.repo.all(Preference):
        if p.task_id not in tasks:
            continue
        episode = _step_context(ws, p) if p.step else None
        if sources and not _from_sources(ws, p, sources):
            continue
        step = p.step if episode is not None else 0
        if p.choice in ("A", "B"):
            better, worse = (p.response_a, p.response_b) if p.choice == "A" else (p.response_b, p.response_a)
            pairs.append(Pair(p.task_id, p.corrected.strip() or better, worse, preference_ids=[p.id],
                              episode=episode, step=step))
        elif p.choice == "both_bad" and p.corrected.strip():
            # Both shown answers were wrong but the person wrote the right one: it beats each of them.
            pairs += [Pair(p.task_id, p.corrected.strip(), r, preference_ids=[p.id], episode=episode, step=step)
                      for r in (p.response_a, p.response_b)]
    return pairs


def _from_sources(ws: Workspace, p: Preference, sources: tuple[str, ...]) -> bool:
    """True when a trajectory the preference compares comes from one of `sources`."""
    runs = [ws.repo.get(Trajectory, tid) for tid in (p.trajectory_a, p.trajectory_b) if tid]
    return any(r is not None and r.source in sources for r in runs)


def rating_pairs(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> list[Pair]:
    """Pairs from scores on the same task: the best-rated answer against each lower-rated one."""
    labels = _labels_by_trajectory(ws)
    by_task: dict[str, list[tuple[float, Trajectory, list[Label]]]] = defaultdict(list)
    for t in _trajectories(ws, tasks, sources):
        scored = [lab for lab in labels.get(t.id, []) if lab.score is not None]
        if scored and t.output.strip():
            by_task[t.task_id].append((sum(lab.score for lab in scored) / len(scored), t, scored))
    pairs = []
    for task_id, rated in by_task.items():
        rated.sort(key=lambda r: -r[0])
        top_score, top, top_labels = rated[0]
        for score, other, other_labels in rated[1:]:
            if score < top_score:
                pairs.append(Pair(task_id, _answer(top), other.output, [top.id, other.id],
                                  [lab.id for lab in top_labels + other_labels]))
    return pairs


def verifier_pairs(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> list[Pair]:
    """Pairs from outcomes on the same task: a success against each failure (the learning verdict)."""
    judge = verdicts.judge(ws)
    good: dict[str, Trajectory] = {}
    bad: dict[str, list[Trajectory]] = defaultdict(list)
    for t in _trajectories(ws, tasks, sources):
        ok = judge.succeeded(t) is True
        if ok and t.tool_call is not None:
            good.setdefault(t.task_id, t)
        elif not ok and t.output.strip():
            bad[t.task_id].append(t)
    pairs = []
    for task_id, winner in good.items():
        for loser in bad.get(task_id, []):
            used = judge.labels.get(winner.id, []) + judge.labels.get(loser.id, [])
            pairs.append(Pair(task_id, _answer(winner), loser.output, [winner.id, loser.id], [lab.id for lab in used]))
    return pairs


def _pair_rows(ws: Workspace, suite: str, tasks: dict[str, Task], pair_sources: tuple[str, ...], openai: bool,
               sources: tuple[str, ...] = ()) -> _Rows:
    pairs: list[Pair] = []
    if "preferences" in pair_sources:
        pairs += preference_pairs(ws, suite, tasks, sources) + correction_pairs(ws, tasks, sources)
    if "ratings" in pair_sources:
        pairs += rating_pairs(ws, tasks, sources)
    if "verifier" in pair_sources:
        pairs += verifier_pairs(ws, tasks, sources)
    out, seen, prompt_of = _Rows(), set(), _prompter(ws)
    for pair in pairs:
        key = (pair.task_id, pair.step, pair.chosen.strip(), pair.rejected.strip())
        if pair.chosen.strip() == pair.rejected.strip() or key in seen:
            continue  # identical answers teach nothing
        seen.add(key)
        task = tasks[pair.task_id]
        if openai:
            prompt = _dicts(task_messages(task.input)) if pair.episode is not None else prompt_of(task)
        else:
            prompt = prompt_of(task)
        if pair.episode is not None:
            prompt += _context(task, pair.episode, pair.step, openai)
        native = openai and pair.episode is not None
        chosen, rejected = _reply(pair.chosen, native), _reply(pair.rejected, native)
        if openai:
            row = {"input": {"messages": prompt}, "preferred_output": chosen, "non_preferred_output": rejected}
            if pair.episode is not None:
                row["input"]["tools"] = episode_tools(task, pair.episode)
        else:
            row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
            if pair.episode is not None:
                row["tools"] = episode_tools(task, pair.episode)
        out.rows.append(row)
        out.trajectory_ids += pair.trajectory_ids
        out.label_ids += pair.label_ids
        out.preference_ids += pair.preference_ids
        out.correction_ids += pair.correction_ids
    return out


def _context(task: Task, episode: Trajectory, step: int, openai: bool) -> list[dict[str, Any]]:
    """The episode up to a step, after the task's first request: what both continuations of a step pair saw
    (the user message that opens the step's turn included)."""
    steps = episode.steps[:step]
    if step < len(episode.steps) and (not steps or episode.steps[step].turn != steps[-1].turn):
        opening = episode.steps[step]
        messages = step_messages([*steps, Step(turn=opening.turn, user=opening.user)], task, openai)
    else:
        messages = step_messages(steps, task, openai)
    return messages


def _reply(text: str, native: bool) -> list[dict[str, Any]]:
    """A pair's answer as the assistant's turn: the text the model writes (its `<tool_call>` form), or for
    `native` (an OpenAI step pair, whose context holds native calls) a parsable call as a native tool call."""
    call = parse_tool_call(text).call if native else None
    if call is not None:
        return [assistant_calls([call], 0, openai=True)]
    return [{"role": "assistant", "content": text.strip()}]


# --- helpers -----------------------------------------------------------------------------------


def _answer(t: Trajectory) -> str:
    """The canonical form of a good trajectory's call (what the model should write)."""
    return format_tool_call(t.tool_call) if t.tool_call else t.output


def _trajectories(ws: Workspace, tasks: dict[str, Task], sources: tuple[str, ...] = ()) -> list[Trajectory]:
    # Newest first, so the most recent success of a task is the one kept.
    runs = [t for t in ws.repo.all(Trajectory) if t.task_id in tasks and (not sources or t.source in sources)]
    return sorted(runs, key=lambda t: (t.created, t.id), reverse=True)


def _labels_by_trajectory(ws: Workspace) -> dict[str, list[Label]]:
    out: dict[str, list[Label]] = defaultdict(list)
    for lab in ws.repo.all(Label):
        out[lab.trajectory_id].append(lab)
    return out


def _dicts(messages: list) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _messages_problem(msgs: Any, key: str, allow_tool_calls: bool = False) -> str:
    if not isinstance(msgs, list) or not msgs:
        return f"{key} must be a non-empty list of messages"
    calls: set[str] = set()
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            return f"{key}: every message needs a role of system, user, assistant or tool; got {m!r:.80}"
        if m.get("tool_calls"):
            if not allow_tool_calls or m["role"] != "assistant":
                return f"{key}: only an assistant message of a conversation may carry tool_calls"
            for c in m["tool_calls"]:
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(fn, dict) or not fn.get("name") or not isinstance(fn.get("arguments"), (str, dict)):
                    return f"{key}: a tool call needs a function with a name and arguments; got {c!r:.80}"
                calls.add(c.get("id") or "")
        elif not isinstance(m.get("content"), str):
            return f"{key}: a {m.get('role')} message has no text content"
        if m["role"] == "tool" and m.get("tool_call_id") and m["tool_call_id"] not in calls:
            return f"{key}: a tool message answers call {m['tool_call_id']!r}, which no earlier assistant message made"
    return ""


def _tools_problem(row: dict[str, Any], msgs: list[dict[str, Any]]) -> str:
    """A conversation with tool calls needs the tools it was offered, as a list in its `tools` column."""
    if not any(m.get("tool_calls") for m in msgs):
        return ""
    return "" if isinstance(row.get("tools"), list) else "a conversation with tool calls needs a tools column (a list)"


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _empty_message(kind: str, suite: str, pairs_from: tuple[str, ...]) -> str:
    if kind in ("dpo", "openai-dpo"):
        hints = {"preferences": "choose A or B on the Preferences page, or correct a call on Trajectories",
                 "ratings": "give 1-5 scores to two or more runs of one task on the Labeling page",
                 "verifier": "run the agent until a task has both a success and a failure"}
        how = "; or ".join(hints[p] for p in pairs_from)
        return f"no preference pairs in suite {suite!r} (sources: {', '.join(pairs_from)}): {how} first"
    if kind in ("sft", "openai-sft"):
        return (f"no successful train runs or reference exemplars in suite {suite!r}: run the agent on the "
                "train split and label successes (or import tasks, which writes reference exemplars) first")
    return f"suite {suite!r} has no train tasks to export"
