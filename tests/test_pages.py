"""AppTest for every dashboard page: set widgets, press the buttons the keys press, check the store.

Each test seeds a fresh workspace (records built directly, no model runs) and clears st.cache_resource
before and after, so no workspace leaks from one test into another.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from agentlearn import accounts, preferences, sessions, users
from agentlearn.embeddings import hash_encode
from agentlearn.feedback import labels, queue
from agentlearn.settings import Settings
from pages import _ui
from storage import open_repository
from storage.records import (
    EvalRun,
    Exemplar,
    Insight,
    InsightProposal,
    Label,
    MemoryUsed,
    Message,
    Preference,
    ToolCall,
    Trajectory,
    Verdict,
)
from tests.seed import HOSTILE, SUITE, admin_of, seed_workspace

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
PASSWORD = "correct horse battery"


@pytest.fixture
def seeded(raw_seeded, _navigation_like_a_server):
    """The seeded workspace, with the app run the way a server runs it."""
    return raw_seeded


@pytest.fixture
def raw_seeded(ws, monkeypatch):
    """The test workspace with seed records, no accounts (local user "alice"); the app opens the same folder."""
    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", ws.chat_factory)
    seed_workspace(ws.repo)
    _ui.clear()
    yield ws
    _ui.clear()


def open_page(page: str | None, annotator: str = "", role: str = "admin", **query) -> AppTest:
    """Open the app (and a page) as the local user, or signed in as `annotator` (an account made if missing)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if annotator:
        repo = open_repository(str(Settings.from_env().store_dir))
        account = accounts.find(repo, annotator) or users.add_user(repo, annotator, role, PASSWORD, who=admin_of(repo))
        at.session_state[_ui.SESSION_KEY] = sessions.open_session(repo, account.id)[0]  # as the sign-in form does
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown_texts(at: AppTest) -> list[str]:
    """Everything drawn as markdown (titles, captions, markdown, alerts): data must never be there."""
    out = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    out += [h.value for h in at.subheader] + [h.value for h in at.header]
    out += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    return out


def plain_texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text] + [c.value for c in at.code]


# --- app shell ----------------------------------------------------------------------------------


def test_sidebar_shows_the_local_user_and_the_backend(seeded):
    at = open_page(None)
    sidebar = [t.value for t in at.sidebar.text]
    assert "Local mode: alice (admin)" in sidebar
    assert any("embedded" in t for t in sidebar)


def test_the_sidebar_chooses_the_embedded_model_for_this_session(seeded):
    at = open_page(None)
    box = at.sidebar.selectbox(key=_ui.LOCAL_MODEL_KEY)
    assert box.options == ["SmolLM2-135M-Instruct", "gemma-3-270m"] and box.value == "smollm2-135m"
    box.select("gemma3-270m").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.value.startswith("embedded: gemma-3-270m") for t in at.sidebar.text)  # the workspace's model now
    assert at.sidebar.selectbox(key=_ui.LOCAL_MODEL_KEY).value == "gemma3-270m"


def test_a_page_requested_first_still_runs_inside_app(raw_seeded):
    """A server's first request for /trajectories must still get the sidebar (who is signed in) from app.py."""
    at = open_page("pages/trajectories.py", annotator="erin")
    assert "Signed in: erin (admin)" in [t.value for t in at.sidebar.text]
    assert at.title[0].value == "Trajectories"


def test_every_frequent_action_has_a_letter_key(seeded):
    wanted = {
        "pages/trajectories.py": {"btn_success": "s", "btn_fail": "f", "btn_score_1": "1", "btn_score_5": "5",
                                  "btn_submit": "n", "btn_skip": "k", "btn_prev": "p", "btn_verifier": "v",
                                  "btn_similar": "m"},
        "pages/preferences.py": {"pref_a": "a", "pref_b": "b", "pref_t": "t", "pref_x": "x", "pref_e": "e",
                                 "pref_n": "n"},
        "pages/insights.py": {"ins_approve": "a", "ins_edit": "e", "ins_reject": "x", "ins_next": "n"},
    }
    at = open_page(None)
    for page, keys in wanted.items():
        at.switch_page(page).run()
        for key, letter in keys.items():
            assert at.button(key=key).proto.shortcut.lower() == letter, (page, key)
        assert any("Keys:" in c.value for c in at.caption), page  # the visible cheatsheet


