"""ExpeL insights (Zhao et al., 2023): a list of rules with importance counts, learned from trajectories.

Two layers:
- The ExpeL algorithm itself, as pure functions: `parse_operations` and `apply_operations` reproduce
  the official `parse_rules` / `update_rules` (regex, banned words, trailing period, substring matching,
  REMOVE -> AGREE -> EDIT -> ADD, ADD starts at 2, AGREE/EDIT +1, REMOVE -1 or -3 when the list is
  full, drop at <= 0, stable sort by count), quirks included.
- The product layer with people in the loop: `extract` runs ExpeL's extraction over a suite's training
  trajectories and stores each operation as a pending `InsightProposal`; `approve` / `reject` apply
  them to `Insight` records with the same count rules; people can also add, edit, promote, demote and
  restore insights. Every change is appended to the insight's history.

Deliberate divergences from the ExpeL code, each to keep the product from crashing or lying:
- `EDIT 0` against an empty rule list is dropped (ExpeL raises IndexError). `EDIT 0` against a
  non-empty list edits the last rule, as Python's index -1 does in ExpeL.
- A proposal may target a rule that an earlier, still pending ADD proposal of the same extraction
  would create; its `target_id` is then that ADD proposal's id, and it can be approved only after it.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agentlearn import policy, prompts, verdicts
from agentlearn.accounts import Identity
from agentlearn.memory import playbook
from agentlearn.memory.reflexion import task_text, transcript
from agentlearn.workspace import Workspace
from storage.records import Insight, InsightChange, InsightProposal, Task, Trajectory, now

OPERATIONS = ("ADD", "EDIT", "REMOVE", "AGREE")
ORDER = ("REMOVE", "AGREE", "EDIT", "ADD")  # the order ExpeL applies one answer's operations in
_PATTERN = re.compile(r"((?:REMOVE|EDIT|ADD|AGREE)(?: \d+|)): (?:[a-zA-Z\s\d]+: |)(.*)")
_BANNED = ("ADD", "AGREE", "EDIT")

Operation = tuple[str, int | None, str]

# --- the ExpeL algorithm ------------------------------------------------------------------------------


def _parse(text: str) -> list[tuple[str, int | None, str, str]]:
    """ExpeL's parse_rules, also returning the matched line."""
    if not isinstance(text, str):
        return []
    out = []
    for match in _PATTERN.finditer(text):
        head, body = match.group(1), match.group(2).strip()
        # Empty, mentions another operation (garbled output), or no final period (cut off): skipped.
        if body == "" or any(w in body for w in _BANNED) or not body.endswith("."):
            continue
        kind, _, number = head.partition(" ")
        if kind == "ADD":  # the number an ADD gives is meaningless: new rules are appended
            out.append(("ADD", None, body, match.group(0)))
        else:
            out.append((kind, int(number) if number else None, body, match.group(0)))
    return out


def parse_operations(text: str) -> list[Operation]:
    """Operations (kind, rule number or None, text) in a model's answer, parsed exactly as ExpeL does."""
    return [(kind, number, body) for kind, number, body, _ in _parse(text)]


@dataclass
class _Rule:
    text: str
    count: int
    ref: str = ""  # insight id, or the id of the pending ADD proposal that will create it


@dataclass
class _Op:
    kind: str
    number: int | None
    text: str
    index: int | None = None  # the rule it applies to (REMOVE/AGREE/EDIT)
    raw: str = ""
    ref: str = ""  # for ADD: what the new rule will be known as


def _find(rules: Sequence[_Rule], text: str) -> int | None:
    """ExpeL's retrieve_rule_index: the first rule whose text is a substring of `text`."""
    for i, rule in enumerate(rules):
        if rule.text in text:
            return i
    return None


def _validate(rules: Sequence[_Rule], ops: Sequence[tuple]) -> list[_Op]:
    """ExpeL's first pass over the operations: drop the ones that cannot apply, turn some EDITs into AGREEs."""
    kept = []
    for op in ops:
        kind, number, text = op[0], op[1], op[2]
        raw = op[3] if len(op) > 3 else ""
        found = _find(rules, text)
        if kind == "ADD":
            if found is None:  # a new rule containing an existing one is a duplicate
                kept.append(_Op("ADD", None, text, raw=raw))
        elif kind == "EDIT":
            if found is not None:  # the "edit" restates an existing rule: that is agreement
                kept.append(_Op("AGREE", found + 1, rules[found].text, found, raw))
            elif number is not None and number <= len(rules) and rules:
                kept.append(_Op("EDIT", number, text, (number - 1) % len(rules), raw))
        elif kind in ("REMOVE", "AGREE"):
            if found is not None:  # the number the model gave is ignored: the text decides
                kept.append(_Op(kind, number, text, found, raw))
    return kept


