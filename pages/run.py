"""Run: run the agent on one task (here) or a whole split (in a child process), watch it, then label the runs."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from agentlearn import processes, reports
from agentlearn.feedback import index, queue
from agentlearn.methods import command_line
from agentlearn.tasks import request_text
from pages import _progress, _run_options, _ui
from storage.records import now

ws = _ui.workspace()
_ui.keep("run_suite", "run_scope", "run_split", "run_limit", *_run_options.keys("run", "run"))


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

c = st.columns(2)
suite = c[0].selectbox("Suite", suites, key="run_suite")
scope = c[1].selectbox("Run on", ["one task", "a whole split"], key="run_scope")
options = _run_options.controls(ws, suite, "run", "run")

tasks = [t for t in index.task_map(ws).values() if t.suite == suite]
if scope == "one task":
    if not tasks:
        st.info("This suite has no tasks.")
        st.stop()
    by_id = {t.id: t for t in tasks}
    task_id = st.selectbox("Task", list(by_id), key="run_task",
                           format_func=lambda i: f"{by_id[i].split} · {by_id[i].sample_id}: {request_text(by_id[i].input)[:90]}")
    _ui.messages([m for m in by_id[task_id].input if m.role != "system"])
    if st.button("Run the agent", key="run_one", type="primary", shortcut="G", disabled=options is None):
        started = now() - timedelta(seconds=1)
        with st.spinner("The agent is working…"):
            try:
                from agentlearn.agent import run_task

                run_task(ws, by_id[task_id], options)
                st.session_state["run_since"] = started
            except (ImportError, ValueError, RuntimeError) as e:
                st.error(_ui.plain(f"The run failed: {e}"))
    # The task's newest run, read from the store: what a reload or a later visit shows too.
    trials = reports.latest_episode(ws, task_id)
    if trials:
        st.subheader(f"Latest run of this task ({len(trials)} trial{'s' if len(trials) > 1 else ''}, "
                     f"{trials[0].created:%Y-%m-%d %H:%M})")
        st.text(f"Used: {reports.memory_label(trials[0])}")
        for traj in trials:
            with st.container(border=True):
                st.text(f"trial {traj.trial}")
                st.code(traj.output or "(empty)", language=None, wrap_lines=True)
                _ui.render_verdict(traj)
                if traj.memory.reflections:
                    st.caption("reflections it was given")
                    for r in traj.memory.reflections:
                        st.text(r)
        if st.button("Label these runs", key="run_to_queue_one", shortcut="L"):
            _send_to_queue(suite, st.session_state.get("run_since") or trials[0].created - timedelta(seconds=1))
else:
    split = st.selectbox("Split", ["train", "heldout"], key="run_split")
    n_tasks = sum(1 for t in tasks if t.split == split)
    limit = int(st.number_input("Tasks (first N of the split)", 1, max(n_tasks, 1), max(n_tasks, 1), key="run_limit"))
    args = command_line("run", suite, options.replace(limit=limit if limit < n_tasks else None),
                        split=split) if options else []
    st.code("python -m agentlearn " + " ".join(args), language="bash")
    if st.button("Start", key="run_start", type="primary", shortcut="G",
                 disabled=_progress.is_running("run") or n_tasks == 0 or not args):
        _progress.start("run", args)
        st.rerun()
    _progress.watch("run")
    finished = processes.latest(ws, "run")
    run_suite = processes.option(finished, "--suite") if finished is not None else ""
    if finished is not None and finished.status != "running" and run_suite:
        if finished.result.get("label"):
            st.text(f"The last run used: {finished.result['label']}")
        stored = len(queue.queue(ws, queue.Filters(suite=run_suite, since=finished.created)))
        st.text(f"{stored} trajectories stored by the last run")
        if st.button("Label these runs", key="run_to_queue", shortcut="L"):
            _send_to_queue(run_suite, finished.created)