def test_a_fresh_workspace_gets_the_demo_from_a_child_process(ws, monkeypatch, _navigation_like_a_server):
    from agentlearn import processes
    from storage.records import Process

    monkeypatch.delenv("AGENTLEARN_DEMO", raising=False)
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    started = []

    def start(ws_, kind, args, who=None):
        started.append((str(ws_.settings.home), kind, list(args)))
        return ws_.repo.put(Process(kind=kind, args=list(args), done=2, total=5))  # running, no pid yet

    monkeypatch.setattr(processes, "start", start)
    _ui.clear()
    at = open_page(None)
    assert started == [(str(ws.settings.home), "demo", ["demo"])]
    assert any("Creating the demo workspace: 2 of 5 steps" in p.proto.text for p in at.get("progress"))
    assert at.button(key="demo_stop")  # long work can be stopped, like every other child
    at.run()
    assert len(started) == 1  # once per server, not per run or per session
    _ui.clear()


def test_a_workspace_with_data_gets_no_demo(seeded, monkeypatch):
    from agentlearn import processes

    monkeypatch.delenv("AGENTLEARN_DEMO", raising=False)
    monkeypatch.setattr(processes, "start", lambda *a, **k: pytest.fail("must not start the demo"))
    open_page(None)


# --- Trajectories -------------------------------------------------------------------------------


def test_label_with_keys_is_stored_and_moves_on(seeded):
    at = open_page("pages/trajectories.py")
    first = at.session_state["traj_current"]
    assert at.button(key="btn_success").proto.shortcut  # every frequent action has a key
    click(at, "btn_fail")
    click(at, "btn_score_2")
    at.text_area(key=f"comment_{first}").input("wrong tool").run()
    traj = seeded.repo.get(Trajectory, first)
    if traj.steps:
        at.checkbox(key=f"flag_{first}_0").check().run()
    click(at, "btn_submit")
    labels = seeded.repo.find(Label, trajectory_id=first, annotator="alice")
    assert len(labels) == 1
    assert (labels[0].verdict, labels[0].score, labels[0].comment) == ("fail", 2, "wrong tool")
    assert labels[0].step_flags == ([0] if traj.steps else [])
    assert at.session_state["traj_current"] != first  # submit and next


def test_a_rating_comment_becomes_a_playbook_proposal(seeded):
    at = open_page("pages/trajectories.py")
    first = at.session_state["traj_current"]
    at.text_area(key=f"comment_{first}").input("Ask for the asset tag before opening a ticket.").run()
    rule = at.text_area(key=f"rule_traj_{first}")
    assert rule.value.endswith("Ask for the asset tag before opening a ticket.")  # drafted from the comment
    rule.input("Ask for the asset tag before calling create_ticket.").run()
    click(at, f"propose_traj_{first}")
    (made,) = [p for p in seeded.repo.find(InsightProposal, source="person")]
    assert (made.status, made.text, made.evidence) == ("pending", "Ask for the asset tag before calling create_ticket.",
                                                       [first])
    assert "rating comment" in made.rationale


def test_submit_without_verdict_stores_nothing(seeded):
    at = open_page("pages/trajectories.py")
    assert at.button(key="btn_submit").disabled  # no verdict chosen yet
    assert seeded.repo.count(Label) == 1  # only the seeded label


