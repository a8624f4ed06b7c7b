"""Real browser against `streamlit run serve.py` (what ./manage dashboard serves): signed in stays signed in
across a reload and a shared deep link, signing out ends the cookie, a fresh server's first visitors see no
page before the gate, and a rebound Host name gets nothing in local mode."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agentlearn import sessions
from storage import open_repository
from tests.browser.test_browser import ARGS, CHROMIUM, TEAM, Server, seeded_home, settle, sign_in_if_asked
from tests.seed import SUITE, seed_workspace

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return seeded_home(tmp_path_factory, "sessions-home", TEAM)


@pytest.fixture(scope="module")
def server(home):
    srv = Server(home, script="serve.py")
    srv.start()
    yield srv
    srv.stop()


def _cookie(page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == sessions.COOKIE), None)


def test_signed_in_stays_signed_in_across_a_reload_and_a_deep_link_until_sign_out(page, server):
    page.goto(server.url)
    settle(page)
    sign_in_if_asked(page, "carol")
    deadline = time.time() + 20
    while _cookie(page) is None and time.time() < deadline:  # the image trades the ticket for the cookie
        time.sleep(0.1)
    cookie = _cookie(page)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(sessions.COOKIE) == -1  # page scripts cannot read it
    page.reload()
    page.get_by_text("Signed in: carol").first.wait_for(timeout=30_000)
    assert not page.get_by_role("button", name="Sign in").count()
    page.goto(f"{server.url}/trajectories?trajectory=tr4ok")  # a link someone shared
    page.get_by_text("Signed in: carol").first.wait_for(timeout=30_000)
    page.get_by_role("heading", name="Trajectories").first.wait_for(timeout=30_000)
    settle(page)
    assert not page.get_by_role("button", name="Sign in").count()
    assert "tr4ok" in page.locator("body").inner_text()  # the linked item is the one shown
    page.goto(f"{server.url}/suites")  # an annotator types the page that changes a suite's card and kinds
    page.get_by_text("Signed in: carol").first.wait_for(timeout=30_000)
    settle(page)
    page.get_by_role("heading", name="Suites").first.wait_for(timeout=30_000)  # she may read it...
    for name in ("Save card", "Save kinds", "Import"):  # ...not change it
        button = page.get_by_role("button", name=name)
        assert button.count() == 0 or button.first.is_disabled(), name
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=20_000)
    assert _cookie(page) is not None  # still in the browser, but it signs nobody in any more
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    settle(page)
    assert not page.get_by_text("Signed in:").count()
    sign_in_if_asked(page, "alice")  # an admin, on the same typed link, has the buttons carol lacked
    page.get_by_text("Signed in: alice").first.wait_for(timeout=30_000)
    page.goto(f"{server.url}/suites")
    page.get_by_role("button", name="Save card").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Save card").first.is_enabled()


def test_first_visitors_of_a_fresh_server_see_no_page_before_the_gate(browser, home):
    srv = Server(home)  # plain `streamlit run app.py`: the pages refuse to draw in the legacy mode themselves
    contexts = [browser.new_context() for _ in range(5)]
    pages = [c.new_page() for c in contexts]
    try:
        srv.start_without_waiting()
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", srv.port)) == 0:
                    break
            time.sleep(0.02)
        for p, path in zip(pages, ("suites", "evaluate", "run", "trajectories", "users"), strict=True):
            p.goto(f"{srv.url}/{path}", wait_until="commit")
        seen = []
        for _ in range(40):  # four seconds, every page read every 0.1 s
            for p in pages:
                text = p.evaluate("document.body ? document.body.innerText : ''")
                seen += [m for m in (SUITE, "akhan", "printer on floor 2") if m in text]
            time.sleep(0.1)
        for p in pages:
            p.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        assert not seen
    finally:
        for c in contexts:
            c.close()
        srv.stop()


def test_local_mode_gives_a_rebound_host_name_nothing(browser, tmp_path):
    local = tmp_path / "local-home"
    seed_workspace(open_repository(str(local / "store")))
    srv = Server(local, script="serve.py")
    srv.start()
    # attacker.example resolving to 127.0.0.1, as DNS rebinding makes it: the browser sends that name as Host.
    rebound = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *ARGS, "--host-resolver-rules=MAP attacker.example 127.0.0.1"])
    try:
        page = rebound.new_page()
        page.goto(f"http://attacker.example:{srv.port}/users")
        page.get_by_text("answers only to this machine").first.wait_for(timeout=30_000)
        settle(page)
        text = page.locator("body").inner_text()
        assert SUITE not in text and "Local mode" not in text and "Users" not in text
        plain = browser.new_page()
        plain.goto(srv.url + "/users")  # the same server by its loopback address: local mode as before
        plain.get_by_text("Local mode:").first.wait_for(timeout=30_000)
        plain.close()
    finally:
        rebound.close()
        srv.stop()


def test_the_session_route_refuses_other_sites_and_used_tickets(server, home):
    import urllib.error
    import urllib.request

    repo = open_repository(str(home / "store"))
    _, ticket = sessions.open_session(repo, "carol")
    url = f"{server.url}{sessions.CLAIM_PATH}?ticket={ticket}"
    cross = urllib.request.Request(url, headers={"Sec-Fetch-Site": "cross-site"})
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(cross, timeout=10)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 204 and "HttpOnly" in answer.headers["set-cookie"]
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(url, timeout=10)  # once only
