"""The Training page's "Suite's model" section (AppTest on the real app and store): the model in use, Improve
starts an `improve` process, the latest improvement's stages, the gate's decisions, use and roll back."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from agentlearn import processes
from agentlearn.embeddings import hash_encode
from agentlearn.training import gate, improve
from pages import _ui
from storage.records import Process, Suite
from tests.seed import ME
from tests.test_datasets import SUITE, mini_suite
from tests.test_improve import FakeStages

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def page_ws(ws, monkeypatch, _navigation_like_a_server):
    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", ws.chat_factory)
    _ui.clear()
    yield ws
    _ui.clear()


def open_training() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_the_section_shows_the_decision_and_rolls_back(page_ws, tmp_path):
    ws = page_ws
    mini_suite(ws, tmp_path)
    fakes = FakeStages(ws, {"current": [0] * 10, "sft": [1] * 9 + [0]})
    record = improve.run(ws, SUITE, stages=fakes.stages(), who=ME)
    promoted = record.promoted
    assert promoted and ws.repo.get(Suite, SUITE).adapter == promoted
    at = open_training()
    assert any(t.startswith("In use: sft (") and promoted in t for t in texts(at))
    assert f"Serving: adapter {promoted} with exemplars from its bank; Improve compares its candidates with this." \
        in texts(at)
    assert any("too small for the gate to pass a plausible gain" in w.value for w in at.warning)  # 4 tasks
    stages = at.dataframe[0].value
    assert stages["stage"].tolist() == list(improve.STAGES) and stages["status"].tolist()[-1] == "done"
    compared = at.dataframe[1].value
    assert compared["configuration"].tolist() == ["serving", "candidate"]
    assert compared["n"].tolist() == [10, 10] and compared["name accuracy"].tolist() == [0.0, 0.9]
    assert compared["McNemar p"].tolist()[0] == "" and float(compared["McNemar p"].tolist()[1]) < 0.05
    assert compared["95% interval"].tolist()[0] == "0% to 28%"
    decisions = at.dataframe[2].value
    assert decisions["decision"].tolist() == ["promoted"] and decisions["p_value"].tolist()[0] < 0.05
    at.button(key="im_rollback").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert ws.repo.get(Suite, SUITE).adapter == ""
    assert any(t == "In use: the base model" for t in texts(at))
    assert [p.decision for p in gate.history(ws, SUITE)] == ["rollback", "promoted"]
    assert gate.history(ws, SUITE)[0].by == "alice"
    at.selectbox(key="im_pick").set_value(promoted).run()
    at.button(key="im_use").click().run()
    assert ws.repo.get(Suite, SUITE).adapter == promoted


def test_an_adapter_below_its_base_is_marked_on_the_training_page(page_ws, tmp_path):
    from storage.records import Adapter, Job

    ws = page_ws
    mini_suite(ws, tmp_path)
    folder = ws.settings.adapters_dir / "worse"
    folder.mkdir(parents=True)
    job = ws.repo.put(Job(method="sft", status="succeeded", step=40, max_steps=40, config={"suite": SUITE},
                          metrics={"val_name_accuracy": 0.25, "val_call_accuracy": 0.0, "val_rows": 4.0,
                                   "base_val_name_accuracy": 0.5, "base_val_call_accuracy": 0.25}))
    worse = ws.repo.put(Adapter(name="worse", path=str(folder), base_model="m", method="sft", job_id=job.id))
    ws.repo.update(Job, job.id, lambda j: j.model_copy(update={"adapter_id": worse.id}))
    at = open_training()
    history = next(d.value for d in at.dataframe if "validation" in d.value.columns)
    assert history["validation"].tolist() == ["base 50% -> 25% on 4 rows · BELOW BASE"]
    assert any("scored below its base model on the validation slice" in w.value and "not offered as an improvement"
               in w.value for w in at.warning)
    assert "worse (" + worse.id + ") · below its base on validation" in at.selectbox(key="im_pick").options


def test_improve_starts_a_process_and_a_stopped_one_can_resume(page_ws, tmp_path):
    ws = page_ws
    mini_suite(ws, tmp_path)
    at = open_training()
    assert at.button(key="im_resume").disabled  # nothing to resume yet
    at.multiselect(key="im_methods").set_value(["sft", "grpo"]).run()
    at.button(key="im_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (started,) = ws.repo.all(Process)
    assert started.kind == "improve" and started.args == ["improve", "--suite", SUITE, "--methods", "sft,grpo"]
    assert processes.stop(ws, started.id).status == "stopped"
    stopped = improve.run(ws, SUITE, stages={**FakeStages(ws, {}, stop_in="sft").stages()}, who=ME)
    assert stopped.status == "stopped"
    at.run()
    assert not at.button(key="im_resume").disabled
    at.button(key="im_resume").click().run()
    resumed = max(ws.repo.all(Process), key=lambda p: p.created)
    assert resumed.args == ["improve", "--suite", SUITE, "--resume", stopped.id]
    processes.stop(ws, resumed.id)


def test_the_run_page_uses_the_suites_model_unless_told_otherwise(page_ws, tmp_path):
    from storage.records import Adapter, Trajectory

    ws = page_ws
    mini_suite(ws, tmp_path)
    folder = ws.settings.adapters_dir / "promoted"
    folder.mkdir(parents=True)
    promoted = ws.repo.put(Adapter(name="promoted", path=str(folder), base_model="m", method="sft"))
    gate.use(ws, SUITE, promoted.id, who=ME)
    at = open_training()
    at.switch_page("pages/run.py").run()
    at.selectbox(key="run_suite").set_value(SUITE).run()
    assert at.selectbox(key="run_adapter").value == "auto"
    at.button(key="run_one").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.adapter for t in ws.repo.all(Trajectory)] == [promoted.id]
    at.selectbox(key="run_adapter").set_value("none").run()
    at.button(key="run_one").click().run()
    assert sorted(t.adapter for t in ws.repo.all(Trajectory)) == ["", promoted.id]
