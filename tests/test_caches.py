"""The workspace's caches (agentlearn.caches): one set per store, shared by its workspaces, never by two stores.

Real TinyDB files in temp folders, the hashing encoder; the derived values are the real ones (task map,
label index, queue, exemplar index, tool vectors).
"""

from __future__ import annotations

import gc
import weakref

import numpy as np

from agentlearn import caches
from agentlearn.embeddings import hash_encode
from agentlearn.feedback import index, labels, queue
from agentlearn.memory import exemplars, tool_retrieval
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage.records import Exemplar, Message, Task, ToolCall, Trajectory
from tests.seed import ME

SUITE = "s"


def _open(home):
    return open_workspace(Settings(home=home), encoder=hash_encode)


def _task(ws, text: str, task_id: str, split: str = "train") -> Task:
    return ws.repo.put(Task(id=task_id, suite=SUITE, sample_id=task_id, split=split,
                            input=[Message(role="user", content=text)], expected=ToolCall(name="noop")))


def _run(ws, task_id: str) -> Trajectory:
    return ws.repo.put(Trajectory(task_id=task_id, suite=SUITE, split="train", output="x", model="m"))


def _exemplar(ws, text: str, tool: str) -> Exemplar:
    return ws.repo.put(Exemplar(suite=SUITE, task_id=f"task-{text}", kind="manual", tool=tool,
                                input=[Message(role="user", content=text)], call=ToolCall(name=tool)))


def test_two_stores_never_see_each_others_values(tmp_path):
    a, b = _open(tmp_path / "a"), _open(tmp_path / "b")
    assert a.caches is not b.caches
    _task(a, "printer jammed", "ta")
    _task(b, "vpn drops", "tb")
    _exemplar(a, "printer jammed", "fix_printer")
    _exemplar(b, "vpn drops", "fix_vpn")
    assert set(index.task_map(a)) == {"ta"} and set(index.task_map(b)) == {"tb"}
    query = Task(suite=SUITE, sample_id="q", split="heldout", input=[Message(role="user", content="jammed vpn")],
                 expected=ToolCall(name="noop"))
    assert [s.exemplar.tool for s in exemplars.select(a, query, "semantic")] == ["fix_printer"]
    assert [s.exemplar.tool for s in exemplars.select(b, query, "semantic")] == ["fix_vpn"]
    _run(a, "ta")
    assert len(queue.queue(a, queue.Filters(status="unlabeled"))) == 1
    assert queue.queue(b, queue.Filters(status="unlabeled")) == []


def test_a_write_through_one_workspace_is_seen_by_another_on_the_same_store(tmp_path):
    first, second = _open(tmp_path / "w"), _open(tmp_path / "w")
    assert first.caches is second.caches  # a reopened workspace finds what the first one built
    _task(first, "printer jammed", "t1")
    run = _run(first, "t1")
    unlabeled = queue.Filters(status="unlabeled")
    assert queue.queue(second, unlabeled) == [run.id]
    assert labels.label_index(second).count == 0

    labels.submit_label(first, run.id, "ann", "success")
    assert queue.queue(second, unlabeled) == []
    assert labels.latest_label(second, run.id).verdict == "success"

    _exemplar(first, "printer jammed", "fix_printer")
    query = Task(suite=SUITE, sample_id="q", split="heldout", input=[Message(role="user", content="printer")],
                 expected=ToolCall(name="noop"))
    assert [s.exemplar.tool for s in exemplars.select(second, query, "semantic")] == ["fix_printer"]
    exemplars.add_manual(first, SUITE, [Message(role="user", content="scanner offline")], ToolCall(name="fix_scanner"),
                         who=ME)
    assert {s.exemplar.tool for s in exemplars.select(second, query, "semantic", k=5)} == {"fix_printer", "fix_scanner"}


def test_a_stores_caches_go_with_its_last_workspace(tmp_path):
    first = _open(tmp_path / "w")
    kept = weakref.ref(first.caches)
    second = _open(tmp_path / "w")
    del first
    gc.collect()
    assert kept() is second.caches
    del second
    gc.collect()
    assert kept() is None


def test_a_reopened_workspace_gets_the_built_exemplar_index(tmp_path, monkeypatch):
    ws = _open(tmp_path / "w")
    _exemplar(ws, "printer jammed", "fix_printer")
    query = Task(suite=SUITE, sample_id="q", split="heldout", input=[Message(role="user", content="printer")],
                 expected=ToolCall(name="noop"))
    exemplars.select(ws, query, "bm25")
    built = []
    original = exemplars._build
    monkeypatch.setattr(exemplars, "_build", lambda *a: built.append(1) or original(*a))
    exemplars.select(_open(tmp_path / "w"), query, "bm25")
    assert built == []
    caches.clear_all()  # as a new process starts
    exemplars.select(_open(tmp_path / "w"), query, "bm25")
    assert built == [1]


def test_tool_vectors_follow_the_encoder_even_when_ids_are_reused(tmp_path):
    ws = _open(tmp_path / "w")
    task = Task(suite=SUITE, sample_id="q", split="heldout", input=[Message(role="user", content="printer")],
                expected=ToolCall(name="noop"), tools=[{"name": "fix_printer", "parameters": {}}])
    # Encoders made and dropped one after another: CPython hands a freed object's id to the next one,
    # so a cache keyed by id() would serve the first encoder's vectors to the others.
    for n in range(1, 6):
        def encoder(texts, n=n):
            return np.full((len(texts), 4), float(n), dtype=np.float32)

        ws.encoder = encoder
        assert float(tool_retrieval._tool_vectors(ws, ["fix printer"])[0][0]) == n
        assert tool_retrieval.rank_tools(ws, task)[0][0] == "fix_printer"
        del encoder
        ws.encoder = hash_encode
        gc.collect()
