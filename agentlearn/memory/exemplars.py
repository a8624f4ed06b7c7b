"""Exemplar learning: a bank of solved cases, retrieved as few-shot examples for a new task.

The bank holds Exemplar records of one suite: "reference" ones written when a suite's train split is
imported, "learned" ones made by `sync_bank` from train trajectories that succeeded, and "manual" ones
a person adds. Only active exemplars are retrieved. Selection modes (agentlearn.methods.RETRIEVAL_MODES;
"auto" is not one of them: agentlearn.memory.retrieval.resolve turns it into a concrete mode per suite):

- fixed:    the same first k exemplars (oldest first) for every task; score 1.0.
- type:     exemplars sharing a tag with the task, ranked by cosine similarity. The task's expected
            call would say its tool, but it is the answer, so it is never read at run time: the task's
            tags (its category) stand in for its type. A task without tags gets no exemplars.
- bm25:     rank_bm25 BM25Okapi (k1=1.5, b=0.75) over lower-cased word tokens of the input text
            (its scores, computed through a sparse matrix so that 100k exemplars take milliseconds).
- semantic: cosine similarity of sentence embeddings (ws.encoder, MiniLM by default).
- hybrid:   reciprocal rank fusion of the BM25 and the cosine rankings: score = sum over the two lists
            of 1 / (60 + rank), rank 1 the best (Cormack, Clarke and Buettcher 2009, with their k = 60).
            Ranks are fused rather than scores because BM25 scores (0 to tens, growing with the
            query's length) and cosine similarities (-1 to 1) are on different scales. Each list
            contributes its best RRF_WINDOW rows; a row with no word in common with the task has no
            BM25 rank, so a task no word matches is ranked by cosine alone.
- mmr:      LangChain's maximal marginal relevance (lambda 0.5) over the 20 most similar candidates;
            the score shown is the candidate's cosine similarity to the task.

An exemplar is one call (its task's input and the right call) or a whole successful episode (`steps`:
the steps that led to success). Both are retrieved the same way, by their task's input, which for an
episode is its first request; the prompt shows an episode as a compact transcript within the settings'
exemplar_tokens (prompts.fit_shots).

Every mode leaves out exemplars of the task itself (they would leak its answer) and of
`exclude_task_id`, and keeps one exemplar per task (the best scored).

Two options apply to every mode:
- tool_aware: from the mode's best TOOL_AWARE_POOL * k candidates, take the best one of each distinct
  tool first, then fill up to k by the mode's order, so the shots cover the likely tools instead of
  being k copies of one call. The shots keep the mode's order.
- bank_size / bank_seed: use only a deterministic random draw of `bank_size` active exemplars (a learning
  curve's 0, 4, 8, 16 ... experiences). Each exemplar's place in a draw is a hash of (seed, its id), so
  for one seed a smaller draw is always inside a larger one, and adding exemplars to the bank never
  reorders the ones already there. BM25 keeps the whole bank's word statistics (idf, mean length).

The index of a suite (exemplars, their vectors, a BM25 model) is kept in memory and rebuilt only when
the exemplar table or the vector file changes, so a query at 100k exemplars is one matrix-vector
product plus an argpartition (hybrid: plus one sparse BM25 product and two small sorts). From
ANN_MIN_VECTORS exemplars on, the vector search of the semantic, type, hybrid and mmr modes asks an
HNSW index (storage.ann, kept in files beside the vectors and updated with each change, not rebuilt)
for candidates and scores those exactly: about a millisecond at 1M instead of a product over every row.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentlearn import policy, verdicts
from agentlearn.accounts import Identity
from agentlearn.episode_text import is_episode, result_for
from agentlearn.methods import RETRIEVAL_MODES
from agentlearn.workspace import Workspace
from storage.ann import AnnIndex
from storage.records import Exemplar, Message, Step, Task, ToolCall, Trajectory, new_id
from storage.vectors import VectorTable, text_hash

MODES = RETRIEVAL_MODES  # the CLI's and the agent's choices today; methods.RETRIEVAL_MODES is the declaration
VECTOR_TABLE = "exemplars"
BM25_K1, BM25_B = 1.5, 0.75
MMR_LAMBDA, MMR_FETCH_K = 0.5, 20
RRF_K, RRF_WINDOW = 60, 100  # reciprocal rank fusion constant; rows each ranking contributes
TOOL_AWARE_POOL = 4  # tool-aware selection looks at the best 4k candidates
# A suite's vector search goes through an HNSW index (storage.ann) from this many exemplars on. Below it
# exact search stays: it is exact, and one product over 20k x 384 float32 takes a few milliseconds, while
# building the graph for them takes seconds and its answers may differ from the exact top-k.
ANN_MIN_VECTORS = 20_000
ANN_MAX_FETCH = 4096  # candidates asked of the index at most; beyond this exact search is as cheap


@dataclass(frozen=True)
class Scored:
    """A retrieved exemplar and its score under the mode that found it (higher is better)."""

    exemplar: Exemplar
    score: float


# --- text -------------------------------------------------------------------------------------------


def text_of(messages: Sequence[Message]) -> str:
    """The retrieval text of a conversation: contents joined by newlines, non-user roles named."""
    return "\n".join(m.content if m.role == "user" else f"{m.role}: {m.content}" for m in messages)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, for BM25."""
    return re.findall(r"\w+", text.lower())


