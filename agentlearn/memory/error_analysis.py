"""Error analysis: failure patterns in a suite's train runs, drafted as playbook rules, with no model call.

A failed run is read through its verdict (graders' per-argument grades) against the task's expected call:
- tool choice: tool Y called where X was right (then grouped by MiniLM similarity of the requests, so
  "reset my password" and "refund my order" sent to the same wrong tool become two patterns);
- a required argument missing; an argument the tool does not take;
- a categorical argument given a value that is never right for it in this suite;
- free text where an identifier (an extractive value) was expected;
- no parsable tool call at all.
A pattern seen at least MIN_REPEATS times becomes a draft rule with its evidence runs and counts.
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
from agentlearn.workspace import Workspace
from storage.records import Suite, Task, Trajectory

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
    failures = [_Failure(t, tasks[t.task_id]) for t in runs if judge.succeeded(t) is False]
    out = Analysis(runs=len(runs), failures=len(failures))
    if not runs:
        out.reason = "no train runs yet in this suite; run the agent on the train split (Run page) first"
        return out
    if not failures:
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

    background = [_request(t) for t in tasks.values()]
    by_tool: dict[str, list[str]] = defaultdict(list)
    for t in tasks.values():
        by_tool[t.expected.name].append(_request(t))
    for key, fs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        if len(fs) < MIN_REPEATS:
            continue
        if key[0] in ("missed", "overcalled"):
            out.drafts += _tool_marginal(key, fs, background, by_tool)
        else:
            out.drafts += _draft(ws, key, fs, background, right_values, examples.get(key, ""))
    if not out.drafts:
        biggest = max((len(fs) for fs in groups.values()), default=0)
        out.reason = (f"no failure pattern repeats {MIN_REPEATS} times in {len(failures)} failed train runs "
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
