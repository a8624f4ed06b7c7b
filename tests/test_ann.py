"""The HNSW index behind large exemplar banks (storage.ann, exemplars.ANN_MIN_VECTORS), on real hnswlib.

The banks here are a few thousand vectors with the threshold lowered, so that the index is built in
about a second; bench/bench_retrieval.py measures it at 100k and 1M.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from agentlearn import caches
from agentlearn.embeddings import hash_encode
from agentlearn.memory import exemplars
from storage.ann import AnnIndex
from storage.records import Exemplar, Message, Task, ToolCall
from tests.seed import ME

SUITE = "big"


def _unit(rng: np.random.Generator, n: int, dim: int = 48) -> np.ndarray:
    """Clustered unit vectors (50 centres plus noise), like embeddings of templated requests."""
    centres = rng.normal(size=(50, dim))
    x = centres[rng.integers(0, 50, n)] + rng.normal(0, 0.4, size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _exact(matrix: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return np.argsort(-(matrix @ q), kind="stable")[:k].tolist()


# --- storage.ann on its own -------------------------------------------------------------------------


def test_index_recall_incremental_updates_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    matrix = _unit(rng, 3000)
    ids = [f"r{i}" for i in range(3000)]
    hashes = ["h"] * 3000
    ann = AnnIndex(tmp_path, "t")
    rows = ann.sync(ids, hashes, matrix)
    assert ann.builds == 1 and rows.tolist() == list(range(3000))
    queries = _unit(rng, 200)
    recall = np.mean([len(set(rows[ann.query(q, 5)].tolist()) & set(_exact(matrix, q, 5))) / 5 for q in queries])
    assert recall >= 0.95

    # 100 rows added, 50 gone, one changed (new text hash): updated in place, never rebuilt.
    extra = _unit(rng, 100)
    ids2 = ids[50:] + [f"n{i}" for i in range(100)]
    hashes2 = ["h"] * 2949 + ["changed"] + ["h"] * 100
    matrix2 = np.concatenate([matrix[50:-1], -matrix[-1:], extra])
    rows2 = ann.sync(ids2, hashes2, matrix2)
    assert ann.builds == 1
    for n in (0, 2000, 2949, 3000, 3049):  # each row's own vector finds it
        assert rows2[ann.query(matrix2[n], 1)].tolist() == [n]
    live = set(rows2[ann.query(matrix[10], len(ids2))].tolist())
    assert -1 not in live and len(live) == len(ids2)  # gone rows are never returned

    # Another process: loads the saved files, nothing to build or change.
    again = AnnIndex(tmp_path, "t")
    assert again.sync(ids2, hashes2, matrix2).tolist() == rows2.tolist() and again.builds == 0
    assert again.query(matrix2[5], 1).tolist() == ann.query(matrix2[5], 1).tolist()
    assert len(list(tmp_path.glob("t.*.hnsw"))) == 1  # the older index file was removed


@pytest.mark.parametrize("damage", ["truncate index", "truncate meta", "remove index", "garbage meta"])
def test_a_damaged_or_missing_index_is_rebuilt_from_the_vectors(tmp_path, damage):
    rng = np.random.default_rng(1)
    matrix = _unit(rng, 500)
    ids = [f"r{i}" for i in range(500)]
    AnnIndex(tmp_path, "t").sync(ids, ["h"] * 500, matrix)
    index_file = next(tmp_path.glob("t.*.hnsw"))
    meta = tmp_path / "t.npz"
    if damage == "truncate index":
        index_file.write_bytes(index_file.read_bytes()[: index_file.stat().st_size // 2])
    elif damage == "truncate meta":
        meta.write_bytes(meta.read_bytes()[:100])
    elif damage == "remove index":
        index_file.unlink()
    else:
        meta.write_bytes(b"not an npz")
    ann = AnnIndex(tmp_path, "t")
    rows = ann.sync(ids, ["h"] * 500, matrix)
    assert ann.builds == 1
    assert rows[ann.query(matrix[123], 1)].tolist() == [123]
    assert AnnIndex(tmp_path, "t").sync(ids, ["h"] * 500, matrix) is not None  # the rebuilt one is stored whole


# --- exemplar selection through it ------------------------------------------------------------------


@pytest.fixture
def big_bank(ws):
    """2,500 exemplars whose texts ("item 17") are encoded as clustered random vectors (no score ties)."""
    rng = np.random.default_rng(0)
    vectors = dict(zip([f"item {i}" for i in range(2500)] + [f"query {i}" for i in range(40)],
                       _unit(rng, 2540, dim=64), strict=True))
    ws.encoder = lambda batch: np.stack([vectors[t] if t in vectors else exemplars_hash(t) for t in batch])
    records = [Exemplar(id=f"ex{i:05d}", suite=SUITE, task_id=f"task{i:05d}", kind="reference",
                        input=[Message(role="user", content=f"item {i}")], call=ToolCall(name="noop"), tool="noop",
                        tags=[random.Random(i).choice(["a", "b"])])
               for i in range(2500)]
    ws.repo.put_many(records)
    return records


def exemplars_hash(text: str) -> np.ndarray:
    """Texts outside the bank (added in a test) get a bag-of-words vector of the bank's dimension."""
    return hash_encode([text], dim=64)[0]