# --- the bank ---------------------------------------------------------------------------------------


def learned_id(trajectory_id: str) -> str:
    """The id of the learned exemplar made from a trajectory (one per trajectory, stable)."""
    return f"learned-{trajectory_id}"


def steps_to_success(trajectory: Trajectory) -> list[Step]:
    """The steps of a successful episode that led to its success: every step but those whose calls all
    failed (the tool reported an error) and those that repeat a call already made with the same result."""
    kept, seen = [], set()
    for step in trajectory.steps:
        results = [result_for(step, n) for n in range(len(step.calls))]
        if step.calls and all(r is not None and r.error for r in results):
            continue
        key = json.dumps([[c.name, c.arguments, r.content if r else None] for c, r in zip(step.calls, results,
                                                                                          strict=True)],
                         sort_keys=True, default=str)
        if step.calls and key in seen:
            continue
        seen.add(key)
        kept.append(step)
    return kept


def sync_bank(ws: Workspace, suite: str) -> int:
    """Create or refresh learned exemplars from the suite's successful train trajectories; returns how many are active.

    A successful episode (episode_text.is_episode) becomes an episode exemplar: the steps that led to
    success, retrieved by its task's first request like any other exemplar, its first call as `call`."""
    repo = ws.repo
    tasks = {t.id: t for t in repo.find(Task, suite=suite) if t.split == "train"}
    judge = verdicts.judge(ws)
    # find(Exemplar, kind=...) would clash with find's own `kind` parameter: filter here.
    existing = {e.id: e for e in repo.find(Exemplar, suite=suite) if e.kind == "learned"}

    wanted: dict[str, Exemplar] = {}
    for traj in repo.find(Trajectory, suite=suite):
        task = tasks.get(traj.task_id)
        if task is None or traj.split != "train" or judge.succeeded(traj) is not True:
            continue
        steps = steps_to_success(traj) if is_episode(traj) else []
        call = next((c for s in steps for c in s.calls), None) if steps else traj.tool_call
        if call is None:
            continue  # nothing was called: no call to show
        ex_id = learned_id(traj.id)
        old = existing.get(ex_id)
        wanted[ex_id] = Exemplar(
            id=ex_id, created=old.created if old else traj.created, suite=suite, task_id=task.id,
            kind="learned", input=task.input, call=call, tool=call.name,
            tags=list(task.tags), trajectory_id=traj.id, active=True, steps=steps,
            calls=list(traj.tool_calls) if not steps and len(traj.tool_calls) > 1 else [],
        )
    changed = [e for e in wanted.values() if existing.get(e.id) != e]
    changed += [old.model_copy(update={"active": False}) for ex_id, old in existing.items()
                if ex_id not in wanted and old.active]
    if changed:
        repo.put_many(changed)
    return len(wanted)


