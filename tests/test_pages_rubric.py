"""AppTest for the rubric, corrections and label export on the pages: Suites edits the rubric (reviewers and
admins only), Trajectories ticks categories and stores corrections, Overview and Evaluate count failures
by category."""

from __future__ import annotations

from agentlearn.feedback import labels
from storage.records import Correction, EvalRun, Exemplar, Label, Suite
from tests import test_pages
from tests.seed import SUITE
from tests.test_pages import click, open_page, plain_texts

seeded, raw_seeded = test_pages.seeded, test_pages.raw_seeded


def test_a_reviewer_saves_the_rubric_and_an_annotator_cannot(seeded):
    open_page(None, annotator="alice", role="admin")  # the first account is an admin
    at = open_page("pages/suites.py", annotator="dave", role="reviewer")
    at.selectbox(key="su_suite").set_value(SUITE).run()
    at.text_area(key=f"su_categories_{SUITE}").set_value("wrong tool\nasked instead of acting\n\n")
    at.text_area(key=f"su_guidelines_{SUITE}").set_value("## Usernames\nAlways **lower case**.")
    click(at, "su_save_rubric")
    suite = seeded.repo.get(Suite, SUITE)
    assert (suite.error_categories, suite.guidelines) == (["wrong tool", "asked instead of acting"],
                                                          "## Usernames\nAlways **lower case**.")
    at.text_area(key=f"su_categories_{SUITE}").set_value("x" * 60)
    click(at, "su_save_rubric")
    assert any("longer than 40 characters" in e.value for e in at.error)
    assert seeded.repo.get(Suite, SUITE).error_categories == ["wrong tool", "asked instead of acting"]
    viewer = open_page("pages/suites.py", annotator="carol", role="annotator")
    viewer.selectbox(key="su_suite").set_value(SUITE).run()
    assert not [t for t in viewer.text_area if t.key == f"su_categories_{SUITE}"]
    assert "Error categories: wrong tool, asked instead of acting" in plain_texts(viewer)


def test_trajectories_ticks_a_category_and_stores_a_json_correction(seeded):
    at = open_page("pages/trajectories.py", trajectory="tr0bad")
    assert at.session_state["traj_current"] == "tr0bad"
    assert any(t.startswith("Wrong tool: called `create_ticket`, expected `reset_password`") for t in plain_texts(at))
    click(at, "btn_cat_0")  # wrong tool
    assert at.session_state["drafts"]["tr0bad"] == {"verdict": "fail", "score": None, "categories": ["wrong tool"]}
    click(at, "btn_success")  # a success carries no error category
    assert at.session_state["drafts"]["tr0bad"]["categories"] == []
    click(at, "btn_cat_0")
    click(at, "btn_submit")
    stored = seeded.repo.find(Label, annotator="alice", trajectory_id="tr0bad")
    assert [(lab.verdict, lab.categories) for lab in stored] == [("fail", ["wrong tool"])]

    at = open_page("pages/trajectories.py", trajectory="tr0bad")
    at.segmented_control(key="fix_mode_tr0bad").set_value("JSON").run()
    at.text_area(key="fix_json_text_tr0bad").set_value('{"name": "reset_password", "arguments": {"username": 7}}')
    next(b for b in at.button if b.label == "Save correction").click().run()
    assert any("argument 'username': 7 is not of type 'string'" in e.value.replace("\\", "") for e in at.error)
    assert seeded.repo.count(Correction) == 0
    at.text_area(key="fix_json_text_tr0bad").set_value('{"name": "reset_password", "arguments": {"username": "akhan"}}')
    next(b for b in at.button if b.label == "Save correction").click().run()
    fixes = seeded.repo.find(Correction, trajectory_id="tr0bad")
    assert [(c.author, c.call.arguments) for c in fixes] == [("alice", {"username": "akhan"})]
    click(at, "fix_exemplar_tr0bad")
    assert any(e.kind == "manual" and e.trajectory_id == "tr0bad" for e in seeded.repo.all(Exemplar))


def test_overview_and_evaluate_break_failures_down_by_category(seeded):
    labels.submit_label(seeded, "tr1bad", "carol", "fail", categories=["invented value"])
    at = open_page("")
    table = next(d.value for d in at.dataframe if "from the verifier" in d.value.columns).set_index("category")
    assert table.loc["invented value", "from people"] == 1 and table.loc["wrong tool", "from the verifier"] == 5
    run = seeded.repo.put(EvalRun(suite=SUITE, split="heldout", method="none", n=4, name_accuracy=0.5,  # the largest n of its configuration: shown
                                  call_accuracy=0.5, trajectory_ids=["tr1bad", "tr1ok"]))
    ev = open_page("pages/evaluate.py")
    ev.selectbox(key="ev_argument_run").set_value(run.id).run()
    table = next(d.value for d in ev.dataframe if "from the verifier" in d.value.columns).set_index("category")
    assert table["failures"].sum() == 1 and table.loc["invented value", "failures"] == 1
