"""The improve pipeline: from a suite's store to a better model in one job, through the gate.

    collect   run the agent on train tasks that have no correct call yet (only when too few have one)
    export    SFT rows (and DPO pairs, GRPO prompts when asked for)
    check     size each config by its data (sizing) and run the pre-launch checks (preflight)
    sft       train an SFT adapter (jobs.launch: the same job process as `train`)
    dpo, grpo optional, each continuing the SFT adapter
    evaluate  heldout runs of the suite's serving configuration (its model and its memory method: exemplars
              when it has an exemplar bank, else zero-shot), of every candidate alone, and of every
              candidate with the serving memory method (what the suite would serve once it is promoted)
    decide    DPO or GRPO is kept over SFT only if the gate says it beats SFT; the chosen one, with the
              serving memory method, goes through the gate against the serving configuration and is
              promoted only if it passes; an adapter that scored below its base on the job's validation
              slice is never promoted

Before training, the check stage says what the heldout split can show: the chance that the gate passes a
plausible gain (gate.power) and how many heldout tasks that would need; and which heldout tasks call tools no
train task calls (unseen_tools), which training cannot teach.

Each stage's status and output are kept on the Improvement record as it goes, so a stopped or failed
pipeline resumes from its first unfinished stage (`improve --resume`). Progress reaches the Process
record of a dashboard-started run through processes.report; SIGTERM (the page's Stop) stops the
running training job and marks the stage stopped.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentlearn import adapters, datasets, policy, processes, stats
from agentlearn.accounts import Identity
from agentlearn.methods import TRAINING_METHODS as METHODS
from agentlearn.training import config as jc
from agentlearn.training import gate, jobs, preflight, sizing
from agentlearn.workspace import Workspace
from storage.records import EvalRun, Exemplar, Improvement, StageRun, now

STAGES = ("collect", "export", "check", *METHODS, "evaluate", "decide")
WHAT = {
    "collect": "running the agent on train tasks without a correct call",
    "export": "writing the training files",
    "check": "sizing the jobs by their data and checking them",
    "sft": "supervised fine-tuning",
    "dpo": "preference optimisation on top of SFT",
    "grpo": "reinforcement learning with the graders on top of SFT",
    "evaluate": "heldout evaluation of the suite's serving configuration, each candidate, and each with its memory",
    "decide": "the gate: promote only a model that is better",
}
TRAINED = METHODS
MIN_TARGET_SHARE = 0.5  # collect runs when fewer than half of the train tasks have a correct call
DPO_PAIRS = ("preferences", "verifier")


class Stopped(Exception):
    """Raised inside a stage when the pipeline is asked to stop."""


class Skip(Exception):
    """Raised by a stage that has nothing to do; its message says why."""


@dataclass
class Context:
    """What a stage gets: the workspace, the record's id and the run's settings."""

    ws: Workspace
    improvement_id: str
    suite: str
    methods: tuple[str, ...]
    preset: str = ""
    limit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # config overrides for every job (tests size them)
    who: Identity | None = None  # who asked: the jobs are started and stopped for them
    on_message: Callable[[str], None] | None = None  # a terminal's progress line (the CLI)

    def record(self) -> Improvement:
        return self.ws.repo.get(Improvement, self.improvement_id)

    def output(self, stage: str) -> dict[str, Any]:
        """An earlier stage's output ({} if it was skipped or has none)."""
        found = next(s for s in self.record().stages if s.name == stage)
        return found.output if found.status == "done" else {}

    def report(self, message: str) -> None:
        done = sum(s.status in ("done", "skipped") for s in self.record().stages)
        processes.report(self.ws, done, len(STAGES), message)
        if self.on_message:
            self.on_message(message)


Stage = Callable[[Context], dict[str, Any]]


# --- the pipeline --------------------------------------------------------------------------------


