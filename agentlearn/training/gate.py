"""The promotion gate: a new adapter becomes a suite's model only when heldout says it is better.

    decide(candidate, current, kinds)  paired exact McNemar on heldout accuracy (p below
                                        settings.gate_p_value, candidate ahead) and no argument kind
                                        worse by more than settings.gate_kind_margin
    metric_for(ws, suite)               which accuracy: call accuracy where the suite's tasks carry references
                                        (every acceptable value known, BFCL's rule grades the whole call),
                                        name accuracy elsewhere (suites whose arguments cannot be graded)
    apply(ws, suite, adapter, decision) stores the decision (a Promotion) and, when it passed, sets
                                        Suite.adapter, the model every run uses by default ("auto")
    use(ws, suite, ref) / rollback(ws, suite)   a person's choice, one action, also stored
    power(n, p_max)                     before training: how likely a heldout split of n tasks lets the gate
                                        pass a plausible gain, and how many tasks it would need

Per-kind accuracy comes from EvalRun.per_argument (counted over the calls that named the right tool),
so an adapter that names more tools but garbles identifiers is caught even when its name accuracy rose.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agentlearn import adapters, arg_kinds, policy, stats
from agentlearn.accounts import Identity
from agentlearn.workspace import Workspace
from storage.records import Adapter, EvalRun, Promotion, Suite


@dataclass
class Decision:
    """What the gate said about a candidate against the current model, and the figures behind it."""

    promote: bool
    p_value: float
    before: float  # heldout accuracy (`metric`) of the current model
    after: float  # of the candidate
    n: int  # tasks both runs have
    per_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    metric: str = "name"  # "name" or "call" accuracy (metric_for)


METRIC_WORDS = {"name": "name accuracy", "call": "call accuracy"}


def metric_for(ws: Workspace, suite: str) -> str:
    """"call" when the suite's heldout tasks carry references: there the whole call is graded by a rule that
    accepts every right answer (BFCL's), and name accuracy says little (a BFCL simple task offers one tool:
    98.5% named it). "name" elsewhere: a suite that invents argument values grades them too harshly."""
    from agentlearn.tasks import load_tasks

    tasks = load_tasks(ws, suite, "heldout")
    return "call" if tasks and all(t.reference is not None for t in tasks) else "name"


def accuracy(run: EvalRun, metric: str) -> float:
    """A run's heldout accuracy by `metric`."""
    return run.call_accuracy if metric == "call" else run.name_accuracy


def kind_accuracy(run: EvalRun, kinds: arg_kinds.Kinds | None) -> dict[str, tuple[int, int]]:
    """Argument kind -> (right, graded) over the run's name-correct calls."""
    out: dict[str, list[int]] = {}
    for key, (right, total) in run.per_argument.items():
        tool, _, arg = key.rpartition(".")
        cell = out.setdefault(arg_kinds.kind_of(kinds, tool, arg, None), [0, 0])
        cell[0] += right
        cell[1] += total
    return {kind: (right, total) for kind, (right, total) in out.items()}