def _apply(rules: Sequence[_Rule], kept: Sequence[_Op], list_full: bool) -> list[_Rule]:
    """ExpeL's second pass: apply the kept operations in REMOVE, AGREE, EDIT, ADD order; drop and sort."""
    out = [_Rule(r.text, r.count, r.ref) for r in rules]
    for kind in ORDER:
        for op in kept:
            if op.kind != kind:
                continue
            if kind == "REMOVE":
                out[op.index].count -= 3 if list_full else 1
            elif kind == "AGREE":
                out[op.index].count += 1
            elif kind == "EDIT":
                out[op.index] = _Rule(op.text, out[op.index].count + 1, out[op.index].ref)
            else:
                out.append(_Rule(op.text, 2, op.ref))
    out = [r for r in out if r.count > 0]
    out.sort(key=lambda r: r.count, reverse=True)  # stable: ties keep their order
    return out


def apply_operations(rules: Sequence[tuple[str, int]], ops: Sequence[Operation],
                     max_num_rules: int = 10) -> list[tuple[str, int]]:
    """ExpeL's update_rules on (text, count) pairs; returns the new list (the input is not changed)."""
    work = [_Rule(text, count) for text, count in rules]
    list_full = max_num_rules + 5 <= len(work)
    return [(r.text, r.count) for r in _apply(work, _validate(work, ops), list_full)]


def numbered(texts: Sequence[str]) -> str:
    """Rules as ExpeL shows them to the model: "1. rule" lines; an empty list shows as "1. "."""
    return "\n".join(f"{i}. {t}" for i, t in enumerate(list(texts) or [""], 1))


def random_divide_list(items: Sequence, size: int, rng: random.Random) -> list[list]:
    """ExpeL's chunking: shuffle, then ceil(n / size) consecutive chunks of ceil(n / chunks) items."""
    items = list(items)
    if not items:
        return []
    rng.shuffle(items)
    if len(items) <= size:
        return [items]
    chunks = math.ceil(len(items) / size)
    width = math.ceil(len(items) / chunks)
    return [items[i * width:(i + 1) * width] for i in range(chunks)]


def _suffix(rule_count: int, max_num_rules: int) -> str:
    return prompts.EXPEL_SUFFIX_FULL if max_num_rules <= rule_count else prompts.EXPEL_SUFFIX_NOT_FULL


def compare_messages(task: Task, success: Trajectory, failure: Trajectory, rules: Sequence[str],
                     max_num_rules: int = 10) -> list[BaseMessage]:
    """The critique query for one task's successful and failed trial."""
    human = prompts.EXPEL_COMPARE_TEMPLATE.format(
        instruction="", task=task_text(task), success_history=transcript(success).strip(),
        fail_history=transcript(failure).strip(), existing_rules=numbered(rules))
    return [SystemMessage(content=f"You are {prompts.EXPEL_AI_NAME}. {prompts.EXPEL_COMPARE_INSTRUCTION}"),
            HumanMessage(content=human + _suffix(len(rules), max_num_rules))]


def success_messages(pairs: Sequence[tuple[Task, Trajectory]], rules: Sequence[str],
                     max_num_rules: int = 10) -> list[BaseMessage]:
    """The critique query for a chunk of successful trials of different tasks."""
    trials = "\n\n".join(task_text(t) + "\n" + transcript(s) for t, s in pairs)
    human = prompts.EXPEL_SUCCESS_TEMPLATE.format(instruction="", success_history=trials.strip(),
                                    existing_rules=numbered(rules))
    return [SystemMessage(content=f"You are {prompts.EXPEL_AI_NAME}. {prompts.EXPEL_SUCCESS_INSTRUCTION}"),
            HumanMessage(content=human + _suffix(len(rules), max_num_rules))]


# --- reading the store ------------------------------------------------------------------------------


