"""AppTest runs of the team pages: Disagreements (reviewers), the Team table on Overview, overlap on Suites."""

from __future__ import annotations

import pytest

from agentlearn import users, verdicts
from agentlearn.feedback import labels, queue
from storage.records import Label, Resolution, Suite, Trajectory
from tests.seed import SUITE, admin_of
from tests.test_pages import PASSWORD, click, open_page, raw_seeded, seeded  # noqa: F401 (fixtures)


def test_disagreements_page_shows_every_label_and_records_the_ruling(seeded):  # noqa: F811
    labels.submit_label(seeded, "tr1ok", "ann", "success", comment="fine")
    labels.submit_label(seeded, "tr1ok", "ben", "fail", comment="wrong id")
    at = open_page("pages/review.py")
    assert any("1 to resolve" in m.value for m in at.markdown)
    table = next(d.value for d in at.dataframe if "annotator" in d.value.columns)
    assert set(zip(table["annotator"], table["verdict"], table["comment"], strict=True)) == {
        ("ann", "success", "fine"), ("ben", "fail", "wrong id")}
    at.text_input(key="rv_note_tr1ok").input("id checked").run()
    click(at, "rv_success")
    ruling = seeded.repo.find(Resolution, trajectory_id="tr1ok")[0]
    assert (ruling.reviewer, ruling.verdict, ruling.note) == ("alice", "success", "id checked")
    assert verdicts.judge(seeded).succeeded(seeded.repo.get(Trajectory, "tr1ok")) is True
    assert any("Nothing to resolve" in i.value for i in at.info)


def test_disagreements_need_the_reviewer_role(seeded):  # noqa: F811
    labels.submit_label(seeded, "tr1ok", "ann", "success")
    labels.submit_label(seeded, "tr1ok", "ben", "fail")
    users.add_user(seeded.repo, "alice", "admin", PASSWORD, who=admin_of(seeded.repo))
    at = open_page(None, annotator="carol", role="annotator")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/review.py")  # not registered for an annotator, so not reachable
    at.switch_page("pages/trajectories.py").run()
    assert not any(b.key == "rv_success" for b in at.button)


def test_overview_team_table_and_kappa_reason(seeded):  # noqa: F811
    labels.submit_label(seeded, "tr0ok", "ann", "success", seconds=12.0)  # bob said success too
    at = open_page(None)
    team = next(d.value for d in at.dataframe if "median s" in d.value.columns)
    row = team.set_index("annotator").loc["ann"]
    assert (row["labels"], row["median s"], row["agree %"]) == (1, 12.0, 100.0)
    agreement = next(d.value for d in at.dataframe if "between" in d.value.columns).set_index("between")
    assert agreement.loc["two people", "Cohen's κ"] == "undefined"
    assert "two people: κ undefined: everyone gave the same verdict (success)" in [x.value for x in at.text]
    assert agreement.loc["two people", "raw agreement %"] == "100.0"


def test_suites_page_sets_annotators_per_item(seeded):  # noqa: F811
    at = open_page("pages/suites.py")
    at.selectbox(key="su_suite").set_value(SUITE).run()
    at.number_input(key=f"su_overlap_value_{SUITE}").set_value(3)
    click(at, "su_save_overlap")
    assert seeded.repo.get(Suite, SUITE).overlap == 3
    assert queue.overlap(seeded, SUITE) == 3


def test_undo_and_rulings_have_letter_keys(seeded):  # noqa: F811
    labels.submit_label(seeded, "tr1ok", "ann", "success")
    labels.submit_label(seeded, "tr1ok", "ben", "fail")
    at = open_page(None)
    for page, keys in {"pages/trajectories.py": {"btn_undo": "u"},
                       "pages/review.py": {"rv_success": "s", "rv_fail": "f", "rv_skip": "k", "rv_prev": "p"}}.items():
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        for key, letter in keys.items():
            assert at.button(key=key).proto.shortcut.lower() == letter, (page, key)
        assert any("Keys:" in c.value for c in at.caption), page


def test_undo_on_the_page_removes_the_label_and_reopens_the_run(seeded):  # noqa: F811
    at = open_page("pages/trajectories.py", trajectory="tr2ok")
    assert at.button(key="btn_undo").disabled  # nothing submitted yet
    click(at, "btn_fail")
    click(at, "btn_submit")
    assert [lb.verdict for lb in seeded.repo.find(Label, trajectory_id="tr2ok", annotator="alice")] == ["fail"]
    assert at.session_state["traj_current"] != "tr2ok"
    click(at, "btn_undo")
    assert not seeded.repo.find(Label, trajectory_id="tr2ok", annotator="alice")
    assert at.session_state["traj_current"] == "tr2ok"
    assert any("verdict: fail" in t.value for t in at.text)  # the undone verdict is the draft again
