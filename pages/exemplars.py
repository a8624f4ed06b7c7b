"""Exemplars: the bank of solved cases the agent retrieves as few-shot examples; the suite's retrieval choice;
what each retrieval mode returns for a typed task."""

from __future__ import annotations

import json

import streamlit as st

from agentlearn import policy
from agentlearn.feedback import index
from agentlearn.memory import attribution, exemplars, retrieval
from agentlearn.methods import MODES, RETRIEVAL_MODES, SCORES
from agentlearn.tasks import request_text
from pages import _progress, _ui
from storage.records import Message, Task, ToolCall

ws = _ui.workspace()
_ui.keep("ex_suite", "ex_kinds", "ex_retired", "ex_sort", "ex_flagged")
st.title("Exemplars")
_ui.show_flash()
suites = _ui.suites_or_stop(ws, "ex_suite", "import tasks first")
top = st.columns([2, 3, 1, 2])
suite = top[0].selectbox("Suite", suites, key="ex_suite")
kinds = top[1].multiselect("Kinds", ["reference", "learned", "manual"], default=["reference", "learned", "manual"],
                           key="ex_kinds")
retired = top[2].checkbox("Show retired", key="ex_retired")
MANAGER = _ui.can("manage_exemplars")  # others read the bank and try the retrieval modes
with top[3]:
    if MANAGER and st.button("Learn from labeled successes", key="ex_sync",
                 help="Adds a learned exemplar for each successful train run (people's labels win over the verifier)."):
        with st.spinner("Adding an exemplar for each successful train run…"):
            n = exemplars.sync_bank(ws, suite)
        _ui.flash(f"{n} learned exemplars are active in this suite.", "info")
        st.rerun()

bank = exemplars.bank(ws, suite, kinds, include_retired=retired)
st.subheader(f"Bank ({len(bank):,} exemplars)")


effects = {r["id"]: r for r in attribution.exemplars(ws, suite).to_dict("records")}


def _effect(eid: str) -> dict:
    r = effects.get(eid) or {}
    d = r.get("difference")
    shown = "" if d is None or d != d else f"{d:+.0%} [{r['low']:+.0%}, {r['high']:+.0%}]"  # d != d: NaN
    return {"shown": int(r.get("shown") or 0), "difference": shown, "flag": r.get("flag") or "",
            "_d": d if d is not None and d == d else None}


def _arguments(e) -> str:
    """The answer's arguments; an answer of several calls names each call's tool."""
    calls = e.answer_calls()
    if len(calls) == 1:
        return json.dumps(calls[0].arguments, ensure_ascii=False)
    return " · ".join(f"{c.name} {json.dumps(c.arguments, ensure_ascii=False)}" for c in calls)


s1, s2 = st.columns([2, 1])
order = s1.selectbox("Sort by", ["newest", "attributed difference (worst first)", "times shown"], key="ex_sort")
flagged_only = s2.checkbox("flagged only", key="ex_flagged",
                           help="Exemplars whose runs succeed clearly less often than runs of the same tasks without them.")
rows = [{"id": e.id, "kind": e.kind, "active": e.active, "tool": e.tool, "request": request_text(e.input)[:200],
         "call": _arguments(e), "tags": ", ".join(e.tags), **_effect(e.id)}
        for e in bank[-2000:]]
if flagged_only:
    rows = [r for r in rows if r["flag"]]
if order.startswith("attributed"):
    rows.sort(key=lambda r: (r["_d"] is None, r["_d"] if r["_d"] is not None else 0))
elif order == "times shown":
    rows.sort(key=lambda r: -r["shown"])
if len(bank) > 2000:
    st.caption("Showing the newest 2,000.")
st.caption("shown: runs that were given the exemplar; difference: their success rate minus that of runs of the "
           "same tasks without it, with its 95% interval (observational).")
st.dataframe([{k: v for k, v in r.items() if k != "_d"} for r in rows], hide_index=True, width="stretch",
             key="ex_table")
by_id = {e.id: e for e in bank}
if not MANAGER:
    st.caption(f"Adding and retiring exemplars needs the {policy.role_for('manage_exemplars')} role.")
chosen = st.multiselect("Retire exemplars", [e.id for e in bank if e.active], key="ex_retire_ids",
                        format_func=lambda i: f"{i} · {by_id[i].tool} · {request_text(by_id[i].input)[:60]}",
                        placeholder="choose exemplars to retire") if MANAGER else []
if MANAGER and st.button(f"Retire {len(chosen)} exemplar(s)", key="ex_retire", disabled=not chosen,
                         help="Retired exemplars stay in the store for audit but are never retrieved again."):
    try:
        with st.spinner(f"Retiring {len(chosen)} exemplar(s)…"):
            for eid in chosen:
                exemplars.retire(ws, eid, who=_ui.identity())
    except PermissionError as e:
        st.error(_ui.plain(str(e)))
    else:
        st.session_state.pop("ex_retire_ids", None)
        _ui.flash(f"Retired {len(chosen)} exemplars.")
        st.rerun()

