"""Error analysis: failure patterns in a suite's train runs, drafted as playbook rules, with no model call.

A failed run is read through its verdict (graders' per-argument grades) against the task's expected call:
- tool choice: tool Y called where X was right (then grouped by MiniLM similarity of the requests, so
  "reset my password" and "refund my order" sent to the same wrong tool become two patterns);
- a required argument missing; an argument the tool does not take;
- a categorical argument given a value that is never right for it in this suite;
- free text where an identifier (an extractive value) was expected;
- no parsable tool call at all.
A failed multi-step episode (episode_text.is_episode) is read step by step instead, against the
reference calls of each user turn (Task.turn_calls; the task's reference or expected call for a one-turn
task) and a person's correction of a step where there is one:
- wrong tool at step k: a call of a tool the turn does not need, where another was expected;
- argument error reported by the tool: a ToolResult with `error` (the tool refused what it was given);
- looping: the same call (name and arguments) made again within one user turn;
- giving up early: the turn answered before a call its reference needs (before any call, or part way).
A pattern seen at least MIN_REPEATS times becomes a draft rule with its evidence runs and counts; the
evidence of a step-level pattern is the episodes it was seen in, its rationale names the steps.
Only train runs are read: rules drawn from heldout failures would teach the evaluation's answers.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentlearn import arg_kinds, verdicts
from agentlearn.episode_text import is_episode, result_for
from agentlearn.workspace import Workspace
from storage.records import Correction, Step, Suite, Task, Trajectory

MIN_REPEATS = 3
SIMILAR = 0.55  # MiniLM cosine at which two requests count as the same kind of request
MAX_EVIDENCE = 20
_WORD = re.compile(r"\b[a-zA-Z][a-zA-Z-]{3,}\b(?!')")
_STOP = frozenset("""the and for you your with this that have has are was were not but can could would please
from into about there their them they our out any all get got just need needs like want what when which
will shall should its it's i'm i've been being also than then some more most very help thanks thank hi hello
dear team user agent""".split())


@dataclass
class Draft:
    """A rule drafted from one failure pattern."""

    pattern: str  # a stable key: the same pattern on a later run is not proposed twice
    section: str
    text: str
    evidence: list[str]
    rationale: str


@dataclass
class Analysis:
    drafts: list[Draft] = field(default_factory=list)
    runs: int = 0
    failures: int = 0
    reason: str = ""  # why there are no drafts, and what to do next

    def summary(self) -> str:
        return self.reason or (f"{len(self.drafts)} failure patterns seen at least {MIN_REPEATS} times in "
                               f"{self.failures} failed train runs (of {self.runs})")


@dataclass
class _Failure:
    trajectory: Trajectory
    task: Task


def _request(task: Task) -> str:
    return "\n".join(m.content for m in task.input if m.role != "system")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _keywords(texts: list[str], background: list[str], n: int = 3) -> list[str]:
    """Words frequent in these requests and rarer in the suite's other requests."""
    here = Counter(w for t in texts for w in {w.lower() for w in _WORD.findall(t)} if w not in _STOP)
    every = Counter(w for t in background for w in {w.lower() for w in _WORD.findall(t)} if w not in _STOP)
    least = max(2, round(0.3 * len(texts)))  # a keyword is shared by several of these requests
    score = {w: c / len(texts) - every[w] / max(1, len(background)) for w, c in here.items() if c >= least}
    return [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _clusters(ws: Workspace, failures: list[_Failure]) -> list[list[_Failure]]:
    """Failures grouped by the similarity of their requests (greedy, centroid cosine >= SIMILAR)."""
    vectors = np.asarray(ws.encoder([_request(f.task) for f in failures]), dtype=np.float32)
    groups: list[list[int]] = []
    centroids: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        sims = [float(c @ v / (np.linalg.norm(c) * np.linalg.norm(v) + 1e-9)) for c in centroids]
        best = int(np.argmax(sims)) if sims else -1
        if best >= 0 and sims[best] >= SIMILAR:
            groups[best].append(i)
            centroids[best] = vectors[groups[best]].mean(axis=0)
        else:
            groups.append([i])
            centroids.append(v.copy())
    return [[failures[i] for i in g] for g in groups]


def _evidence(failures: list[_Failure]) -> tuple[list[str], str]:
    ids = [f.trajectory.id for f in failures][:MAX_EVIDENCE]
    tasks = len({f.task.id for f in failures})
    return ids, f"{len(failures)} failed runs on {tasks} task{'s' * (tasks != 1)}"


def _tool_choice(ws: Workspace, key: tuple[str, str], failures: list[_Failure], background: list[str]) -> list[Draft]:
    right, wrong = key
    groups = [g for g in _clusters(ws, failures) if len(g) >= MIN_REPEATS] or [failures]
    drafts = []
    for n, group in enumerate(groups):
        words = _keywords([_request(f.task) for f in group], background)
        about = f"requests about {', '.join(words)}" if words else "these requests"
        ids, counts = _evidence(group)
        drafts.append(Draft(
            pattern=f"tool:{right}:{wrong}:{n}" if len(groups) > 1 else f"tool:{right}:{wrong}",
            section="tool choice", text=f"For {about}, call {right}, not {wrong}.", evidence=ids,
            rationale=f"{counts} called {wrong} where {right} was right"))
    return drafts


def _tool_marginal(key: tuple[str, str], fs: list[_Failure], background: list[str],
                   by_tool: dict[str, list[str]]) -> list[Draft]:
    """A tool missed (another called instead) or over-called (called where others were right), 3+ times."""
    kind, tool = key
    ids, counts = _evidence(fs)
    own = _keywords(by_tool.get(tool, []), background) if len(by_tool.get(tool, [])) >= 2 else []
    named = tool.replace("_", " ").replace("-", " ")
    if kind == "missed":
        others = ", ".join(sorted({f.trajectory.tool_call.name for f in fs}))
        about = f"requests about {', '.join(own)}" if own else f"requests to {named}"
        return [Draft(f"missed:{tool}", "tool choice", f"For {about}, call {tool}.", ids,
                      f"{counts} called {others} where {tool} was right")]
    wrong_for = ", ".join(sorted({f.task.expected.name for f in fs}))
    only = f" for requests about {', '.join(own)}" if own else f" for requests to {named}"
    return [Draft(f"overcalled:{tool}", "tool choice", f"Call {tool} only{only}; it is not for requests that "
                  f"need {wrong_for}.", ids, f"{counts} called {tool} where {wrong_for} was right")]


def analyse(ws: Workspace, suite: str) -> Analysis:
    """The suite's failure patterns as draft rules (nothing is stored)."""
    tasks = {t.id: t for t in ws.repo.find(Task, suite=suite, split="train")}
    runs = [t for t in ws.repo.find(Trajectory, suite=suite, split="train") if t.task_id in tasks]
    judge = verdicts.judge(ws)
    every_failure = [_Failure(t, tasks[t.task_id]) for t in runs if judge.succeeded(t) is False]
    failures = [f for f in every_failure if not is_episode(f.trajectory)]
    episodes = [f for f in every_failure if is_episode(f.trajectory)]
    out = Analysis(runs=len(runs), failures=len(every_failure))
    if not runs:
        out.reason = "no train runs yet in this suite; run the agent on the train split (Run page) first"
        return out
    if not every_failure:
        out.reason = f"none of the {len(runs)} train runs failed; nothing to learn from failures yet"
        return out
    record = ws.repo.get(Suite, suite)
    kinds = arg_kinds.kinds_for(record) if record else {}
    right_values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for task in tasks.values():
        for arg, value in task.expected.arguments.items():
            right_values[(task.expected.name, arg)].add(json.dumps(value, sort_keys=True))

    groups: dict[tuple, list[_Failure]] = defaultdict(list)
    examples: dict[tuple, Any] = {}  # an expected value to show in the rule, per pattern
    for f in failures:
        call, want = f.trajectory.tool_call, f.task.expected
        if call is None:
            groups[("format",)].append(f)
        elif call.name != want.name:
            groups[("tool", want.name, call.name)].append(f)
            groups[("missed", want.name)].append(f)  # the right tool, whatever was called instead
            groups[("overcalled", call.name)].append(f)  # the wrong tool, whatever was right
        else:
            for grade in (f.trajectory.verdict.arguments if f.trajectory.verdict else []):
                kind = arg_kinds.kind_of(kinds, want.name, grade.name, grade.expected)
                key = None
                if grade.status == "missing":
                    key = ("missing", want.name, grade.name)
                elif grade.status == "unexpected":
                    key = ("unexpected", want.name, grade.name)
                elif grade.status == "wrong" and kind == "categorical" and \
                        json.dumps(grade.got, sort_keys=True) not in right_values[(want.name, grade.name)]:
                    key = ("never", want.name, grade.name, _show(grade.got))
                elif grade.status == "wrong" and kind == "extractive" and \
                        arg_kinds.kind_of(None, want.name, grade.name, grade.got) == "free_text":
                    key = ("sentence", want.name, grade.name)
                if key is not None:
                    groups[key].append(f)
                    examples.setdefault(key, _show(grade.expected))

    steps_seen: dict[tuple, dict[str, list[int]]] = {}
    if episodes:
        corrected = _corrected_steps(ws, {f.trajectory.id for f in episodes})
        for key, seen in _step_failures(episodes, corrected).items():
            steps_seen[key] = seen
            groups[key] = [f for f in episodes if f.trajectory.id in seen]
            examples[key] = seen.get("", [""])[0] if key[0] == "tool-error" else ""

    background = [_request(t) for t in tasks.values()]
    by_tool: dict[str, list[str]] = defaultdict(list)
    for t in tasks.values():
        by_tool[t.expected.name].append(_request(t))
    for key, fs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(fs) < MIN_REPEATS:
            continue
        if key[0] in ("missed", "overcalled"):
            out.drafts += _tool_marginal(key, fs, background, by_tool)
        elif key in steps_seen:
            out.drafts.append(_step_draft(key, fs, steps_seen[key], examples[key]))
        else:
            out.drafts += _draft(ws, key, fs, background, right_values, examples.get(key, ""))
    if not out.drafts:
        biggest = max((len(fs) for fs in groups.values()), default=0)
        out.reason = (f"no failure pattern repeats {MIN_REPEATS} times in {len(every_failure)} failed train runs "
                      f"(of {len(runs)}; the most common one is seen {biggest} times); label or run more")
    return out


def _draft(ws: Workspace, key: tuple, fs: list[_Failure], background: list[str],
           right_values: dict[tuple[str, str], set[str]], example: str) -> list[Draft]:
    kind = key[0]
    if kind == "tool":
        return _tool_choice(ws, key[1:], fs, background)
    ids, counts = _evidence(fs)
    if kind == "format":
        return [Draft("format", "format", "Answer with exactly one <tool_call> holding a JSON object with "
                      "\"name\" and \"arguments\", and nothing else.", ids, f"{counts} gave no parsable tool call")]
    tool, arg = key[1], key[2]
    if kind == "missing":
        return [Draft(f"missing:{tool}:{arg}", "arguments", f"{tool} always needs {arg}; take its value from the "
                      f"request (for example {arg}={example}).", ids, f"{counts} left out {arg} of {tool}")]
    if kind == "unexpected":
        schema = next((t for t in fs[0].task.tools if t.get("name") == tool), {})
        if arg in ((schema.get("parameters") or {}).get("properties") or {}):
            return [Draft(f"unexpected:{tool}:{arg}", "arguments", f"Leave out {tool}'s optional {arg} unless the "
                          "request asks for it.", ids, f"{counts} gave {tool} {arg}, which the right call did not have")]
        return [Draft(f"unexpected:{tool}:{arg}", "arguments", f"{tool} takes no argument {arg}; give only the "
                      "arguments its signature lists.", ids, f"{counts} gave {tool} an argument {arg} it does not take")]
    if kind == "never":
        allowed = sorted(json.loads(v) for v in right_values[(tool, arg)])
        shown = ", ".join(_show(v) for v in allowed[:8])
        return [Draft(f"never:{tool}:{arg}:{key[3]}", "arguments", f"{tool}'s {arg} is one of {shown}; never "
                      f"{key[3]}.", ids, f"{counts} set {tool}.{arg} to {key[3]}, a value never right in this suite")]
    return [Draft(f"sentence:{tool}:{arg}", "arguments", f"{tool}'s {arg} is a value copied from the request "
                  f"(like {example}), not a sentence.", ids, f"{counts} wrote a sentence into {tool}.{arg}, which "
                  "takes an identifier")]


# --- multi-step episodes: failures at a step ----------------------------------------------------------


def _corrected_steps(ws: Workspace, trajectory_ids: set[str]) -> dict[tuple[str, int], str]:
    """(trajectory id, step index) -> the tool a person's newest correction of that step calls."""
    fixes = sorted((c for c in ws.repo.all(Correction) if c.trajectory_id in trajectory_ids),
                   key=lambda c: (c.created, c.id))
    return {(c.trajectory_id, c.step): c.call.name for c in fixes}


def _turn_tools(task: Task, turn: int) -> list[str] | None:
    """The tools a user turn's reference calls, in order; None when the task says nothing about the turn."""
    if task.turn_calls:
        return [c.name for c in task.turn_calls[turn]] if turn < len(task.turn_calls) else None
    if turn:
        return None
    return [c.name for c in task.reference.calls] if task.reference is not None else [task.expected.name]


def _step_failures(episodes: list[_Failure], corrected: dict[tuple[str, int], str]) -> dict[tuple, dict[str, list]]:
    """Pattern key -> {episode id: the 1-based steps it was seen at}; a tool error's key also keeps, under "",
    the first error text."""
    found: dict[tuple, dict[str, list]] = defaultdict(dict)

    def seen(key: tuple, traj: Trajectory, step_no: int) -> None:
        found[key].setdefault(traj.id, []).append(step_no)

    for f in episodes:
        traj, task = f.trajectory, f.task
        by_turn: dict[int, list[tuple[int, Step]]] = defaultdict(list)
        for i, step in enumerate(traj.steps):
            by_turn[step.turn].append((i, step))
        for turn, steps in by_turn.items():
            expected = _turn_tools(task, turn)
            made: list[str] = []
            calls_seen: set[str] = set()
            for i, step in steps:
                for n, call in enumerate(step.calls):
                    right = corrected.get((traj.id, i))
                    if right is None and expected is not None and call.name not in expected:
                        right = next((t for t in expected if t not in made), None)
                    if right is not None and right != call.name:
                        seen(("step-tool", right, call.name), traj, i + 1)
                    result = result_for(step, n)
                    if result is not None and result.error:
                        key = ("tool-error", call.name)
                        seen(key, traj, i + 1)
                        found[key].setdefault("", []).append(result.content.strip())
                    same = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
                    if same in calls_seen:
                        seen(("loop", call.name), traj, i + 1)
                    calls_seen.add(same)
                    made.append(call.name)
                if not step.calls and step.answer.strip() and expected:
                    missing = next((t for t in expected if t not in made), None)
                    if missing is not None:
                        seen(("early", missing, "none" if not made else "some"), traj, i + 1)
    out: dict[tuple, dict[str, list]] = {}
    for key, by_episode in found.items():
        # An episode counts once per pattern; "early" before any call and part way are one pattern per tool.
        merged = ("early", key[1]) if key[0] == "early" else key
        target = out.setdefault(merged, {})
        for ep, steps in by_episode.items():
            target.setdefault(ep, [])
            target[ep] += [s for s in steps if s not in target[ep]]
    return out


def _steps_text(seen: dict[str, list]) -> str:
    steps = sorted({s for ep, ss in seen.items() if ep for s in ss})
    return f"step{'s' * (len(steps) != 1)} {', '.join(str(s) for s in steps[:8])}"


def _step_draft(key: tuple, fs: list[_Failure], seen: dict[str, list], example: str) -> Draft:
    """The rule drafted from one step-level pattern; its rationale names the steps it was seen at."""
    ids, counts = _evidence(fs)
    at = _steps_text(seen)
    kind, tool = key[0], key[1]
    if kind == "step-tool":
        wrong = key[2]
        return Draft(f"step-tool:{tool}:{wrong}", "tool choice", f"When the request needs {tool}, call {tool}, "
                     f"not {wrong}.", ids, f"{counts} called {wrong} where {tool} was expected (at {at})")
    if kind == "tool-error":
        shown = f" (for example: {_show(example)})" if example else ""
        return Draft(f"tool-error:{tool}", "arguments", f"Give {tool} only arguments its signature and the "
                     f"current state allow; when it reports an error, fix the argument it names before calling "
                     f"again.", ids, f"{counts}: {tool} reported an error{shown} (at {at})")
    if kind == "loop":
        return Draft(f"loop:{tool}", "tool choice", f"Do not repeat a call of {tool} with the same arguments; "
                     f"if its result did not help, change the arguments or call another tool.", ids,
                     f"{counts} repeated the same {tool} call (at {at})")
    before_any = sum(1 for f in fs if not any(s.calls for s in f.trajectory.steps))
    return Draft(f"early:{tool}", "tool choice", f"Do not answer before calling {tool} when the request needs "
                 f"it; answer after reading its result.", ids,
                 f"{counts} answered before calling {tool} ({before_any} before any call; at {at})")
