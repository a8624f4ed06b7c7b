"""Run: run the agent on one task (here) or a whole split (in a child process), watch it, then label the runs."""

from __future__ import annotations

import re
from datetime import timedelta

import streamlit as st

from agentlearn import background, review
from pages import _ui
from storage.records import Adapter, Trajectory, now

METHODS = ("none", "exemplars", "reflexion", "insights", "all")
MODES = ("fixed", "type", "bm25", "semantic", "mmr")

ws = _ui.workspace()
_ui.keep("run_suite", "run_scope", "run_method", "run_mode", "run_k", "run_trials", "run_adapter", "run_split",
         "run_limit")


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

c = st.columns(4)
suite = c[0].selectbox("Suite", suites, key="run_suite")
scope = c[1].selectbox("Run on", ["one task", "a whole split"], key="run_scope")
method = c[2].selectbox("Memory method", METHODS, key="run_method",
                        help="none · exemplars (few-shot) · reflexion (retry after failure) · insights (ExpeL) · all")
adapters = [""] + [a.id for a in ws.repo.all(Adapter)]
adapter_names = {a.id: a.name for a in ws.repo.all(Adapter)}
adapter = c[3].selectbox("Adapter", adapters, key="run_adapter",
                         format_func=lambda i: adapter_names.get(i, i) if i else "base model")
c = st.columns(4)
mode = c[0].selectbox("Exemplar retrieval", MODES, index=MODES.index("semantic"), key="run_mode",
                      disabled=method not in ("exemplars", "all"))
k = int(c[1].number_input("Exemplars (k)", 1, 8, 3, key="run_k", disabled=method not in ("exemplars", "all")))
trials = int(c[2].number_input("Reflexion trials", 1, 5, 3, key="run_trials",
                               disabled=method not in ("reflexion", "all")))
if method not in ("reflexion", "all"):
    trials = 1

tasks = [t for t in review.task_map(ws).values() if t.suite == suite]
if scope == "one task":
    if not tasks:
        st.info("This suite has no tasks.")
        st.stop()
    by_id = {t.id: t for t in tasks}
    task_id = st.selectbox("Task", list(by_id), key="run_task",
                           format_func=lambda i: f"{by_id[i].split} · {by_id[i].sample_id}: {review.task_text(by_id[i])[:90]}")
    _ui.messages([m for m in by_id[task_id].input if m.role != "system"])
    if st.button("Run the agent", key="run_one", type="primary", shortcut="G"):
        started = now() - timedelta(seconds=1)
        with st.spinner("The agent is working…"):
            try:
                from agentlearn.agent import run_task

                done = run_task(ws, by_id[task_id], method=method, k=k, exemplar_mode=mode, trials=trials,
                                adapter_id=adapter)
                st.session_state["run_last"] = ([t.id for t in done], started, suite)
            except (ImportError, ValueError, RuntimeError) as e:
                st.error(_ui.plain(f"The run failed: {e}"))
    last = st.session_state.get("run_last")
    if last:
        ids, started, last_suite = last
        st.subheader(f"Result ({len(ids)} trial{'s' if len(ids) > 1 else ''})")
        for tid in ids:
            traj = ws.repo.get(Trajectory, tid)
            if traj is None:
                continue
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
    child = st.session_state.get("run_child")
    running = child is not None and background.returncode(child) is None
    args = ["run", "--suite", suite, "--split", split, "--method", method, "--k", k, "--mode", mode,
            "--trials", trials, "--limit", limit] + (["--adapter", adapter] if adapter else [])
    st.code("python -m agentlearn " + " ".join(str(a) for a in args), language="bash")
    if st.button("Start", key="run_start", type="primary", disabled=running or n_tasks == 0, shortcut="G"):
        st.session_state["run_child"] = background.start(_ui.home(), args, name="run")
        st.session_state["run_child_meta"] = (suite, limit)
        st.rerun()

    @st.fragment(run_every=2)
    def _watch() -> None:
        child = st.session_state.get("run_child")
        if child is None:
            return
        run_suite, total = st.session_state.get("run_child_meta", (suite, limit))
        code = background.returncode(child)
        log = background.tail(child, 40)
        steps = re.findall(r"\[(\d+)/(\d+)\]", log)
        done = int(steps[-1][0]) if steps else 0
        stored = len(review.queue(ws, review.Filters(suite=run_suite, since=child.started)))
        st.progress(min(done / max(total, 1), 1.0),
                    text=f"{done} of {total} tasks · {stored} trajectories stored since the start")
        st.code(log or "(starting…)", language=None)
        if code is None:
            if st.button("Stop", key="run_stop"):
                background.stop(child)
                st.rerun(scope="fragment")
        else:
            st.text("finished" if code == 0 else f"stopped or failed (exit status {code})")
            if st.button("Label these runs", key="run_to_queue", shortcut="L"):
                _send_to_queue(run_suite, child.started)

    _watch()