if MANAGER:
    with st.expander("Add an exemplar by hand"):
        tools = {t.get("name", ""): t for t in next((t.tools for t in index.task_map(ws).values() if t.suite == suite), [])}
        with st.form("ex_add_form", clear_on_submit=False):
            request = st.text_area("User request", key="ex_add_request", height=80)
            tool = st.selectbox("Tool", sorted(tools) or [""], key="ex_add_tool", accept_new_options=True)
            args = st.text_area("Arguments (JSON object)", key="ex_add_args", value="{}", height=80)
            tags = st.text_input("Tags (comma separated)", key="ex_add_tags")
            submitted = st.form_submit_button("Add exemplar")
        if submitted:
            try:
                arguments = json.loads(args or "{}")
                if not isinstance(arguments, dict):
                    raise ValueError("the arguments must be a JSON object, like {\"username\": \"akhan\"}")
                with st.spinner("Adding the exemplar (its request is embedded for retrieval)…"):
                    ex = exemplars.add_manual(ws, suite, [Message(role="user", content=request)],
                                              ToolCall(name=tool or "", arguments=arguments),
                                              [t.strip() for t in tags.split(",") if t.strip()], who=_ui.identity())
                _ui.flash("Added an exemplar.")
                st.session_state["ex_last_added"] = ex.id
                st.rerun()
            except json.JSONDecodeError as e:
                st.error(_ui.plain(f"Arguments are not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}."))
            except (ValueError, PermissionError) as e:
                st.error(_ui.plain(str(e)))

st.subheader("How this suite retrieves (auto)")
st.dataframe([{"mode": m, "what it does": what} for m, what in MODES.items()], hide_index=True, width="stretch",
             key="ex_modes")
st.caption("Every mode can also be **tool-aware**: from its best 4k candidates it takes the best case of each "
           "distinct tool first, then fills up to k, so the shots cover the likely tools instead of k copies "
           "of one call.")
choice = retrieval.current(ws, suite)
st.text(retrieval.summary(choice))
if choice:
    st.caption("Stage b: the best configurations of stage a, run through the agent on the train split "
               "(each task left out of its own shots). The choice is the best name accuracy, then call accuracy, "
               "then stage-a score, then smaller k.")
    st.dataframe(choice.get("stage_b", []), hide_index=True, width="stretch", key="ex_choice_b")
    with st.expander("Stage a: every configuration, without the model"):
        st.caption("score = (recall + 0.5 top1 + 0.5 share) / 2 over the train tasks: recall, whether some shot "
                   "calls the task's expected tool; top1, whether the best-ranked one does; share, the fraction "
                   "of shots that do.")
        st.dataframe(sorted(choice.get("stage_a", []), key=lambda r: -r["score"]), hide_index=True,
                     width="stretch", key="ex_choice_a")
running = _progress.is_running("auto")
if st.button("Choose retrieval for this suite", key="ex_choose", disabled=running or not MANAGER,
             help="Runs `retrieval choose` in the background: scores every mode, k and tool-awareness without "
                  "the model, then runs the best three through the agent on the train split. Needs the "
                  "reviewer role."):
    _progress.start("auto", ["retrieval", "choose", "--suite", suite])
_progress.watch("auto", "steps")

st.subheader("What each retrieval mode returns")
q = st.columns([4, 2, 3])  # wide enough for "tool-aware" under k
query = q[0].text_area("Type a task", key="ex_query", height=80, placeholder="e.g. reset the password of akhan by sms")
k = q[1].number_input("k", 1, 10, 3, key="ex_k")
tool_aware = q[1].checkbox("tool-aware", key="ex_tool_aware", help="cover distinct tools first (see above)")
shown = q[2].multiselect("Modes", list(MODES), default=list(MODES), key="ex_modes_shown",
                         help="auto shows what the suite's choice (or the default) retrieves")
tags_q: list[str] = []
counts = exemplars.tag_counts(ws, suite)  # the tags the 'type' mode can match, listed to pick from
if "type" in shown:
    tags_q = q[2].multiselect("Task tags (for the 'type' mode)", list(counts), key="ex_query_tags",
                              format_func=lambda t: f"{t} ({counts[t]})",
                              placeholder="choose tags" if counts else "no exemplar of this suite has tags")
st.caption("Each column ranks with its own score (named under its title, e.g. BM25 runs from 0 to tens, cosine "
           "from -1 to 1), so compare ranks (#1, #2, …) within a column, not scores across columns.")


def _column(mode: str) -> None:
    """What one mode retrieves for the typed task: rank, score (named), tool and request of each shot."""
    used, used_k, used_aware = retrieval.resolve(ws, suite, mode, int(k), tool_aware)
    st.markdown(f"**{mode}**")
    if mode == "auto":
        st.caption(f"= {retrieval.Config(used, used_k, used_aware).label()}")
    name, meaning = SCORES.get(used, ("score", ""))
    st.caption(f"score: {meaning}")
    try:
        hits = exemplars.select(ws, probe, used, k=used_k, tool_aware=used_aware)
    except ValueError as e:
        st.text(str(e))
        return
    if not hits and used == "type" and not tags_q:
        have = ", ".join(counts) if counts else "none: no exemplar of this suite has tags"
        st.text(f"(no tag chosen: 'type' only returns exemplars sharing a tag; pick one above; tags here: {have})")
    elif not hits:
        st.text("(nothing)")
    for rank, h in enumerate(hits, 1):
        with st.container(border=True):
            st.text(f"#{rank} · {name} {h.score:.3f} · {h.exemplar.tool}")
            st.text(request_text(h.exemplar.input)[:160])


if query.strip() and shown:
    probe = Task(id="probe", suite=suite, sample_id="probe", split="heldout", input=[Message(role="user", content=query)],
                 expected=ToolCall(name=""), tags=tags_q)
    per_row = 4
    with st.spinner("Retrieving with each mode (the first time loads the embedding model, a few seconds)…"):
        for start in range(0, len(shown), per_row):
            cols = st.columns(per_row)
            for col, mode in zip(cols, shown[start:start + per_row], strict=False):
                with col:
                    _column(mode)
else:
    st.caption(f"Type a task to see the exemplars that {', '.join(RETRIEVAL_MODES)} and auto retrieval would give.")
