"""A trajectory on the labeling pages (render_trajectory): a one-call run's step and parsed call, or an
episode step by step (feedback.episodes): the user message that opened each turn and the calls the task expected in it, then each step's calls or answer, what each call answered
(long observations folded, errors marked) and its timings.

Everything shown comes from data (tool output, model output, names) and goes through st.text / st.code;
labels of expanders and captions hold only words written here and numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from agentlearn.feedback import episodes
from pages import _ui
from storage.records import Task, Trajectory


def _expected(view: episodes.StepView) -> None:
    if view.expected is None:
        st.caption("expected in this turn: the task gives no reference for it")
        return
    st.caption("expected in this turn (every acceptable value; “may be left out”: the argument may be missing)")
    st.text("\n".join(c.text() for c in view.expected) or "(no call: the turn is answered without tools)")


def _observation(n: int, obs: episodes.Observation) -> None:
    what = "error" if obs.error else "observation"
    timing = f" · {obs.seconds:.3f} s" if obs.seconds is not None else ""
    head = f"{'⚠ ' if obs.error else ''}{what} {n}{timing}"
    if obs.folded:
        with st.expander(f"{head} · {len(obs.content):,} characters, folded"):
            if obs.name:
                st.text(f"from {obs.name}")
            st.code(obs.content, language=None, wrap_lines=True)
        return
    st.caption(head)
    if obs.name:
        st.text(f"from {obs.name}")
    st.code(obs.content or "(empty)", language=None, wrap_lines=True)


def _body(view: episodes.StepView) -> None:
    """A step's thought, its calls or answer, then what each call answered."""
    if view.thought:
        st.caption("thought")
        st.text(view.thought)
    for call in view.calls:
        _ui.captioned("call", episodes.call_text(call), language="json")
    if view.answer:
        _ui.captioned("answer", view.answer)
    if view.text:
        _ui.captioned("model output (no call or answer could be read)", view.text)
    for n, obs in enumerate(view.observations, start=1):
        _observation(n, obs)


def render_steps(traj: Trajectory, task: Task | None, flag_prefix: str = "", selected: int | None = None,
                 below: Callable[[int], None] | None = None) -> list[int]:
    """Draw every step; with flag_prefix a flag per step (returns the flagged ones); `selected` is marked and
    gets `below(step)` drawn inside its box (the in-place correction)."""
    flagged = []
    for view in episodes.step_views(traj, task):
        if view.opens_turn:
            if view.turn == 0 and task is not None:
                st.caption("turn 1 · the task above")  # its request is drawn once, as the task
            else:
                st.caption(f"turn {view.turn + 1} · the user wrote")
                st.text(view.user or "(the user message is not in the store)")
            _expected(view)
        with st.container(border=True, key=f"step_box_{view.index}"):
            with _ui.flaggable(flag_prefix, view.index, flagged):
                mark = "▶ " if view.index == selected else ""
                st.caption(" · ".join(p for p in (f"{mark}step {view.index + 1}", f"turn {view.turn + 1}",
                                                  view.timing()) if p))
                _body(view)
            if below is not None and view.index == selected:
                below(view.index)
    return flagged


def render_continuation(traj: Trajectory, task: Task | None, start: int) -> None:
    """The steps of a run from `start` on (one side of a preference between continuations)."""
    rest = traj.model_copy(update={"steps": traj.steps[start:]})
    views = episodes.step_views(rest, task)
    for view in views:
        with st.container(border=True):
            st.caption(" · ".join(p for p in (f"step {start + view.index + 1}", view.timing()) if p))
            _body(view)
    if not views:
        st.text("(no steps after the shared ones)")


def render_trajectory(traj: Trajectory, task: Task | None, flag_prefix: str = "",
                      selected: int | None = None, below=None) -> list[int]:
    """Show a trajectory safely; with flag_prefix, a checkbox per step; returns the flagged steps.

    An episode (executed steps) is drawn step by step (render_steps), its `selected` step marked with
    `below(step)` drawn inside it.
    """
    st.markdown("**Task**")
    if task is not None:
        _ui.messages([m for m in task.input if m.role != "system"])
    else:
        st.text(f"(task {traj.task_id} is not in the store)")
    if episodes.is_episode(traj):
        st.markdown(f"**Steps ({len(traj.steps)})**")
        return render_steps(traj, task, flag_prefix, selected, below)
    flagged = []
    st.markdown("**Steps**")
    for i, step in enumerate(traj.steps):
        with st.container(border=True), _ui.flaggable(flag_prefix, i, flagged):
            st.caption(f"step {i + 1}")
            if step.thought:
                st.caption("thought")
                st.text(step.thought)
            if step.action:
                _ui.captioned("action", step.action)
            if step.observation:
                _ui.captioned("observation", step.observation)
    if not traj.steps:
        _ui.captioned("output", traj.output)
    st.markdown("**Parsed tool call**")
    if traj.tool_call is not None:
        st.json(traj.tool_call.model_dump(), expanded=True)
    else:
        st.text("(no tool call could be parsed)")
    return flagged
