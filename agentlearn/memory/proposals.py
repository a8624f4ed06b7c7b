"""Proposals for the playbook from three sources, all waiting for a person (auto-apply stays a setting).

    errors    error analysis: repeated failure patterns drafted as rules (memory/error_analysis), no model
    model     ExpeL's comparison prompts over successes and failures (insights.extract)
    curator   an ACE-style reflector/curator answering with delta operations as JSON (memory/curator)
    person    a rating comment or a preference's edit-to-fix, turned into a draft by its author
    attribution  retiring a bullet whose counters or attributed effect are clearly negative

Every source goes through `screen`: a new rule within MiniLM cosine DUPLICATE of an active bullet
becomes a MERGE into it, a draft that repeats a pending one (same pattern or text) is dropped, and
drafts from the same runs for the same target become one proposal.
`propose` runs the sources and says, for each one that proposed nothing, why and what to do next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agentlearn import policy, verdicts
from agentlearn.accounts import Identity
from agentlearn.memory import curator, error_analysis, insights, playbook
from agentlearn.methods import PROPOSAL_SOURCES
from agentlearn.tasks import request_text
from agentlearn.workspace import Workspace
from storage.records import Insight, InsightProposal, Task, Trajectory

SOURCES = PROPOSAL_SOURCES  # what `propose` runs; "person" and "attribution" are one-off
DUPLICATE = 0.9  # MiniLM cosine at which a new rule restates an active bullet


@dataclass
class Proposed:
    """What one `propose` call made, and for each source that made nothing, the reason."""

    proposals: list[InsightProposal] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        made = ", ".join(f"{n} from {src}" for src, n in self.counts.items() if n) or "no proposals"
        why = "; ".join(f"{src}: {why}" for src, why in self.reasons.items())
        return made + (f" ({why})" if why else "")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)


def screen(ws: Workspace, suite: str, drafts: Sequence[InsightProposal]) -> list[InsightProposal]:
    """Drafts worth a person's time: near-duplicate ADDs become MERGEs, repeats of pending ones are dropped."""
    pending = insights.pending(ws, suite)
    seen_patterns = {p.pattern for p in ws.repo.find(InsightProposal, suite=suite) if p.pattern}
    seen_texts = {(p.operation, p.target_id, p.text.strip().lower()) for p in pending}
    bullets = insights.active(ws, suite)
    adds = [d for d in drafts if d.operation == "ADD"]
    nearest: dict[str, tuple[Insight, float]] = {}
    if adds and bullets:
        sims = _unit(ws.encoder([d.text for d in adds])) @ _unit(ws.encoder([b.text for b in bullets])).T
        for d, row in zip(adds, sims, strict=True):
            j = int(np.argmax(row))
            nearest[d.id] = (bullets[j], float(row[j]))
    # Drafts a source drew from the same runs for the same target say one thing several ways (error analysis
    # drafted three rules from one set of failures): one proposal, the others named in its rationale. A
    # person's own rule is theirs to word, so it is left alone.
    same_runs: dict[tuple[str, frozenset[str]], InsightProposal] = {
        _runs_key(p): p for p in pending if p.evidence and p.source != "person"}
    kept = []
    for d in drafts:
        if d.pattern and d.pattern in seen_patterns:
            continue
        if d.evidence and d.source != "person" and _runs_key(d) in same_runs:
            first = same_runs[_runs_key(d)]
            if first in kept:  # drafted in this call: fold this wording into it
                kept[kept.index(first)] = folded = first.model_copy(update={"rationale": (
                    f"{first.rationale}; also drafted from the same runs: {d.text}").lstrip("; ")})
                same_runs[_runs_key(d)] = folded
            continue  # or one from these runs already waits for review
        match = nearest.get(d.id)
        if match is not None and match[1] >= DUPLICATE:
            bullet, sim = match
            d = d.model_copy(update={"operation": "MERGE", "target_id": bullet.id, "rationale": (
                f"{d.rationale}; restates an active bullet (cosine {sim:.2f}), so it is merged into it"
            ).lstrip("; ")})
        key = (d.operation, d.target_id, d.text.strip().lower())
        if key in seen_texts:
            continue
        seen_texts.add(key)
        if d.pattern:
            seen_patterns.add(d.pattern)
        if d.evidence and d.source != "person":
            same_runs[_runs_key(d)] = d
        kept.append(d)
    return kept


def _runs_key(p: InsightProposal) -> tuple[str, frozenset[str]]:
    return p.target_id, frozenset(p.evidence)


def _store(ws: Workspace, drafts: list[InsightProposal]) -> list[InsightProposal]:
    ws.repo.put_many(drafts)
    if ws.settings.auto_apply_insights:
        for d in drafts:
            try:
                insights.auto_approve(ws, d.id)
            except ValueError:
                pass  # it stays pending for a person, who sees why when approving
    return [ws.repo.get(InsightProposal, d.id) or d for d in drafts]


def from_errors(ws: Workspace, suite: str) -> tuple[list[InsightProposal], str]:
    analysis = error_analysis.analyse(ws, suite)
    drafts = [InsightProposal(suite=suite, operation="ADD", text=d.text, section=d.section, source="errors",
                              rationale=d.rationale, pattern=d.pattern, evidence=d.evidence)
              for d in analysis.drafts]
    kept = screen(ws, suite, drafts)
    if analysis.drafts and not kept:
        return [], (f"the {len(analysis.drafts)} failure patterns in {analysis.failures} failed train runs were "
                    "all proposed before; review those, or run more")
    return _store(ws, kept), "" if kept else analysis.summary()