def test_two_people_labeling_one_trajectory_make_two_records(seeded):
    for name, verdict in (("alice", "btn_success"), ("bob", "btn_fail")):
        at = open_page("pages/trajectories.py", annotator=name, trajectory="tr2ok")
        assert at.session_state["traj_current"] == "tr2ok"
        click(at, verdict)
        click(at, "btn_submit")
    labels = seeded.repo.find(Label, trajectory_id="tr2ok")
    assert sorted((lb.annotator, lb.verdict) for lb in labels) == [("alice", "success"), ("bob", "fail")]


def test_filters_and_search_narrow_the_queue(seeded):
    at = open_page("pages/trajectories.py")
    at.selectbox(key="f_status").select("any").run()
    at.selectbox(key="f_verifier").select("success").run()
    ids = queue.queue(seeded, queue.Filters(verifier="success"))
    assert len(ids) == 6
    assert any(f"{len(ids)} trajectories" in m.value for m in at.markdown)
    assert seeded.repo.get(Trajectory, at.session_state["traj_current"]).verdict.success
    at.text_input(key="f_search").input("printer").run()
    assert at.session_state["traj_current"] == "tr1ok"
    at.selectbox(key="f_status").select("labeled").run()
    at.text_input(key="f_search").input("").run()
    assert at.session_state["traj_current"] == "tr0ok"  # the one bob labeled


def test_hostile_trajectory_is_shown_as_text_only(seeded):
    at = open_page("pages/trajectories.py", trajectory="trhostile")
    assert at.session_state["traj_current"] == "trhostile"
    assert any(HOSTILE in t for t in plain_texts(at))
    assert not any("<script>" in m or "onerror" in m for m in markdown_texts(at))


def test_bulk_accept_says_how_many_and_writes_them(seeded):
    at = open_page("pages/trajectories.py")
    at.selectbox(key="f_split").select("train").run()
    click(at, "bulk_ask")
    expected = len(labels.bulk_accept_count(seeded, queue.queue(seeded, queue.Filters(
        split="train", status=queue.ASSIGNED), me="alice"), "alice"))
    assert expected == 5  # the default queue: bob's label on tr0ok was all it needed
    assert any(f"writes {expected} label records" in w.value for w in at.warning)
    click(at, "bulk_confirm_yes")
    mine = seeded.repo.find(Label, annotator="alice")
    assert len(mine) == expected
    for label in mine:
        assert label.verdict == ("success" if seeded.repo.get(Trajectory, label.trajectory_id).verdict.success
                                 else "fail")


def test_find_similar_lists_neighbours(seeded):
    at = open_page("pages/trajectories.py", trajectory="tr0ok")
    click(at, "btn_similar")
    ids = list(at.dataframe(key="similar_table").value["id"])
    assert "tr0ok" not in ids and len(ids) >= 5
    assert ids[0] in ("tr0bad", "tr2ok", "tr4ok")  # the same request, or another password reset


# --- Preferences --------------------------------------------------------------------------------


def test_preference_choice_is_stored_with_sides(seeded):
    at = open_page("pages/preferences.py")
    pair = at.session_state["pair"]
    assert pair is not None and pair.first.task_id == pair.second.task_id
    click(at, "pref_b")
    prefs = seeded.repo.find(Preference, annotator="alice")
    assert len(prefs) == 1
    p = prefs[0]
    assert p.choice == "B" and p.swapped == pair.swapped
    assert p.trajectory_a == pair.left.id and p.response_a == pair.left.output
    assert p.trajectory_b == pair.right.id and p.response_b == pair.right.output
    assert {p.trajectory_a, p.trajectory_b} == {pair.first.id, pair.second.id}
    assert at.session_state["pair"] is not None and at.session_state["pair"] != pair  # next pair


def test_edit_to_fix_stores_the_correction(seeded):
    at = open_page("pages/preferences.py")
    click(at, "pref_e")
    fixed = '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'
    at.text_area(key="pref_fix_text").input(fixed).run()
    click(at, "pref_x")
    (p,) = seeded.repo.find(Preference, annotator="alice")
    assert (p.choice, p.corrected) == ("both_bad", fixed)


