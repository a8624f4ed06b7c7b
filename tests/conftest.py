"""Shared fixtures: a workspace on real TinyDB files in a temp folder, with a fake encoder and chat model.

- Every test runs with AGENTLEARN_HOME pointing at its own temp folder, so nothing touches ~/.agentlearn.
- `ws`: a Workspace there, with hash_encode and FakeChat (real models are for the few tests that ask).
- FakeChat answers from a list of replies in turn (the last one repeats) and records the prompts it saw.
  Tests that need other answers set `ws.chat_factory = fake_chat_factory([...])`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentlearn.embeddings import hash_encode
from agentlearn.settings import Settings
from agentlearn.workspace import Workspace, open_workspace

DEFAULT_REPLY = '<tool_call>{"name": "noop", "arguments": {}}</tool_call>'


class FakeChat(BaseChatModel):
    """A deterministic chat model: returns `replies` in order, then keeps returning the last one."""

    replies: list[str] = [DEFAULT_REPLY]
    seen: list[list[BaseMessage]] = []  # every prompt it was given (shared by the factory's models)
    temperature: float = 0.0
    adapter_dir: str = ""

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        i = len(self.seen)
        self.seen.append(list(messages))
        text = self.replies[min(i, len(self.replies) - 1)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def fake_chat_factory(replies: list[str] | None = None) -> Callable[..., BaseChatModel]:
    """A Workspace.chat_factory whose models share one reply list and one record of prompts."""
    seen: list[list[BaseMessage]] = []
    replies = list(replies or [DEFAULT_REPLY])

    def factory(settings: Settings, adapter_dir: str = "", temperature: float = 0.0,
                seed: int | None = None) -> BaseChatModel:
        model = FakeChat(replies=replies, temperature=temperature, adapter_dir=adapter_dir)
        model.seen = seen  # share the record across calls (pydantic copies list defaults)
        return model

    factory.seen = seen  # type: ignore[attr-defined]
    return factory


@pytest.fixture(autouse=True)
def _agentlearn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "agentlearn-home"
    monkeypatch.setenv("AGENTLEARN_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def ws(_agentlearn_home: Path) -> Workspace:
    """A fresh workspace on real files in the test's AGENTLEARN_HOME, with fake models."""
    return open_workspace(Settings(home=_agentlearn_home), encoder=hash_encode, chat_factory=fake_chat_factory())


@pytest.fixture
def make_fake_chat() -> Callable[..., Callable[..., BaseChatModel]]:
    """fake_chat_factory, for tests that want scripted replies: ws.chat_factory = make_fake_chat([...])."""
    return fake_chat_factory


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder for the whole test session, so that SmolLM2 is converted once."""
    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def gemma_model_dir(shared_models: Path) -> Path:
    """Gemma 3 270M converted once per test session into the shared models folder (minutes on a busy CPU)."""
    from agentlearn.models import chat_model_dir

    return chat_model_dir(shared_models, "gemma3-270m")


def link_shared_models(home: Path, shared: Path) -> Path:
    """Make `home`/models the session's shared models folder; returns `home`."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(shared, target_is_directory=True)
    return home


@pytest.fixture
def real_ws(_agentlearn_home: Path, shared_models: Path) -> Workspace:
    """A workspace with the real models: embedded SmolLM2 and MiniLM."""
    return open_workspace(Settings(home=link_shared_models(_agentlearn_home, shared_models)))


@pytest.fixture
def seeded(ws: Workspace) -> Iterator[Workspace]:
    """The `ws` workspace seeded with the page-test records of tests/seed.py (no model runs)."""
    from agentlearn import caches
    from tests.seed import seed_workspace

    seed_workspace(ws.repo)
    caches.clear_all()
    yield ws
    caches.clear_all()


# --- a disk of its own: full, read-only -------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system of its own (tmpfs): it fills up and can be remounted read-only, which stops
    root too (a chmod does not); skipped where mounting is not allowed."""
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, mode: str) -> None:
    """Make small_disk read-only ("ro") or writable again ("rw")."""
    import subprocess

    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill small_disk to the last byte with one file (removing it frees the disk again)."""
    import os

    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # No space left on device: full
        pass
    finally:
        os.close(fd)
    return filler


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _postgres_bindir() -> Path:
    """Debian keeps initdb and pg_ctl off PATH; pg_config names their folder."""
    import glob
    import shutil
    import subprocess

    candidates = []
    if shutil.which("pg_config"):
        candidates.append(Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: `./manage test` installs them "
                       "(apt-get install -y postgresql)")


class PostgresServer:
    """A real PostgreSQL server in a temp folder on a free local port (fsync off): start, restart, stop."""

    def __init__(self) -> None:
        import os
        import shutil
        import socket
        import tempfile

        self.bindir = _postgres_bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="agentlearn-pg-"))  # not under pytest's 0700 temp: postgres enters it
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _run(self, *cmd: str) -> None:
        import subprocess

        done = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}"
                               + (f"\n{self.log.read_text()}" if self.log.exists() else ""))

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop and start again: every connection open before is closed by the server."""
        self.stop()
        self.start()

    def remove(self) -> None:
        import shutil

        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for the session, on a free local port in a temp folder; its base URL.

    fsync is off: the tests kill clients, never the server, and the 2-core CI machine is slow enough.
    """
    try:
        server = PostgresServer()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A URL to an empty schema of its own on the session's server (dropped after the test)."""
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["tinydb", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, once per backend: a folder, or a postgresql:// URL."""
    if request.param == "tinydb":
        return str(tmp_path / "store")
    return request.getfixturevalue("pg_url")


def open_store(location: str):  # noqa: ANN201 - a Repository
    """A new repository instance on a store location (a folder or a postgresql:// URL)."""
    from storage import is_database_url, open_repository

    return open_repository(location, location if is_database_url(location) else "")


@pytest.fixture
def _navigation_like_a_server(monkeypatch):
    """Run app.py on every AppTest run, as a server does once st.navigation has been called.

    A folder named pages/ makes Streamlit guess the old multipage mode until st.navigation runs; a
    server remembers the answer for the process, but AppTest forgets it before each run and would
    then run only the page script, without the sidebar.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
