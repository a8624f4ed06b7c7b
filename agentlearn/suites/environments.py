"""BFCL's executable environments: a fixed list of the installed bfcl-eval classes, nothing else.

A task names its environments (`Task.environment`: class name -> initial state) and the tools act on
one fresh instance of each per episode. Names come from imported files, so they are looked up in
`NAMES` and never imported from the name itself. The eight multi-turn classes are offered; BFCL's
WebSearchAPI (it searches the web through SerpAPI) and MemoryAPI_* (its memory category, which needs
rank-bm25, sentence-transformers, faiss and prerequisite conversations) are left out, and their modules
import packages bfcl-eval is installed without.

Taken from bfcl-eval 2026.3.23 (Apache-2.0): the classes themselves (eval_checker/multi_turn_eval/
func_source_code/*.py), their module paths, documentation files and stateless list
(constants/executable_backend_config.py), and from multi_turn_utils.py `execute_multi_turn_func_call`'s
way to start an instance (`_load_scenario` on a deep copy of the state, skipped for stateless classes),
to find a method (public methods of the involved instances) and to turn a result into text.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from functools import cache
from importlib import resources
from typing import Any

from bfcl_eval.constants.executable_backend_config import (
    CLASS_FILE_PATH_MAPPING,
    MULTI_TURN_FUNC_DOC_FILE_MAPPING,
    STATELESS_CLASSES,
)

from agentlearn.suites.schema import tool_schema
from storage.records import Task, ToolCall

# Class name -> module; the only classes an imported task may name.
NAMES: dict[str, str] = {name: CLASS_FILE_PATH_MAPPING[name] for name in (
    "GorillaFileSystem", "MathAPI", "MessageAPI", "TicketAPI", "TradingBot", "TravelAPI",
    "TwitterAPI", "VehicleControlAPI",
)}


def environment_class(name: str) -> type:
    """The registered class of that name, imported on first use; any other name is refused."""
    if name not in NAMES:
        raise ValueError(f"unknown environment {name!r}: BFCL environments are {', '.join(NAMES)}")
    return getattr(importlib.import_module(NAMES[name]), name)


def create(name: str, state: dict, long_context: bool = False) -> object:
    """A fresh instance of environment `name` loaded with `state` (BFCL's initial_config[name])."""
    if not isinstance(state, dict):
        raise ValueError(f"the initial state of environment {name!r} must be an object, got {type(state).__name__}")
    instance = environment_class(name)()
    if name not in STATELESS_CLASSES:
        instance._load_scenario(copy.deepcopy(state), long_context=long_context)
    return instance


def long_context(task: Task) -> bool:
    """BFCL's rule: long-context and composite categories load their environments with long context."""
    category = task.sample_id.rsplit("_", 1)[0]
    return any("long_context" in text or "composite" in text for text in [category, *task.tags])


def for_task(task: Task) -> dict[str, object]:
    """Fresh instances of every environment the task names, by class name, as BFCL starts an episode."""
    return {name: create(name, state, long_context(task)) for name, state in task.environment.items()}


def methods(instance: object) -> dict[str, Any]:
    """The instance's tools: its public methods by name."""
    return {name: method for name, method in inspect.getmembers(instance, inspect.ismethod)
            if not name.startswith("_")}


def call(instance_by_name: dict[str, object], call: ToolCall) -> str:
    """Run one call on whichever instance has that method; its result as text (dicts as JSON).

    An unknown function raises ValueError, and whatever the method raises propagates: the caller
    turns exceptions into error observations.
    """
    for instance in instance_by_name.values():
        method = methods(instance).get(call.name)
        if method is not None:
            return as_text(method(**call.arguments))
    raise ValueError(f"unknown function {call.name!r}: no tool of that name in {', '.join(instance_by_name) or 'no environment'}")


def as_text(result: Any) -> str:
    """A method's result as BFCL's checker compares it: strings as they are, dicts as JSON, the rest str()."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        try:
            return json.dumps(result)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


def tools_for(names: list[str]) -> list[dict]:
    """The JSON-Schema tools of those environments, in order, from BFCL's function documents."""
    return [tool_schema(json.loads(line)) for name in names for line in _func_doc_lines(name)]


@cache
def _func_doc_lines(name: str) -> tuple[str, ...]:
    environment_class(name)  # refuses names outside the registry
    path = resources.files("bfcl_eval") / "data" / "multi_turn_func_doc" / MULTI_TURN_FUNC_DOC_FILE_MAPPING[name]
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def parameter_names(function: str) -> list[str]:
    """The parameters of the registered method of that name, in order (to name positional arguments)."""
    for name in NAMES if not function.startswith("_") else ():
        method = getattr(environment_class(name), function, None)
        if callable(method):
            return [p for p in inspect.signature(method).parameters if p != "self"]
    raise ValueError(f"unknown function {function!r}: no BFCL environment has a tool of that name")