def active(ws: Workspace, suite: str) -> list[Insight]:
    """A suite's active insights, most important first (ties: oldest first)."""
    found = ws.repo.find(Insight, suite=suite, status="active")
    return sorted(found, key=lambda i: i.importance, reverse=True)


def insights_version(ws: Workspace, suite: str) -> int:
    """A number that grows with every change to a suite's insights (for MemoryUsed.insights_version)."""
    return sum(len(i.history) for i in ws.repo.find(Insight, suite=suite))


def pending(ws: Workspace, suite: str) -> list[InsightProposal]:
    """A suite's proposals waiting for review, oldest first."""
    return ws.repo.find(InsightProposal, suite=suite, status="pending")


def most_pending(ws: Workspace, suites: list[str]) -> str:
    """Of these suites, the one with the most proposals waiting for review (the first one when none has any):
    where a reviewer opening the Insights page has work."""
    counts = Counter(p.suite for p in ws.repo.find(InsightProposal, status="pending"))
    return max(suites, key=lambda s: (counts[s], -suites.index(s)), default="")


def every(ws: Workspace, suite: str) -> list[Insight]:
    """Every bullet of a suite, active ones first, each group in playbook rank order."""
    return sorted(ws.repo.find(Insight, suite=suite), key=lambda i: (i.status != "active", *playbook.rank_key(i)))


def target(ws: Workspace, proposal: InsightProposal) -> Insight | None:
    """The bullet an EDIT/REMOVE/AGREE/MERGE proposal changes (None for ADD, or a pending ADD's rule)."""
    return ws.repo.get(Insight, proposal.target_id) if proposal.target_id else None


def merged(ws: Workspace, proposal: InsightProposal) -> list[Insight]:
    """The other bullets a MERGE proposal folds into its target."""
    return [i for i in (ws.repo.get(Insight, x) for x in proposal.merge_ids) if i is not None]


# --- proposals --------------------------------------------------------------------------------------


def _proposal(suite: str, rules: Sequence[_Rule], op: _Op, evidence: Sequence[str]) -> InsightProposal:
    target = rules[op.index].ref if op.index is not None else ""
    return InsightProposal(suite=suite, operation=op.kind, target_id=target, text=op.text,
                           evidence=list(evidence), raw=op.raw)


def _in_order(kept: Sequence[_Op]) -> list[_Op]:
    return sorted(kept, key=lambda op: ORDER.index(op.kind))


def validate_operations(ws: Workspace, suite: str, ops: Sequence[Operation],
                        evidence: Sequence[str] = ()) -> list[InsightProposal]:
    """Proposals (not stored) for the operations that ExpeL would apply to the suite's active insights."""
    rules = [_Rule(i.text, i.importance, i.id) for i in active(ws, suite)]
    return [_proposal(suite, rules, op, evidence) for op in _in_order(_validate(rules, ops))]