def add_manual(ws: Workspace, suite: str, input_messages: Sequence[Message | dict[str, Any]],
               call: ToolCall | dict[str, Any], tags: Sequence[str] = (), *, who: Identity) -> Exemplar:
    """Store an exemplar a person wrote; it is retrievable at once. `who` needs manage_exemplars (policy)."""
    policy.require(ws.repo, who, "manage_exemplars")
    if not suite:
        raise ValueError("add_manual: suite must be a non-empty name")
    messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in input_messages]
    if not messages or not any(m.content.strip() for m in messages):
        raise ValueError("add_manual: input_messages must hold at least one message with content")
    call = call if isinstance(call, ToolCall) else ToolCall.model_validate(call)
    if not call.name.strip():
        raise ValueError("add_manual: call.name must name a tool")
    ex_id = f"manual-{new_id()}"
    exemplar = Exemplar(id=ex_id, suite=suite, task_id=ex_id, kind="manual", input=messages, call=call,
                        tool=call.name, tags=list(tags))
    return ws.repo.put(exemplar)


def retire(ws: Workspace, exemplar_id: str, *, who: Identity) -> Exemplar:
    """Make an exemplar inactive (kept for audit, never retrieved again); `who` needs manage_exemplars (policy)."""
    policy.require(ws.repo, who, "manage_exemplars")
    return ws.repo.update(Exemplar, exemplar_id, lambda e: e.model_copy(update={"active": False}))


# --- the in-memory index ---------------------------------------------------------------------------


@dataclass
class _Index:
    """Active exemplars of one suite in a stable order, with their unit vectors."""

    key: tuple  # (exemplar table version, vector files) when built
    exemplars: list[Exemplar]
    texts: list[str]
    matrix: np.ndarray  # (n, d) float32, row i = exemplars[i]
    group: np.ndarray  # (n,) int: rows with the same task share a group (dedupe key)
    group_of_task: dict[str, int]
    ann: AnnIndex | None = None  # the suite's HNSW index, from ANN_MIN_VECTORS exemplars on
    ann_rows: np.ndarray | None = None  # label in `ann` -> row here (-1: not a row of this index)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _bm25: Bm25 | None = None
    _tag_rows: dict[str, np.ndarray] | None = None
    _tools: np.ndarray | None = None
    _draw_orders: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def bm25(self) -> Bm25:
        with self._lock:
            if self._bm25 is None:
                self._bm25 = Bm25([tokenize(t) for t in self.texts])
            return self._bm25

    def _tags_built(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._tag_rows is None:
                rows: dict[str, list[int]] = {}
                for n, e in enumerate(self.exemplars):
                    for tag in set(e.tags):
                        rows.setdefault(tag, []).append(n)
                self._tag_rows = {t: np.asarray(r, dtype=np.int64) for t, r in rows.items()}
            return self._tag_rows

    def tag_rows(self, tags: Iterable[str]) -> np.ndarray:
        built = self._tags_built()
        parts = [built[t] for t in sorted(set(tags)) if t in built]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def tag_counts(self) -> dict[str, int]:
        return {t: len(r) for t, r in sorted(self._tags_built().items())}

    def tools(self) -> np.ndarray:
        with self._lock:
            if self._tools is None:
                self._tools = np.asarray([e.tool for e in self.exemplars], dtype=object)
            return self._tools

    def drawn(self, size: int, seed: int) -> np.ndarray:
        """Rows of a `size`-exemplar draw: the smallest hashes of (seed, id), so draws nest as size grows."""
        with self._lock:
            order = self._draw_orders.get(seed)
            if order is None:
                # One pass over the bank per seed and index build, not per query.
                keys = np.fromiter((_draw_key(seed, e.id) for e in self.exemplars), dtype=np.uint64,
                                   count=len(self.exemplars))
                order = np.lexsort((np.arange(len(keys)), keys))  # a hash tie goes to the older row
                if len(self._draw_orders) >= 16:
                    self._draw_orders.pop(next(iter(self._draw_orders)))
                self._draw_orders[seed] = order
        return order[:size]  # in draw order, which is all a mask needs


def _draw_key(seed: int, exemplar_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{exemplar_id}".encode(), digest_size=8).digest(), "big")


class Bm25:
    """rank_bm25's BM25Okapi, scored through a sparse matrix: the same numbers, milliseconds at 100k documents.

    BM25Okapi.get_scores walks every document's term dict in Python for each query token (~0.2 s per
    query at 100k); here each document's saturated term weight is computed once at build time.
    """

    def __init__(self, corpus: list[list[str]]) -> None:
        from rank_bm25 import BM25Okapi
        from scipy.sparse import csc_matrix

        self.okapi = BM25Okapi(corpus if any(corpus) else [["\0"]] * len(corpus), k1=BM25_K1, b=BM25_B)
        self.vocab = {w: n for n, w in enumerate(self.okapi.idf)}  # (BM25Okapi divides by zero without words)
        rows, cols, tfs = [], [], []
        for d, freqs in enumerate(self.okapi.doc_freqs):
            rows += [d] * len(freqs)
            cols += [self.vocab[w] for w in freqs]
            tfs += list(freqs.values())
        tf = np.asarray(tfs, dtype=np.float64)
        doc_len = np.asarray(self.okapi.doc_len, dtype=np.float64)[rows]
        k1, b = self.okapi.k1, self.okapi.b
        weight = tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / self.okapi.avgdl))
        self.weights = csc_matrix((weight, (rows, cols)), shape=(len(corpus), len(self.vocab)))
        self.idf = np.asarray([self.okapi.idf[w] for w in self.vocab], dtype=np.float64)
        self.okapi.doc_freqs = []  # the matrix holds them now; 100k dicts are a lot of memory

    def get_scores(self, query: list[str]) -> np.ndarray:
        """BM25Okapi scores of every document for the query tokens (repeats count, unknown words add 0)."""
        counts = Counter(w for w in query if w in self.vocab)
        if not counts:
            return np.zeros(self.weights.shape[0])
        cols = [self.vocab[w] for w in counts]
        factor = self.idf[cols] * np.asarray(list(counts.values()), dtype=np.float64)
        return np.asarray(self.weights[:, cols] @ factor).reshape(-1)