def test_edit_to_fix_refuses_what_is_not_a_call_of_the_schema(seeded):
    at = open_page("pages/preferences.py", pair="tr0ok.tr0bad.0")
    click(at, "pref_e")
    for text, problem in (("just reset it", "holds no tool call"),
                          ('<tool_call>{"name": "reset_password", "arguments": {"username": "akhan", "via": "sms"}}'
                           '</tool_call>', "argument 'via' is not one of the tool's parameters")):
        at.text_area(key="pref_fix_text").input(text).run()
        assert any(problem in e.value for e in at.error)  # said while typing
        click(at, "pref_a")
        assert any("Not saved" in e.value and problem in e.value for e in at.error)
        assert seeded.repo.find(Preference, annotator="alice") == []
        assert preferences.pair_key(at.session_state["pair"]) == "tr0ok.tr0bad.0"  # the pair and the edit stay
        assert at.text_area(key="pref_fix_text").value == text


def test_a_heldout_pair_is_marked(seeded):
    at = open_page("pages/preferences.py", pair="tr0ok.tr0bad.0")
    assert not any("Held-out task" in i.value for i in at.info)
    at = open_page("pages/preferences.py", pair="tr1ok.tr1bad.0")
    assert any("Held-out task" in i.value for i in at.info)


def test_an_edit_to_fix_becomes_a_playbook_proposal(seeded):
    at = open_page("pages/preferences.py")
    click(at, "pref_e")
    fixed = '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>'
    at.text_area(key="pref_fix_text").input(fixed).run()
    (box,) = [t for t in at.text_area if str(t.key).startswith("rule_pref_")]
    assert "the way this corrected call does" in box.value and "reset_password" in box.value
    box.input("Call reset_password with the username the person gives.").run()
    click(at, "propose_" + str(box.key).removeprefix("rule_"))
    (made,) = seeded.repo.find(InsightProposal, source="person")
    assert made.text == "Call reset_password with the username the person gives." and len(made.evidence) == 2
    assert seeded.repo.find(Preference, annotator="alice") == []  # proposing does not answer the pair


def test_two_people_judging_make_two_preferences(seeded):
    for name in ("alice", "bob"):
        at = open_page("pages/preferences.py", annotator=name)
        at.selectbox(key="pref_suite").select(SUITE).run()
        click(at, "pref_t")
    assert sorted(p.annotator for p in seeded.repo.all(Preference)) == ["alice", "bob"]


def test_fresh_pair_runs_the_agent_twice(seeded, make_fake_chat):
    seeded.chat_factory = make_fake_chat(['<tool_call>{"name": "create_ticket", "arguments": {"title": "x"}}'
                                          '</tool_call>', "I am not sure."])
    _ui.CHAT_FACTORY = seeded.chat_factory
    _ui.clear()
    at = open_page("pages/preferences.py")
    at.selectbox(key="pref_source").select("fresh agent runs").run()
    before = seeded.repo.count(Trajectory)
    click(at, "pref_run")
    assert seeded.repo.count(Trajectory) == before + 2
    click(at, "pref_a")
    (p,) = seeded.repo.find(Preference, annotator="alice")
    assert {p.response_a, p.response_b} == {"I am not sure.", '<tool_call>{"name": "create_ticket", '
                                            '"arguments": {"title": "x"}}</tool_call>'}


# --- Insights -----------------------------------------------------------------------------------