def extract(ws: Workspace, suite: str, chat: BaseChatModel | None = None, max_num_rules: int = 10,
            success_chunk: int = 8, seed: int = 42,
            on_call: Callable[[list[BaseMessage], str], None] | None = None,
            screen: Callable[[list[InsightProposal]], list[InsightProposal]] | None = None) -> list[InsightProposal]:
    """Run ExpeL's extraction over the suite's training trajectories; store and return the proposals.

    Compare phase: one call per (success, failure) pair of each task. Success phase: the first success
    of each task, shuffled with `seed`, in chunks of at most `success_chunk`. Each call sees the rules as
    they would be if every proposal so far were approved. Proposals stay pending unless the settings
    ask to apply them automatically (reviewer "auto"). `on_call(messages, answer)` sees every call;
    `screen` may turn drafts into MERGEs or drop repeats before they are stored (memory.proposals.screen).
    """
    if success_chunk < 1:
        raise ValueError(f"success_chunk must be at least 1, not {success_chunk}")
    model = chat if chat is not None else ws.chat()
    judge = verdicts.judge(ws)
    by_task: dict[str, list[Trajectory]] = {}
    for t in ws.repo.find(Trajectory, suite=suite, split="train"):
        by_task.setdefault(t.task_id, []).append(t)
    tasks = [t for t in ws.repo.find(Task, suite=suite, split="train") if t.id in by_task]
    rules = [_Rule(i.text, i.importance, i.id) for i in active(ws, suite)]
    proposals: list[InsightProposal] = []

    def step(messages: list[BaseMessage], evidence: list[str]) -> None:
        nonlocal rules
        answer = model.invoke(messages)
        content = answer.content if isinstance(answer.content, str) else str(answer.content)
        if on_call is not None:
            on_call(messages, content)
        kept = _in_order(_validate(rules, _parse(content)))
        drafts = []
        for op in kept:
            drafts.append(_proposal(suite, rules, op, evidence))
            op.ref = drafts[-1].id  # later proposals may target the rule this ADD would create
        screened = {p.id: p for p in (screen(drafts) if screen else drafts)}
        made = [screened[d.id] for d in drafts if d.id in screened]
        ws.repo.put_many(made)
        if ws.settings.auto_apply_insights:
            for op, draft in zip(kept, drafts, strict=True):
                insight = _auto_apply(ws, screened[draft.id], max_num_rules) if draft.id in screened else None
                if insight is not None and op.kind == "ADD":
                    op.ref = insight.id
        proposals.extend(made)
        rules = _apply(rules, kept, max_num_rules + 5 <= len(rules))

    splits = {}
    for task in tasks:
        judged = [(t, judge.succeeded(t)) for t in by_task[task.id]]
        splits[task.id] = ([t for t, ok in judged if ok is True], [t for t, ok in judged if ok is False])
    for task in tasks:
        successes, failures = splits[task.id]
        for success in successes:
            for failure in failures:
                texts = [r.text for r in rules]
                step(compare_messages(task, success, failure, texts, max_num_rules), [success.id, failure.id])
    firsts = [(task, splits[task.id][0][0]) for task in tasks if splits[task.id][0]]
    for chunk in random_divide_list(firsts, success_chunk, random.Random(seed)):
        texts = [r.text for r in rules]
        step(success_messages(chunk, texts, max_num_rules), [s.id for _, s in chunk])
    return [ws.repo.get(InsightProposal, p.id) or p for p in proposals]


def _auto_apply(ws: Workspace, proposal: InsightProposal, max_num_rules: int) -> Insight | None:
    """Approve as reviewer "auto"; a proposal that cannot apply any more stays pending for a person."""
    try:
        return auto_approve(ws, proposal.id, max_num_rules=max_num_rules)
    except ValueError:
        return None


# --- review -----------------------------------------------------------------------------------------


def _get(ws: Workspace, kind: type, record_id: str):
    record = ws.repo.get(kind, record_id)
    if record is None:
        raise ValueError(f"no {kind.__name__} with id {record_id!r}")
    return record


def _check_text(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what}: the insight text is empty")
    return text.strip()


def _acting(ws: Workspace, who: Identity, action: str) -> str:
    """The name a change is recorded under, once the policy lets `who` do `action`."""
    return policy.require(ws.repo, who, action).name


def _resolve_target(ws: Workspace, proposal: InsightProposal) -> Insight:
    """The active insight a REMOVE/AGREE/EDIT proposal applies to, or a ValueError saying why not."""
    where = f"{proposal.operation} proposal {proposal.id}"
    insight = ws.repo.get(Insight, proposal.target_id)
    if insight is None:
        add = ws.repo.get(InsightProposal, proposal.target_id)
        if add is None:
            raise ValueError(f"{where}: its target {proposal.target_id!r} does not exist")
        if add.status != "approved":
            raise ValueError(f"{where}: its target is the rule that ADD proposal {add.id} would create, which "
                             f"is {add.status}; review that proposal first")
        made = [i for i in ws.repo.find(Insight, suite=proposal.suite)
                if i.history and i.history[0].proposal_id == add.id]
        if not made:
            raise ValueError(f"{where}: no insight was created by ADD proposal {add.id}")
        insight = made[0]
    if insight.status != "active":
        raise ValueError(f"{where}: its target insight {insight.id} was removed meanwhile "
                         f"(restore it, or reject this proposal)")
    return insight


def _change(insight: Insight, by: str, operation: str, text: str, importance: int,
            evidence: Sequence[str] = (), proposal_id: str = "") -> Insight:
    """The insight with new text/importance, its status following the count, and one more history entry."""
    entry = InsightChange(by=by, operation=operation, text=text, importance=importance,
                          evidence=list(evidence), proposal_id=proposal_id)
    status = "active" if importance > 0 else "removed"
    return insight.model_copy(update={"text": text, "importance": importance, "status": status,
                                      "history": [*insight.history, entry]})