_BUILD_LOCK = threading.Lock()  # one index build at a time: a second caller waits and takes its result
INDICES_KEPT = 16  # suites whose index is kept per store


def _files_key(ws: Workspace) -> tuple:
    """Identity of the stored vector table, without reading its vectors (a stat, or one small query)."""
    return ws.vectors(VECTOR_TABLE).version()


def _index(ws: Workspace, suite: str) -> _Index:
    """The suite's index, rebuilt only if the exemplar table or the vector files changed."""
    indices = ws.caches.table("exemplar indices")
    cached = indices.get(suite)
    # A hit costs a few stat calls: no records or vectors are read, even by a newly opened workspace
    # (workspaces on one store share their caches).
    if cached is not None and cached.key == (ws.repo.version(Exemplar), _files_key(ws)):
        return cached
    with _BUILD_LOCK:
        version = ws.repo.version(Exemplar)  # read before the records: a later write forces a rebuild
        cached = indices.get(suite)
        if cached is not None and cached.key == (version, _files_key(ws)):
            return cached  # another thread rebuilt it while this one waited
        active = [e for e in ws.repo.all(Exemplar) if e.active]
        texts_all = {e.id: text_of(e.input) for e in active}
        table = ws.vectors(VECTOR_TABLE)
        table.sync(texts_all, ws.encoder)
        mine = [e for e in active if e.suite == suite]
        index = _build(mine, [texts_all[e.id] for e in mine], table, (version, _files_key(ws)))
        if len(mine) >= ANN_MIN_VECTORS:
            _attach_ann(index, cached.ann if cached is not None and cached.ann is not None else
                        AnnIndex(ws.settings.vectors_dir / "ann", f"{VECTOR_TABLE}-{text_hash(suite)}"))
        with ws.caches.lock:
            if len(indices) >= INDICES_KEPT:
                indices.pop(next(iter(indices)))
            indices[suite] = index
        return index


