"""Run: run the agent on one task (here) or a whole split (in a child process), watch it, then label the runs."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from agentlearn import processes, reports
from agentlearn.feedback import index, queue
from agentlearn.methods import DEFAULT_K, DEFAULT_MODE, METHODS, MODES, USES_EXEMPLARS, USES_REFLEXION
from agentlearn.tasks import request_text
from pages import _progress, _ui
from storage.records import now

ws = _ui.workspace()
_ui.keep("run_suite", "run_scope", "run_method", "run_mode", "run_k", "run_tool_aware", "run_constrained",
         "run_trials", "run_adapter", "run_split", "run_limit")


def _send_to_queue(suite: str, since) -> None:
    """Open the labeling queue on exactly these runs."""
    s = st.session_state
    s["f_since"] = since.isoformat()
    s["f_suite"], s["f_split"], s["f_verifier"], s["f_status"] = suite, "", "any", "any"
    s["f_model"] = s["f_adapter"] = s["f_method"] = s["f_annotator"] = s["f_search"] = ""
    s["traj_current"] = None
    st.switch_page("pages/trajectories.py")


st.title("Run")
_ui.cheatsheet([("G", "run"), ("L", "label these runs")])
_ui.show_flash()
suites = _ui.suites_or_stop(ws, "run_suite", "import tasks with `python -m agentlearn tasks import FILE --suite NAME`")

adapters = reports.adapter_names(ws)
c = st.columns(4)
suite = c[0].selectbox("Suite", suites, key="run_suite")
scope = c[1].selectbox("Run on", ["one task", "a whole split"], key="run_scope")
method = c[2].selectbox("Memory method", list(METHODS), key="run_method",
                        help="\n".join(f"{m}: {d}" for m, d in METHODS.items()))
adapter = c[3].selectbox("Adapter", ["auto", "none"] + list(adapters), key="run_adapter",
                         format_func=lambda i: {"auto": "the suite's model", "none": "base model"}.get(
                             i, adapters.get(i, i)),
                         help="the suite's model: the adapter the gate promoted (Training page), else the base model")
uses, reflects = method in USES_EXEMPLARS, method in USES_REFLEXION
c = st.columns(3)
mode = c[0].selectbox("Exemplar retrieval", list(MODES), index=list(MODES).index(DEFAULT_MODE), key="run_mode",
                      disabled=not uses, help="\n".join(f"{m}: {d}" for m, d in MODES.items()))
k = int(c[1].number_input("Exemplars (k)", 1, 8, DEFAULT_K, key="run_k", disabled=not uses))
trials = int(c[2].number_input("Reflexion trials", 1, 5, 3, key="run_trials", disabled=not reflects))
c = st.columns(3)  # the checkboxes in a row of their own: in a fifth of the width their labels were cut
tool_aware = c[0].checkbox("Tool-aware shots", key="run_tool_aware", disabled=not uses)
constrained = c[1].checkbox("Constrained decoding", value=ws.settings.constrained, key="run_constrained")
trials = trials if reflects else 1

tasks = [t for t in index.task_map(ws).values() if t.suite == suite]
if scope == "one task":
    if not tasks:
        st.info("This suite has no tasks.")
        st.stop()
    by_id = {t.id: t for t in tasks}
    task_id = st.selectbox("Task", list(by_id), key="run_task",
                           format_func=lambda i: f"{by_id[i].split} · {by_id[i].sample_id}: {request_text(by_id[i].input)[:90]}")
    _ui.messages([m for m in by_id[task_id].input if m.role != "system"])
    if st.button("Run the agent", key="run_one", type="primary", shortcut="G"):
        started = now() - timedelta(seconds=1)
        options = {"method": method, "trials": trials, "adapter_id": adapter, "constrained": constrained}
        if uses:
            options.update(k=k, exemplar_mode=mode, tool_aware=tool_aware)
        with st.spinner("The agent is working…"):
            try:
                from agentlearn.agent import run_task

                done = run_task(ws, by_id[task_id], **options)
                st.session_state["run_last"] = ([t.id for t in done], started, suite)
            except (ImportError, ValueError, RuntimeError) as e:
                st.error(_ui.plain(f"The run failed: {e}"))
    last = st.session_state.get("run_last")
    if last:
        ids, started, last_suite = last
        st.subheader(f"Result ({len(ids)} trial{'s' if len(ids) > 1 else ''})")
        for traj in reports.trajectories(ws, ids):
            with st.container(border=True):
                st.text(f"trial {traj.trial}")
                st.code(traj.output or "(empty)", language=None, wrap_lines=True)
                _ui.render_verdict(traj)
                if traj.memory.reflections:
                    st.caption("reflections it was given")
                    for r in traj.memory.reflections:
                        st.text(r)
        if st.button("Label these runs", key="run_to_queue_one", shortcut="L"):
            _send_to_queue(last_suite, started)
else:
    split = st.selectbox("Split", ["train", "heldout"], key="run_split")
    n_tasks = sum(1 for t in tasks if t.split == split)
    limit = int(st.number_input("Tasks (first N of the split)", 1, max(n_tasks, 1), max(n_tasks, 1), key="run_limit"))
    args: list[object] = ["run", "--suite", suite, "--split", split, "--method", method]
    if uses:
        args += ["--mode", mode, "--k", k] + (["--tool-aware"] if tool_aware else [])
    args += ([] if constrained else ["--no-constrained"]) + (["--trials", trials] if reflects else [])
    args += (["--adapter", adapter] if adapter != "auto" else []) + (["--limit", limit] if limit < n_tasks else [])
    st.code("python -m agentlearn " + " ".join(str(a) for a in args), language="bash")
    if st.button("Start", key="run_start", type="primary", disabled=_progress.is_running("run") or n_tasks == 0,
                 shortcut="G"):
        _progress.start("run", args)
        st.rerun()
    _progress.watch("run")
    finished = processes.latest(ws, "run")
    run_suite = processes.option(finished, "--suite") if finished is not None else ""
    if finished is not None and finished.status != "running" and run_suite:
        stored = len(queue.queue(ws, queue.Filters(suite=run_suite, since=finished.created)))
        st.text(f"{stored} trajectories stored by the last run")
        if st.button("Label these runs", key="run_to_queue", shortcut="L"):
            _send_to_queue(run_suite, finished.created)
