"""Training: export a dataset, check and launch a LoRA job (SFT, DPO, GRPO), watch it, stop it, see history.

Jobs are `train` child processes (agentlearn.training.jobs): each is watched with the panel every long
piece of work has (pages/_progress: progress, ETA, Stop, Stop and save, log), its charts beside it. This
page only starts, stops and reads records, so a reload or a closed browser loses nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from agentlearn import datasets
from agentlearn.paths import confined
from agentlearn.training import config as jc
from agentlearn.training import jobs, preflight, sizing
from pages import _charts as _plots
from pages import _improve, _ui
from pages import _progress as _progress_ui
from storage.records import Adapter, DatasetExport, Job

HINTS = {
    "sft": "Supervised fine-tuning on correct tool calls: successful train runs (people's labels first) "
           "and reference exemplars.",
    "dpo": "Preference optimisation on chosen vs rejected answers from the Preferences page "
           "(optionally from ratings and verifier outcomes).",
    "grpo": "Reinforcement learning with the graders as rewards: tool-call quality and format.",
}

ws = _ui.workspace()
_ui.require_page("train")
_ui.keep("tr_method", "tr_suite", "tr_preset", "tr_pairs", "tr_steps", "tr_export", "tr_init", "tr_job")
st.title("Training")
_ui.show_flash()
suites = _ui.suites_or_stop(ws, hint="import tasks first")
_improve.section(suites)  # the suite's model: Improve, the gate's decisions, use and roll back

# --- new job -----------------------------------------------------------------------------------

st.subheader("New job")
c = st.columns(4)
method = c[0].selectbox("Method", jc.METHODS, key="tr_method", format_func=str.upper)
if st.session_state.get("tr_suite") not in suites:
    st.session_state["tr_suite"] = suites[0]
suite = c[1].selectbox("Suite", suites, key="tr_suite")
presets = list(jc.PRESETS)
preset_name = c[2].selectbox("Preset", presets, index=presets.index(jobs.default_preset()), key="tr_preset",
                             help="cpu-tiny: 2 steps (a smoke test); cpu-small: minutes on a laptop; "
                                  "cuda-qlora: 4-bit QLoRA on a CUDA GPU")
defaults = jc.preset(method, preset_name)


def _limits(name: str, kind: type = int) -> tuple:
    """An input's (min, max): the config's own bounds, so the page never offers what a config refuses."""
    return tuple(kind(x) for x in jc.bounds(method, name))


# Empty steps and max length: sized from the data (training.sizing), as `train --suite` does.
FROM_DATA = "from the data"
steps = c[3].number_input("Steps", *_limits("max_steps"), None, key=f"tr_steps_{method}_{preset_name}",
                          placeholder=FROM_DATA,
                          help=f"Empty: epochs over the rows, at most {defaults.max_steps} ({preset_name})")
st.caption(HINTS[method])

pairs_from: tuple[str, ...] = ("preferences",)
if method == "dpo":
    pairs_from = tuple(st.multiselect("Preference pairs from", datasets.PAIR_SOURCES, default=["preferences"],
                                      key="tr_pairs", help="preferences: people's A/B choices; ratings: higher vs "
                                      "lower score on one task; verifier: success vs failure on one task"))

exports = sorted((e for e in ws.repo.find(DatasetExport, suite=suite) if e.kind == method),
                 key=lambda e: e.created, reverse=True)
c = st.columns([3, 1])
if c[1].button("Export dataset", icon=":material/download:", key="tr_do_export"):
    try:
        with st.spinner(f"Exporting the {method.upper()} dataset of {_ui.plain(suite)}…"):
            made = datasets.export(ws, method, suite, pairs_from=pairs_from or ("preferences",))
        st.session_state["tr_export"] = made.id
        _ui.flash(f"Exported {made.rows} {method} rows to {made.path}")
    except ValueError as e:
        _ui.flash(str(e), "error")
    st.rerun()
ids = [e.id for e in exports]
by_id = {e.id: e for e in exports}
if st.session_state.get("tr_export") not in ids:
    st.session_state["tr_export"] = ids[0] if ids else None
export_id = c[0].selectbox("Dataset", ids, key="tr_export", placeholder="export a dataset first",
                           format_func=lambda i: f"{by_id[i].created:%Y-%m-%d %H:%M} · {by_id[i].rows} rows · "
                                                 f"{Path(by_id[i].path).name}")
chosen = by_id.get(export_id) if export_id else None
if chosen is not None:
    st.caption(f"Lineage: {len(chosen.trajectory_ids)} trajectories, {len(chosen.label_ids)} labels, "
               f"{len(chosen.preference_ids)} preferences, {len(chosen.exemplar_ids)} exemplars")

adapters = {a.id: a for a in ws.repo.all(Adapter)}
with st.expander("Settings"):
    c = st.columns(4)
    lr = c[0].number_input("Learning rate", *_limits("learning_rate", float), defaults.learning_rate, format="%.8f",
                           key=f"tr_lr_{method}")
    batch = int(c[1].number_input("Batch size", *_limits("per_device_train_batch_size"),
                                  defaults.per_device_train_batch_size, key=f"tr_bs_{method}"))
    max_length = c[2].number_input("Max tokens per row", *_limits("max_length"), None, key=f"tr_ml_{method}",
                                   placeholder=FROM_DATA,
                                   help="Empty: the longest row's tokens and a margin, within the model's context")
    low_r, high_r = _limits("lora_r")  # lora_alpha follows as 2 x rank: keep that allowed too
    rank = int(c[3].number_input("LoRA rank", low_r, min(high_r, _limits("lora_alpha")[1] // 2), defaults.lora_r,
                                 key=f"tr_r_{method}"))
    init = st.selectbox("Start from adapter", [""] + list(adapters), key="tr_init",
                        format_func=lambda i: adapters[i].name if i else "the base model",
                        help="e.g. DPO or GRPO on top of an SFT adapter")
    extra = {}
    if method == "dpo":
        extra["beta"] = st.number_input("beta", *_limits("beta", float), 0.1, key="tr_beta")
    if method == "grpo":
        extra["num_generations"] = int(st.number_input("Generations per prompt", *_limits("num_generations"),
                                                       defaults.num_generations, key="tr_gen"))


def _config() -> jc.JobConfig:
    """The job config from the form, steps and max length sized from the data unless given; paths read from
    records must lie inside the workspace."""
    home = ws.settings.home
    dataset = str(confined(home, chosen.path, f"the file of dataset export {chosen.id}")) if chosen else ""
    start = str(confined(home, adapters[init].path, f"the folder of adapter {init}")) if init else ""
    given = {k: int(v) for k, v in (("max_steps", steps), ("max_length", max_length)) if v is not None}
    config = jc.preset(method, preset_name, dataset_path=dataset, export_id=chosen.id if chosen else "", suite=suite,
                       learning_rate=float(lr), per_device_train_batch_size=batch, lora_r=rank, lora_alpha=2 * rank,
                       init_adapter=start, **given, **extra)
    sized, facts = sizing.prepare(config, ws.settings.models_dir, keep=tuple(given))
    st.session_state["tr_sized"] = sizing.describe(sized, facts)
    return sized


c = st.columns([1, 1, 4])
try:
    if c[0].button("Check", icon=":material/fact_check:", key="tr_check", disabled=chosen is None):
        with st.spinner("Checking the settings and measuring every row with the model's tokenizer…"):
            st.session_state["tr_report"] = preflight.check(_config(), ws.settings.models_dir)
    if c[1].button("Launch", icon=":material/rocket_launch:", type="primary", key="tr_launch",
                   disabled=chosen is None):
        with st.spinner("Checking the settings and starting the job process…"):
            launched = jobs.launch(ws, _config(), who=_ui.identity())
        st.session_state["tr_job"] = launched.id
        _ui.flash(f"Job {launched.id} started")
        st.session_state.pop("tr_report", None)
        st.session_state.pop("tr_sized", None)
        st.rerun()
except ValueError as e:
    st.error(_ui.plain(str(e)))
report = st.session_state.get("tr_report")
if report is not None:
    for error in report.errors:
        st.error(_ui.plain(error))
    for warning in report.warnings:
        st.warning(_ui.plain(warning))
    if report.ok:
        st.success(f"Ready: {report.rows} rows, the longest needs {report.longest} tokens.")
    if st.session_state.get("tr_sized"):
        st.text(st.session_state["tr_sized"])


# --- jobs --------------------------------------------------------------------------------------


def _charts(job: Job, key: str) -> None:
    rows = pd.DataFrame(jobs.metric_rows(job))
    if rows.empty:
        st.caption("No metrics logged yet.")
        return
    charts = list(dict.fromkeys(rows["chart"]))
    cols = st.columns(min(len(charts), 3))
    for i, chart in enumerate(charts):
        cols[i % len(cols)].plotly_chart(_plots.metric_lines(rows[rows["chart"] == chart], chart),
                                         key=f"{key}_{chart}")


def _watched(job: Job, key: str, log_lines: int) -> None:
    """The job's process in the panel every long piece of work has; a job that ran without one (an imported
    bundle, an older store) shows how it ended."""
    process = jobs.process(ws, job)
    if process is None:
        st.text(f"{job.status} · step {job.step} of {job.max_steps}")
        return
    _progress_ui.panel(process, "steps", key=key, saves=True, log_lines=log_lines)


history = jobs.list_jobs(ws)
active_now = [j for j in history if j.status in jobs.ACTIVE]
st.session_state["tr_drawn"] = jobs.statuses(history)  # what this run of the page shows
POLL_S, IDLE_POLL_S = 2, 10  # idle: still notice a job started from the CLI or another browser


def _note_endings(found: list[Job]) -> None:
    """Keep a notice for each job that ended since the page was drawn (they stay until dismissed)."""
    ended = jobs.ended_since(st.session_state.get("tr_drawn", {}), found)
    notices = st.session_state.setdefault("tr_notices", [])
    for job in ended:
        if job.id not in notices:
            notices.append(job.id)
            _ui.flash(jobs.outcome(job), "success" if job.status == "succeeded" else "info")  # a toast after the rerun


def _notices() -> None:
    by_id = {j.id: j for j in history}
    shown = [by_id[i] for i in st.session_state.get("tr_notices", []) if i in by_id]
    for job in shown:
        say = {"succeeded": st.success, "stopped": st.warning}.get(job.status, st.error)
        say(_ui.plain(f"Finished: {jobs.outcome(job)}"))
    if shown:
        st.button("Dismiss", key="tr_dismiss", on_click=lambda: st.session_state.update(tr_notices=[]))


@_ui.fragment(run_every=POLL_S if active_now else IDLE_POLL_S)
def live() -> None:
    """Running jobs: progress, charts, log tail and stop buttons; the whole page redraws when a job
    starts or ends (history, notices, the adapter list), so nothing on it stays stale."""
    found = jobs.list_jobs(ws)
    if jobs.statuses(found) != st.session_state.get("tr_drawn"):
        _note_endings(found)
        st.rerun()
    running = [j for j in found if j.status in jobs.ACTIVE]
    if not running:
        st.text("No job is running.")
        return
    for job in running:
        with st.container(border=True):
            st.markdown(f"**{job.method.upper()} job**")
            st.text(f"job {job.id} · suite {job.config.get('suite', '')}")
            _watched(job, "tr", 15)
            _charts(job, f"live_{job.id}")


st.subheader("Running")
_notices()
live()

st.subheader("History")
if not history:
    st.text("No jobs yet.")
    st.stop()
st.dataframe(pd.DataFrame([{
    "job": j.id, "method": j.method, "status": j.status, "suite": j.config.get("suite", ""),
    "steps": f"{j.step}/{j.max_steps}", "started": j.created, "finished": j.finished,
    "train loss": jobs.train_loss_text(j), "adapter": adapters[j.adapter_id].name if j.adapter_id in adapters
    else "", "validation": jobs.validation_text(j), "error": j.error} for j in history]), hide_index=True,
    width="stretch")
ids = [j.id for j in history]
if st.session_state.get("tr_job") not in ids:
    st.session_state["tr_job"] = ids[0]
by_job = {j.id: j for j in history}
job = by_job[st.selectbox("Job", ids, key="tr_job",
                          format_func=lambda i: f"{i} · {by_job[i].method} · {by_job[i].status}")]
_watched(job, "tr_hist", 200)
if jobs.below_base(job):
    st.warning(_ui.plain(f"This adapter scored below its base model on the validation slice "
                         f"({jobs.below_base_text(jobs.below_base(job))}): it is not offered as an improvement."))
if job.status == "failed" and job.error:
    st.error("The job failed:")
    st.code(job.error, language=None, wrap_lines=True)
c = st.columns(2)
with c[0]:
    st.markdown("**Final metrics**")
    st.json(job.metrics, expanded=False)
    st.markdown("**Lineage**")
    source = ws.repo.get(DatasetExport, job.export_id) if job.export_id else None
    lineage = {"dataset": job.config.get("dataset_path", "")}
    if source is not None:
        lineage.update(rows=source.rows, trajectories=len(source.trajectory_ids), labels=len(source.label_ids),
                       preferences=len(source.preference_ids), exemplars=len(source.exemplar_ids))
    if job.adapter_id in adapters:
        lineage.update(adapter=adapters[job.adapter_id].name, adapter_path=adapters[job.adapter_id].path)
    st.json(lineage)
with c[1]:
    st.markdown("**Config**")
    known = {f.name for f in dataclasses.fields(jc.CONFIGS[job.method])}
    st.json({k: v for k, v in job.config.items() if k in known or k == "method"}, expanded=False)
_charts(job, f"hist_{job.id}")