def _build(exemplars: list[Exemplar], texts: list[str], table: VectorTable, key: tuple) -> _Index:
    group_of_task: dict[str, int] = {}
    group = np.fromiter((group_of_task.setdefault(e.task_id or e.id, len(group_of_task)) for e in exemplars),
                        dtype=np.int64, count=len(exemplars))
    ids = [e.id for e in exemplars]
    if ids and ids == table.ids:
        matrix = table.matrix  # one suite fills the table in this order: no 150 MB copy at 100k
    elif ids:
        matrix = np.ascontiguousarray(table.rows(ids), dtype=np.float32)
    else:
        matrix = np.zeros((0, table.matrix.shape[1] if table.matrix.ndim == 2 else 0), dtype=np.float32)
    return _Index(key=key, exemplars=exemplars, texts=texts, matrix=matrix, group=group,
                  group_of_task=group_of_task)


def _attach_ann(index: _Index, ann: AnnIndex) -> None:
    """Bring the suite's HNSW index up to the rows of `index` (added and deleted, not rebuilt) and attach it."""
    index.ann_rows = ann.sync([e.id for e in index.exemplars], [text_hash(t) for t in index.texts], index.matrix)
    index.ann = ann


# --- ranking ----------------------------------------------------------------------------------------


def _top_unique(scores: np.ndarray, group: np.ndarray, k: int) -> list[int]:
    """Rows of the k best scores, one per group, ties broken by row order; -inf rows never chosen."""
    n = len(scores)
    allowed = int(np.count_nonzero(scores > -np.inf))
    m = min(allowed, max(4 * k, k + 16))
    while True:
        if m <= 0:
            return []
        cand = np.argpartition(-scores, m - 1)[:m] if m < n else np.arange(n)
        cand = cand[scores[cand] > -np.inf]
        cand = cand[np.lexsort((cand, -scores[cand]))]
        chosen, seen = [], set()
        for row in cand.tolist():
            g = int(group[row])
            if g not in seen:
                seen.add(g)
                chosen.append(row)
                if len(chosen) == k:
                    return chosen
        if m >= allowed:
            return chosen
        m = min(allowed, m * 4)


def _nearest(index: _Index, q: np.ndarray, base: np.ndarray, want: int) -> tuple[list[int], Any]:
    """The `want` rows most similar to q (one per task, rows whose base is -inf left out), and their scores.

    Exact below ANN_MIN_VECTORS. Above it, the HNSW index's nearest candidates are scored exactly; when
    left-out rows or shared tasks leave fewer than `want`, four times as many are asked, up to
    ANN_MAX_FETCH, then the search is exact. Scores come as a row -> score mapping of the candidates.
    """
    m = max(4 * want, want + 16)
    while index.ann is not None and m <= min(ANN_MAX_FETCH, len(index.exemplars)):
        if (found := _ann_candidates(index, q, base, m)) is None:
            break
        rows, scores = found
        chosen = _top_unique(scores, index.group[rows], want)
        if len(chosen) == want:
            return [int(rows[c]) for c in chosen], dict(zip(rows.tolist(), scores.tolist(), strict=True))
        m *= 4
    cosine = index.matrix @ q + base
    return _top_unique(cosine, index.group, want), cosine


def _best_cosine_rows(index: _Index, q: np.ndarray, base: np.ndarray, window: int) -> np.ndarray:
    """_best_rows of the cosine scores plus base: from the HNSW index's candidates above ANN_MIN_VECTORS."""
    m = 2 * window
    while index.ann is not None and m <= min(ANN_MAX_FETCH, len(index.exemplars)):
        if (found := _ann_candidates(index, q, base, m)) is None:
            break
        rows, scores = found
        best = _best_rows(scores, window)
        if len(best) == window:
            return rows[best]
        m *= 4
    return _best_rows(index.matrix @ q + base, window)