def run(ws: Workspace, suite: str, methods: tuple[str, ...] = ("sft",), resume: str = "", preset: str = "",
        limit: int | None = None, stages: dict[str, Stage] | None = None,
        on_stage: Callable[[StageRun], None] | None = None, on_message: Callable[[str], None] | None = None,
        *, who: Identity, **extra: Any) -> Improvement:
    """Run (or resume) an improvement of a suite's model to its end, a stop or a failure; returns the record.

    `who` needs the train action (agentlearn.policy).
    """
    from agentlearn.tasks import get_suite

    who = policy.require(ws.repo, who, "train")
    get_suite(ws, suite)
    record = _resumed(ws, suite, resume) if resume else _new(ws, suite, _checked(methods))
    ctx = Context(ws, record.id, suite, tuple(record.methods), preset=preset, limit=limit, extra=extra,
                  on_message=on_message, who=who)
    steps = {**STAGE_FUNCTIONS, **(stages or {})}
    with _stop_on_sigterm():
        for name in STAGES:
            stage = next(s for s in ctx.record().stages if s.name == name)
            if stage.status in ("done", "skipped"):
                continue
            _stage(ws, record.id, name, status="running", started=now(), error="", output={})
            ctx.report(f"{name}: {WHAT[name]}")
            try:
                stage = _stage(ws, record.id, name, status="done", output=steps[name](ctx) or {}, finished=now())
            except Skip as e:
                stage = _stage(ws, record.id, name, status="skipped", output={"reason": str(e)}, finished=now())
            except (Stopped, KeyboardInterrupt):
                stage = _stage(ws, record.id, name, status="stopped", error="stopped by request", finished=now())
                _notify(on_stage, stage)
                return _end(ws, record.id, "stopped", f"stopped during {name}")
            except Exception as e:  # noqa: BLE001 - any failure is the stage's, kept for the person and a resume
                stage = _stage(ws, record.id, name, status="failed", error=f"{type(e).__name__}: {e}"[:2000],
                               finished=now())
                _notify(on_stage, stage)
                return _end(ws, record.id, "failed", f"{name} failed: {e}")
            _notify(on_stage, stage)
    decided = ctx.output("decide")
    return _end(ws, record.id, "succeeded", promoted=decided.get("promoted", ""))


def summary(record: Improvement) -> dict[str, Any]:
    """One JSON-ready object: promoted (adapter id or ""), before, after, p_value, the stages, readable lines."""
    decided = next((s.output for s in record.stages if s.name == "decide" and s.status == "done"), {})
    out: dict[str, Any] = {
        "id": record.id, "suite": record.suite, "status": record.status, "promoted": record.promoted,
        "before": decided.get("before"), "after": decided.get("after"), "p_value": decided.get("p_value"),
        "n": decided.get("n"), "chosen": decided.get("chosen", ""), "candidate": decided.get("adapter_id", ""),
        "reasons": decided.get("reasons", []), "versus_sft": decided.get("versus_sft", {}), "error": record.error,
        "comparison": decided.get("comparison", []), "power": _check_output(record).get("power", {}),
        "stages": [{"name": s.name, "status": s.status, "error": s.error} for s in record.stages],
    }
    lines = [f"improvement {record.id} of {record.suite}: {record.status}"]
    lines += [f"  {s.name:8} {s.status}" + (f": {s.error}" if s.error else
                                            f": {s.output['reason']}" if s.status == "skipped" else "")
              for s in record.stages]
    out["unseen_tools"] = _check_output(record).get("unseen_tools", {})
    for said in (out["power"].get("message"), out["unseen_tools"].get("message")):
        if said:
            lines.append(f"  before training: {said}")
    lines += [f"  {line}" for line in comparison_lines(out["comparison"])]
    lines += [f"  {r}" for r in out["reasons"]]
    if out["promoted"]:
        lines.append(f"  the suite now runs on adapter {out['promoted']}")
    elif decided:
        lines.append("  the suite keeps its current model")
    out["lines"] = lines
    return out


def latest(ws: Workspace, suite: str) -> Improvement | None:
    """The suite's newest improvement, if any."""
    return max(ws.repo.find(Improvement, suite=suite), key=lambda r: (r.created, r.id), default=None)


# --- stages --------------------------------------------------------------------------------------


