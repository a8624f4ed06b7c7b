"""How fast the dashboard is at 1k and 100k trajectories (1M on PostgreSQL): library calls, AppTest runs,
a real browser.

    .venv/bin/python -m bench.bench_dashboard                 # 1k and 100k, with the browser
    .venv/bin/python -m bench.bench_dashboard --sizes 1000 --no-browser
    .venv/bin/python -m bench.bench_dashboard --store postgres --sizes 1000000 [--database-url URL]

Workspaces are generated once under bench/results/ (gitignored) and reused; on PostgreSQL (a temporary
server, or --database-url: a database this bench filled before is reused when it holds that number
of trajectories) the home keeps only the dashboard's cache folder. Figures printed:

- overview: the functions the Overview page (the first page) calls, each with the indexes built;
- index/labels/queue: the functions the Trajectories page calls (index from the parsed store, index from
  its file after a restart, the queue with filters, search, a label written and the queue recomputed);
- assignment: the suite set to 2 annotators per item and 50 items held open by other people (claims),
  then the default queue ("needs my label") and submit-and-next as the page does it (time held, label,
  queue again, claim the next item: the one claim moves). The AppTest and browser runs below use the same
  workspace, so their S then N / N figures include overlap and claims;
- AppTest: a full script run of the Trajectories page, first in this process (store parsed cold) and
  then warm, and the runs behind the keys K (next) and S then N (label, submit and next);
- browser: `streamlit run serve.py` (as ./manage dashboard) + Chromium: the server's start until it
  answers (it builds the first page's tables first), Overview (the page the dashboard opens on) until its
  last table shows, first on a fresh server and then warm; the same for Trajectories; and the time from pressing
  K / N until the next trajectory is on screen. Each twice: a server that builds the index itself, then
  a restarted one that finds it in the cache folder (on PostgreSQL, runs written meanwhile are added).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from agentlearn import caches
from agentlearn.embeddings import hash_encode
from agentlearn.feedback import claims, index, labels, overview, queue, reports, rubric, team
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage import open_repository
from storage.records import (
    Claim,
    Label,
    MemoryUsed,
    Message,
    Step,
    Suite,
    Task,
    ToolCall,
    Trajectory,
    Verdict,
    now,
)
from tests.seed import ME

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SUITE = "bench"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUESTS = [("reset_password", "username", "Reset the password of user{n}, send it by email."),
            ("create_ticket", "title", "Open a ticket: printer {n} is jammed."),
            ("unlock_account", "username", "Account user{n} is locked after too many attempts."),
            ("grant_access", "group", "Add me to the group team{n} please.")]


def generate(home: Path, n: int, database_url: str = "") -> None:
    """A workspace with 40 tasks, n trajectories (half verified successes) and labels on 10% of them."""
    repo = open_repository(str(home / "store"), database_url)
    rng = random.Random(n)
    tools = [{"name": name, "description": name, "parameters": {"type": "object", "properties": {arg: {"type": "string"}},
                                                                 "required": [arg]}} for name, arg, _ in REQUESTS]
    repo.put(Suite(id=SUITE, name=SUITE, tools=tools))
    tasks = []
    for i in range(40):
        name, arg, text = REQUESTS[i % len(REQUESTS)]
        tasks.append(Task(id=f"{SUITE}:t{i}", suite=SUITE, sample_id=f"t{i}", split="train" if i % 2 else "heldout",
                          input=[Message(role="user", content=text.format(n=i))], tools=tools,
                          expected=ToolCall(name=name, arguments={arg: f"v{i}"})))
    repo.put_many(tasks)
    start = now() - timedelta(seconds=50 * n)  # 50 s apart, the newest just now: a run added later is the newest
    batch: list = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        ok = rng.random() < 0.5
        call = task.expected if ok else ToolCall(name="create_ticket", arguments={"title": f"x{i}"})
        out = f'<tool_call>{{"name": "{call.name}", "arguments": {{}}}}</tool_call> #{i}'
        batch.append(Trajectory(task_id=task.id, suite=SUITE, split=task.split, prompt=task.input,
                                steps=[Step(thought="", action=out, observation=f"{call.name} accepted")], output=out,
                                tool_call=call, verdict=Verdict(success=ok, reward=float(ok), reason="graded"),
                                model="SmolLM2-135M-Instruct", memory=MemoryUsed(method=rng.choice(["none", "exemplars"])),
                                created=start + timedelta(seconds=50 * i)))
        if len(batch) == 20_000:
            repo.put_many(batch)
            batch = []
    repo.put_many(batch)
    ids = [t.id for t in repo.all(Trajectory)]
    labels = [Label(trajectory_id=tid, annotator=rng.choice(["ann", "ben"]), verdict=rng.choice(["success", "fail"]))
              for tid in rng.sample(ids, n // 10)]
    for i in range(0, len(labels), 20_000):
        repo.put_many(labels[i:i + 20_000])


def workspace_for(n: int, database_url: str = "") -> Path:
    home = RESULTS / (f"ws-pg-{n}" if database_url else f"ws-{n}")
    # A database filled before holds n, or a few more (the runs the browser part adds after a restart).
    done = (n <= open_repository("", database_url).count(Trajectory) < n + 1000 if database_url
            else (home / ".complete").exists())
    if not done:
        shutil.rmtree(home, ignore_errors=True)
        t = time.perf_counter()
        generate(home, n, database_url)
        if not database_url:
            (home / ".complete").write_text("")
        print(f"  generated {n:,} trajectories in {time.perf_counter() - t:.0f} s")
    shutil.rmtree(home / "cache", ignore_errors=True)  # measure the index build, not a left-over file
    home.mkdir(parents=True, exist_ok=True)
    return home


@contextmanager
def timed(rows: list, what: str):
    t = time.perf_counter()
    yield
    rows.append((what, time.perf_counter() - t))


def bench_library(home: Path, rows: list, database_url: str) -> None:
    ws = open_workspace(Settings(home=home, database_url=database_url), encoder=hash_encode)
    caches.clear_all()
    with timed(rows, "index.trajectory_index, built (then saved)"):
        index.trajectory_index(ws)
    caches.clear_all()
    with timed(rows, "index.trajectory_index, from its file (after a restart)"):
        index.trajectory_index(ws)
    with timed(rows, "labels.label_index, built"):
        labels.label_index(ws)
    bench_overview(ws, rows)
    f = queue.Filters(status="not labeled by me")
    with timed(rows, "queue.queue (not labeled by me)"):
        ids = queue.queue(ws, f, me="zoe")
    with timed(rows, "queue.queue (suite + verifier fail + search)"):
        queue.queue(ws, queue.Filters(suite=SUITE, verifier="fail", search="printer"), me="zoe")
    with timed(rows, "labels.submit_label + queue again"):
        labels.submit_label(ws, ids[0], "zoe", "success", 4)
        queue.queue(ws, f, me="zoe")
    with timed(rows, "labels.bulk_accept_count over the whole queue"):
        labels.bulk_accept_count(ws, ids, "zoe")
    bench_assignment(ws, rows)


def bench_overview(ws, rows: list) -> None:
    for what, call in (("overview: success_over_time", lambda: reports.success_over_time(ws, suite=SUITE)),
                       ("overview: success_by_method", lambda: reports.success_by_method(ws, suite=SUITE)),
                       ("overview: failures_by_category", lambda: rubric.failures_by_category(ws, SUITE)),
                       ("overview: progress_by_suite", lambda: reports.progress_by_suite(ws)),
                       ("overview: progress_by_annotator", lambda: reports.progress_by_annotator(ws)),
                       ("overview: team_table", lambda: team.team_table(ws)),
                       ("overview: kappa (people-verifier, people)", lambda: (reports.kappa_human_verifier(ws, SUITE),
                                                                             reports.kappa_between_people(ws, SUITE)))):
        with timed(rows, what):
            call()


OTHERS = 50  # people (or tabs) holding an item open while the bench labels


def hold_items_open(ws) -> None:
    """Overlap 2 on the suite and OTHERS items claimed by other people for the next hour."""
    queue.set_overlap(ws, SUITE, 2, who=ME)
    ids = queue.queue(ws, queue.Filters(status=queue.ASSIGNED), me="nobody")
    until = now() + timedelta(hours=1)
    ws.repo.put_many([Claim(id=claims.claim_id(f"other{n}"), trajectory_id=tid, annotator=f"other{n}", since=now(),
                            expires=until) for n, tid in enumerate(ids[:OTHERS])])


def bench_assignment(ws, rows: list) -> None:
    hold_items_open(ws)
    mine = queue.Filters(status=queue.ASSIGNED)
    with timed(rows, f"queue.queue (needs my label: overlap 2, {OTHERS} claims)"):
        ids = queue.queue(ws, mine, me="zoe")
    held = set(claims.held_by_others(ws, "zoe"))
    assert len(held) >= OTHERS and not held & set(ids), "claimed items must be skipped"
    current = claims.take(ws, ids, "zoe")
    for n in range(3):
        with timed(rows, f"submit-and-next with overlap and claims (library, #{n + 1})"):
            nxt = queue.next_after(ids, current)
            labels.submit_label(ws, current, "zoe", "success", 4, seconds=claims.held_for(ws, current, "zoe"))
            ids = queue.queue(ws, mine, me="zoe")
            assert current not in ids
            current = claims.take(ws, ids[ids.index(nxt):] if nxt in ids else ids, "zoe")


def bench_apptest(home: Path, rows: list, database_url: str) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    from pages import _ui

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # behave like a server after its first run (see tests/test_pages.py)
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    os.environ["AGENTLEARN_HOME"], os.environ["AGENTLEARN_DEMO"] = str(home), "0"
    os.environ["AGENTLEARN_DATABASE_URL"] = database_url
    _ui.ENCODER = hash_encode
    _ui.clear()
    hold_items_open(open_workspace(Settings(home=home, database_url=database_url), encoder=hash_encode))
    try:
        for label in ("AppTest: open Overview (the first page), first in this process", "AppTest: open Overview, warm"):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            at.query_params["annotator"] = "zoe"
            with timed(rows, label):
                at.run()
            assert not at.exception, at.exception
        for label in ("AppTest: open Trajectories, first in this process", "AppTest: open Trajectories, warm"):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            at.query_params["annotator"] = "zoe"
            at.run()
            with timed(rows, label):
                at.switch_page("pages/trajectories.py").run()
            assert not at.exception, at.exception
        with timed(rows, "AppTest: K (next trajectory)"):
            at.button(key="btn_skip").click().run()
        first = at.session_state["traj_current"]
        with timed(rows, "AppTest: S then N (label, submit and next)"):
            at.button(key="btn_success").click().run()
            at.button(key="btn_submit").click().run()
        assert at.session_state["traj_current"] != first
        # A label was just written: a big store's Overview shows its last tables and builds new ones beside.
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.query_params["annotator"] = "zoe"
        with timed(rows, "AppTest: open Overview after a label (the last tables; new ones built beside)"):
            at.run()
        updating = any(c.value.startswith("Figures as of") for c in at.caption)
        ws = _ui._open(str(home))
        t = time.perf_counter()
        while overview.overview_tables(ws, SUITE).updating:
            time.sleep(0.05)
        rows.append(("overview: the new tables kept, from the end of that page run" + ("" if updating else " (none was needed)"),
                     time.perf_counter() - t))
    finally:
        PagesManager.__init__ = original
        _ui.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, AGENTLEARN_HOME=str(home), AGENTLEARN_DEMO="0", HF_HUB_OFFLINE="1",
               AGENTLEARN_DATABASE_URL=database_url)
    # serve.py, as ./manage dashboard serves: it builds the first page before it answers.
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "serve.py"), "--server.headless", "true",
                             "--server.port", str(port), "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return proc, url


def _settle(page, quiet: float = 0.6, timeout: float = 60) -> None:
    """Wait until Streamlit has finished its current run (no status widget for `quiet` seconds)."""
    deadline, calm_since = time.time() + timeout, None
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').is_visible():
            calm_since = None
        elif calm_since is None:
            calm_since = time.time()
        elif time.time() - calm_since >= quiet:
            return
        time.sleep(0.1)


def bench_browser(home: Path, rows: list, database_url: str) -> None:
    from playwright.sync_api import sync_playwright

    ws = open_workspace(Settings(home=home, database_url=database_url), encoder=hash_encode)
    hold_items_open(ws)  # (this builds the index in this process: its file goes next)
    shutil.rmtree(home / "cache", ignore_errors=True)  # the first server builds the index itself
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for start in ("fresh server, no index file", "restarted server, index file"):
            with timed(rows, f"browser: server start until it answers, {start}"):
                proc, url = _serve(home, database_url)
            try:
                overview = browser.new_page(viewport={"width": 1500, "height": 1100})
                for label in (f"browser: Overview until its last table shows, {start}",
                              "browser: Overview, warm server"):
                    with timed(rows, label):
                        overview.goto(f"{url}/?annotator=zoe")
                        overview.get_by_role("heading", name="Team").wait_for(timeout=600_000)
                    _settle(overview)
                overview.close()
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                shown = page.get_by_text(re.compile(r"^trajectory \w+ · suite"))
                for label in (f"browser: first page load, {start}", "browser: page load, warm server"):
                    with timed(rows, label):
                        page.goto(f"{url}/trajectories?annotator=zoe")
                        shown.first.wait_for(timeout=300_000)
                _settle(page, quiet=1.5)  # let the run that fills the query string finish: a key pressed during it is lost
                for label, k, wait in (("browser: K until the next trajectory shows", "k", None),
                                       ("browser: S until the verdict shows", "s", "verdict: success"),
                                       ("browser: N (submit) until the next trajectory shows", "n", None)):
                    before = shown.first.inner_text()
                    t = time.perf_counter()
                    page.keyboard.press(k)
                    if wait:
                        page.get_by_text(wait).first.wait_for(timeout=60_000)
                    else:
                        try:
                            page.wait_for_function("(b) => ![...document.querySelectorAll('div')].some("
                                                   "d => d.innerText === b)", arg=before, timeout=60_000)
                        except Exception:
                            page.screenshot(path=str(RESULTS / f"stuck-after-{k}.png"), full_page=True)
                            raise
                    rows.append((label, time.perf_counter() - t))
                    _settle(page)
                with timed(rows, "browser: Overview -> Trajectories via the sidebar"):
                    page.get_by_role("link", name="Overview").click()
                    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
                    time.sleep(1.0)
                    t = time.perf_counter()
                    page.get_by_role("link", name="Trajectories").click()
                    shown.first.wait_for(timeout=60_000)
                rows[-1] = (rows[-1][0], time.perf_counter() - t)
                page.close()
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            # A run written while the dashboard is down (a collector): the restarted server adds it to its index.
            last = ws.repo.get(Trajectory, str(index.trajectory_index(ws).ids[-1]))
            ws.repo.put(last.model_copy(update={"id": f"late{time.time_ns()}", "created": now()}))
        browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--store", choices=["tinydb", "postgres"], default="tinydb")
    ap.add_argument("--database-url", default="", help="a PostgreSQL database to fill (or reuse); default: a "
                                                        "temporary server (with --store postgres)")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = None
    if args.store == "postgres" and not args.database_url:
        from tests.conftest import PostgresServer

        server = PostgresServer()
    print(f"agentlearn dashboard benchmark · {os.cpu_count()} CPUs · {args.store}")
    try:
        for n in args.sizes:
            url = args.database_url or (server.url if server else "")
            if server and n != args.sizes[0]:  # one size per database
                url = _new_database(server.url, n)
            print(f"\n== {n:,} trajectories ==")
            home = workspace_for(n, url)
            rows: list[tuple[str, float]] = []
            try:
                bench_library(home, rows, url)
                bench_apptest(home, rows, url)
                if not args.no_browser and Path(CHROMIUM).exists():
                    bench_browser(home, rows, url)
            finally:  # what was measured before a failure is still worth seeing
                for what, seconds in rows:
                    print(f"  {what:<62} {seconds * 1000:9.0f} ms", flush=True)
    finally:
        if server:
            server.remove()
    return 0


def _new_database(server_url: str, n: int) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE bench_{n}")
    return server_url.rsplit("/", 1)[0] + f"/bench_{n}"


if __name__ == "__main__":
    raise SystemExit(main())