def decide(candidate: EvalRun, current: EvalRun, kinds: arg_kinds.Kinds | None = None, p_max: float = 0.05,
           margin: float = 0.10, metric: str = "name") -> Decision:
    """Promote only if the candidate is ahead on `metric` accuracy with p < p_max and loses no kind by > margin."""
    if candidate.split != current.split or candidate.suite != current.suite:
        raise ValueError(f"the gate compares runs on one suite and split, not {candidate.suite}/{candidate.split} "
                         f"with {current.suite}/{current.split}")
    words = METRIC_WORDS[metric]
    p = stats.paired(candidate, current, metric)
    reasons = [f"{words} {p.accuracy_b:.1%} -> {p.accuracy_a:.1%} on {p.n} paired heldout tasks "
               f"({p.only_a} only the new model got right, {p.only_b} only the current one), "
               f"exact McNemar p={p.p_value:.3g}, difference {p.difference:+.1%} [{p.low:+.1%}, {p.high:+.1%}]"]
    ok = True
    if p.n == 0:
        ok = False
        reasons.append("the runs share no task: nothing to compare")
    elif p.difference <= 0:
        ok = False
        reasons.append(f"refused: the new model is not ahead on {words}")
    elif p.p_value >= p_max:
        ok = False
        reasons.append(f"refused: p={p.p_value:.3g} is not below {p_max:g}; the gain may be chance")
    per_kind: dict[str, dict[str, float]] = {}
    after_kinds, before_kinds = kind_accuracy(candidate, kinds), kind_accuracy(current, kinds)
    for kind in sorted(set(after_kinds) | set(before_kinds)):
        a_right, a_n = after_kinds.get(kind, (0, 0))
        b_right, b_n = before_kinds.get(kind, (0, 0))
        before_acc = b_right / b_n if b_n else None
        after_acc = a_right / a_n if a_n else None
        per_kind[kind] = {"before": -1.0 if before_acc is None else before_acc, "n_before": float(b_n),
                          "after": -1.0 if after_acc is None else after_acc, "n_after": float(a_n)}
        if before_acc is not None and after_acc is not None and after_acc < before_acc - margin:
            ok = False
            reasons.append(f"refused: {kind} arguments fell from {before_acc:.1%} to {after_acc:.1%} "
                           f"(more than the {margin:.0%} allowed)")
    if ok:
        reasons.append(f"promoted: ahead with p < {p_max:g} and no argument kind down by more than {margin:.0%}")
    return Decision(promote=ok, p_value=p.p_value, before=p.accuracy_b, after=p.accuracy_a, n=p.n,
                    per_kind=per_kind, reasons=reasons, metric=metric)


def refuse(decision: Decision, reason: str) -> Decision:
    """The decision with promotion refused for `reason` (the figures kept)."""
    return dataclasses.replace(decision, promote=False, reasons=[
        *[r for r in decision.reasons if not r.startswith("promoted:")], reason])


# What `power` assumes: a new model that is better by PLAUSIBLE_GAIN of the tasks, net. Paired runs of
# two models rarely differ in one direction only: the new one also loses some tasks the old one got right.
# LOSS_SHARE says how many, as a share of the gain (0.5: +10 points net = 15% of tasks won, 5% lost).
PLAUSIBLE_GAIN = 0.10
LOSS_SHARE = 0.5
WANTED_POWER = 0.8


def power(n: int, p_max: float = 0.05, gain: float = PLAUSIBLE_GAIN, loss_share: float = LOSS_SHARE,
          wanted: float = WANTED_POWER) -> dict[str, Any]:
    """What a heldout split of n tasks lets the gate show: the chance it passes a +`gain` model (exact McNemar
    p < p_max, the model ahead), the tasks it would need for `wanted` power, the least it needs even if the
    new model lost nothing, and one message saying so (too_small when the chance is below `wanted`)."""
    p_loss = gain * loss_share
    p_win = gain + p_loss
    chance = stats.mcnemar_power(n, p_win, p_loss, p_max)
    needed = stats.tasks_needed(p_win, p_loss, p_max, wanted)
    needed_clean = stats.tasks_needed(gain, 0.0, p_max, wanted)
    fewest = stats.fewest_wins(p_max)
    too_small = chance < wanted
    assumed = (f"assuming a +{gain * 100:.0f}-point gain that wins {p_win:.0%} of the tasks and loses {p_loss:.0%} "
               f"(exact McNemar, p < {p_max:g})")
    needs = f"about {needed}" if needed else "more than 1,000"
    if too_small:
        message = (f"the heldout split ({n} tasks) is too small for the gate to pass a plausible gain: "
                   f"{assumed}, it passes with probability {chance:.1%}; {wanted:.0%} needs {needs} heldout tasks "
                   f"({needed_clean or 'over 1,000'} if the new model lost no task; at least {fewest} tasks won and "
                   f"none lost are needed for any pass). Import more tasks or a larger heldout share.")
    else:
        message = f"the heldout split ({n} tasks) is large enough: {assumed}, the gate passes with probability {chance:.0%}."
    return {"n": n, "gain": gain, "p_win": p_win, "p_loss": p_loss, "p_max": p_max, "power": chance,
            "needed": needed, "needed_without_losses": needed_clean, "fewest_wins": fewest, "too_small": too_small,
            "message": message}