def _query(text, task_id="q"):
    return Task(id=task_id, suite=SUITE, sample_id=task_id, split="heldout", input=[Message(role="user", content=text)],
                expected=ToolCall(name="hidden"), tags=["a"])


def _ids(scored):
    return [s.exemplar.id for s in scored]


def test_below_the_threshold_search_is_exact_and_above_it_recall_holds(ws, big_bank, monkeypatch):
    tasks = [_query(f"query {i}", f"q{i}") for i in range(40)]
    exact = {t.id: _ids(exemplars.select(ws, t, "semantic", k=5)) for t in tasks}
    index = exemplars._index(ws, SUITE)
    assert index.ann is None and len(big_bank) < exemplars.ANN_MIN_VECTORS
    for t in tasks[:10]:  # below the threshold: exactly NumPy's top 5 (ties to the older row)
        q = ws.encoder([t.input[0].content])[0]
        assert exact[t.id] == [index.exemplars[r].id for r in _exact(index.matrix, q, 5)]

    monkeypatch.setattr(exemplars, "ANN_MIN_VECTORS", 1000)
    caches.clear_all()
    got = {t.id: _ids(exemplars.select(ws, t, "semantic", k=5)) for t in tasks}
    assert exemplars._index(ws, SUITE).ann is not None
    recall = np.mean([len(set(got[t]) & set(exact[t])) / 5 for t in exact])
    assert recall >= 0.95
    for mode in ("type", "hybrid", "mmr"):  # every vector mode goes through it and still returns k
        assert len(exemplars.select(ws, tasks[0], mode, k=5)) == 5


def test_added_and_retired_exemplars_update_the_index_without_a_rebuild(ws, big_bank, monkeypatch):
    monkeypatch.setattr(exemplars, "ANN_MIN_VECTORS", 1000)
    probe = _query(big_bank[7].input[0].content)
    assert _ids(exemplars.select(ws, probe, "semantic", k=1)) == ["ex00007"]
    ann = exemplars._index(ws, SUITE).ann
    assert ann.builds == 1

    exemplars.retire(ws, "ex00007", who=ME)
    assert "ex00007" not in _ids(exemplars.select(ws, probe, "semantic", k=5))
    new = exemplars.add_manual(ws, SUITE, [Message(role="user", content="zebra quokka narwhal okapi")],
                               ToolCall(name="zoo"), who=ME)
    assert _ids(exemplars.select(ws, _query("zebra quokka narwhal okapi"), "semantic", k=1)) == [new.id]
    index = exemplars._index(ws, SUITE)
    assert index.ann is ann and ann.builds == 1 and len(index.exemplars) == len(big_bank)
    # Excluding a task's own exemplars still returns k others (more candidates are fetched).
    own = _query(big_bank[3].input[0].content, task_id="task00003")
    assert "ex00003" not in _ids(exemplars.select(ws, own, "semantic", k=5))

    # A new process finds the index on disk, updated: nothing is built.
    caches.clear_all()
    assert _ids(exemplars.select(ws, probe, "semantic", k=5))[0] != "ex00007"
    assert exemplars._index(ws, SUITE).ann.builds == 0
