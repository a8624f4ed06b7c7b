"""Who may do what (agentlearn.policy): every action as each role, through the library function that does it
and through the page that offers it; the command line's identity; local mode."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from agentlearn import accounts, policy, processes, tasks, users
from agentlearn import tools as agent_tools
from agentlearn.feedback import disagreements, export
from agentlearn.memory import exemplars, insights, proposals
from agentlearn.training import gate
from storage.records import Exemplar, Insight, InsightProposal, Message, Process, Resolution, ToolBinding, ToolCall
from tests import test_pages
from tests.seed import ME, SUITE
from tests.test_pages import PASSWORD, click, open_page

seeded, raw_seeded = test_pages.seeded, test_pages.raw_seeded
TEAM = {"admin": "root", "reviewer": "rita", "annotator": "ann"}  # the first account is the admin


@pytest.fixture
def team(seeded):
    """The seeded workspace with one account per role, and one more annotator for user management."""
    for role, name in TEAM.items():
        users.add_user(seeded.repo, name, role, PASSWORD, who=ME if role == "admin" else _as(seeded, "admin"))
    users.add_user(seeded.repo, "kim", "annotator", PASSWORD, who=_as(seeded, "admin"))
    return seeded


def _as(ws, role: str) -> accounts.Identity:
    return accounts.identity_of(accounts.find(ws.repo, TEAM[role]))


def _import_file(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps({"sample_id": f"s{i}", "input": [{"role": "user", "content": f"reset x{i}"}],
                                        "expected_function_call": {"name": "reset_password",
                                                                   "arguments": {"username": f"x{i}"}}}) + "\n"
                            for i in range(4)))
    return path


# One call per action, the library function that does it: (do it, what the store shows when it was done).
def _calls(ws, tmp_path, monkeypatch, tag: str) -> dict:
    monkeypatch.setattr(processes, "spawn", lambda *a, **k: SimpleNamespace(pid=os.getpid()))  # no real child
    ex = ws.repo.put(Exemplar(suite=SUITE, task_id="t", kind="manual", input=[Message(role="user", content="x")],
                              call=ToolCall(name="reset_password"), tool="reset_password"))
    return {
        "label": (lambda who: proposals.from_person(ws, SUITE, f"Rule suggested by {tag}.", who),
                  lambda: any(p.text == f"Rule suggested by {tag}." for p in ws.repo.all(InsightProposal))),
        "review": (lambda who: disagreements.resolve(ws, "tr1ok", who, "success", tag),
                   lambda: any(r.note == tag for r in ws.repo.all(Resolution))),
        "edit_playbook": (lambda who: insights.add_manual(ws, SUITE, f"Rule of {tag}.", who),
                          lambda: any(i.text == f"Rule of {tag}." for i in ws.repo.all(Insight))),
        "edit_suite": (lambda who: tasks.update_suite(ws, SUITE, instruction=f"Rules of {tag}.", who=who),
                       lambda: tasks.get_suite(ws, SUITE).instruction == f"Rules of {tag}."),
        "manage_exemplars": (lambda who: exemplars.retire(ws, ex.id, who=who),
                             lambda: not ws.repo.get(Exemplar, ex.id).active),
        "run": (lambda who: processes.start(ws, "run", ["tasks", "list", tag], who=who),
                lambda: any(tag in p.args for p in ws.repo.all(Process))),
        "export": (lambda who: export.write(ws, "jsonl", tmp_path / f"{tag}.jsonl", who=who),
                   lambda: (tmp_path / f"{tag}.jsonl").exists()),
        "train": (lambda who: gate.rollback(ws, SUITE, who) if gate.history(ws, SUITE) else gate.use(ws, SUITE, "none", who),
                  lambda: any(p.by == tag for p in gate.history(ws, SUITE))),
        "import": (lambda who: tasks.import_suite(ws, _import_file(tmp_path), f"imported-{tag}", who=who),
                   lambda: any(s.name == f"imported-{tag}" for s in tasks.suites(ws))),
        "manage_users": (lambda who: users.set_role(ws.repo, "kim", "reviewer", who=who),
                         lambda: accounts.find(ws.repo, "kim").role == "reviewer"),
        "bind_tools": (lambda who: agent_tools.bind(ws, SUITE, ToolBinding(kind="python", target=f"mod_{tag}"), who=who),
                       lambda: any(b.target == f"mod_{tag}" for b in tasks.get_suite(ws, SUITE).bindings)),
    }


def test_the_table_covers_every_action_and_role():
    assert set(policy.ACTIONS) == {"label", "review", "edit_playbook", "edit_suite", "manage_exemplars", "run",
                                   "export", "train", "import", "manage_users", "bind_tools"}
    assert {role for role, _ in policy.ACTIONS.values()} <= set(accounts.ROLES)
    assert set(policy.PROCESS_ACTIONS.values()) <= set(policy.ACTIONS)


@pytest.mark.parametrize("role", accounts.ROLES)
def test_every_action_through_its_function_as_each_role(team, tmp_path, monkeypatch, role):
    who = _as(team, role)
    for action, (do, done) in _calls(team, tmp_path, monkeypatch, who.name).items():
        allowed = accounts.ROLES.index(role) >= accounts.ROLES.index(policy.role_for(action))
        if allowed:
            do(who)
            assert done(), action
        else:
            with pytest.raises(accounts.AccessDenied, match=f"needs the {policy.role_for(action)} role; "
                                                            f"{who.name} is {role}"):
                do(who)
            assert not done(), f"{action} was done although refused"


def test_without_accounts_the_local_user_does_everything(seeded, tmp_path, monkeypatch):
    for action, (do, done) in _calls(seeded, tmp_path, monkeypatch, "tester").items():
        if action == "manage_users":
            continue  # no account to change: adding the first one is local mode's user management
        do(ME)
        assert done(), action
    users.add_user(seeded.repo, "first", "admin", PASSWORD, who=ME)
    with pytest.raises(accounts.AccessDenied, match="signed-in account"):  # from now on the local user is nobody
        users.add_user(seeded.repo, "second", "admin", PASSWORD, who=ME)


def test_the_store_decides_the_role_not_the_identity_held(team):
    stale = accounts.Identity(name="ann", role="admin")  # a session signed in before a demotion, or a forged one
    with pytest.raises(accounts.AccessDenied, match="ann is annotator"):
        tasks.update_suite(team, SUITE, instruction="x", who=stale)
    with pytest.raises(accounts.AccessDenied, match="'ghost' has none"):
        tasks.update_suite(team, SUITE, instruction="x", who=accounts.Identity(name="ghost", role="admin"))
    with pytest.raises(TypeError, match="Identity"):
        tasks.update_suite(team, SUITE, instruction="x", who="root")
    users.set_role(team.repo, "ann", "reviewer", who=_as(team, "admin"))
    assert tasks.update_suite(team, SUITE, instruction="now allowed", who=stale).instruction == "now allowed"


def test_people_change_their_own_password_and_only_admins_others(team):
    users.set_password(team.repo, "ann", "a new long password", who=_as(team, "annotator"))
    with pytest.raises(accounts.AccessDenied, match="needs the admin role"):
        users.set_password(team.repo, "rita", "a new long password", who=_as(team, "annotator"))
    users.set_password(team.repo, "rita", "a new long password", who=_as(team, "admin"))


def test_app_page_roles_come_from_the_policy():
    import ast
    from pathlib import Path

    source = (Path(test_pages.ROOT) / "app.py").read_text()
    assert "NEEDS_ROLE = policy.page_roles()" in source and "policy" in {
        a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert policy.page_roles() == {"review": "reviewer", "run": "reviewer", "training": "admin", "users": "admin"}


# --- the pages: what each role sees, and the allowed actions done through them -------------------------


def _reachable(at, page: str) -> bool:
    try:
        at.switch_page(page).run()
    except ValueError:  # not registered for this person's role
        return False
    return True


def _has_button(at, key: str, enabled: bool = True) -> bool:
    found = [b for b in at.button if b.key == key]
    return bool(found) and (not enabled or not found[0].disabled)


# action -> (page, whether the page lets this person do it). Import has no page yet (command line only).
PAGE_CHECKS = {
    "label": ("pages/trajectories.py", lambda at: _has_button(at, "btn_success") and _has_button(at, "btn_submit", enabled=False)),
    "review": ("pages/review.py", None),
    "edit_playbook": ("pages/insights.py", lambda at: _has_button(at, "ins_add")),
    "edit_suite": ("pages/suites.py", lambda at: _has_button(at, "su_save_card") and _has_button(at, "su_save_kinds")
                   and _has_button(at, "su_save_rubric") and _has_button(at, "su_save_overlap")),
    "manage_exemplars": ("pages/exemplars.py", lambda at: _has_button(at, "ex_retire", enabled=False)
                         and _has_button(at, "ex_sync")),
    "run": ("pages/run.py", None),
    "export": ("pages/trajectories.py", lambda at: _has_button(at, "traj_export_hf")),
    "train": ("pages/training.py", None),
    "manage_users": ("pages/users.py", None),
}


@pytest.mark.parametrize("role", accounts.ROLES)
def test_every_page_offers_exactly_what_the_role_may_do(team, role):
    assert set(PAGE_CHECKS) == set(policy.ACTIONS) - {"import", "bind_tools"}
    for action, (page, offered) in PAGE_CHECKS.items():
        allowed = policy.allows(_as(team, role), action)
        at = open_page(None, annotator=TEAM[role], trajectory="tr4ok")  # a run to label
        if offered is None:  # a page of its own: registered only for those allowed
            assert _reachable(at, page) == allowed, (action, role)
        else:
            assert _reachable(at, page), page
            assert not at.exception, [e.value for e in at.exception]
            assert offered(at) == allowed, (action, role)


def test_an_annotator_cannot_change_a_card_or_kinds_or_exemplars_on_the_pages(team):
    before = tasks.get_suite(team, SUITE)
    at = open_page("pages/suites.py", annotator="ann")
    at.selectbox(key="su_suite").set_value(SUITE).run()
    assert not [t for t in at.text_area if t.key == f"su_instruction_{SUITE}"]  # shown as text, not a form
    assert not [s for s in at.selectbox if (s.key or "").startswith("su_kind_")]
    assert "Changing it needs the reviewer role." in [c.value for c in at.caption]
    assert tasks.get_suite(team, SUITE) == before
    at = open_page("pages/exemplars.py", annotator="ann")
    assert not [m for m in at.multiselect if m.key == "ex_retire_ids"] and not _has_button(at, "ex_retire", False)
    assert not [t for t in at.text_area if t.key == "ex_add_request"]


def test_a_reviewer_saves_a_card_and_retires_an_exemplar_through_the_pages(team):
    at = open_page("pages/suites.py", annotator="rita")
    at.selectbox(key="su_suite").set_value(SUITE).run()
    at.text_area(key=f"su_instruction_{SUITE}").set_value("Reviewed rules.")
    click(at, "su_save_card")
    assert tasks.get_suite(team, SUITE).instruction == "Reviewed rules."
    at = open_page("pages/exemplars.py", annotator="rita")
    active = [e.id for e in exemplars.bank(team, SUITE) if e.active]
    at.multiselect(key="ex_retire_ids").set_value(active[:1]).run()
    click(at, "ex_retire")
    assert not team.repo.get(Exemplar, active[0]).active


def test_a_role_lost_while_the_page_is_open_is_refused_by_the_function(team):
    at = open_page("pages/suites.py", annotator="rita")
    at.selectbox(key="su_suite").set_value(SUITE).run()
    users.set_role(team.repo, "rita", "annotator", who=_as(team, "admin"))  # the form is still on her screen
    at.text_area(key=f"su_instruction_{SUITE}").set_value("Too late.")
    at.button(key="su_save_card").click().run()
    assert tasks.get_suite(team, SUITE).instruction != "Too late."


# --- the command line ----------------------------------------------------------------------------


def test_the_command_line_records_no_typed_name_once_accounts_exist(team, monkeypatch, capsys):
    from agentlearn import cli

    monkeypatch.delenv("AGENTLEARN_USER", raising=False)
    assert cli.main(["users", "set-role", "kim", "admin"]) == 2  # nobody signed in: no admin
    assert "needs the admin role" in capsys.readouterr().err
    assert cli.main(["adapters", "use", "none", "--suite", SUITE, "--by", "root"]) == 2  # a typed name is not root
    assert "--by 'root'" in capsys.readouterr().err
    monkeypatch.setenv("AGENTLEARN_USER", "rita")
    monkeypatch.setenv("AGENTLEARN_PASSWORD", "not her password")
    assert cli.main(["users", "list"]) == 0  # reading needs no one
    assert cli.main(["suite", "edit", SUITE, "--instruction", "x"]) == 2
    assert "wrong name or password" in capsys.readouterr().err
    monkeypatch.setenv("AGENTLEARN_PASSWORD", PASSWORD)
    assert cli.main(["users", "set-role", "kim", "admin"]) == 2
    assert "managing users needs the admin role; rita is reviewer" in capsys.readouterr().err
    assert cli.main(["suite", "edit", SUITE, "--instruction", "By rita."]) == 0
    assert cli.main(["insights", "approve", "--suite", SUITE, "--all", "--by", "ROOT"]) == 2
    assert cli.main(["insights", "approve", "--suite", SUITE, "--all", "--by", "Rita"]) == 0
    assert {p.reviewer for p in team.repo.all(InsightProposal) if p.status == "approved"} == {"rita"}
    assert accounts.find(team.repo, "kim").role == "annotator"


def test_without_accounts_the_command_line_is_the_local_admin_and_by_names_it(seeded, monkeypatch):
    monkeypatch.delenv("AGENTLEARN_USER", raising=False)
    who = policy.command_line_identity(seeded.repo, os.environ)
    assert (who.name, who.role, who.local) == ("alice", "admin", True)
    assert policy.command_line_identity(seeded.repo, os.environ, "Bea").name == "Bea"


def test_a_child_the_dashboard_started_acts_for_who_started_it(team, monkeypatch):
    monkeypatch.setattr(processes, "spawn", lambda *a, **k: SimpleNamespace(pid=os.getpid()))
    record = processes.start(team, "improve", ["improve", "--suite", SUITE], who=_as(team, "admin"))
    assert record.by == "root"
    env = {processes.PROCESS_ID_ENV: record.id}
    assert policy.command_line_identity(team.repo, env) == _as(team, "admin")
    team.repo.update(Process, record.id, lambda p: p.model_copy(update={"pid": os.getpid() + 1}))
    assert policy.command_line_identity(team.repo, env).local  # another process's record: no one
    with pytest.raises(accounts.AccessDenied, match="needs the admin role; rita is reviewer"):
        processes.start(team, "improve", ["improve", "--suite", SUITE], who=_as(team, "reviewer"))