def approve(ws: Workspace, proposal_id: str, who: Identity, text: str | None = None,
            max_num_rules: int = 10) -> Insight:
    """Apply a pending proposal with ExpeL's count rules; `text` edits an ADD/EDIT before applying.

    `who` needs the review action (agentlearn.policy) and is recorded as the reviewer.
    """
    return _approve(ws, proposal_id, _acting(ws, who, "review"), text, max_num_rules)


def auto_approve(ws: Workspace, proposal_id: str, max_num_rules: int = 10) -> Insight:
    """Apply a proposal as reviewer "auto": only where the workspace says so (auto_apply_insights)."""
    if not ws.settings.auto_apply_insights:
        raise ValueError("proposals are applied by a reviewer here (auto_apply_insights is off)")
    return _approve(ws, proposal_id, "auto", max_num_rules=max_num_rules)


def _approve(ws: Workspace, proposal_id: str, reviewer: str, text: str | None = None,
             max_num_rules: int = 10) -> Insight:
    proposal = _get(ws, InsightProposal, proposal_id)
    if proposal.status != "pending":
        raise ValueError(f"proposal {proposal_id} is already {proposal.status} (by {proposal.reviewer or '?'})")
    op = proposal.operation
    new_text = proposal.text if text is None else _check_text(text, f"proposal {proposal_id}")
    target = None
    if op != "ADD":
        target = _resolve_target(ws, proposal)
        if op in ("AGREE", "REMOVE") and text is not None and new_text != target.text:
            raise ValueError(f"{op} proposal {proposal_id}: only ADD and EDIT proposals can be edited; "
                             "edit the insight itself instead")
    full = max_num_rules + 5 <= len(active(ws, proposal.suite))  # measured before the change, as in ExpeL

    def claim(p: InsightProposal) -> InsightProposal:
        if p.status != "pending":  # someone else reviewed it between our read and this write
            raise ValueError(f"proposal {proposal_id} is already {p.status} (by {p.reviewer or '?'})")
        return p.model_copy(update={"status": "approved", "reviewer": reviewer, "reviewed": now(), "text": new_text})

    ws.repo.update(InsightProposal, proposal_id, claim)
    try:
        insight = _apply_proposal(ws, proposal, target, op, new_text, reviewer, full)
    except Exception:
        ws.repo.update(InsightProposal, proposal_id,
                       lambda p: p.model_copy(update={"status": "pending", "reviewer": "", "reviewed": None,
                                                      "text": proposal.text}))
        raise
    return insight


def _apply_proposal(ws: Workspace, proposal: InsightProposal, target: Insight | None, op: str, text: str,
                    reviewer: str, full: bool) -> Insight:
    args = {"evidence": proposal.evidence, "proposal_id": proposal.id}
    if target is None:
        section = playbook.check_section(proposal.section) if proposal.section else playbook.section_for(text)
        insight = Insight(suite=proposal.suite, text=text, importance=0, section=section)
        return ws.repo.put(_change(insight, reviewer, "ADD", text, 2, **args))
    if op == "MERGE":
        return _merge(ws, proposal, target, text, reviewer)

    def change(current: Insight) -> Insight:
        if current.status != "active":
            raise ValueError(f"{op} proposal {proposal.id}: its target insight {current.id} was removed meanwhile")
        if op == "REMOVE":
            return _change(current, reviewer, op, current.text, current.importance - (3 if full else 1), **args)
        if op == "AGREE":
            return _change(current, reviewer, op, current.text, current.importance + 1, **args)
        return _change(current, reviewer, op, text, current.importance + 1, **args)

    return ws.repo.update(Insight, target.id, change)


