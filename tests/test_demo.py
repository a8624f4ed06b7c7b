"""The demo workspace: suite, a retrieval choice, runs, and a learning curve, made once."""

from __future__ import annotations

from agentlearn.demo import CURVE_SIZES, ensure_demo_workspace
from agentlearn.memory import retrieval
from agentlearn.tasks import DEMO_SUITE
from storage.records import EvalRun, LearningCurve, Trajectory


def test_the_demo_builds_runs_a_choice_and_a_learning_curve_once(ws, capsys):
    summary = ensure_demo_workspace(ws, runs=3, eval_limit=2)
    assert summary["trajectories"] == 2 * 3 + 2 * len(CURVE_SIZES)  # train runs, then the curve's evaluations
    assert retrieval.current(ws, DEMO_SUITE)["stage_b"] == []  # model-free on first start
    [curve] = ws.repo.find(LearningCurve, suite=DEMO_SUITE)
    assert [p["bank_size"] for p in curve.points][0] == 0 and len(curve.points) == len(CURVE_SIZES)
    runs = ws.repo.find(EvalRun, suite=DEMO_SUITE)
    assert {r.method for r in runs} == {"none", "exemplars"} and all(r.n == 2 for r in runs)
    assert "learning curve" in capsys.readouterr().err
    again = ensure_demo_workspace(ws, runs=3, eval_limit=2)  # a later start reuses everything
    assert again == summary and len(ws.repo.find(LearningCurve, suite=DEMO_SUITE)) == 1
    assert sum(t.split == "train" for t in ws.repo.find(Trajectory, suite=DEMO_SUITE)) == 6


def test_the_first_runs_take_tasks_of_each_tool_in_threes(ws):
    """Error analysis drafts a rule from a pattern seen 3 times: three tasks of a tool can give one."""
    from collections import Counter

    from agentlearn.demo import PER_TOOL, RUNS, first_tasks
    from agentlearn.tasks import ensure_demo_suite, load_tasks

    ensure_demo_suite(ws)
    train = load_tasks(ws, DEMO_SUITE, "train")
    picked = first_tasks(train, RUNS)
    counts = Counter(t.expected.name for t in picked)
    most_used = [name for name, _ in Counter(t.expected.name for t in train).most_common(RUNS // PER_TOOL)]
    assert len(picked) == RUNS == len(set(t.id for t in picked)) and set(counts) == set(most_used)
    assert set(counts.values()) == {PER_TOOL}
    assert first_tasks(train, len(train) + 5) and len(first_tasks(train, len(train) + 5)) == len(train)
