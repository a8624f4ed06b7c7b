"""AppTest for the Suites page: the card (description, instruction), tools, and argument kinds with overrides."""

from __future__ import annotations

import json

import pytest

from agentlearn import tasks
from pages import _ui
from storage.records import Task
from tests import test_pages
from tests.seed import HOSTILE, SUITE
from tests.test_pages import click, markdown_texts, open_page, plain_texts

# The page tests' fixtures, which pytest finds by name in this module.
seeded, raw_seeded = test_pages.seeded, test_pages.raw_seeded

PAGE = "pages/suites.py"


def kinds_table(at):
    return next(d for d in at.dataframe if "set_by" in d.value.columns).value


def test_edit_the_card_and_see_the_tools(seeded):
    at = open_page(PAGE)
    at.selectbox(key="su_suite").set_value(SUITE).run()
    assert any(t.startswith("6 tasks (3 train, 3 heldout)") for t in plain_texts(at))
    assert any("- reset_password(username: string, delivery?: string)" in c for c in plain_texts(at))
    at.text_input(key=f"su_description_{SUITE}").set_value("Accounts and tickets")
    at.text_area(key=f"su_instruction_{SUITE}").set_value("You work the help desk. Never guess usernames.")
    click(at, "su_save_card")
    suite = tasks.get_suite(seeded, SUITE)
    assert (suite.description, suite.instruction) == ("Accounts and tickets",
                                                      "You work the help desk. Never guess usernames.")


def test_override_an_argument_kind(seeded, tmp_path):
    path = tmp_path / "esc.jsonl"
    rows = [{"sample_id": f"e{i}", "input": [{"role": "user", "content": f"Escalate INC-{i}: the mail server is down"}],
             "expected_function_call": {"name": "escalate", "arguments": {
                 "ticket": f"INC-{i}", "reason": f"mail outage number {i} for the whole floor"}}} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks.import_jsonl(seeded, path, "esc")
    at = open_page(PAGE)
    at.selectbox(key="su_suite").set_value("esc").run()
    table = kinds_table(at)
    assert table[["argument", "kind"]].values.tolist() == [["ticket", "extractive"], ["reason", "free_text"]]
    at.selectbox(key="su_kind_esc_escalate_reason").set_value("extractive")
    click(at, "su_save_kinds")
    assert tasks.get_suite(seeded, "esc").arg_kind_overrides == {"escalate": {"reason": "extractive"}}
    assert kinds_table(at)["set_by"].tolist() == ["inferred", "person"]
    at.selectbox(key="su_kind_esc_escalate_reason").set_value("free_text")  # back to the inferred kind
    click(at, "su_save_kinds")
    assert tasks.get_suite(seeded, "esc").arg_kind_overrides == {}


def test_suite_content_is_shown_as_plain_text(seeded):
    tasks.update_suite(seeded, SUITE, instruction=HOSTILE, description=HOSTILE)
    at = open_page(PAGE)
    at.selectbox(key="su_suite").set_value(SUITE).run()
    assert at.text_area(key=f"su_instruction_{SUITE}").value == HOSTILE
    assert not any("<script>" in m or "onerror" in m for m in markdown_texts(at))


def _upload(at, name: str, data: bytes, suite: str = ""):
    at.get("file_uploader")[0].upload(name, data, "application/jsonl")
    at.text_input(key="su_import_name").set_value(suite)
    click(at, "su_import_go")
    return at


def test_an_admin_imports_a_suite_by_upload_with_the_cli_checks(seeded):
    rows = [{"sample_id": f"s{i}", "input": [{"role": "customer", "content": f"Refund order {i}"}],
             "expected_function_call": {"name": "refund", "arguments": {"order": i}}} for i in range(4)]
    good = "".join(json.dumps(r) + "\n" for r in rows).encode()
    bad = good + b'{"sample_id": "s9", "input": [\n'  # line 5 is cut off
    at = _upload(open_page(PAGE), "shop.jsonl", bad, "shop")
    (error,) = [e.value for e in at.error]
    assert "Not imported: shop.jsonl, line 5: invalid JSON at column" in error.replace("\\", "")
    assert seeded.repo.find(Task, suite="shop") == []  # all or nothing
    at = _upload(at, "shop.jsonl", good)  # the suite is named after the file
    assert len(tasks.load_tasks(seeded, "shop")) == 4 and tasks.get_suite(seeded, "shop").source == "uploaded shop.jsonl"
    assert at.selectbox(key="su_suite").value == "shop"


def test_only_admins_import_a_suite(seeded):
    assert open_page(PAGE, annotator="root", role="admin").get("file_uploader")
    for role in ("annotator", "reviewer"):
        at = open_page(PAGE, annotator=f"a-{role}", role=role)
        assert not at.get("file_uploader") and "su_import_go" not in [b.key for b in at.button]
        with pytest.raises(PermissionError, match="importing a suite needs the admin role"):
            tasks.import_upload(seeded, at.session_state[_ui.IDENTITY_KEY], "x.jsonl", b"{}", "x")