def _ann_candidates(index: _Index, q: np.ndarray, base: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of the HNSW index's m nearest to q, in row order, and their exact cosine plus base (None: search
    exactly, see AnnIndex.query)."""
    labels = index.ann.query(q, m)
    if labels is None:
        return None
    labels = labels[labels < len(index.ann_rows)]  # added for a newer build of the suite's index: not rows here
    rows = np.sort(index.ann_rows[labels])  # row order, so that ties go to the older row as in exact search
    rows = rows[rows >= 0]
    return rows, index.matrix[rows] @ q + base[rows]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    an = a / np.where((na := np.linalg.norm(a, axis=1, keepdims=True)) == 0, 1, na)
    bn = b / np.where((nb := np.linalg.norm(b, axis=1, keepdims=True)) == 0, 1, nb)
    return an @ bn.T


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float = MMR_LAMBDA) -> list[int]:
    """Maximal marginal relevance as in langchain_core.vectorstores.utils: indices into candidates, in pick order."""
    n = len(candidates)
    if min(k, n) <= 0:
        return []
    sim_q = _cosine(query.reshape(1, -1), candidates)[0]
    sim_c = _cosine(candidates, candidates)
    picked = [int(np.argmax(sim_q))]
    redundancy = sim_c[:, picked[0]].copy()
    while len(picked) < min(k, n):
        value = lambda_mult * sim_q - (1 - lambda_mult) * redundancy
        value[picked] = -np.inf
        best = int(np.argmax(value))  # first index wins ties, like LangChain's strict `>`
        picked.append(best)
        redundancy = np.maximum(redundancy, sim_c[:, best])
    return picked


def _query_vector(ws: Workspace, task: Task, query_vector: np.ndarray | None, dim: int) -> np.ndarray:
    q = query_vector if query_vector is not None else ws.encoder([text_of(task.input)])[0]
    q = np.asarray(q, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim:
        raise ValueError(f"query vector has {q.shape[0]} dimensions but the '{VECTOR_TABLE}' vectors have {dim}; "
                         "was the bank encoded with another encoder?")
    return q


def _check_mode(mode: str) -> None:
    if mode == "auto":
        raise ValueError("exemplar mode 'auto' is chosen per suite: resolve it with agentlearn.memory.retrieval.resolve "
                         f"first; select takes one of {', '.join(RETRIEVAL_MODES)}")
    if mode not in RETRIEVAL_MODES:
        raise ValueError(f"unknown exemplar mode {mode!r}; choose one of {', '.join(RETRIEVAL_MODES)}")


def _best_rows(scores: np.ndarray, window: int, floor: float = -np.inf) -> np.ndarray:
    """Rows of the `window` best scores above `floor`, best first, ties by row order."""
    if floor > -np.inf:
        scores = np.where(scores > floor, scores, -np.inf)
    rows = np.argpartition(-scores, window - 1)[:window] if window < len(scores) else np.arange(len(scores))
    rows = rows[scores[rows] > -np.inf]
    return rows[np.lexsort((rows, -scores[rows]))]


def rrf(rankings: Sequence[np.ndarray], n: int, k: int = RRF_K) -> np.ndarray:
    """Reciprocal rank fusion of ranked row lists: sum of 1 / (k + rank), rank 1 the best; -inf where unranked."""
    total = np.zeros(n, dtype=np.float64)
    ranked = np.zeros(n, dtype=bool)
    for rows in rankings:
        total[rows] += 1.0 / (k + np.arange(1, len(rows) + 1))
        ranked[rows] = True
    return np.where(ranked, total, -np.inf)


def cover_tools(rows: Sequence[int], tools: np.ndarray, k: int) -> list[int]:
    """From candidate rows in rank order: the best of each distinct tool first, then the rest by rank, in rank order."""
    picked: list[int] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if len(picked) == k:
            break
        if tools[row] not in seen:
            seen.add(tools[row])
            picked.append(i)
    firsts = set(picked)
    rest = [i for i in range(len(rows)) if i not in firsts][: k - len(picked)]
    return [rows[i] for i in sorted(picked + rest)]


def select(ws: Workspace, task: Task, mode: str, k: int = 3, exclude_task_id: str | None = None,
           suite: str | None = None, query_vector: np.ndarray | None = None, *, tool_aware: bool = False,
           bank_size: int | None = None, bank_seed: int = 0) -> list[Scored]:
    """The k exemplars of the task's suite that `mode` ranks best for this task (never its own).

    tool_aware: the shots cover the distinct tools of the best candidates first. bank_size: retrieve from
    a deterministic draw of that many exemplars only (bank_seed picks the draw; 0 returns nothing).
    """
    _check_mode(mode)
    if bank_size is not None and bank_size < 0:
        raise ValueError(f"bank_size must be 0 or more (or None for the whole bank), not {bank_size}")
    if k <= 0 or bank_size == 0:
        return []
    index = _index(ws, suite or task.suite)
    n = len(index.exemplars)
    if n == 0:
        return []
    base = np.zeros(n, dtype=np.float32)
    if bank_size is not None and bank_size < n:
        base[:] = -np.inf
        base[index.drawn(bank_size, bank_seed)] = 0.0
    for task_id in {task.id, exclude_task_id} - {None, ""}:
        g = index.group_of_task.get(task_id)  # type: ignore[arg-type]
        if g is not None:
            base[index.group == g] = -np.inf

    want = TOOL_AWARE_POOL * k if tool_aware else k
    rows, scores = _rank(ws, index, task, mode, want, base, query_vector)
    if tool_aware:
        rows = cover_tools(rows, index.tools(), k)
    return [Scored(index.exemplars[r], float(scores[r])) for r in rows]


def _rank(ws: Workspace, index: _Index, task: Task, mode: str, want: int, base: np.ndarray,
          query_vector: np.ndarray | None) -> tuple[list[int], Any]:
    """The mode's best `want` rows (one per task) in its order, and their scores (indexed by row)."""
    n = len(index.exemplars)
    if mode == "fixed":
        return _top_unique(base + 1.0, index.group, want), np.ones(n)
    if mode == "bm25":
        scores = base + index.bm25().get_scores(tokenize(text_of(task.input)))  # float64, as rank_bm25
        return _top_unique(scores, index.group, want), scores

    q = _query_vector(ws, task, query_vector, index.matrix.shape[1])
    if mode == "type":
        rows = index.tag_rows(task.tags)
        scores = np.full(n, -np.inf, dtype=np.float32)
        if 16 * len(rows) < n:  # a rare tag: multiply only its rows
            scores[rows] = index.matrix[rows] @ q + base[rows]
        elif len(rows):  # a common one: copying its rows out costs more than one full product
            scores[rows] = base[rows]
            return _nearest(index, q, scores, want)
        return _top_unique(scores, index.group, want), scores
    if mode == "semantic":
        return _nearest(index, q, base, want)
    if mode == "hybrid":
        lexical = base + index.bm25().get_scores(tokenize(text_of(task.input)))
        window = max(RRF_WINDOW, 4 * want)
        cosine_rows = _best_cosine_rows(index, q, base, window)
        fused = rrf([_best_rows(lexical, window, floor=0.0), cosine_rows], n)
        return _top_unique(fused, index.group, want), fused
    cand, cosine = _nearest(index, q, base, max(MMR_FETCH_K, want))
    picked = mmr(q, index.matrix[cand], want)
    return [cand[i] for i in picked], cosine


def tag_counts(ws: Workspace, suite: str) -> dict[str, int]:
    """The tags on the suite's active exemplars (what the 'type' mode can match), with how many carry each."""
    return _index(ws, suite).tag_counts()


def bank(ws: Workspace, suite: str, kinds: Iterable[str] = ("reference", "learned", "manual"),
         include_retired: bool = False) -> list[Exemplar]:
    """The suite's exemplars of the given kinds, oldest first (retired ones only if asked)."""
    wanted = set(kinds)
    return [e for e in ws.repo.find(Exemplar, suite=suite) if e.kind in wanted and (include_retired or e.active)]
