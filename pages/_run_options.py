"""The run option controls of the Run and Evaluate pages: one RunOptions from widgets, help from its declaration.

Where a control is "auto", the page shows what the suite's choice makes of it (retrieval.resolve_options),
so what people read is what the run will use.
"""

from __future__ import annotations

import streamlit as st

from agentlearn import reports
from agentlearn.memory import retrieval
from agentlearn.methods import (
    DEFAULT_K,
    DEFAULT_MODE,
    METHODS,
    MODES,
    TOOL_CHOICES,
    TOOL_RANKERS,
    RunOptions,
    cli_fields,
    default_of,
    help_of,
)
from agentlearn.workspace import Workspace
from pages import _ui

FIELDS = ("method", "adapter", "mode", "k", "tools", "ranker", "tool_aware", "constrained", "trials")
# RunOptions fields drawn above by hand (or set by the page: limit; by the CLI only: ablate); any other
# option a command takes gets a plain control from its declaration (`_declared`).
DRAWN = {"method", "adapter_id", "exemplar_mode", "k", "tools", "ranker", "tool_aware", "constrained", "trials",
         "limit", "ablate"}


def keys(prefix: str, command: str) -> list[str]:
    """The session keys of the controls (for _ui.keep)."""
    return [f"{prefix}_{name}" for name in FIELDS] + [f"{prefix}_{f.name}" for f in _others(command)]


def _others(command: str) -> list:
    return [f for f in cli_fields(command) if f.name not in DRAWN]


def _declared(prefix: str, command: str) -> dict:
    """A control for each option the command takes that is not drawn by hand: label, help and default declared."""
    values = {}
    for f in _others(command):
        default, label, key = default_of(f), f.name.replace("_", " ").capitalize(), f"{prefix}_{f.name}"
        help_ = f.metadata["help"]
        if isinstance(default, bool):
            values[f.name] = st.checkbox(label, value=default, key=key, help=help_)
        elif f.metadata["choices"]:
            choices = list(f.metadata["choices"])
            values[f.name] = st.selectbox(label, choices, index=choices.index(default), key=key, help=help_)
        elif isinstance(default, int | float):
            values[f.name] = st.number_input(label, value=default, key=key, help=help_)
        else:
            values[f.name] = st.text_input(label, value="" if default is None else str(default), key=key, help=help_)
    return values


def controls(ws: Workspace, suite: str, prefix: str, command: str) -> RunOptions | None:
    """Draw the controls; the options they give (None, with the reason shown, when they do not fit together)."""
    adapters = reports.adapter_names(ws)
    c = st.columns(2)
    method = c[0].selectbox("Memory method", list(METHODS), key=f"{prefix}_method",
                            help="\n".join(f"{m}: {d}" for m, d in METHODS.items()))
    adapter = c[1].selectbox("Adapter", ["auto", "none"] + list(adapters), key=f"{prefix}_adapter",
                             format_func=lambda i: {"auto": "the suite's model", "none": "base model"}.get(
                                 i, adapters.get(i, i)), help=help_of("adapter_id"))
    uses = RunOptions(method=method).uses_exemplars
    choice = retrieval.current(ws, suite) if uses else {}
    c = st.columns(4)
    mode = c[0].selectbox("Exemplar retrieval", list(MODES), index=list(MODES).index(DEFAULT_MODE),
                          key=f"{prefix}_mode", disabled=not uses,
                          help="\n".join(f"{m}: {d}" for m, d in MODES.items()))
    auto = uses and mode == "auto" and bool(choice)
    if auto:  # the suite's k is what runs: the control says so instead of a k that would be ignored
        k = int(c[1].number_input("Exemplars (k)", 1, 50, int(choice["k"]), disabled=True,
                                  help="auto: the suite's choice (Exemplars page)"))
    else:
        k = int(c[1].number_input("Exemplars (k)", 1, 8, 3, key=f"{prefix}_k", disabled=not uses, help=help_of("k")))
    tools = c[2].selectbox("Tools offered", TOOL_CHOICES, key=f"{prefix}_tools", disabled=not uses,
                           help=help_of("tools"))
    ranker = c[3].selectbox("Tool ranker", ["auto", *TOOL_RANKERS], key=f"{prefix}_ranker",
                            disabled=not uses or tools == "all", help=help_of("ranker"))
    c = st.columns(3)  # the checkboxes in a row of their own: in a fifth of the width their labels were cut
    if auto:
        tool_aware = c[0].checkbox("Tool-aware shots", value=bool(choice["tool_aware"]), disabled=True,
                                   help="auto: the suite's choice")
    else:
        tool_aware = c[0].checkbox("Tool-aware shots", key=f"{prefix}_tool_aware", disabled=not uses,
                                   help=help_of("tool_aware"))
    constrained = c[1].checkbox("Constrained decoding", value=ws.settings.constrained, key=f"{prefix}_constrained",
                                help="under the suite's tool-call grammar (off: " + help_of("constrained") + ")")
    reflects = RunOptions(method=method).uses_reflexion
    trials = int(c[2].number_input("Reflexion trials", 2, 5, 3, key=f"{prefix}_trials", disabled=not reflects,
                                   help=help_of("trials")))
    others = _declared(prefix, command)
    try:
        options = RunOptions(method=method, exemplar_mode=mode, k=k, tool_aware=tool_aware, tools=tools,
                             ranker=ranker, trials=trials, adapter_id=adapter, constrained=constrained, **others)
        if uses and mode == "auto":  # the choice's own k and tool-awareness, not the disabled controls'
            options = options.replace(k=DEFAULT_K, tool_aware=False)
        _will_use(ws, suite, options, adapters, bool(choice) or not uses)
    except ValueError as e:
        st.error(_ui.plain(str(e)))
        return None
    return options


def _will_use(ws: Workspace, suite: str, options: RunOptions, adapters: dict[str, str], resolvable: bool) -> None:
    """A caption with what the run will use, auto resolved."""
    if not resolvable:  # resolving would make the suite's choice now: say what is asked and when auto is settled
        st.text(f"Will run: {options.label(adapters.get(options.adapter_id, ''))}; this suite has no "
                "retrieval choice yet, so the run makes one (model-free) before its first task for what is auto, "
                "and its record says what was used.")
        return
    used = retrieval.resolve_options(ws, suite, options)
    st.text(f"Will run: {used.label(adapters.get(used.adapter_id, used.adapter_id))}")
