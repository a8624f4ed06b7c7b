"""Accounts: unique names after NFKC and case folding, mixed scripts refused, roles, argon2 sign-in, throttle,
the loopback rule, the `users` command group, and paths from data kept safe (suite names, --out, records)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agentlearn import accounts, cli, datasets, paths, processes, sessions, users
from storage.records import Account, Job, SignIn
from tests.seed import admin_of

PASSWORD = "correct horse battery"


def test_names_are_unique_after_normalisation_and_case_folding(ws):
    users.add_user(ws.repo, "alice", "admin", PASSWORD, who=admin_of(ws.repo))
    for twin in ("Alice", "ALICE", "ａｌｉｃｅ", " alice "):
        with pytest.raises(ValueError, match="is taken"):
            users.add_user(ws.repo, twin, "annotator", PASSWORD, who=admin_of(ws.repo))
    assert [a.name for a in accounts.list_users(ws.repo)] == ["alice"]
    assert accounts.find(ws.repo, "ALİCE".replace("İ", "I")).name == "alice"


def test_a_name_mixing_scripts_is_refused_clearly(ws):
    with pytest.raises(ValueError, match="mixes scripts.*Cyrillic.*Latin|mixes scripts.*Latin"):
        users.add_user(ws.repo, "\u0430lice", "admin", PASSWORD, who=admin_of(ws.repo))  # Cyrillic а + Latin lice
    assert ws.repo.count(Account) == 0
    users.add_user(ws.repo, "алиса", "admin", PASSWORD, who=admin_of(ws.repo))  # one script: a different person
    users.add_user(ws.repo, "山田たろう", "annotator", PASSWORD, who=admin_of(ws.repo))  # Han and Hiragana are written together
    users.add_user(ws.repo, "José Núñez", "annotator", PASSWORD, who=admin_of(ws.repo))
    with pytest.raises(ValueError, match="letters, digits"):
        users.add_user(ws.repo, "bob<script>", "annotator", PASSWORD, who=admin_of(ws.repo))


def test_passwords_are_argon2_hashes_and_sign_in_checks_them(ws):
    account = users.add_user(ws.repo, "Bob", "admin", PASSWORD, who=admin_of(ws.repo))
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash
    assert accounts.sign_in(ws.repo, "bob", PASSWORD, accounts.LoginThrottle()) == accounts.Identity("Bob", "admin")
    for name, password in (("bob", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(ValueError, match="wrong name or password"):  # the same message for both
            accounts.sign_in(ws.repo, name, password, accounts.LoginThrottle())
    with pytest.raises(ValueError, match="at least 8"):
        users.add_user(ws.repo, "carol", "annotator", "short", who=admin_of(ws.repo))


def test_failed_sign_ins_are_rate_limited_per_client_and_lockouts_expire(ws):
    users.add_user(ws.repo, "dana", "admin", PASSWORD, who=admin_of(ws.repo))
    users.add_user(ws.repo, "erin", "annotator", PASSWORD, who=admin_of(ws.repo))
    clock = [1000.0]
    throttle = accounts.LoginThrottle(clock=lambda: clock[0])
    for name in ("dana", "x1", "x2", "x3", "x4"):  # five different names: the client is what counts
        with pytest.raises(ValueError, match="wrong"):
            accounts.sign_in(ws.repo, name, "guess", throttle, client="10.0.0.9")
    with pytest.raises(ValueError, match="too many failed sign-ins from this address"):
        accounts.sign_in(ws.repo, "erin", PASSWORD, throttle, client="10.0.0.9")  # even the right password waits
    assert accounts.sign_in(ws.repo, "erin", PASSWORD, throttle, client="10.0.0.2").name == "erin"
    clock[0] += 3
    assert accounts.sign_in(ws.repo, "dana", PASSWORD, throttle, client="10.0.0.9").name == "dana"
    for _ in range(20):  # a stranger keeps guessing: the waits grow to MAX_WAIT_S, then it expires
        clock[0] += throttle.wait_s("10.0.0.9")
        with pytest.raises(ValueError, match="wrong"):
            accounts.sign_in(ws.repo, "dana", "guess", throttle, client="10.0.0.9")
    assert throttle.wait_s("10.0.0.9") == accounts.LoginThrottle.MAX_WAIT_S
    clock[0] += accounts.LoginThrottle.FORGET_S + 1
    assert throttle.wait_s("10.0.0.9") == 0


def test_a_strangers_failures_do_not_lock_the_owner_out(ws):
    users.add_user(ws.repo, "dana", "admin", PASSWORD, who=admin_of(ws.repo))
    clock, slept = [1000.0], []
    throttle = accounts.LoginThrottle(clock=lambda: clock[0])
    for i in range(12):  # twelve strangers, one guess each: the name is slowed, not locked
        with pytest.raises(ValueError, match="wrong"):
            accounts.sign_in(ws.repo, "dana", "guess", throttle, client=f"10.0.1.{i}", sleep=slept.append)
    assert slept and max(slept) <= accounts.LoginThrottle.NAME_MAX_WAIT_S  # guesses at one name are spaced
    assert accounts.sign_in(ws.repo, "dana", PASSWORD, throttle, client="10.0.0.1", sleep=slept.append).name == "dana"
    assert max(slept) <= accounts.LoginThrottle.NAME_MAX_WAIT_S  # the owner got in after a bounded delay


class _Hasher:
    """The real argon2 hasher, with a hook called before each verification."""

    def __init__(self, before) -> None:
        self._real, self._before = accounts.PasswordHasher(), before

    def verify(self, digest: str, password: str) -> bool:
        self._before(digest, password)
        return self._real.verify(digest, password)

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def test_simultaneous_guesses_cannot_race_the_throttle(ws, monkeypatch):
    import threading

    users.add_user(ws.repo, "dana", "admin", PASSWORD, who=admin_of(ws.repo))
    throttle = accounts.LoginThrottle(clock=lambda: 1000.0)
    checked, barrier = [], threading.Barrier(12)
    monkeypatch.setattr(accounts, "_HASHER", _Hasher(lambda h, p: checked.append(p)))

    def guess() -> None:
        barrier.wait()
        try:
            accounts.sign_in(ws.repo, "dana", "guess guess", throttle, client="10.0.0.9", sleep=lambda s: None)
        except ValueError:
            pass

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) == accounts.LoginThrottle.FREE  # not 12: the rest were refused before any hash check


def test_at_most_two_password_hashes_are_checked_at_once(ws, monkeypatch):
    import threading
    import time

    users.add_user(ws.repo, "dana", "admin", PASSWORD, who=admin_of(ws.repo))
    running, most, lock = [0], [0], threading.Lock()
    def counting(h, p):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(accounts, "_HASHER", _Hasher(counting))
    throttle = accounts.LoginThrottle()
    threads = [threading.Thread(target=accounts.sign_in, args=(ws.repo, "dana", PASSWORD, throttle),
                                kwargs={"client": f"10.0.2.{i}"}) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2


def test_roles_order_and_the_last_admin_stays(ws):
    with pytest.raises(ValueError, match="first account must be an admin"):
        users.add_user(ws.repo, "ann", "annotator", PASSWORD, who=admin_of(ws.repo))
    users.add_user(ws.repo, "root", "admin", PASSWORD, who=admin_of(ws.repo))
    users.add_user(ws.repo, "ann", "annotator", PASSWORD, who=admin_of(ws.repo))
    ann = accounts.identity_of(accounts.find(ws.repo, "ann"))
    token, _ = sessions.open_session(ws.repo, "ann")
    assert ann.can("annotator") and not ann.can("reviewer")
    with pytest.raises(accounts.AccessDenied, match="needs the admin role; ann is annotator"):
        accounts.require(ann, "admin", "training")
    assert users.set_role(ws.repo, "ANN", "reviewer", who=admin_of(ws.repo)).role == "reviewer"
    assert accounts.session_identity(ws.repo, token) == accounts.Identity("ann", "reviewer")  # applies at once
    with pytest.raises(ValueError, match="last admin"):
        users.set_role(ws.repo, "root", "reviewer", who=admin_of(ws.repo))
    with pytest.raises(ValueError, match="last admin"):
        users.remove_user(ws.repo, "root", who=admin_of(ws.repo))
    with pytest.raises(ValueError, match="unknown role"):
        users.set_role(ws.repo, "ann", "owner", who=admin_of(ws.repo))
    users.remove_user(ws.repo, "ann", who=admin_of(ws.repo))
    assert accounts.session_identity(ws.repo, token) is None  # a removed account's session ends


def test_loopback_rule(ws):
    for address in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert accounts.is_loopback(address) and not accounts.serving_problem(address, ws.repo)
    for address in ("0.0.0.0", "", None, "192.168.1.5", "::", "example.com"):
        assert not accounts.is_loopback(address)
        assert "users add" in accounts.serving_problem(address, ws.repo)
    users.add_user(ws.repo, "root", "admin", PASSWORD, who=admin_of(ws.repo))
    assert not accounts.serving_problem("0.0.0.0", ws.repo)


def test_users_commands(ws, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["users", "add", "Root", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORD)  # typed at the prompt, twice
    assert cli.main(["users", "add", "kim", "--role", "annotator"]) == 2  # accounts exist: nobody signed in
    assert "needs the admin role" in capsys.readouterr().err
    monkeypatch.setenv("AGENTLEARN_USER", "root")
    monkeypatch.setenv("AGENTLEARN_PASSWORD", PASSWORD)
    assert cli.main(["users", "add", "kim", "--role", "annotator"]) == 0
    assert cli.main(["users", "set-role", "KIM", "reviewer"]) == 0
    assert cli.main(["users", "add", "kIm", "--role", "annotator"]) == 2
    assert "is taken" in capsys.readouterr().err
    assert cli.main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "Root\tadmin" in out and "kim\treviewer" in out
    assert cli.main(["users", "check-address", "0.0.0.0"]) == 0
    assert cli.main(["users", "remove", "kim"]) == 0
    assert [a.name for a in accounts.list_users(ws.repo)] == ["Root"]
    assert accounts.sign_in(ws.repo, "root", PASSWORD, accounts.LoginThrottle()).role == "admin"


def test_check_address_refuses_the_network_without_accounts(ws, capsys):
    assert cli.main(["users", "check-address", "127.0.0.1"]) == 0
    assert cli.main(["users", "check-address", "0.0.0.0"]) == 1
    assert "users add" in capsys.readouterr().err


def test_local_user_comes_from_the_server_environment(monkeypatch):
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "Sam")
    assert accounts.local_identity() == accounts.Identity("Sam", "admin", local=True)


# --- paths from data ----------------------------------------------------------------------------


def test_suite_names_never_reach_file_paths_unsanitised():
    assert paths.file_part("../../x/y") == "x_y"
    assert paths.file_part("helpdesk v2") == "helpdesk_v2"
    assert "/" not in paths.file_part("a/../../b") and ".." not in paths.file_part("..a..b..")
    with pytest.raises(ValueError, match="no letters or digits"):
        paths.file_part("../..", "suite")


def test_export_of_a_hostile_suite_name_stays_in_exports(seeded):
    from storage.records import Task

    task = seeded.repo.find(Task, split="train")[0]
    evil = "../../x/y"
    seeded.repo.put(task.model_copy(update={"id": "evil-task", "suite": evil}))
    record = datasets.export(seeded, "grpo", evil)
    assert Path(record.path).parent == seeded.settings.exports_dir.resolve()
    assert not (seeded.settings.home.parent / "x").exists()


def test_export_out_never_overwrites_the_store_or_a_file_unasked(seeded, tmp_path):
    from tests.seed import SUITE

    shard = next(seeded.settings.store_dir.rglob("*.json"))
    before = shard.read_bytes()
    for target in (shard, seeded.settings.store_dir / "new.jsonl", seeded.settings.vectors_dir / "v.jsonl"):
        with pytest.raises(ValueError, match="inside the workspace"):
            datasets.export(seeded, "grpo", SUITE, out_path=target, force=True)
    assert shard.read_bytes() == before
    out = tmp_path / "out.jsonl"
    out.write_text("keep me")
    with pytest.raises(ValueError, match="--force"):
        datasets.export(seeded, "grpo", SUITE, out_path=out)
    assert out.read_text() == "keep me"
    assert datasets.export(seeded, "grpo", SUITE, out_path=out, force=True).rows > 0


def test_a_job_log_outside_the_workspace_is_refused(ws, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("password=hunter2")
    job = ws.repo.put(Job(method="sft", config={}, log_path=str(outside)))
    with pytest.raises(ValueError, match="outside the workspace"):
        processes.tail(ws, job)
    inside = ws.settings.jobs_dir / "j" / "train.log"
    inside.parent.mkdir(parents=True)
    inside.write_text("step 1\nstep 2\n")
    assert processes.tail(ws, job.model_copy(update={"log_path": str(inside)}), 1) == "step 2"


def test_common_and_weak_passwords_are_refused_with_the_reason(ws):
    for weak, why in (("password", "top-10 common password"), ("aaaaaaaa", "Repeats"), ("bobbobbob1", "")):
        with pytest.raises(ValueError, match=f"that password is too weak: .*{why}"):
            users.add_user(ws.repo, "bob", "admin", weak, who=admin_of(ws.repo))
    users.add_user(ws.repo, "bob", "admin", PASSWORD, who=admin_of(ws.repo))
    with pytest.raises(ValueError, match="too weak"):
        users.set_password(ws.repo, "bob", "password1", who=admin_of(ws.repo))
    assert accounts.sign_in(ws.repo, "bob", PASSWORD, accounts.LoginThrottle()).name == "bob"


def test_sessions_are_records_that_sign_out_and_a_password_change_end(store_location):
    """On TinyDB and PostgreSQL: a second server (a new repository on the same store) sees the same sessions."""
    from tests.conftest import open_store

    repo, second = open_store(store_location), open_store(store_location)
    users.add_user(repo, "bob", "admin", PASSWORD, who=admin_of(repo))
    token, ticket = sessions.open_session(repo, "bob")
    other, _ = sessions.open_session(repo, "bob")
    assert accounts.session_identity(second, token) == accounts.Identity("bob", "admin")
    cookie = sessions.claim(second, ticket)
    assert sessions.token_of(repo, cookie) == token and sessions.claim(repo, ticket) is None  # once
    assert token not in str([r.model_dump() for r in repo.all(SignIn)])  # only its digest is stored
    assert sessions.token_of(repo, cookie[:-2] + "xx") is None  # a forged signature
    sessions.revoke(second, token)
    assert accounts.session_identity(repo, sessions.token_of(repo, cookie)) is None
    assert accounts.session_identity(repo, other) is not None
    users.set_password(second, "bob", "another good passphrase", who=admin_of(second))
    assert accounts.session_identity(repo, other) is None  # every open session ended
    late, _ = sessions.open_session(repo, "bob")
    repo.update(SignIn, sessions._digest(late), lambda r: r.model_copy(update={"expires": r.created}))
    assert accounts.session_identity(repo, late) is None  # expired
    sessions.open_session(repo, "bob")
    assert len(repo.find(SignIn, account="bob")) == 1  # the expired one was removed


def test_without_accounts_only_loopback_host_names_are_answered(ws, monkeypatch):
    monkeypatch.delenv("AGENTLEARN_ALLOWED_HOSTS", raising=False)
    for host in ("localhost:8501", "127.0.0.1:8501", "[::1]:8501", "LOCALHOST", ""):
        assert accounts.host_problem(host, ws.repo) == "", host
    for host in ("attacker.example", "attacker.example:8501", "localhost.attacker.example", "127.0.0.1.nip.io"):
        assert "AGENTLEARN_ALLOWED_HOSTS" in accounts.host_problem(host, ws.repo), host
    monkeypatch.setenv("AGENTLEARN_ALLOWED_HOSTS", "dash.lab.internal, other.example")
    assert accounts.host_problem("dash.lab.internal:8501", ws.repo) == ""
    users.add_user(ws.repo, "root", "admin", PASSWORD, who=admin_of(ws.repo))
    assert accounts.host_problem("attacker.example", ws.repo) == ""  # with accounts, signing in protects it