def collect(ctx: Context) -> dict[str, Any]:
    """Run the agent (suite's model, exemplars) on the train tasks that have no correct call yet."""
    from agentlearn.agent import run_tasks
    from agentlearn.methods import RunOptions

    tasks = datasets.train_tasks(ctx.ws, ctx.suite)
    targets, _ = datasets.sft_targets(ctx.ws, tasks)
    enough = max(1, math.ceil(MIN_TARGET_SHARE * len(tasks)))
    if len(targets) >= enough:
        raise Skip(f"{len(targets)} of {len(tasks)} train tasks already have a correct call")
    missing = [t for task_id, t in tasks.items() if task_id not in targets]
    run_tasks(ctx.ws, missing, RunOptions(method="exemplars"),
              progress=lambda i, n, *_: ctx.report(f"collect: {i} of {n} train tasks run"))
    after, _ = datasets.sft_targets(ctx.ws, tasks)
    return {"ran": len(missing), "targets_before": len(targets), "targets_after": len(after), "tasks": len(tasks)}


def export(ctx: Context) -> dict[str, Any]:
    """The SFT file (required) and, when asked for, the DPO and GRPO files (their absence is noted)."""
    out: dict[str, Any] = {}
    for method in ctx.methods:
        try:
            made = datasets.export(ctx.ws, method, ctx.suite, pairs_from=DPO_PAIRS if method == "dpo" else
                                   ("preferences",))
        except ValueError as e:
            if method == "sft":
                raise
            out[method] = {"error": str(e)}
            continue
        out[method] = {"id": made.id, "path": made.path, "rows": made.rows}
    return out


def check(ctx: Context) -> dict[str, Any]:
    """Each exported method's config, sized by its data and checked; SFT must pass, DPO/GRPO are noted; and
    what the heldout split lets the gate show (heldout_power)."""
    exported = ctx.output("export")
    power = heldout_power(ctx.ws, ctx.suite, ctx.limit)
    ctx.report(f"check: {power['message']}")
    unseen = unseen_tools(ctx.ws, ctx.suite, ctx.limit)
    if unseen:
        ctx.report(f"check: {unseen['message']}")
    out: dict[str, Any] = {"configs": {}, "facts": {}, "warnings": {}, "errors": {}, "power": power,
                           "unseen_tools": unseen}
    for method in ctx.methods:
        made = exported.get(method, {})
        if "path" not in made:
            out["errors"][method] = [made.get("error", "no dataset was exported")]
            continue
        keep = tuple(k for k in ("max_steps", "max_length") if k in ctx.extra)
        config = jobs.with_base_model(ctx.ws, jc.preset(method, ctx.preset or jobs.default_preset(),
                                                        dataset_path=made["path"], export_id=made["id"],
                                                        suite=ctx.suite, **ctx.extra))
        config, facts = sizing.prepare(config, ctx.ws.settings.models_dir, keep=keep)
        report = preflight.check(config, ctx.ws.settings.models_dir)
        if report.errors and method == "sft":
            raise ValueError("the SFT job cannot start:\n- " + "\n- ".join(report.errors))
        out["facts"][method], out["warnings"][method] = facts, report.warnings
        if report.errors:
            out["errors"][method] = report.errors
        else:
            out["configs"][method] = config.to_dict()
    return out


