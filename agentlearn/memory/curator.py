"""An ACE-style reflector/curator: the model reads failed runs and answers with delta operations.

ACE (Agentic Context Engineering) changes a playbook only by small deltas, never by rewriting it
whole, which loses detail. Here the model answers by calling one tool, `playbook_update`, whose
arguments are a list of operations {op: ADD|EDIT|REMOVE|AGREE|MERGE, section, bullet, other, text}.
On the embedded model that call is decoded under its JSON grammar (so the answer always parses); on an
OpenAI-compatible endpoint it goes through native tool calling; any other answer is parsed defensively
(the first JSON object or array in it). Operations that cannot apply are dropped with no error: a
person reviews what is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from agentlearn import prompts, verdicts
from agentlearn.memory import insights, playbook
from agentlearn.toolcall import format_tool_call, parse_tool_call
from agentlearn.workspace import Workspace
from storage.records import InsightProposal, Message, Task, Trajectory

OPS = ("ADD", "EDIT", "REMOVE", "AGREE", "MERGE")
RUNS_PER_CALL = 3
MAX_CALLS = 4  # the curator reads at most this many batches of failures per proposing round
MAX_TOKENS = 200
def tool(bullet_count: int) -> dict[str, Any]:
    """The playbook_update tool; with an empty playbook only ADD can apply, so only ADD can be written."""
    spec = json.loads(json.dumps(TOOL))
    item = spec["parameters"]["properties"]["operations"]["items"]
    if bullet_count == 0:
        item["properties"]["op"]["enum"] = ["ADD"]
        del item["properties"]["bullet"], item["properties"]["other"]
    else:
        for key in ("bullet", "other"):
            item["properties"][key]["maximum"] = bullet_count - 1
    return spec


TOOL = {
    "name": "playbook_update",
    "description": "Change the playbook by small deltas.",
    "parameters": {"type": "object", "required": ["operations"], "properties": {"operations": {
        "type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "required": ["op", "section", "text"],
            "properties": {
                "op": {"type": "string", "enum": list(OPS)},
                "section": {"type": "string", "enum": list(playbook.SECTIONS)},
                "bullet": {"type": "integer", "minimum": 0, "maximum": 99},
                "other": {"type": "integer", "minimum": 0, "maximum": 99},
                "text": {"type": "string", "maxLength": 140},
            }}}}},
}
def _bullets_text(bullets) -> str:
    if not bullets:
        return "(the playbook is empty)"
    return "\n".join(f"[{n}] ({b.section}) {b.text}" for n, b in enumerate(bullets))


def _run_text(task: Task, run: Trajectory) -> str:
    request = "\n".join(f"{m.role}: {m.content}" for m in task.input if m.role != "system")
    got = format_tool_call(run.tool_call) if run.tool_call else f"(no tool call) {run.output[:200]}"
    why = run.verdict.reason if run.verdict else "people judged it a failure"
    return (f"Request:\n{request}\nThe agent answered: {got}\nThe right answer: "
            f"{format_tool_call(task.expected)}\nWhat was wrong: {why}")


def messages(bullets, runs: list[tuple[Task, Trajectory]]) -> list[Message]:
    user = (f"Playbook:\n{_bullets_text(bullets)}\n\nFailed runs:\n\n" +
            "\n\n".join(_run_text(t, r) for t, r in runs))
    return [Message(role="system", content=prompts.CURATOR_SYSTEM), Message(role="user", content=user)]


def parse(text: str) -> list[dict[str, Any]]:
    """The operations in an answer: a playbook_update call, or the first JSON object/array; never raises."""
    parsed = parse_tool_call(text)
    args: Any = parsed.call.arguments if parsed.call is not None else None
    if args is None:
        for match in re.finditer(r"[\[{]", text or ""):
            try:
                args, _ = json.JSONDecoder().raw_decode(text[match.start():])
                break
            except ValueError:
                continue
    if isinstance(args, dict):
        args = args.get("operations", [args])
    if not isinstance(args, list):
        return []
    return [op for op in args if isinstance(op, dict)]


_WORD = re.compile(r"[a-z0-9_]{4,}")


def readable(text: str, vocabulary: frozenset[str] = frozenset()) -> bool:
    """A rule a person can use: a few words, no word looping, no run-on token (small models do both), and
    at least one word of the runs it came from (a tool, an argument or a word of the requests)."""
    words = text.split()
    if len(words) < 4 or any(len(w) > 40 for w in words):
        return False
    counts: dict[str, int] = {}
    for w in words:
        counts[w.lower()] = counts.get(w.lower(), 0) + 1
    if max(counts.values()) > 3:
        return False
    return not vocabulary or bool(set(_WORD.findall(text.lower())) & vocabulary)


def vocabulary(runs: list[tuple[Task, Trajectory]]) -> frozenset[str]:
    words: set[str] = set()
    for task, _ in runs:
        words |= set(_WORD.findall(" ".join(m.content for m in task.input).lower()))
        words.add(task.expected.name.lower())
        words |= {a.lower() for a in task.expected.arguments}
        words |= {t["name"].lower() for t in task.tools}
    return frozenset(words)


def to_proposals(suite: str, bullets, ops: list[dict[str, Any]], evidence: list[str],
                 words: frozenset[str] = frozenset()) -> list[InsightProposal]:
    """Proposals for the operations that can apply to `bullets` (numbered from 0 as the prompt shows them)."""
    out = []

    def bullet(value: Any):
        return bullets[value] if isinstance(value, int) and 0 <= value < len(bullets) else None

    for op in ops:
        kind = str(op.get("op", "")).upper()
        text = " ".join(str(op.get("text", "")).split())
        section = str(op.get("section", "")).lower()
        section = section if section in playbook.SECTIONS else ""
        target, other = bullet(op.get("bullet")), bullet(op.get("other"))
        common = {"suite": suite, "source": "curator", "evidence": evidence, "raw": json.dumps(op)[:500],
                  "rationale": f"the curator read {len(evidence)} failed runs"}
        if kind in ("ADD", "EDIT", "MERGE") and text and not readable(text, words):
            continue
        if kind == "ADD" and len(text) >= 12:
            out.append(InsightProposal(operation="ADD", text=text, section=section, **common))
        elif kind in ("EDIT",) and target is not None and len(text) >= 12 and text != target.text:
            out.append(InsightProposal(operation="EDIT", target_id=target.id, text=text, **common))
        elif kind in ("AGREE", "REMOVE") and target is not None:
            out.append(InsightProposal(operation=kind, target_id=target.id, text=target.text, **common))
        elif kind == "MERGE" and target is not None and other is not None and other.id != target.id:
            out.append(InsightProposal(operation="MERGE", target_id=target.id, merge_ids=[other.id],
                                       text=text if len(text) >= 12 else target.text, **common))
    return out


def curate(ws: Workspace, suite: str, on_progress: Callable[[int, int], None] | None = None
           ) -> tuple[list[InsightProposal], str]:
    """Drafts (not stored) from the suite's newest failed train runs, and why there are none when so."""
    from agentlearn.agent import complete  # the one way to ask the model, batched and constrained

    tasks = {t.id: t for t in ws.repo.find(Task, suite=suite, split="train")}
    judge = verdicts.judge(ws)
    failed = [t for t in ws.repo.find(Trajectory, suite=suite, split="train")
              if t.task_id in tasks and judge.succeeded(t) is False]
    if not failed:
        return [], "no failed train runs to reflect on; run the agent on the train split first"
    failed.sort(key=lambda t: t.created, reverse=True)
    one_per_task: dict[str, Trajectory] = {}
    for t in failed:
        one_per_task.setdefault(t.task_id, t)
    runs = list(one_per_task.values())[: RUNS_PER_CALL * MAX_CALLS]
    batches = [runs[i:i + RUNS_PER_CALL] for i in range(0, len(runs), RUNS_PER_CALL)]
    bullets = insights.active(ws, suite)
    queries = [messages(bullets, [(tasks[r.task_id], r) for r in batch]) for batch in batches]
    if on_progress:
        on_progress(0, len(queries))
    answers, _ = complete(ws.chat(), queries, [[tool(len(bullets))]] * len(queries), constrained=True,
                          max_new_tokens=MAX_TOKENS, concurrency=ws.settings.concurrency)
    if on_progress:
        on_progress(len(queries), len(queries))
    drafts = []
    for batch, answer in zip(batches, answers, strict=True):
        pairs = [(tasks[r.task_id], r) for r in batch]
        drafts += to_proposals(suite, bullets, parse(answer), [r.id for r in batch], vocabulary(pairs))
    if not drafts:
        return [], (f"the model's {len(answers)} answers over {len(runs)} failed runs held no operation that "
                    "applies to the playbook")
    return drafts, ""