def judge(ws: Workspace, candidate: EvalRun, current: EvalRun) -> Decision:
    """`decide` with the suite's argument kinds and metric and the workspace's gate settings."""
    suite = ws.repo.get(Suite, candidate.suite)
    kinds = arg_kinds.kinds_for(suite) if suite else None
    return decide(candidate, current, kinds, ws.settings.gate_p_value, ws.settings.gate_kind_margin,
                  metric_for(ws, candidate.suite))


def apply(ws: Workspace, suite: str, adapter_id: str, decision: Decision, candidate: EvalRun, current: EvalRun,
          improvement_id: str = "", by: str = "gate") -> Promotion:
    """Store the gate's decision; when it passed, the adapter becomes the suite's model."""
    _suite(ws, suite)
    previous = adapters.suite_adapter(ws, suite)
    promotion = Promotion(suite=suite, adapter_id=adapter_id, previous=previous,
                          decision="promoted" if decision.promote else "refused", p_value=decision.p_value,
                          before=decision.before, after=decision.after, n=decision.n, metric=decision.metric,
                          eval_before=current.id,
                          eval_after=candidate.id, per_kind=decision.per_kind, reasons=decision.reasons, by=by,
                          improvement_id=improvement_id)
    ws.repo.put(promotion)
    if decision.promote:
        _set(ws, suite, adapter_id)
    return promotion


def use(ws: Workspace, suite: str, ref: str, who: Identity) -> Promotion:
    """Make `ref` (an adapter's id, its job's id or its folder; "none" for the base model) the suite's model.

    `who` needs the train action (agentlearn.policy) and is recorded on the change.
    """
    by = policy.require(ws.repo, who, "train").name
    record = _suite(ws, suite)
    target = adapters.resolve(ws, suite, ref) if ref.strip().lower() != adapters.AUTO else record.adapter
    promotion = Promotion(suite=suite, adapter_id=target, previous=adapters.suite_adapter(ws, suite), decision="use",
                          reasons=[f"set by {by or 'a person'}"], by=by)
    ws.repo.put(promotion)
    _set(ws, suite, target)
    return promotion


def rollback(ws: Workspace, suite: str, who: Identity) -> Promotion:
    """Go back to the model the suite used before its current one (the base model at the bottom); `who`: train."""
    by = policy.require(ws.repo, who, "train").name
    _suite(ws, suite)
    current = adapters.suite_adapter(ws, suite)
    setters = [p for p in history(ws, suite) if p.decision in ("promoted", "use") and p.adapter_id == current]
    if not current and not setters:
        raise ValueError(f"suite {suite!r} already runs on the base model; nothing to roll back")
    target = setters[0].previous if setters else ""
    if target and ws.repo.get(Adapter, target) is None:
        target = ""  # the earlier adapter was deleted since: the base model is what is left
    promotion = Promotion(suite=suite, adapter_id=target, previous=current, decision="rollback",
                          reasons=[f"rolled back by {by or 'a person'} from {current or 'the base model'}"], by=by)
    ws.repo.put(promotion)
    _set(ws, suite, target)
    return promotion


def history(ws: Workspace, suite: str) -> list[Promotion]:
    """The suite's gate decisions and model changes, newest first."""
    return sorted(ws.repo.find(Promotion, suite=suite), key=lambda p: (p.created, p.id), reverse=True)


def _set(ws: Workspace, suite: str, adapter_id: str) -> None:
    # An update, not a put: a person editing the suite's card meanwhile keeps their change.
    ws.repo.update(Suite, suite, lambda s: s.model_copy(update={"adapter": adapter_id}))


def _suite(ws: Workspace, suite: str) -> Suite:
    from agentlearn.tasks import get_suite

    return get_suite(ws, suite)


def history_rows(ws: Workspace, suite: str) -> list[dict[str, object]]:
    """The suite's decisions as table rows, newest first."""
    return [{"when": p.created, "decision": p.decision, "adapter": p.adapter_id or "base model",
             "previous": p.previous or "base model", "before": p.before if p.n else None,
             "after": p.after if p.n else None, "accuracy": METRIC_WORDS[p.metric] if p.n else None,
             "p_value": p.p_value if p.n else None, "n": p.n or None,
             "by": p.by, "why": " · ".join(p.reasons)} for p in history(ws, suite)]