def _train(ctx: Context, method: str) -> dict[str, Any]:
    if method not in ctx.methods:
        raise Skip("not asked for (--methods)")
    checked = ctx.output("check")
    if method not in checked.get("configs", {}):
        raise Skip("; ".join(checked.get("errors", {}).get(method, ["no config"])))
    settings = dict(checked["configs"][method])
    if method != "sft":
        settings["init_adapter"] = adapters.find(ctx.ws, ctx.output("sft")["adapter_id"]).path
    job = jobs.launch(ctx.ws, jc.from_dict(settings), who=ctx.who)
    try:
        job = jobs.wait(ctx.ws, job.id, poll=2.0, on_progress=lambda p: ctx.report(
            f"{method}: {processes.counted(p, 'steps')} (job {job.id})"))
    except (Stopped, KeyboardInterrupt):
        jobs.stop(ctx.ws, job.id, who=ctx.who)  # the job runs in its own session: a stop of this process does not reach it
        raise
    if job.status != "succeeded" or not job.adapter_id:
        raise RuntimeError(f"{method} job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
    return {"job_id": job.id, "adapter_id": job.adapter_id, "steps": job.step,
            "seconds": round(jobs.elapsed_s(job), 1), "train_loss": job.metrics.get("train_loss"),
            "below_base": jobs.below_base(job)}


def sft(ctx: Context) -> dict[str, Any]:
    """Train the SFT adapter."""
    return _train(ctx, "sft")


def dpo(ctx: Context) -> dict[str, Any]:
    """DPO continuing the SFT adapter."""
    return _train(ctx, "dpo")


def grpo(ctx: Context) -> dict[str, Any]:
    """GRPO continuing the SFT adapter."""
    return _train(ctx, "grpo")


def serving(ws: Workspace, suite: str) -> tuple[str, str]:
    """(adapter id or "" for the base model, memory method) the suite's runs use now: its promoted model, with
    exemplars when it has an exemplar bank (runs with exemplars retrieve from it), else zero-shot ("none")."""
    bank = any(e.active for e in ws.repo.find(Exemplar, suite=suite))
    return adapters.suite_adapter(ws, suite), "exemplars" if bank else "none"


def heldout_power(ws: Workspace, suite: str, limit: int | None = None) -> dict[str, Any]:
    """gate.power for the suite's heldout split (its first `limit` tasks) under the workspace's gate p."""
    from agentlearn.tasks import load_tasks

    return gate.power(len(load_tasks(ws, suite, "heldout")[: limit or None]), ws.settings.gate_p_value)


def unseen_tools(ws: Workspace, suite: str, limit: int | None = None) -> dict[str, Any]:
    """Heldout tasks that call a tool no train task calls: training on the train split cannot teach those names
    (on a public supply-chain suite, 7 of 11 heldout tasks; its adapter named none of them right where the base
    model named 2, and a validation slice cut from the train split cannot see it). {} when there are none.
    A task that offers one tool is not counted: its name is given (each BFCL simple task brings its own)."""
    from agentlearn.tasks import load_tasks

    seen = set().union(*(_called(t) for t in load_tasks(ws, suite, "train")))
    heldout = load_tasks(ws, suite, "heldout")[: limit or None]
    unseen = [t for t in heldout if _called(t) - seen and len(t.tools) > 1]
    if not unseen:
        return {}
    names = sorted(set().union(*(_called(t) for t in unseen)) - seen)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return {"tasks": len(unseen), "of": len(heldout), "tools": names,
            "message": f"{len(unseen)} of {len(heldout)} heldout tasks call tools that no train task calls ({shown}): "
                       "training cannot teach those names, and an adapter may call the train split's tools instead."}


def _called(task: Any) -> set[str]:
    """The tools a task's reference calls (its expected call, its acceptable calls, each turn's calls)."""
    names = {task.expected.name} if task.expected.name else set()
    names |= {c.name for c in task.reference.calls} if task.reference else set()
    return names | {c.name for turn in task.turn_calls for c in turn}


def serving_text(ws: Workspace, suite: str) -> str:
    """The serving configuration in words."""
    adapter_id, memory = serving(ws, suite)
    return f"{'adapter ' + adapter_id if adapter_id else 'the base model'} with {MEMORY_WORDS[memory]}"


MEMORY_WORDS = {"exemplars": "exemplars from its bank", "none": "no memory (zero-shot)"}


def evaluate(ctx: Context) -> dict[str, Any]:
    """Heldout runs (same decoding) of the serving configuration and of every trained candidate, alone and with
    the serving memory method."""
    current, memory = serving(ctx.ws, ctx.suite)
    served = _heldout(ctx, current, memory, "the serving configuration")
    out: dict[str, Any] = {"current": current, "memory": memory, "current_eval": served.id, "candidates": {},
                           "metric": gate.metric_for(ctx.ws, ctx.suite)}
    for method in TRAINED:
        adapter_id = ctx.output(method).get("adapter_id")
        if adapter_id:
            alone = _heldout(ctx, adapter_id, "none", method.upper())
            both = alone if memory == "none" else _heldout(ctx, adapter_id, memory, f"{method.upper()} + {memory}")
            out["candidates"][method] = {"adapter_id": adapter_id, "eval_id": alone.id, "n": alone.n,
                                         "name_accuracy": alone.name_accuracy, "call_accuracy": alone.call_accuracy,
                                         "args_score": alone.args_score, "memory_eval_id": both.id,
                                         "memory_name_accuracy": both.name_accuracy,
                                         "memory_call_accuracy": both.call_accuracy}
    if not out["candidates"]:
        raise RuntimeError("no adapter was trained, so there is nothing to evaluate")
    return out


def decide(ctx: Context) -> dict[str, Any]:
    """DPO/GRPO over SFT only through the gate; then the chosen candidate, with the serving memory method,
    against the serving configuration. An adapter below its base on the job's validation slice is refused."""
    evaluated = ctx.output("evaluate")
    candidates = evaluated["candidates"]
    runs = {m: ctx.ws.repo.get(EvalRun, c.get("memory_eval_id") or c["eval_id"]) for m, c in candidates.items()}
    current = ctx.ws.repo.get(EvalRun, evaluated["current_eval"])
    chosen, versus_sft = "sft" if "sft" in runs else next(iter(runs)), {}
    for method in ("dpo", "grpo"):
        if method in runs and "sft" in runs:
            said = gate.judge(ctx.ws, runs[method], runs["sft"])
            versus_sft[method] = {"promote": said.promote, "p_value": said.p_value, "sft": said.before,
                                  method: said.after, "n": said.n, "reasons": said.reasons}
            if said.promote and gate.accuracy(runs[method], said.metric) > gate.accuracy(runs[chosen], said.metric):
                chosen = method
    adapter_id = candidates[chosen]["adapter_id"]
    said = gate.judge(ctx.ws, runs[chosen], current)
    below = ctx.output(chosen).get("below_base") or {}
    if below:
        said = gate.refuse(said, f"refused: the adapter scored below its base model on the training job's "
                                 f"validation slice ({jobs.below_base_text(below)})")
    promotion = gate.apply(ctx.ws, ctx.suite, adapter_id, said, runs[chosen], current,
                           improvement_id=ctx.improvement_id)
    memory = evaluated.get("memory", "none")
    alone = ctx.ws.repo.get(EvalRun, candidates[chosen]["eval_id"])
    return {"chosen": chosen, "adapter_id": adapter_id, "promoted": adapter_id if said.promote else "",
            "previous": evaluated["current"], "before": said.before, "after": said.after, "p_value": said.p_value,
            "n": said.n, "reasons": said.reasons, "per_kind": said.per_kind, "promotion_id": promotion.id,
            "versus_sft": versus_sft, "memory": memory, "metric": said.metric,
            "comparison": comparison(current, alone, runs[chosen], chosen, memory, said.metric)}


def comparison(served: EvalRun, alone: EvalRun, with_memory: EvalRun, method: str, memory: str,
               metric: str = "name") -> list[dict[str, Any]]:
    """Rows for the serving configuration, the candidate alone and the candidate with the serving memory
    method: n, the gate's accuracy (`metric`, name or call) with its Wilson 95% interval, and against the
    serving run the paired difference (Newcombe 95% interval) and exact McNemar p."""
    model = f"adapter {served.adapter}" if served.adapter else "base model"
    rows = [("serving", f"{model} + {memory}", served), ("candidate", f"{method.upper()} alone", alone)]
    if with_memory.id != alone.id:
        rows.append(("candidate + memory", f"{method.upper()} + {memory}", with_memory))
    out = []
    for role, what, run in rows:
        right = sum(float(r.get(metric, 0)) >= 0.5 for r in run.results.values())
        row: dict[str, Any] = {"configuration": role, "what": what, "eval_id": run.id, "n": len(run.results),
                               "metric": metric, "accuracy": right / len(run.results) if run.results else 0.0,
                               "interval": list(stats.wilson(right, len(run.results)))}
        if run is not served:
            p = stats.paired(run, served, metric)
            row.update(difference=p.difference, difference_interval=[p.low, p.high], p_value=p.p_value, paired_n=p.n)
        out.append(row)
    return out


def row_metric(row: dict[str, Any]) -> str:
    """Which accuracy a comparison row holds (rows stored before call accuracy could gate: name)."""
    return row.get("metric", "name")


def row_accuracy(row: dict[str, Any]) -> float:
    """A comparison row's accuracy (`row_metric`)."""
    return row.get("accuracy", row.get("name_accuracy", 0.0))


def comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The comparison as readable lines."""
    lines = []
    for r in rows:
        low, high = r["interval"]
        line = (f"{r['configuration']} ({r['what']}): {row_metric(r)} {row_accuracy(r):.1%} [{low:.0%}, {high:.0%}], "
                f"n={r['n']}")
        if "p_value" in r:
            d_low, d_high = r["difference_interval"]
            line += (f"; vs serving {r['difference']:+.1%} [{d_low:+.0%}, {d_high:+.0%}] on {r['paired_n']} paired, "
                     f"McNemar p={r['p_value']:.3g}")
        lines.append(line)
    return lines


STAGE_FUNCTIONS: dict[str, Stage] = {"collect": collect, "export": export, "check": check, "sft": sft, "dpo": dpo,
                                     "grpo": grpo, "evaluate": evaluate, "decide": decide}


# --- internals -----------------------------------------------------------------------------------


def _heldout(ctx: Context, adapter_id: str, memory: str, what: str) -> EvalRun:
    """A heldout run of an adapter ("" = base model) with a memory method; zero-shot ("none") reuses a stored run
    that covers the tasks (its answers do not depend on anything that changes), exemplars always run anew."""
    from agentlearn.evaluate import evaluate as run_eval
    from agentlearn.tasks import load_tasks

    wanted = {t.id for t in load_tasks(ctx.ws, ctx.suite, "heldout")[: ctx.limit or None]}
    constrained = ctx.ws.settings.constrained
    stored = [r for r in ctx.ws.repo.find(EvalRun, suite=ctx.suite)
              if memory == "none" and r.split == "heldout" and r.method == "none" and not r.tools
              and r.adapter == adapter_id and not r.ablated
              and r.bank_size is None and r.constrained == constrained and r.temperature == 0.0
              and wanted <= set(r.results)]
    if stored:
        return max(stored, key=lambda r: r.created)
    from agentlearn.methods import RunOptions

    options = RunOptions(method=memory, adapter_id=adapter_id or "none", limit=ctx.limit, constrained=constrained)
    return run_eval(ctx.ws, ctx.suite, options, "heldout",
                    progress=lambda i, n, *_: ctx.report(f"evaluate: {what}, {i} of {n} heldout tasks"))


def _checked(methods: tuple[str, ...]) -> list[str]:
    chosen = [m for m in TRAINED if m in methods]
    unknown = sorted(set(methods) - set(TRAINED))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(TRAINED)} (e.g. --methods sft,dpo)")
    if "sft" not in chosen:
        raise ValueError("--methods must include sft: DPO and GRPO start from the SFT adapter")
    return chosen


def _new(ws: Workspace, suite: str, methods: list[str]) -> Improvement:
    return ws.repo.put(Improvement(suite=suite, methods=methods, process_id=processes.current_id(),
                                   stages=[StageRun(name=n) for n in STAGES]))


def _resumed(ws: Workspace, suite: str, ref: str) -> Improvement:
    record = latest(ws, suite) if ref == "latest" else ws.repo.get(Improvement, ref)
    if record is None or record.suite != suite:
        raise ValueError(f"no improvement {ref!r} of suite {suite!r} to resume" if ref != "latest"
                         else f"suite {suite!r} has no improvement to resume; run `improve --suite {suite}` first")
    if record.status == "succeeded":
        raise ValueError(f"improvement {record.id} already finished; start a new one without --resume")

    def reopen(r: Improvement) -> Improvement:
        stages = [s if s.status in ("done", "skipped") else s.model_copy(update={"status": "pending", "error": ""})
                  for s in r.stages]
        return r.model_copy(update={"status": "running", "error": "", "finished": None, "stages": stages,
                                    "process_id": processes.current_id()})

    return ws.repo.update(Improvement, record.id, reopen)


def _stage(ws: Workspace, record_id: str, name: str, **change: Any) -> StageRun:
    def edit(r: Improvement) -> Improvement:
        return r.model_copy(update={"stages": [s.model_copy(update=change) if s.name == name else s
                                               for s in r.stages]})

    return next(s for s in ws.repo.update(Improvement, record_id, edit).stages if s.name == name)


def _end(ws: Workspace, record_id: str, status: str, error: str = "", promoted: str = "") -> Improvement:
    record = ws.repo.update(Improvement, record_id, lambda r: r.model_copy(update={
        "status": status, "error": error[:2000] if status != "succeeded" else "", "promoted": promoted,
        "finished": now()}))
    return ws.repo.update(Improvement, record_id, lambda r: r.model_copy(update={"result": summary(record)}))


def _notify(on_stage: Callable[[StageRun], None] | None, stage: StageRun) -> None:
    if on_stage:
        on_stage(stage)


class _stop_on_sigterm:
    """While the pipeline runs in the main thread, SIGTERM (processes.stop) raises Stopped in the stage."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    @staticmethod
    def _raise(*_: object) -> None:
        raise Stopped("stopped by request")


def _check_output(record: Improvement) -> dict[str, Any]:
    return next((s.output for s in record.stages if s.name == "check" and s.status == "done"), {})


def stage_rows(record: Improvement) -> list[dict[str, Any]]:
    """One row per stage for a table: name, status, what it did or why not, how long it took."""
    rows = []
    for s in record.stages:
        seconds = (s.finished - s.started).total_seconds() if s.started and s.finished else None
        said = s.error or s.output.get("reason", "") or _said(s)
        rows.append({"stage": s.name, "status": s.status, "detail": said, "seconds": seconds})
    return rows


def _said(stage: StageRun) -> str:
    out = stage.output
    if stage.name == "export":
        return ", ".join(f"{m}: {o['rows']} rows" if "rows" in o else f"{m}: {o.get('error', '')}"
                         for m, o in out.items())
    if stage.name == "check":
        sized = ", ".join(f"{m}: {f.get('max_steps', '?')} steps, max_length {f.get('max_length', '?')}, "
                          f"{f.get('rows', 0)} rows" for m, f in out.get("facts", {}).items())
        return (sized + (f"; {out['power']['message']}" if out.get("power") else "")
                + (f"; {out['unseen_tools']['message']}" if out.get("unseen_tools") else ""))
    if stage.name in TRAINED and out:
        below = out.get("below_base")
        return (f"adapter {out.get('adapter_id', '')} from job {out.get('job_id', '')}, {out.get('steps', 0)} steps"
                + (f"; below its base on validation ({jobs.below_base_text(below)})" if below else ""))
    if stage.name == "evaluate" and out:
        memory, metric = out.get("memory", "none"), out.get("metric", "name")
        return ", ".join(f"{m}: {metric} {c[metric + '_accuracy']:.1%}" + (
            f", with {memory} {c['memory_' + metric + '_accuracy']:.1%}"
            if memory != "none" and f"memory_{metric}_accuracy" in c else "") for m, c in out.get("candidates", {}).items())
    if stage.name == "decide" and out:
        others = "".join(f"; {m.upper()} {'beat' if v['promote'] else 'did not beat'} SFT "
                         f"({v['sft']:.1%} -> {v[m]:.1%}, p={v['p_value']:.3g})" for m, v in out.get("versus_sft", {}).items())
        said = (f"promoted {out.get('chosen', '').upper()} {out['promoted']}" if out.get("promoted") else
                f"refused {out.get('chosen', '').upper()}")
        return (f"{said} ({out.get('metric', 'name')} {out.get('before', 0):.1%} -> {out.get('after', 0):.1%}, "
                f"p={out.get('p_value', 1):.3g}){others}")
    return ""