def test_approve_reject_and_edit_proposals(seeded):
    at = open_page("pages/insights.py")
    assert at.session_state["ins_current"] == "prop-add"
    assert any("Use create_ticket" in c.value for c in at.code)  # the diff
    click(at, "ins_approve")
    add = seeded.repo.get(InsightProposal, "prop-add")
    assert (add.status, add.reviewer) == ("approved", "alice")
    made = [i for i in seeded.repo.find(Insight, suite=SUITE) if i.text == "Use create_ticket for hardware faults."]
    assert len(made) == 1 and made[0].history[0].evidence == ["tr1ok", "tr1bad"]
    assert at.session_state["ins_current"] == "prop-edit"
    at.text_area(key="ins_edit_prop-edit").input("Ask for the username first.").run()
    click(at, "ins_edit")
    assert seeded.repo.get(Insight, "ins-1").text == "Ask for the username first."
    assert seeded.repo.get(InsightProposal, "prop-edit").status == "approved"


def test_insights_opens_on_the_suite_whose_proposals_wait(seeded):
    from storage.records import Suite

    seeded.repo.put(Suite(id="aaa-no-proposals", name="aaa-no-proposals"))  # first by name, nothing to review
    at = open_page("pages/insights.py")
    assert at.selectbox(key="ins_suite").value == SUITE and at.session_state["ins_current"] == "prop-add"


def test_reject_and_manual_curation(seeded):
    at = open_page("pages/insights.py", annotator="bob")
    click(at, "ins_reject")
    assert seeded.repo.get(InsightProposal, "prop-add").status == "rejected"
    at.text_area(key="ins_new_text").input("Prefer SMS when the user cannot read email.").run()
    click(at, "ins_add")
    assert any(i.text.startswith("Prefer SMS") and i.history[0].by == "bob" for i in seeded.repo.all(Insight))
    at.selectbox(key="ins_pick").select("ins-1").run()
    click(at, "ins_promote")
    assert seeded.repo.get(Insight, "ins-1").importance == 3
    click(at, "ins_demote")
    click(at, "ins_demote")
    assert seeded.repo.get(Insight, "ins-1").importance == 1
    versions = len(seeded.repo.get(Insight, "ins-1").history)
    at.text_area(key=f"ins_text_ins-1_{versions}").input("Check the username.").run()
    click(at, "ins_save")
    assert seeded.repo.get(Insight, "ins-1").text == "Check the username."
    versions += 1  # the restore box starts at the newest version again, not at what was typed before
    assert at.number_input(key=f"ins_restore_ins-1_{versions}").value == versions - 1
    at.number_input(key=f"ins_restore_ins-1_{versions}").set_value(0).run()
    click(at, "ins_restore")
    ins = seeded.repo.get(Insight, "ins-1")
    assert ins.text.startswith("Always ask for the username") and ins.history[-1].operation == "RESTORE"


def test_after_restore_the_bullet_picker_and_the_text_box_show_the_restored_text(seeded):
    """The browser keeps the picker's last label, not the bullet's id: each change must send the new label
    as the picker's value (tests/browser/test_insights_restore.py shows it in Chromium)."""
    at = open_page("pages/insights.py")
    at.selectbox(key="ins_pick").select("ins-1").run()
    versions = len(seeded.repo.get(Insight, "ins-1").history)
    at.text_area(key=f"ins_text_ins-1_{versions}").input("Check the username.").run()
    click(at, "ins_save")
    picker = at.selectbox(key="ins_pick")
    assert picker.proto.set_value and picker.proto.raw_value == "[active, importance 2] Check the username."
    at.number_input(key=f"ins_restore_ins-1_{versions + 1}").set_value(0).run()
    click(at, "ins_restore")
    restored = seeded.repo.get(Insight, "ins-1").text
    assert restored.startswith("Always ask for the username")
    picker = at.selectbox(key="ins_pick")
    assert picker.value == "ins-1"
    assert picker.proto.set_value and picker.proto.raw_value == f"[active, importance 2] {restored}"
    assert [t.value for t in at.text_area if t.key.startswith("ins_text_ins-1_")] == [restored]
    assert restored in [t.value for t in at.text]


# --- Overview -----------------------------------------------------------------------------------


