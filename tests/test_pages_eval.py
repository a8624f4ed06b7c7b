"""AppTest for Evaluate, Run and Overview on seeded EvalRun, LearningCurve and Process records; agentlearn.reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentlearn import processes, reports, stats
from pages import _ui
from storage.records import EvalRun, LearningCurve, Process, now
from tests.seed import SUITE, seed_workspace
from tests.test_pages import click, markdown_texts, open_page, plain_texts

TASKS = [f"{SUITE}:h{i}" for i in range(20)]


def frame(at, column: str):
    """The first table drawn with this column (AppTest does not keep a plain st.dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def outcomes(right: set[int], tasks=TASKS) -> dict[str, dict[str, float]]:
    return {t: {"name": float(i in right), "call": float(i in right and i % 2 == 0), "exact": 0.0,
                "args": 0.5 if i in right else -1.0} for i, t in enumerate(tasks)}


def eval_run(method: str, right: set[int], tasks=TASKS, days_ago: float = 1, **fields) -> EvalRun:
    results = outcomes(right, tasks)
    n = len(results)
    return EvalRun(suite=SUITE, split="heldout", method=method, n=n, results=results,
                   name_accuracy=sum(r["name"] for r in results.values()) / n,
                   call_accuracy=sum(r["call"] for r in results.values()) / n, args_score=0.5,
                   constrained=True, created=now() - timedelta(days=days_ago), **fields)


@pytest.fixture
def seeded(ws, monkeypatch, _navigation_like_a_server):
    """The seeded test workspace, run by the app as a server runs it (see tests/test_pages.py)."""
    from agentlearn.embeddings import hash_encode

    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", ws.chat_factory)
    seed_workspace(ws.repo)
    _ui.clear()
    yield ws
    _ui.clear()


@pytest.fixture
def evals(seeded):
    """Zero-shot 2/20, exemplars 14/20 on the same 20 tasks, a newer exemplars run on 3 tasks, a curve, repeats."""
    ws = seeded
    for r in ws.repo.all(EvalRun):
        ws.repo.delete(EvalRun, r.id)  # the seed's runs have no per-task results
    zero = eval_run("none", {0, 1}, days_ago=3)
    shots = eval_run("exemplars", set(range(14)), exemplar_mode="bm25", k=3, days_ago=2,
                     per_argument={"reset_password.username": [9, 10], "reset_password.delivery": [4, 10]})
    quick = eval_run("exemplars", {0, 1, 2}, tasks=TASKS[:3], exemplar_mode="bm25", k=3, days_ago=1)
    free = eval_run("exemplars", set(range(6)), exemplar_mode="bm25", k=3, days_ago=1.5).model_copy(
        update={"constrained": False})
    repeats = [eval_run("exemplars", set(range(10 + i)), exemplar_mode="bm25", k=3, temperature=0.7, group="g1",
                        days_ago=0.5) for i in range(3)]
    curve_points = [eval_run("exemplars", set(range(s)), exemplar_mode="bm25", k=3, bank_size=s, group="c1")
                    for s in (0, 4, 4)]
    ws.repo.put_many([zero, shots, quick, free, *repeats, *curve_points])
    ws.repo.put(LearningCurve(suite=SUITE, exemplar_mode="bm25", k=3, points=[
        {"bank_size": 0, "draw": 0, "n": 20, "name_accuracy": 0.1, "call_accuracy": 0.0, "eval_id": curve_points[0].id},
        {"bank_size": 4, "draw": 0, "n": 20, "name_accuracy": 0.4, "call_accuracy": 0.2, "eval_id": curve_points[1].id},
        {"bank_size": 4, "draw": 1, "n": 20, "name_accuracy": 0.5, "call_accuracy": 0.2, "eval_id": curve_points[2].id},
        {"bank_size": 8, "draw": 0, "n": 20, "name_accuracy": 0.7, "call_accuracy": 0.3, "eval_id": "gone"},
    ]))
    return {"ws": ws, "zero": zero, "shots": shots, "quick": quick, "free": free}


# --- reports ---------------------------------------------------------------------------------------


def test_a_smaller_newer_run_never_replaces_a_larger_one(evals):
    summary = reports.eval_summary(evals["ws"], SUITE)
    greedy = summary[(summary["method"] == "exemplars") & summary["constrained"] & (summary["temperature"] == 0)]
    assert list(greedy["id"]) == [evals["shots"].id]
    assert "1 newer run on fewer tasks not shown" in greedy["note"].iloc[0]
    assert evals["free"].id in set(summary["id"])  # free decoding is its own configuration
    assert not set(summary["id"]) & {p["eval_id"] for c in evals["ws"].repo.all(LearningCurve) for p in c.points}
    row = summary[summary["id"] == evals["shots"].id].iloc[0]
    low, high = stats.wilson(14, 20)
    assert (row["n"], row["name accuracy"], row["name low"], row["name high"]) == (20, 0.7, round(low, 3),
                                                                                     round(high, 3))


def test_comparison_with_the_zero_shot_baseline_is_paired(evals):
    table = reports.comparison(evals["ws"], SUITE)
    row = table[table["configuration"] == "exemplars · bm25 k=3"].iloc[0]
    expected = stats.paired(evals["shots"], evals["zero"])
    assert (row["paired n"], row["only this right"], row["only baseline right"]) == (20, 12, 0)
    assert row["difference"] == pytest.approx(0.6)
    assert row["McNemar p"] == round(expected.p_value, 4) and expected.p_value < 0.001
    assert "free decoding" not in " ".join(table["configuration"])  # no zero-shot run with free decoding


def test_comparison_with_a_chosen_baseline(evals):
    table = reports.comparison(evals["ws"], SUITE, baseline_id=evals["shots"].id, metric="call")
    assert evals["shots"].id not in table["configuration"].tolist()
    assert set(table["metric"]) == {"call"} and len(table) >= 2
    with pytest.raises(ValueError, match="no evaluation run"):
        reports.comparison(evals["ws"], SUITE, baseline_id="nope")


def test_curve_table_and_repeats_and_latest_gain(evals):
    curve = reports.curve_table(reports.latest_curve(evals["ws"], SUITE))
    four = curve[(curve["bank size"] == 4) & (curve["metric"] == "name accuracy")].iloc[0]
    assert (four["mean"], four["draws"], four["min"], four["max"]) == (0.45, 2, 0.4, 0.5)
    spreads = reports.repeat_spreads(evals["ws"], SUITE)
    assert len(spreads) == 1 and spreads.iloc[0]["repeats"] == 3
    assert spreads.iloc[0]["name accuracy mean"] == pytest.approx(0.55)
    gain = reports.latest_gain(evals["ws"], SUITE, "exemplars")
    assert gain.baseline.id == evals["zero"].id and gain.paired.n == 20
    assert reports.latest_gain(evals["ws"], SUITE, "insights") is None


def test_per_argument_accuracy(evals):
    table = reports.per_argument(evals["ws"], evals["shots"].id)
    assert list(table["argument"]) == ["reset_password.delivery", "reset_password.username"]
    assert list(table["accuracy"]) == [0.4, 0.9]


# --- Evaluate -----------------------------------------------------------------------------------


def test_evaluate_shows_intervals_comparison_arguments_and_curve(evals):
    at = open_page("pages/evaluate.py")
    assert len(at.get("plotly_chart")) == 2  # accuracy per configuration, learning curve
    summary = frame(at, "name low")
    assert "name low" in summary.columns and len(summary) == 4  # none, exemplars, free decoding, sampled
    comparison = frame(at, "paired n")
    assert comparison["paired n"].tolist()[0] == 20
    at.selectbox(key="ev_argument_run").select(evals["shots"].id).run()
    assert frame(at, "graded")["graded"].tolist() == [10, 10]
    assert any("newer run on fewer tasks not shown" in t for t in plain_texts(at))
    assert len(frame(at, "bank size")) == 6
    assert len(frame(at, "repeats")) == 1


def test_evaluate_starts_an_eval_child_with_the_chosen_options(evals, monkeypatch):
    started = []

    def start(ws, kind, args, who=None):
        started.append((kind, list(args)))
        return ws.repo.put(Process(kind=kind, args=list(args), total=3, done=1, message="ok t1"))

    monkeypatch.setattr(processes, "start", start)
    at = open_page("pages/evaluate.py")
    at.selectbox(key="ev_method").select("exemplars").run()
    at.selectbox(key="ev_mode").select("hybrid").run()
    at.checkbox(key="ev_tool_aware").check().run()
    at.checkbox(key="ev_constrained").uncheck().run()
    at.number_input(key="ev_repeats").set_value(3).run()
    at.number_input(key="ev_limit").set_value(2).run()
    click(at, "ev_start")
    assert started == [("eval", ["eval", "--suite", SUITE, "--method", "exemplars", "--mode", "hybrid",
                                 "--tool-aware", "--no-constrained", "--limit", "2", "--repeats", "3"])]
    assert any("1 of 3 tasks" in p.proto.text for p in at.get("progress"))
    assert at.button(key="ev_start").disabled  # one evaluation at a time
    click(at, f"eval_stop_{processes.latest(evals['ws'], 'eval').id}")  # one Stop per watched process
    assert processes.latest(evals["ws"], "eval").status == "stopped"
    assert not at.button(key="ev_start").disabled


def test_evaluate_starts_a_curve_child(evals, monkeypatch):
    started = []
    monkeypatch.setattr(processes, "start", lambda ws, kind, args, who=None: started.append((kind, list(args)))
                        or ws.repo.put(Process(kind=kind, args=list(args))))
    at = open_page("pages/evaluate.py")
    at.text_input(key="cu_sizes").input("0, 4, all").run()
    click(at, "cu_start")
    assert started == [("curve", ["curve", "--suite", SUITE, "--sizes", "0,4,all", "--draws", "3"])]


def test_a_failed_process_shows_its_reason_as_text(evals):
    from tests.seed import HOSTILE

    evals["ws"].repo.put(Process(kind="eval", args=["eval", "--suite", SUITE], status="failed", error=HOSTILE))
    at = open_page("pages/evaluate.py")
    assert any(HOSTILE in t for t in plain_texts(at))
    assert not any("<script>" in m for m in markdown_texts(at))


def test_evaluate_on_seed_runs_without_per_task_results(seeded):
    at = open_page("pages/evaluate.py")
    assert len(at.get("plotly_chart")) == 1
    assert any("No run here has a baseline" in t for t in plain_texts(at))


# --- Run ----------------------------------------------------------------------------------------


def test_run_starts_a_run_child_and_offers_its_trajectories_for_labeling(evals, monkeypatch):
    ws = evals["ws"]
    started = []

    def start(ws_, kind, args, who=None):
        started.append(list(args))
        return ws_.repo.put(Process(kind=kind, args=list(args), created=now() - timedelta(days=10)))

    monkeypatch.setattr(processes, "start", start)
    at = open_page("pages/run.py")
    at.selectbox(key="run_scope").select("a whole split").run()
    at.selectbox(key="run_method").select("reflexion").run()
    click(at, "run_start")
    assert started == [["run", "--suite", SUITE, "--method", "reflexion", "--split", "train"]]
    process = processes.latest(ws, "run")
    ws.repo.update(Process, process.id, lambda p: p.model_copy(update={"status": "succeeded", "done": 3,
                                                                        "total": 3}))
    at.run()
    assert any("3 of 3 tasks" in p.proto.text for p in at.get("progress"))
    assert any(t.endswith("trajectories stored by the last run") for t in plain_texts(at))
    click(at, "run_to_queue")
    assert at.session_state["f_since"] == process.created.isoformat()


# --- Overview -----------------------------------------------------------------------------------


def test_overview_shows_the_gain_with_n_interval_and_p_and_the_curve(evals):
    at = open_page("pages/overview.py")
    at.selectbox(key="ov_suite").select(SUITE).run()
    shown = {m.label: m for m in at.metric}
    gain, call = shown["Tool-name gain over zero-shot"], shown["Whole-call gain over zero-shot"]
    assert gain.value == "+60.0 points"
    assert "n=20" in gain.delta and "95% CI" in gain.delta and "p=" in gain.delta
    paired = reports.latest_gain(evals["ws"], SUITE, "exemplars").call  # the arguments too, beside the name
    assert call.value == f"{100 * paired.difference:+.1f} points" and f"{paired.accuracy_a:.0%} vs" in call.delta
    assert at.get("plotly_chart")[0].proto is not None
    assert len(at.get("plotly_chart")) == 3  # the learning curve beside the two usual charts


def _choose_k5(ws) -> None:
    """The suite's auto choice: hybrid k=5, two tools by the description ranker (what auto resolves to)."""
    from storage.records import Suite

    ws.repo.update(Suite, SUITE, lambda s: s.model_copy(update={"retrieval": {
        "mode": "hybrid", "k": 5, "tool_aware": True, "tools": 2, "ranker": "description"}}))


def test_run_shows_the_k_that_auto_will_use_and_the_run_records_it(seeded, make_fake_chat):
    """The page said k=3 while auto ran with 5: the control shows the suite's k, the trajectory stores it."""
    _choose_k5(seeded)
    seeded.chat_factory = make_fake_chat(['<tool_call>{"name": "reset_password", "arguments": '
                                          '{"username": "akhan", "delivery": "email"}}</tool_call>'])
    _ui.CHAT_FACTORY = seeded.chat_factory
    _ui.clear()
    at = open_page("pages/run.py")
    at.selectbox(key="run_method").select("exemplars").run()
    assert [n.value for n in at.number_input if n.label == "Exemplars (k)"] == [5]
    assert "Will run: exemplars · auto: hybrid k=5 · tool-aware · 2 tools (description)" in plain_texts(at)
    at.selectbox(key="run_task").select(f"{SUITE}:t0").run()
    click(at, "run_one")
    [trial] = reports.latest_episode(seeded, f"{SUITE}:t0")
    assert (trial.memory.exemplar_mode, trial.memory.k, trial.memory.tool_aware, trial.memory.ranker) == \
        ("hybrid", 5, True, "description")
    assert any(t.startswith("Used: exemplars · hybrid k=5 · tool-aware") for t in plain_texts(at))


def test_run_passes_every_option_to_the_child(evals, monkeypatch):
    started = []
    monkeypatch.setattr(processes, "start", lambda ws, kind, args, who=None: started.append(list(args))
                        or ws.repo.put(Process(kind=kind, args=list(args))))
    at = open_page("pages/run.py")
    at.selectbox(key="run_scope").select("a whole split").run()
    at.selectbox(key="run_method").select("exemplars").run()
    at.selectbox(key="run_mode").select("bm25").run()
    at.number_input(key="run_k").set_value(2).run()
    at.selectbox(key="run_tools").select("2").run()
    at.selectbox(key="run_ranker").select("description").run()
    at.selectbox(key="run_adapter").select("none").run()
    click(at, "run_start")
    assert started == [["run", "--suite", SUITE, "--method", "exemplars", "--mode", "bm25", "--k", "2",
                        "--tools", "2", "--ranker", "description", "--adapter", "none", "--split", "train"]]


def test_run_remembers_the_last_run_after_a_reload(seeded, make_fake_chat):
    seeded.chat_factory = make_fake_chat(["no call"])
    _ui.CHAT_FACTORY = seeded.chat_factory
    _ui.clear()
    at = open_page("pages/run.py")
    at.selectbox(key="run_task").select(f"{SUITE}:t1").run()
    click(at, "run_one")
    again = open_page("pages/run.py")  # a new session: nothing kept in session state
    again.selectbox(key="run_task").select(f"{SUITE}:t1").run()
    assert any(t.startswith("Used: none") for t in plain_texts(again))
    assert "no call" in [c.value for c in again.code]


def test_run_before_any_retrieval_choice_names_what_was_asked(evals):
    at = open_page("pages/run.py")
    at.selectbox(key="run_method").select("exemplars").run()
    at.selectbox(key="run_mode").select("bm25").run()
    assert any(t.startswith("Will run: exemplars · bm25 k=3; this suite has no retrieval choice yet")
               for t in plain_texts(at))