def _merge(ws: Workspace, proposal: InsightProposal, target: Insight, text: str, reviewer: str) -> Insight:
    """Fold the other bullets into the target: one text, the highest importance plus one, counters summed."""
    others = []
    for other_id in proposal.merge_ids:
        other = ws.repo.get(Insight, other_id)
        if other is None or other.status != "active":
            raise ValueError(f"MERGE proposal {proposal.id}: insight {other_id} is no longer active; reject this "
                             "proposal or restore that insight")
        others.append(other)
    args = {"evidence": proposal.evidence, "proposal_id": proposal.id}

    def fold(current: Insight) -> Insight:
        merged = _change(current, reviewer, "MERGE", text, max([current.importance, *(o.importance for o in others)]) + 1,
                         **args)
        return merged.model_copy(update={"helpful": current.helpful + sum(o.helpful for o in others),
                                         "harmful": current.harmful + sum(o.harmful for o in others),
                                         "neutral": current.neutral + sum(o.neutral for o in others)})

    kept = ws.repo.update(Insight, target.id, fold)
    for other in others:
        ws.repo.update(Insight, other.id, lambda cur: _change(cur, reviewer, "MERGED", cur.text, 0, **args))
    return kept


def reject(ws: Workspace, proposal_id: str, who: Identity) -> InsightProposal:
    """Mark a pending proposal rejected; the insights stay as they are. `who` needs the review action."""
    reviewer = _acting(ws, who, "review")
    _get(ws, InsightProposal, proposal_id)

    def mark(p: InsightProposal) -> InsightProposal:
        if p.status != "pending":
            raise ValueError(f"proposal {proposal_id} is already {p.status} (by {p.reviewer or '?'})")
        return p.model_copy(update={"status": "rejected", "reviewer": reviewer, "reviewed": now()})

    return ws.repo.update(InsightProposal, proposal_id, mark)


# --- people editing insights directly ---------------------------------------------------------------


def add_manual(ws: Workspace, suite: str, text: str, who: Identity, section: str = "") -> Insight:
    """A person's own insight (importance 2, like an approved ADD); the section is inferred when not given.

    Here and below, `who` needs the edit_playbook action (agentlearn.policy) and is recorded on the change.
    """
    by, text = _acting(ws, who, "edit_playbook"), _check_text(text, f"new insight for suite {suite!r}")
    section = playbook.check_section(section) if section else playbook.section_for(text)
    return ws.repo.put(_change(Insight(suite=suite, text=text, importance=0, section=section), by, "ADD", text, 2))


def _update_active(ws: Workspace, insight_id: str, what: str, fn: Callable[[Insight], Insight]) -> Insight:
    _get(ws, Insight, insight_id)

    def change(current: Insight) -> Insight:
        if current.status != "active":
            raise ValueError(f"cannot {what} insight {insight_id}: it was removed (restore it first)")
        return fn(current)

    return ws.repo.update(Insight, insight_id, change)


def edit(ws: Workspace, insight_id: str, text: str, who: Identity) -> Insight:
    """A person rewrites an active insight; its importance stays."""
    by, text = _acting(ws, who, "edit_playbook"), _check_text(text, f"edit of insight {insight_id}")
    return _update_active(ws, insight_id, "edit",
                          lambda i: _change(i, by, "MANUAL_EDIT", text, i.importance))


def promote(ws: Workspace, insight_id: str, who: Identity) -> Insight:
    """A person raises an active insight's importance by one."""
    by = _acting(ws, who, "edit_playbook")
    return _update_active(ws, insight_id, "promote",
                          lambda i: _change(i, by, "PROMOTE", i.text, i.importance + 1))


def demote(ws: Workspace, insight_id: str, who: Identity) -> Insight:
    """A person lowers an active insight's importance by one; at 0 it is removed."""
    by = _acting(ws, who, "edit_playbook")
    return _update_active(ws, insight_id, "demote",
                          lambda i: _change(i, by, "DEMOTE", i.text, i.importance - 1))


def restore(ws: Workspace, insight_id: str, history_index: int, who: Identity) -> Insight:
    """Bring an insight's text and importance (at least 1) back to one history entry; it becomes active."""
    by = _acting(ws, who, "edit_playbook")
    insight = _get(ws, Insight, insight_id)
    if not -len(insight.history) <= history_index < len(insight.history):
        raise ValueError(f"insight {insight_id} has {len(insight.history)} history entries; "
                         f"there is no entry {history_index}")

    def change(current: Insight) -> Insight:
        entry = current.history[history_index]
        return _change(current, by, "RESTORE", entry.text, max(entry.importance, 1))

    return ws.repo.update(Insight, insight_id, change)