def test_overview_counts_agreement_and_evals(seeded):
    from sklearn.metrics import cohen_kappa_score

    seeded.repo.put_many([Label(trajectory_id="tr0bad", annotator="bob", verdict="fail"),
                          Label(trajectory_id="tr1ok", annotator="bob", verdict="fail"),
                          Label(trajectory_id="tr1bad", annotator="bob", verdict="fail"),
                          Label(trajectory_id="tr1bad", annotator="carol", verdict="success")])
    at = open_page("pages/overview.py")
    metrics = {m.label: m for m in at.metric}
    assert metrics["Trajectories"].value == "13"
    assert metrics["Labeled"].value == "4"
    assert metrics["To review"].value == "2"
    # bob says success/fail/fail on runs the verifier calls success/fail/success; tr1bad: bob+carol tie
    human = ["success", "fail", "fail", "fail"]  # tr0ok, tr0bad, tr1ok, tr1bad (a tie is a fail)
    machine = ["success", "fail", "success", "fail"]
    expected = cohen_kappa_score(human, machine)
    assert metrics["κ vs verifier"].value == f"{expected:.2f}"
    assert len(at.get("plotly_chart")) == 2
    evals = [d for d in at.dataframe if "call accuracy" in d.value.columns]
    assert len(evals) == 1 and len(evals[0].value) == 2


def test_the_overview_suite_applies_to_every_chart(seeded):
    other = [Trajectory(id=f"other{i}", task_id="other:t0", suite="other", split="heldout", prompt=[], output="x",
                        verdict=Verdict(success=False, reward=0.0, reason=""),
                        memory=MemoryUsed(method="reflexion")) for i in range(3)]
    seeded.repo.put_many(other)
    seeded.repo.put(EvalRun(suite="other", split="heldout", method="none", n=3, name_accuracy=0.0,
                            call_accuracy=0.0, model="m"))
    at = open_page("pages/overview.py")
    for suite, methods, evals in ((SUITE, {"exemplars", "none"}, 2), ("other", {"reflexion"}, 1)):
        at.selectbox(key="ov_suite").select(suite).run()
        by_method = [c for c in at.get("plotly_chart") if "success %" in c.proto.spec]
        assert by_method and all(('"' + m + '"' in c.proto.spec) == (m in methods) for c in by_method
                                 for m in ("exemplars", "none", "reflexion"))
        (table,) = [d.value for d in at.dataframe if "call accuracy" in d.value.columns]
        assert set(table["suite"]) == {suite} and len(table) == evals


def test_the_time_axis_never_repeats_a_label():
    from pages import _charts

    hours = pd.DataFrame({"period": pd.date_range("2026-12-01", periods=20, freq="h"), "method": "none",
                          "runs": 1, "success %": 50.0})
    hours.attrs.update(bucket="hour", seconds=3600, tickformat="%b %d %H:%M")
    axis = _charts.success_over_time(hours).layout.xaxis
    assert axis.dtick == 3 * 3600 * 1000 and pd.Timestamp(axis.tick0) == hours["period"][0]
    ticks = pd.date_range(hours["period"][0], hours["period"].iloc[-1], freq="3h")
    assert len({t.strftime(axis.tickformat) for t in ticks}) == len(ticks)
    months = hours.assign(period=pd.date_range("2026-01-01", periods=20, freq="MS"))
    months.attrs.update(bucket="month", seconds=2629746, tickformat="%b %Y")
    assert _charts.success_over_time(months).layout.xaxis.dtick == "M3"


def test_the_server_builds_the_first_page_before_its_first_visitor(seeded, monkeypatch):
    """serve.py warms: Overview's first run then builds none of its tables (each is served as kept)."""
    from agentlearn.feedback import overview
    from pages import _warm

    _warm.warm()
    ws = _ui._open(_ui.home())
    warmed = ws.caches.previous("progress_by_suite")
    assert warmed is not None and set(warmed["suite"]) == {SUITE}
    built = []
    real = overview.reports.progress_by_suite.__globals__["_progress_by_suite"]
    monkeypatch.setitem(overview.reports.progress_by_suite.__globals__, "_progress_by_suite",
                        lambda w: built.append(1) or real(w))
    at = open_page("pages/overview.py")
    assert {m.label: m.value for m in at.metric}["Trajectories"] == "13"
    assert built == []


