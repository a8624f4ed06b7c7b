"""Do signed-out visitors see store data in the first seconds of a fresh server?

    .venv/bin/python -m bench.bench_first_requests                       # 10 starts x 10 visitors, both modes
    .venv/bin/python -m bench.bench_first_requests --starts 3 --root /path/to/another/checkout

Each start: a fresh `streamlit run` on a seeded workspace; as soon as the port accepts connections, 10
Chromium pages open page URLs at once (/suites, /run, /evaluate, ...). Each page's text is read every
0.1 s for `--watch` seconds; a load counts as leaking if the seeded suite name, a seeded task's text or a
page title ever shows. Two modes: `accounts` (127.0.0.1, accounts exist, nobody signs in) and `open`
(0.0.0.0, no accounts: only the refusal may show). Prints the leaking loads per mode (target: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentlearn import users
from storage import open_repository
from tests.seed import SUITE, admin_of, seed_workspace

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PATHS = ["suites", "run", "evaluate", "trajectories", "users", "training", "insights", "exemplars", "preferences",
         "overview"]
MARKERS = [SUITE, "printer on floor 2", "akhan", "Suites", "Evaluate", "Trajectories", "Users", "Local mode"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home(with_accounts: bool) -> Path:
    home = Path(tempfile.mkdtemp(prefix="first-requests-"))
    repo = open_repository(str(home / "store"))
    seed_workspace(repo)
    if with_accounts:
        users.add_user(repo, "alice", "admin", "correct horse battery", who=admin_of(repo))
    return home


def _start(root: Path, home: Path, address: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, AGENTLEARN_HOME=str(home), AGENTLEARN_DEMO="0", HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(root / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", address, "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError("the server did not answer within 60 s")


async def _visit(browser, url: str, watch: float) -> str:
    """The first marker this page ever showed ('' if none)."""
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(url, timeout=60_000)
        deadline = time.time() + watch
        while time.time() < deadline:
            text = await page.evaluate("document.body ? document.body.innerText : ''")
            seen = next((m for m in MARKERS if m in text), "")
            if seen:
                return seen
            await asyncio.sleep(0.1)
        return ""
    finally:
        await context.close()


async def _one_start(browser, root: Path, home: Path, address: str, visitors: int, watch: float) -> list[str]:
    port = _free_port()
    proc = _start(root, home, address, port)
    try:
        _wait_for_port(port)
        urls = [f"http://127.0.0.1:{port}/{PATHS[i % len(PATHS)]}" for i in range(visitors)]
        return await asyncio.gather(*(_visit(browser, u, watch) for u in urls))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


async def main_async(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for mode, address, with_accounts in (("accounts", "127.0.0.1", True), ("open", "0.0.0.0", False)):
            home = _home(with_accounts)
            leaks, loads = [], 0
            for start in range(args.starts):
                seen = await _one_start(browser, Path(args.root), home, address, args.visitors, args.watch)
                loads += len(seen)
                leaks += [s for s in seen if s]
                print(f"[{mode}] start {start + 1}: {sum(1 for s in seen if s)} of {len(seen)} loads showed data "
                      f"{sorted(set(s for s in seen if s))}", flush=True)
            print(f"{mode}: {len(leaks)} of {loads} page loads showed store data ({args.starts} starts x "
                  f"{args.visitors} visitors)", flush=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--watch", type=float, default=8.0, help="seconds each page is watched")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose app.py is served")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
