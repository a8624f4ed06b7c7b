"""Fixtures every browser test file shares: one Chromium per module, a fresh page per test, and a
`streamlit run` server on the module's `home` (a file that needs other settings defines its own)."""

from __future__ import annotations

import pytest

from tests.browser.test_browser import ARGS, CHROMIUM, Server


@pytest.fixture(scope="module")
def server(home):
    srv = Server(home)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    yield context.new_page()
    context.close()