def test_overview_of_a_big_store_says_its_figures_are_being_updated(seeded, monkeypatch):
    from agentlearn.feedback import overview

    monkeypatch.setattr(overview, "BACKGROUND_FROM", 1)  # the seed's 13 runs count as big here
    open_page("pages/overview.py")
    seeded.repo.put(Label(trajectory_id="tr0bad", annotator="zed", verdict="fail"))
    at = open_page(None)  # the page the dashboard opens on (one run: a second would find the new tables)
    assert at.title[0].value == "Overview"
    assert any(c.value.startswith("Figures as of") for c in at.caption)


def test_overview_on_an_empty_store_says_what_to_do(ws, monkeypatch, _navigation_like_a_server):
    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    _ui.clear()
    at = open_page("pages/overview.py")
    assert any("store is empty" in i.value for i in at.info)
    _ui.clear()


# --- Exemplars ----------------------------------------------------------------------------------


def test_exemplar_bank_add_retire_and_retrieval_modes(seeded):
    at = open_page("pages/exemplars.py")
    assert len(at.dataframe[0].value) == 3
    at.text_area(key="ex_add_request").input("Unlock the account of dpatel")  # a form: sent on submit
    at.selectbox(key="ex_add_tool").select("reset_password")
    at.text_area(key="ex_add_args").input('{"username": "dpatel"}')
    at.button[[b.label for b in at.button].index("Add exemplar")].click().run()
    manual = [e for e in seeded.repo.find(Exemplar, suite=SUITE) if e.kind == "manual"]
    assert len(manual) == 1 and manual[0].call.arguments == {"username": "dpatel"}
    at.multiselect(key="ex_retire_ids").select("ref-0").run()
    click(at, "ex_retire")
    assert seeded.repo.get(Exemplar, "ref-0").active is False
    at.text_area(key="ex_query").input("password reset for akhan by email").run()
    headers = [m.value for m in at.markdown]
    for mode in ("fixed", "type", "bm25", "semantic", "mmr"):
        assert f"**{mode}**" in headers
    texts = [t.value for t in at.text]
    assert any(t.startswith("#1 · BM25 ") for t in texts) and any(t.startswith("#1 · cosine ") for t in texts)
    assert any(c.value.startswith("score: 0 to tens") for c in at.caption)  # what a BM25 score is
    assert any("pick one above; tags here: accounts" in t for t in texts)  # type, before a tag is chosen
    assert "ref-0" not in str(texts)  # retired: never retrieved
    at.multiselect(key="ex_query_tags").select("accounts").run()
    assert not any("no tag chosen" in t.value for t in at.text)


def test_exemplar_requests_show_for_people_in_any_role(seeded):
    said = "My order 77 never arrived, please refund it."
    seeded.repo.put(Exemplar(id="ex-customer", suite=SUITE, task_id="", kind="manual", tool="create_ticket",
                             input=[Message(role="system", content="You are a shop's support agent."),
                                    Message(role="customer", content=said)],
                             call=ToolCall(name="create_ticket", arguments={"title": "refund 77"})))
    at = open_page("pages/exemplars.py")
    table = at.dataframe[0].value.set_index("id")
    assert table.loc["ex-customer", "request"] == said
    assert table.loc["ref-0", "request"] == "I forgot my password, user akhan, email me."


def test_bad_exemplar_arguments_are_refused_clearly(seeded):
    at = open_page("pages/exemplars.py")
    at.text_area(key="ex_add_request").input("x")
    at.text_area(key="ex_add_args").input("{not json")
    at.button[[b.label for b in at.button].index("Add exemplar")].click().run()
    assert any("not valid JSON" in e.value for e in at.error)
    assert not [e for e in seeded.repo.all(Exemplar) if e.kind == "manual"]