def from_model(ws: Workspace, suite: str) -> tuple[list[InsightProposal], str]:
    """ExpeL's extraction, its drafts screened before they are stored."""
    made = insights.extract(ws, suite, screen=lambda drafts: screen(ws, suite, drafts))
    if made:
        return made, ""
    runs = ws.repo.find(Trajectory, suite=suite, split="train")
    return [], (f"the model wrote no new valid ExpeL operation over {len(runs)} train runs (a small model often "
                "does not); error analysis and the curator do not depend on that format")


def from_curator(ws: Workspace, suite: str, on_progress: Callable[[int, int], None] | None = None
                 ) -> tuple[list[InsightProposal], str]:
    drafts, reason = curator.curate(ws, suite, on_progress=on_progress)
    kept = screen(ws, suite, drafts)
    return _store(ws, kept), reason if not kept else ""


def default_sources(ws: Workspace) -> tuple[str, ...]:
    """The sources `propose` runs unless told: error analysis alone on the embedded model, where ExpeL and
    the curator wrote no usable rule (README), every source with an OpenAI-compatible model."""
    return ("errors",) if ws.settings.backend == "embedded" else SOURCES


def propose(ws: Workspace, suite: str, sources: Sequence[str] | None = None,
            on_progress: Callable[[int, int, str], None] | None = None) -> Proposed:
    """Run the sources (default_sources if None) in order and store what they propose; nothing is applied
    unless auto-apply is on."""
    sources = default_sources(ws) if sources is None else sources
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown proposal source {unknown[0]!r}; choose from {', '.join(SOURCES)}")
    out = Proposed()
    playbook.recount(ws, suite)  # people may have labeled since the runs: counters use today's verdicts
    for n, source in enumerate(sources):
        if on_progress:
            on_progress(n, len(sources), f"proposing from {source}")
        if source == "errors":
            made, why = from_errors(ws, suite)
        elif source == "model":
            made, why = from_model(ws, suite)
        else:
            made, why = from_curator(ws, suite)
        out.proposals += made
        out.counts[source] = len(made)
        if not made:
            out.reasons[source] = why
    if on_progress:
        on_progress(len(sources), len(sources), out.summary())
    return out


# --- one-off sources -------------------------------------------------------------------------------


def from_person(ws: Workspace, suite: str, text: str, who: Identity, evidence: Sequence[str] = (),
                section: str = "", why: str = "") -> InsightProposal:
    """A person's rule (from a rating comment or an edit-to-fix), waiting for review like any other.

    Anyone who labels may suggest one (the label action, agentlearn.policy); it is recorded under their name.
    """
    by = policy.require(ws.repo, who, "label").name
    if not text or not text.strip():
        raise ValueError("the proposed rule is empty; write what the agent should do")
    draft = InsightProposal(suite=suite, operation="ADD", text=text.strip(), source="person",
                            section=playbook.check_section(section) if section else "",
                            rationale=why or f"proposed by {by}", evidence=list(evidence))
    kept = screen(ws, suite, [draft])
    if not kept:
        raise ValueError("the same rule already waits for review; approve or edit that one")
    return _store(ws, kept)[0]


def draft_from_comment(ws: Workspace, trajectory_id: str, comment: str) -> str:
    """A rule drafted from a rating comment, for its author to edit before proposing."""
    comment = comment.strip()
    traj = ws.repo.get(Trajectory, trajectory_id)
    task = ws.repo.get(Task, traj.task_id) if traj else None
    if task is None or not comment:
        return comment
    return f"When asked to {task.expected.name.replace('_', ' ')}: {comment}"


def draft_from_fix(ws: Workspace, task_id: str, fix: str) -> str:
    """A rule drafted from an edit-to-fix: what the corrected answer does, for requests like the task's."""
    task = ws.repo.get(Task, task_id) if task_id else None
    fix = fix.strip()
    if not fix:
        return ""
    what = f" for requests like {_clip(request_text(task.input))!r}" if task and task.input else ""
    return f"Answer{what} the way this corrected call does: {_clip(fix, 200)}"


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def retire(ws: Workspace, insight_id: str, who: Identity, why: str) -> InsightProposal:
    """A REMOVE proposal for a bullet that attribution flags, waiting for review; `who` needs edit_playbook."""
    by = policy.require(ws.repo, who, "edit_playbook").name
    bullet = ws.repo.get(Insight, insight_id)
    if bullet is None or bullet.status != "active":
        raise ValueError(f"insight {insight_id} is not an active bullet")
    waiting = [p for p in insights.pending(ws, bullet.suite) if p.operation == "REMOVE" and p.target_id == insight_id]
    if waiting:
        return waiting[0]
    return ws.repo.put(InsightProposal(suite=bullet.suite, operation="REMOVE", target_id=insight_id, text=bullet.text,
                                       source="attribution", rationale=f"flagged by {by}: {why}"))


def evidence_rows(ws: Workspace, proposal: InsightProposal) -> list[dict]:
    """The runs a proposal was drawn from: outcome, request and answer, as plain text."""
    judge = verdicts.judge(ws)
    rows = []
    for tid in proposal.evidence:
        traj = ws.repo.get(Trajectory, tid)
        if traj is None:
            rows.append({"trajectory": tid, "outcome": "not in the store", "request": "", "answer": ""})
            continue
        task = ws.repo.get(Task, traj.task_id)
        ok = judge.succeeded(traj)
        rows.append({"trajectory": tid, "outcome": {True: "success", False: "fail", None: "not judged"}[ok],
                     "request": _clip(request_text(task.input), 120) if task else "",
                     "answer": _clip(traj.output, 160)})
    return rows
