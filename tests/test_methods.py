"""RunOptions: one declaration gives the CLI arguments, the child command line, the stored form and the label."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from agentlearn import cli, methods, reports
from agentlearn.evaluate import evaluate, summary
from agentlearn.methods import RunOptions, options_of
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite
from storage.records import EvalRun, Suite

CHANGED = RunOptions(method="all", exemplar_mode="bm25", k=5, tool_aware=True, tools="2", ranker="description",
                     trials=4, adapter_id="none", constrained=False, limit=7, ablate=("i1", "i2"))


def _parsed(command: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    methods.add_arguments(parser, command)
    return parser.parse_args(argv)


@pytest.mark.parametrize("command", methods.COMMANDS)
def test_to_argv_parses_back_to_the_same_options_for_every_command(command):
    ns = _parsed(command, methods.command_line(command, "s", CHANGED)[1:])
    back = methods.from_args(ns)
    taken = {f.name for f in dataclasses.fields(RunOptions) if command in f.metadata["commands"]}
    assert taken, command
    for name in taken:
        assert getattr(back, name) == getattr(CHANGED, name), (command, name)
    assert ns.suite == "s"


def test_defaults_make_no_flags_and_every_flag_has_help():
    assert RunOptions().to_argv(methods.EVAL) == []
    help_text = cli._parser()._subparsers._group_actions[0].choices["eval"].format_help()
    for f in dataclasses.fields(RunOptions):
        if f.metadata["flag"]:
            assert f.metadata["flag"] in help_text and f.metadata["help"], f.name


def test_stored_form_round_trips_and_names_an_unknown_key():
    assert RunOptions.from_dict(CHANGED.to_dict()) == CHANGED
    with pytest.raises(ValueError, match="unknown run option.*colour"):
        RunOptions.from_dict({"colour": "red"})


def test_trials_only_count_for_reflexion():
    assert RunOptions(method="none", trials=5).trials == 1
    assert RunOptions(method="reflexion", trials=1).trials == 3


def test_an_evaluation_stores_what_auto_resolved_to_and_every_label_is_the_same(ws, make_fake_chat):
    ensure_demo_suite(ws)
    ws.repo.update(Suite, DEMO_SUITE, lambda s: s.model_copy(update={"retrieval": {
        "mode": "bm25", "k": 5, "tool_aware": False, "tools": 2, "ranker": "exemplars"}}))
    ws.chat_factory = make_fake_chat(["no call"])
    run = evaluate(ws, DEMO_SUITE, RunOptions(method="exemplars", limit=2))
    stored = ws.repo.get(EvalRun, run.id)
    used = RunOptions.from_dict(stored.options)
    assert (used.exemplar_mode, used.k, used.tools, used.ranker) == ("bm25", 5, "2", "exemplars")
    assert {"exemplar_mode", "k", "tools", "ranker"} <= set(used.auto)
    assert (stored.exemplar_mode, stored.k, stored.tools, stored.ranker) == ("auto:bm25", 5, 2, "exemplars")
    label = "exemplars · auto: bm25 k=5 · 2 tools (exemplars)"
    assert reports.label(stored).startswith(label)
    assert summary(ws, [stored])["lines"][0].startswith(label)
    # an older record (no options kept) reads the same from its fields
    assert reports.label(stored.model_copy(update={"options": {}})) == reports.label(stored)
    assert options_of(stored).label() == reports.label(stored)


def test_the_package_has_no_import_cycle_and_no_upward_import():
    from bench.import_graph import cycles, graph, upward

    g = graph()
    assert cycles(g) == [] and upward(g) == []


def test_files_are_replaced_only_through_storage_files():
    """Atomic writes have one owner (storage.files.write_atomic): no module above storage renames over a file."""
    from bench.import_graph import modules

    hand_written = [name for name, path in modules().items()
                    if not name.startswith("storage") and "os.replace(" in path.read_text()]
    assert hand_written == ["agentlearn.feedback.export"]  # swaps a whole dataset folder, not a file


def test_vocabularies_are_declared_once():
    from typing import get_args

    from agentlearn.training import config, improve
    from storage.records import Job, TrainingMethod

    assert methods.TRAINING_METHODS == config.METHODS == improve.TRAINED == get_args(TrainingMethod)
    assert Job.model_fields["method"].annotation == TrainingMethod
    assert methods.DEFAULT_RANKER == methods.TOOL_RANKERS[0]