# --- Run ----------------------------------------------------------------------------------------


def test_run_one_task_and_send_it_to_the_queue(seeded, make_fake_chat):
    seeded.chat_factory = make_fake_chat(['<tool_call>{"name": "reset_password", "arguments": '
                                          '{"username": "akhan", "delivery": "email"}}</tool_call>'])
    _ui.CHAT_FACTORY = seeded.chat_factory
    _ui.clear()
    at = open_page("pages/run.py")
    at.selectbox(key="run_task").select(f"{SUITE}:t0").run()
    before = {t.id for t in seeded.repo.all(Trajectory)}
    click(at, "run_one")
    new = [t for t in seeded.repo.all(Trajectory) if t.id not in before]
    assert len(new) == 1 and new[0].verdict.success and new[0].task_id == f"{SUITE}:t0"
    click(at, "run_to_queue_one")
    assert at.session_state["traj_current"] == new[0].id
    assert queue.queue(seeded, queue.Filters(since=datetime.fromisoformat(at.session_state["f_since"]))) \
        == [new[0].id]


# --- Evaluate -----------------------------------------------------------------------------------


def test_evaluate_shows_runs_and_chart(seeded):
    at = open_page("pages/evaluate.py")
    assert len(at.get("plotly_chart")) == 1
    table = [d for d in at.dataframe if "call accuracy" in d.value.columns][0].value
    assert sorted(table["method"]) == ["exemplars", "none"]
    assert any("python -m agentlearn eval --suite helpdesk-test" in c.value for c in at.code)


def test_every_page_renders_without_exception(seeded):
    at = open_page(None)
    pages = ["pages/overview.py", "pages/trajectories.py", "pages/preferences.py", "pages/insights.py",
             "pages/exemplars.py", "pages/run.py", "pages/evaluate.py"]
    if (ROOT / "pages" / "training.py").exists():
        pages.append("pages/training.py")
    for page in pages:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.title, page


@pytest.mark.slow
def test_evaluate_and_run_start_the_real_cli_in_a_child_process(seeded, shared_models):
    """The Evaluate and Run pages start `python -m agentlearn ...` with the real SmolLM2 and watch its record."""
    from agentlearn import processes

    home = seeded.settings.home
    if not (home / "models").exists():
        (home / "models").symlink_to(shared_models, target_is_directory=True)

    def finish(kind: str):
        record = processes.latest(seeded, kind)
        deadline = time.time() + 600
        while record.status == "running" and time.time() < deadline:
            time.sleep(1)
            record = processes.get(seeded, record.id)
        assert record.status == "succeeded", (record.error, processes.tail(seeded, record))
        return record

    at = open_page("pages/evaluate.py")
    at.number_input(key="ev_limit").set_value(1).run()
    click(at, "ev_start")
    done = finish("eval")
    assert (done.done, done.total) == (1, 1)  # progress came from the record, written by the child
    at.run()
    new = [r for r in seeded.repo.all(EvalRun) if r.n == 1]
    assert len(new) == 1 and new[0].method == "none" and new[0].model and new[0].results
    assert any("1 of 1 tasks" in p.proto.text for p in at.get("progress"))

    at.switch_page("pages/run.py").run()
    at.selectbox(key="run_scope").select("a whole split").run()
    at.number_input(key="run_limit").set_value(1).run()
    before = seeded.repo.count(Trajectory)
    click(at, "run_start")
    started = finish("run")
    at.run()
    assert seeded.repo.count(Trajectory) == before + 1
    assert "1 trajectories stored by the last run" in [t.value for t in at.text]
    click(at, "run_to_queue")
    assert seeded.repo.get(Trajectory, at.session_state["traj_current"]).created >= started.created
