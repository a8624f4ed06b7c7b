"""The proxy in front of a real local OpenAI-compatible upstream, called with the real OpenAI client.

The upstream is a small FastAPI app answering canned replies (streamed as SSE when asked) and keeping
what it received, so the tests see exactly what the proxy forwarded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import agentlearn
from agentlearn import accounts, users
from agentlearn.traces import access, proxy
from storage.records import Trajectory
from tests.asgi_server import free_port, serving
from tests.openai_fake import Upstream
from tests.seed import ME, SUITE

KEY = "sk-upstream-secret-4711"
RULE = "Always ask for the username before resetting a password."
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "reset_password", "arguments": '{"username": "dlee", "delivery": "email"}'}}
TOOLS = [{"type": "function", "function": {"name": "reset_password", "description": "Reset a password.",
                                           "parameters": {"type": "object", "properties": {"username": {"type": "string"}}}}}]


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    fake = Upstream()
    with serving(fake.app) as url:
        yield fake, url + "/v1"


@pytest.fixture
def running(seeded, upstream) -> Iterator[tuple[Any, Upstream, str]]:
    """(workspace, upstream, proxy base URL) with the seeded suite as the proxy's default."""
    fake, up_url = upstream
    with serving(proxy.create_app(seeded, up_url, suite=SUITE)) as url:
        yield seeded, fake, url + "/v1"


def _client(base_url: str, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, default_headers=headers or None, max_retries=0)


