"""The Training page's "Suite's model" section: the model in use, Improve (and Resume), choose or roll back,
the latest improvement's stages and the gate's decisions. Work runs in an `improve` child process."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from agentlearn import adapters
from agentlearn.training import gate, improve, jobs
from pages import _progress, _ui


def section(suites: list[str]) -> None:
    """Draw the section for one chosen suite."""
    ws = _ui.workspace()
    st.subheader("Suite's model")
    if st.session_state.get("im_suite") not in suites:
        st.session_state["im_suite"] = suites[0]
    c = st.columns([2, 2, 1, 1])
    suite = c[0].selectbox("Suite", suites, key="im_suite")
    methods = c[1].multiselect("Methods", list(improve.TRAINED), default=["sft"], key="im_methods",
                               help="SFT always; DPO and GRPO continue the SFT adapter and are kept only if the "
                                    "gate says they beat it")
    busy = _progress.is_running("improve")
    current = adapters.suite_adapter(ws, suite)
    known = {a.id: a for a in adapters.newest_first(ws)}
    st.text(f"In use: {known[current].name + ' (' + current + ')' if current in known else 'the base model'}")
    st.text(f"Serving: {improve.serving_text(ws, suite)}; Improve compares its candidates with this.")
    power = improve.heldout_power(ws, suite)
    (st.warning if power["too_small"] else st.caption)(_ui.plain("Before training: " + power["message"]))
    if c[2].button("Improve", icon=":material/auto_awesome:", type="primary", key="im_start", disabled=busy,
                   help="collect, export, check, train, evaluate on heldout and promote only if better"):
        chosen = ",".join(m for m in improve.TRAINED if m in ({"sft"} | set(methods)))
        if _progress.start("improve", ["improve", "--suite", suite, "--methods", chosen]):
            st.rerun()
    last = improve.latest(ws, suite)
    resumable = last is not None and last.status in ("stopped", "failed") and not busy
    if c[3].button("Resume", icon=":material/play_arrow:", key="im_resume", disabled=not resumable,
                   help="continue the latest improvement from its first unfinished stage"):
        if _progress.start("improve", ["improve", "--suite", suite, "--resume", last.id]):
            st.rerun()
    _progress.watch("improve", what="stages")
    if last is not None:
        st.caption(f"Latest improvement {last.id} · {last.status}")
        st.dataframe(pd.DataFrame(improve.stage_rows(last)), hide_index=True, width="stretch")
        compared = improve.summary(last)["comparison"]
        if compared:
            metric = f"{improve.row_metric(compared[0])} accuracy"
            st.markdown(f"**Heldout {metric}: serving, candidate, candidate with the serving memory**")
            st.dataframe(pd.DataFrame(_comparison_rows(compared, metric)), hide_index=True, width="stretch",
                         column_config={metric: st.column_config.NumberColumn(metric, format="percent")})
    _choose(suite, current, known)
    rows = gate.history_rows(ws, suite)
    if rows:
        st.markdown("**Decisions**")
        share = {c: st.column_config.NumberColumn(c, format="percent") for c in ("before", "after")}
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=share)


def _comparison_rows(compared: list[dict], metric: str) -> list[dict]:
    return [{"configuration": r["configuration"], "what": r["what"], "n": r["n"], metric: improve.row_accuracy(r),
             "95% interval": f"{r['interval'][0]:.0%} to {r['interval'][1]:.0%}",
             # Text, so the serving row's empty cells read blank rather than "None".
             "vs serving": f"{r['difference']:+.1%}" if r.get("difference") is not None else "",
             "difference interval": f"{r['difference_interval'][0]:+.0%} to {r['difference_interval'][1]:+.0%}"
             if "difference_interval" in r else "", "McNemar p": f"{r['p_value']:.3g}" if r.get("p_value") is not None else ""} for r in compared]


def _choose(suite: str, current: str, known: dict) -> None:
    c = st.columns([3, 1, 1])
    options = [""] + list(known)
    pick = c[0].selectbox("Use another model", options, key="im_pick",
                          index=options.index(current) if current in options else 0,  # Use does nothing by mistake
                          format_func=lambda i: (f"{known[i].name} ({i})" + (" · below its base on validation"
                                                 if jobs.adapter_below_base(_ui.workspace(), i) else ""))
                          if i else "the base model")
    if c[1].button("Use", key="im_use", disabled=pick == current):
        _act(lambda: gate.use(_ui.workspace(), suite, pick or "none", _ui.identity()))
    if c[2].button("Roll back", icon=":material/undo:", key="im_rollback", disabled=not current and not
                   gate.history(_ui.workspace(), suite), help="back to the model used before the current one"):
        _act(lambda: gate.rollback(_ui.workspace(), suite, _ui.identity()))


def _act(do) -> None:
    try:
        change = do()
        _ui.flash(f"The suite now runs on {change.adapter_id or 'the base model'}")
    except ValueError as e:
        _ui.flash(str(e), "error")
    st.rerun()