def _episode(ws, count: int = 1, timeout: float = 10.0) -> list[Trajectory]:
    """The proxied episodes, once `count` are recorded (recording follows the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = ws.repo.find(Trajectory, source="proxy")
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _no_key_in(home: Path) -> None:
    for f in home.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f"the upstream key was written to {f}"


def test_request_gets_playbook_and_exemplars_answer_passes_through_and_is_recorded(running, _agentlearn_home):
    ws, fake, url = running
    fake.replies = [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    messages = [{"role": "system", "content": "You are the help desk agent."},
                {"role": "user", "content": "I forgot my password, user dlee, email me."}]
    raw = _client(url).chat.completions.with_raw_response.create(model="fake-model", messages=messages, tools=TOOLS)
    assert raw.headers["x-request-id"] == "req-1"  # the upstream's headers come back too
    reply = raw.parse()

    # The answer is the upstream's, tool call included.
    call = reply.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "reset_password", CALL["function"]["arguments"])
    # What the upstream received: the caller's system message with the playbook and the closest exemplars.
    headers, body = fake.received[-1]
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are the help desk agent.")
    assert RULE in system["content"]
    assert "I forgot my password, user akhan, email me." in system["content"]  # the seeded exemplar nearest it
    assert '"name": "reset_password"' in system["content"]
    assert body["messages"][1:] == messages[1:] and body["tools"] == TOOLS
    assert headers["authorization"] == f"Bearer {KEY}"
    # ... exactly what memory_for gives an agent that builds its prompt itself.
    memory = agentlearn.memory_for(SUITE, messages, ws=ws)
    assert system["content"] == "You are the help desk agent.\n\n" + memory["text"]
    assert [b["text"] for b in memory["playbook"]] == [RULE] and memory["exemplars"][0]["call"]["name"] == "reset_password"

    [episode] = _episode(ws)
    assert episode.source == "proxy" and episode.suite == SUITE and episode.model == "fake-model"
    assert [c.name for c in episode.steps[-1].calls] == ["reset_password"]
    assert episode.steps[-1].calls[0].arguments == {"username": "dlee", "delivery": "email"}
    assert episode.steps[-1].tokens_in == 11 and episode.steps[-1].seconds is not None
    assert episode.memory.insight_ids == ["ins-1"] and episode.memory.exemplar_ids
    _no_key_in(_agentlearn_home)


def test_one_episode_per_conversation_joined_by_prefix_or_named(running):
    ws, fake, url = running
    client = _client(url)
    first = [{"role": "user", "content": "Reset the password of dlee, email it."}]
    fake.replies = [{"role": "assistant", "content": None, "tool_calls": [CALL]},
                    {"role": "assistant", "content": "Done: dlee has a new password by email."}]
    reply = client.chat.completions.create(model="m", messages=first, tools=TOOLS)
    answered = reply.choices[0].message.model_dump(exclude_none=True)
    second = [*first, answered, {"role": "tool", "tool_call_id": "call_1", "content": "password reset, mail sent"}]
    client.chat.completions.create(model="m", messages=second, tools=TOOLS)
    deadline = time.monotonic() + 10
    while len((_episode(ws) or [Trajectory(task_id="", suite="", split="")])[0].steps) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    [episode] = _episode(ws)
    assert [bool(s.calls) for s in episode.steps] == [True, False]
    assert episode.steps[0].results[0].content == "password reset, mail sent"
    assert episode.steps[0].results[0].call_id == "call_1" and episode.steps[0].results[0].name == "reset_password"
    assert episode.steps[1].answer == "Done: dlee has a new password by email." and episode.output == episode.steps[1].answer

    # The same opening going another way is another conversation; a named conversation is its own episode.
    other = [*first, {"role": "assistant", "content": "Which delivery?"}, {"role": "user", "content": "SMS"}]
    client.chat.completions.create(model="m", messages=other)
    _client(url, **{"X-Agentlearn-Conversation": "conv-42"}).chat.completions.create(model="m", messages=first)
    episodes = _episode(ws, 3)
    assert len(episodes) == 3
    assert sorted(e.trace_id for e in episodes)[0] == "conv-42"
    assert len({e.task_id for e in episodes}) == 1  # one opening request: one task


def test_streaming_passes_through_chunk_by_chunk_and_is_recorded(running, _agentlearn_home):
    ws, fake, url = running
    fake.replies = [{"role": "assistant", "content": "Resetting now.", "tool_calls": [CALL]}]
    messages = [{"role": "user", "content": "Please reset cmoreau's password by SMS."}]
    raw = _client(url).chat.completions.with_raw_response.create(model="m", messages=messages, tools=TOOLS, stream=True)
    assert raw.headers["x-request-id"] == "req-stream" and raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert len(chunks) > 5  # streamed, not gathered into one answer
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [])
    assert text == "Resetting now." and args == CALL["function"]["arguments"]
    assert RULE in fake.received[-1][1]["messages"][0]["content"] and fake.received[-1][1]["stream"] is True
    [episode] = _episode(ws)
    assert episode.steps[-1].thought == "Resetting now." and episode.source == "proxy"
    assert episode.steps[-1].calls[0].arguments == {"username": "dlee", "delivery": "email"}
    _no_key_in(_agentlearn_home)


def test_suite_from_header_or_metadata_and_refusals(running):
    ws, fake, url = running
    direct = httpx.Client(base_url=url, timeout=10)
    r = direct.post("/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                               "metadata": {"suite": "other-suite", "team": "a"}})
    assert r.status_code == 200
    assert fake.received[-1][1]["metadata"] == {"team": "a"}  # the proxy's own key is not forwarded
    assert _episode(ws)[0].suite == "other-suite"
    r = direct.post("/chat/completions", content=b'{"model": "m", "messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
    r = direct.post("/chat/completions", json={"model": "m", "messages": "hello"})
    assert r.status_code == 400 and "'messages'" in r.json()["error"]["message"]
    assert direct.post("/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                       headers={"host": "attacker.example"}).status_code == 401
    assert len(fake.received) == 1  # nothing refused reached the upstream


def test_unreachable_upstream_is_a_502(seeded):
    with serving(proxy.create_app(seeded, f"http://127.0.0.1:{free_port()}/v1", suite=SUITE)) as url:
        r = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 502 and "did not answer" in r.json()["error"]["message"]


def test_with_accounts_a_token_is_required(running):
    ws, fake, url = running
    users.add_user(ws.repo, "ada", "admin", "correct horse battery", who=ME)
    ada = accounts.identity_of(accounts.find(ws.repo, "ada"))
    users.add_user(ws.repo, "bo", "annotator", "correct horse battery", who=ada)
    with pytest.raises(ValueError, match="annotator"):
        access.issue_token(ws.repo, "bo", who=ada)
    token = access.issue_token(ws.repo, "ada", who=ada)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError, match="ingest token"):
        _client(url).chat.completions.create(model="m", messages=messages)
    with pytest.raises(openai.AuthenticationError, match="unknown or revoked"):
        _client(url, **{"X-Agentlearn-Token": "guess"}).chat.completions.create(model="m", messages=messages)
    assert _client(url, **{"X-Agentlearn-Token": token}).chat.completions.create(model="m", messages=messages)
    assert access.revoke_tokens(ws.repo, "ada", who=ada) == 1
    with pytest.raises(openai.AuthenticationError):
        _client(url, **{"X-Agentlearn-Token": token}).chat.completions.create(model="m", messages=messages)
    assert token not in json.dumps([r.model_dump(mode="json") for r in ws.repo.all(access.IngestToken)])


def test_token_and_listening_commands(ws, monkeypatch, capsys):
    from agentlearn import cli

    assert cli.main(["proxy", "--upstream", "http://127.0.0.1:9/v1", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert cli.main(["collect", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert capsys.readouterr().err.count("no accounts exist") == 2
    users.add_user(ws.repo, "root", "admin", "correct horse battery", who=ME)
    monkeypatch.setenv("AGENTLEARN_USER", "root")
    monkeypatch.setenv("AGENTLEARN_PASSWORD", "correct horse battery")
    assert cli.main(["users", "token", "root"]) == 0
    token = capsys.readouterr().out.strip()
    assert access.caller(ws.repo, {access.TOKEN_HEADER: token}).name == "root"
    assert cli.main(["users", "token", "root", "--revoke"]) == 0
    with pytest.raises(accounts.AccessDenied):
        access.caller(ws.repo, {access.TOKEN_HEADER: token})


def test_a_langchain_agent_goes_through_the_proxy_by_its_base_url(running):
    from langchain_openai import ChatOpenAI

    ws, fake, url = running
    fake.replies = [{"role": "assistant", "content": None, "tool_calls": [CALL]}]
    llm = ChatOpenAI(base_url=url, api_key=KEY, model="fake-model", max_retries=0,
                     default_headers={"X-Agentlearn-Suite": SUITE, "X-Agentlearn-Conversation": "lc-1"})
    reply = llm.bind_tools(TOOLS).invoke("I forgot my password, user dlee, email me.")
    assert reply.tool_calls[0]["name"] == "reset_password" and reply.tool_calls[0]["args"]["username"] == "dlee"
    assert RULE in fake.received[-1][1]["messages"][0]["content"]
    [episode] = _episode(ws)
    assert episode.trace_id == "lc-1" and episode.steps[-1].calls[0].name == "reset_password"


def test_memory_follows_the_suites_stored_retrieval_choice_and_budget(seeded):
    from storage.records import Suite

    messages = [{"role": "user", "content": [{"type": "text", "text": "Reset bnovak's password, SMS."}]}]
    memory = agentlearn.memory_for(SUITE, messages, ws=seeded)
    assert memory["exemplar_mode"] == "hybrid" and len(memory["exemplars"]) == 3  # the starting choice
    seeded.repo.update(Suite, SUITE, lambda s: s.model_copy(update={"retrieval": {"mode": "bm25", "k": 1,
                                                                                  "tool_aware": False}}))
    memory = agentlearn.memory_for(SUITE, messages, ws=seeded)
    assert memory["exemplar_mode"] == "bm25" and [e["id"] for e in memory["exemplars"]] == ["ref-2"]
    small = agentlearn.memory_for(SUITE, messages, ws=seeded, budget_tokens=40)  # room for the rule only
    assert [b["text"] for b in small["playbook"]] == [RULE] and small["exemplars"] == []
