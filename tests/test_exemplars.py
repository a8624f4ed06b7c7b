"""Exemplar bank and selection: every mode on small banks, the people-win rule, incremental vectors.

`ws` (tests/conftest.py) is a workspace on real TinyDB files with the hashing encoder.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from agentlearn import caches
from agentlearn.embeddings import hash_encode
from agentlearn.memory import exemplars
from agentlearn.methods import RETRIEVAL_MODES
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage.records import Exemplar, Label, Message, Task, ToolCall, Trajectory, Verdict
from tests.seed import ME

SUITE = "s"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_task(ws, text, tags=(), split="train", suite=SUITE, task_id=None, expected="noop"):
    task = Task(suite=suite, sample_id=task_id or text[:12], split=split, input=[Message(role="user", content=text)],
                expected=ToolCall(name=expected), tags=list(tags), **({"id": task_id} if task_id else {}))
    return ws.repo.put(task)


def make_exemplar(ws, text, tool="noop", tags=(), task_id=None, n=0, suite=SUITE, ex_id=None):
    ex = Exemplar(suite=suite, task_id=task_id or f"task-{text[:20]}", kind="reference",
                  input=[Message(role="user", content=text)], call=ToolCall(name=tool), tool=tool, tags=list(tags),
                  created=T0 + timedelta(seconds=n), **({"id": ex_id} if ex_id else {}))
    return ws.repo.put(ex)


def query(text, tags=(), task_id="q-task", suite=SUITE):
    return Task(id=task_id, suite=suite, sample_id=task_id, split="heldout", input=[Message(role="user", content=text)],
                expected=ToolCall(name="secret_answer"), tags=list(tags))


def texts(scored):
    return [s.exemplar.input[0].content for s in scored]


BANK = [
    ("the office printer is jammed with paper", "troubleshoot_printer", ["printer"]),
    ("printer shows toner low warning on floor two", "troubleshoot_printer", ["printer"]),
    ("wifi network is very slow in the meeting room", "troubleshoot_network", ["network"]),
    ("vpn network connection drops every hour", "troubleshoot_network", ["network"]),
    ("please reset my expired password for email", "reset_password", ["access"]),
    ("new hire needs access to the finance drive", "provision_user_access", ["access"]),
]


@pytest.fixture
def bank(ws):
    return [make_exemplar(ws, t, tool, tags, n=n) for n, (t, tool, tags) in enumerate(BANK)]


# --- modes ------------------------------------------------------------------------------------------


def test_bm25_ranks_the_lexical_match_first(ws, bank):
    got = exemplars.select(ws, query("VPN connection keeps dropping"), "bm25", k=3)
    assert texts(got)[0] == "vpn network connection drops every hour"
    assert got[0].score > got[1].score >= got[2].score
    assert "printer" in texts(exemplars.select(ws, query("PRINTER toner"), "bm25", k=1))[0]  # lower-cased


def test_semantic_ranks_shared_words_first(ws, bank):
    got = exemplars.select(ws, query("my email password expired, reset it"), "semantic", k=2)
    assert texts(got)[0] == "please reset my expired password for email"
    assert got[0].score > got[1].score
    assert all(-1.0 <= s.score <= 1.0 + 1e-6 for s in got)


def test_type_filters_by_task_tag_then_ranks_by_similarity(ws, bank):
    got = exemplars.select(ws, query("slow wifi in the kitchen", tags=["network"]), "type", k=3)
    assert [s.exemplar.tool for s in got] == ["troubleshoot_network"] * 2
    assert texts(got)[0] == "wifi network is very slow in the meeting room"
    # A printer word in the query does not pull in printer exemplars: the tag decides the type.
    got = exemplars.select(ws, query("printer printer jammed paper", tags=["access"]), "type", k=3)
    assert {s.exemplar.tool for s in got} == {"reset_password", "provision_user_access"}
    assert exemplars.select(ws, query("printer jammed"), "type", k=3) == []  # no tags, no type


def test_type_never_reads_the_expected_call(ws, bank):
    task = query("toner", tags=["printer"]).model_copy(update={"expected": ToolCall(name="reset_password")})
    assert {s.exemplar.tool for s in exemplars.select(ws, task, "type", k=3)} == {"troubleshoot_printer"}


def test_fixed_is_the_same_oldest_set_for_every_task(ws, bank):
    a = exemplars.select(ws, query("printer jammed"), "fixed", k=3)
    b = exemplars.select(ws, query("vpn drops", task_id="other"), "fixed", k=3)
    assert texts(a) == texts(b) == [t for t, _, _ in BANK[:3]]
    assert {s.score for s in a} == {1.0}


def _vector_encoder(table):
    return lambda batch: np.stack([table[t] for t in batch]).astype(np.float32)


def test_mmr_picks_diverse_items_where_semantic_picks_near_duplicates(tmp_path):
    unit = lambda v: np.asarray(v, dtype=np.float32) / np.linalg.norm(v)  # noqa: E731
    vecs = {
        "query": unit([1.0, 0.0, 0.0]),
        "dup one": unit([0.95, 0.31, 0.0]),
        "dup two": unit([0.94, 0.34, 0.0]),
        "other angle": unit([0.80, -0.10, 0.59]),
    }
    ws = open_workspace(Settings(home=tmp_path), encoder=_vector_encoder(vecs))
    for n, t in enumerate(["dup one", "dup two", "other angle"]):
        make_exemplar(ws, t, n=n)
    assert texts(exemplars.select(ws, query("query"), "semantic", k=2)) == ["dup one", "dup two"]
    got = exemplars.select(ws, query("query"), "mmr", k=2)
    assert texts(got) == ["dup one", "other angle"]
    assert got[0].score == pytest.approx(float(vecs["dup one"] @ vecs["query"]), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_mmr_matches_langchain_reference_on_fixed_vectors(seed, lam):
    rng = np.random.default_rng(seed)
    cands = rng.normal(size=(20, 16)).astype(np.float32)
    q = rng.normal(size=16).astype(np.float32)
    for k in (1, 4, 7, 20, 25):
        assert exemplars.mmr(q, cands, k, lam) == maximal_marginal_relevance(q, cands.tolist(), lam, k)


def test_mmr_mode_matches_reference_over_the_fetched_candidates(tmp_path):
    rng = np.random.default_rng(3)
    vecs = {f"case {n}": v / np.linalg.norm(v) for n, v in enumerate(rng.normal(size=(41, 8)))}
    ws = open_workspace(Settings(home=tmp_path), encoder=_vector_encoder(vecs))
    for n in range(40):
        make_exemplar(ws, f"case {n}", task_id=f"t{n}", n=n)
    task = query("case 40")
    cand = exemplars.select(ws, task, "semantic", k=exemplars.MMR_FETCH_K)
    ref = maximal_marginal_relevance(vecs["case 40"], [vecs[t].tolist() for t in texts(cand)], 0.5, 4)
    got = exemplars.select(ws, task, "mmr", k=4)
    assert [s.exemplar.id for s in got] == [cand[i].exemplar.id for i in ref]
    assert ref != [0, 1, 2, 3]  # the case is one where MMR departs from plain similarity


# --- exclusion, dedupe, determinism -----------------------------------------------------------------


@pytest.mark.parametrize("mode", RETRIEVAL_MODES)
def test_own_task_and_excluded_task_never_selected_and_one_per_task(ws, mode):
    make_exemplar(ws, "printer jammed paper tray", tags=["printer"], task_id="me", n=0)
    make_exemplar(ws, "printer jammed paper tray again", tags=["printer"], task_id="twin", n=1)
    make_exemplar(ws, "printer jammed paper tray twin copy", tags=["printer"], task_id="twin", n=2)
    make_exemplar(ws, "printer jammed", tags=["printer"], task_id="ban", n=3)
    make_exemplar(ws, "printer out of toner", tags=["printer"], task_id="far", n=4)
    got = exemplars.select(ws, query("printer jammed paper tray", tags=["printer"], task_id="me"), mode, k=5,
                           exclude_task_id="ban")
    ids = [s.exemplar.task_id for s in got]
    assert sorted(ids) == ["far", "twin"]
    if mode in ("semantic", "bm25", "hybrid", "type"):
        assert ids[0] == "twin"


def test_other_suites_are_not_retrieved(ws, bank):
    make_exemplar(ws, "vpn network connection drops every hour exactly", suite="other", task_id="o1")
    got = exemplars.select(ws, query("vpn connection drops every hour"), "semantic", k=10)
    assert len(got) == len(BANK) and {s.exemplar.suite for s in got} == {SUITE}
    assert exemplars.select(ws, query("vpn", suite="empty"), "semantic") == []


@pytest.mark.parametrize("mode", RETRIEVAL_MODES)
def test_same_inputs_give_identical_selection(tmp_path, mode):
    ws = open_workspace(Settings(home=tmp_path), encoder=hash_encode)
    for n, (t, tool, tags) in enumerate(BANK * 3):  # duplicates: ties must break the same way
        make_exemplar(ws, t, tool, tags, task_id=f"t{n}", n=n % 4)
    task = query("network printer password", tags=["network", "access"])
    first = exemplars.select(ws, task, mode, k=4)
    caches.clear_all()
    again = exemplars.select(open_workspace(Settings(home=tmp_path), encoder=hash_encode), task, mode, k=4)
    assert [(s.exemplar.id, s.score) for s in first] == [(s.exemplar.id, s.score) for s in again]
    assert len(first) == 4


def test_unknown_mode_is_a_clear_error(ws, bank):
    with pytest.raises(ValueError, match="unknown exemplar mode 'nearest'.*fixed, type, bm25, semantic, hybrid, mmr"):
        exemplars.select(ws, query("x"), "nearest")
    with pytest.raises(ValueError, match="'auto' is chosen per suite.*retrieval.resolve"):
        exemplars.select(ws, query("x"), "auto")
    with pytest.raises(ValueError, match="bank_size must be 0 or more"):
        exemplars.select(ws, query("x"), "semantic", bank_size=-1)
    assert exemplars.select(ws, query("x"), "semantic", k=0) == []


# --- manual exemplars and retiring ------------------------------------------------------------------


def test_add_manual_is_retrievable_immediately_and_retire_removes_it(ws, bank):
    task = query("monitor flickers after docking the laptop")
    assert "monitor" not in " ".join(texts(exemplars.select(ws, task, "semantic", k=3)))
    ex = exemplars.add_manual(ws, SUITE, [{"role": "user", "content": "external monitor flickers when docking"}],
                              {"name": "diagnose_hardware_issue", "arguments": {"component": "monitor"}}, ["hardware"], who=ME)
    assert ex.kind == "manual" and ex.tool == "diagnose_hardware_issue" and ex.active
    for mode in ("semantic", "bm25", "hybrid", "mmr"):
        assert exemplars.select(ws, task, mode, k=3)[0].exemplar.id == ex.id
    assert exemplars.select(ws, query("monitor", tags=["hardware"]), "type", k=3)[0].exemplar.id == ex.id
    retired = exemplars.retire(ws, ex.id, who=ME)
    assert retired.active is False and ws.repo.get(Exemplar, ex.id).active is False
    for mode in RETRIEVAL_MODES:
        assert ex.id not in [s.exemplar.id for s in exemplars.select(ws, task, mode, k=10)]


def test_add_manual_rejects_bad_input_and_stores_nothing(ws):
    with pytest.raises(ValueError, match="input_messages"):
        exemplars.add_manual(ws, SUITE, [], {"name": "x"}, who=ME)
    with pytest.raises(ValueError, match="call.name"):
        exemplars.add_manual(ws, SUITE, [Message(role="user", content="hi")], ToolCall(name=" "), who=ME)
    assert ws.repo.count(Exemplar) == 0


def test_retire_unknown_id_is_a_clear_error(ws):
    with pytest.raises(Exception, match="no Exemplar with id 'nope'"):
        exemplars.retire(ws, "nope", who=ME)


# --- vectors are synced incrementally ---------------------------------------------------------------


def test_unchanged_texts_are_never_encoded_again(ws, bank):
    seen: list[str] = []

    def counting(batch):
        seen.extend(batch)
        return hash_encode(batch)

    ws.encoder = counting
    exemplars.select(ws, query("printer"), "semantic")
    assert len(seen) == len(BANK) + 1  # the bank once, then the query
    seen.clear()
    exemplars.select(ws, query("wifi"), "semantic")
    exemplars.select(ws, query("wifi"), "mmr")
    assert seen == ["wifi", "wifi"]  # queries only
    seen.clear()
    exemplars.add_manual(ws, SUITE, [Message(role="user", content="scanner offline")], ToolCall(name="fix"), who=ME)
    exemplars.select(ws, query("scanner"), "semantic")
    assert seen == ["scanner offline", "scanner"]
    seen.clear()
    caches.clear_all()  # a new process: vectors come from disk, nothing is re-encoded
    exemplars.select(open_workspace(ws.settings, encoder=counting), query("vpn"), "semantic")
    assert seen == ["vpn"]
    seen.clear()
    exemplars.select(ws, query("vpn"), "bm25")
    exemplars.select(ws, query("vpn"), "fixed")
    assert seen == []  # lexical and fixed modes need no query vector


# --- sync_bank: learned exemplars, people win over the verifier -------------------------------------


def _traj(ws, task, name, success, split="train", when=0):
    return ws.repo.put(Trajectory(task_id=task.id, suite=task.suite, split=split, tool_call=ToolCall(name=name),
                                  verdict=Verdict(success=success, reward=float(success), reason=""),
                                  created=T0 + timedelta(seconds=when)))


def _label(ws, traj, who, verdict, when):
    ws.repo.put(Label(trajectory_id=traj.id, annotator=who, verdict=verdict, created=T0 + timedelta(minutes=when)))


def test_sync_bank_people_win_over_the_verifier(ws):
    task = make_task(ws, "printer jammed", tags=["printer"], task_id="task-a")
    held = make_task(ws, "wifi slow", split="heldout", task_id="task-h")
    verified = _traj(ws, task, "v_ok", True, when=1)
    person_fail = _traj(ws, task, "p_fail", True, when=2)
    _label(ws, person_fail, "ann", "fail", 1)
    person_ok = _traj(ws, task, "p_ok", False, when=3)
    _label(ws, person_ok, "ann", "success", 1)
    changed_mind = _traj(ws, task, "changed", True, when=4)
    _label(ws, changed_mind, "ann", "success", 1)
    _label(ws, changed_mind, "ann", "fail", 2)  # latest label of an annotator counts
    tie = _traj(ws, task, "tie", True, when=5)
    _label(ws, tie, "ann", "success", 1)
    _label(ws, tie, "bob", "fail", 1)
    majority = _traj(ws, task, "majority", False, when=6)
    for who, v in [("ann", "success"), ("bob", "success"), ("cy", "fail")]:
        _label(ws, majority, who, v, 1)
    _traj(ws, held, "heldout_ok", True, when=7)  # heldout runs never teach
    no_call = ws.repo.put(Trajectory(task_id=task.id, suite=SUITE, split="train", tool_call=None,
                                     verdict=Verdict(success=True, reward=1.0, reason="")))
    _label(ws, no_call, "ann", "success", 1)

    assert exemplars.sync_bank(ws, SUITE) == 3
    learned = {e.call.name: e for e in ws.repo.all(Exemplar) if e.kind == "learned" and e.active}
    assert set(learned) == {"v_ok", "p_ok", "majority"}
    ex = learned["p_ok"]
    assert ex.id == exemplars.learned_id(person_ok.id) and ex.trajectory_id == person_ok.id
    assert ex.task_id == "task-a" and ex.input == task.input and ex.tool == "p_ok" and ex.tags == ["printer"]

    # Idempotent: same ids, nothing rewritten.
    before = ws.repo.version(Exemplar)
    assert exemplars.sync_bank(ws, SUITE) == 3
    assert ws.repo.version(Exemplar) == before

    # A person now fails the verified run: its exemplar is retired, not deleted, and not retrieved.
    _label(ws, verified, "bob", "fail", 3)
    assert exemplars.sync_bank(ws, SUITE) == 2
    assert ws.repo.get(Exemplar, exemplars.learned_id(verified.id)).active is False
    got = exemplars.select(ws, query("printer jammed", task_id="q"), "semantic", k=5)
    assert [s.exemplar.call.name for s in got] == ["p_ok"]  # one per task: the rest share task-a


def test_learned_exemplars_feed_selection(ws):
    task = make_task(ws, "laptop battery drains fast", task_id="task-b")
    _traj(ws, task, "diagnose_hardware_issue", True)
    exemplars.sync_bank(ws, SUITE)
    assert exemplars.select(ws, query("battery drains"), "bm25")[0].exemplar.tool == "diagnose_hardware_issue"
    assert exemplars.select(ws, query("battery drains", task_id="task-b"), "bm25") == []  # its own task


def test_text_names_non_user_roles():
    msgs = [Message(role="system", content="mail-01 at 100% CPU"), Message(role="user", content="help"),
            Message(role="technician", content="which host?")]
    assert exemplars.text_of(msgs) == "system: mail-01 at 100% CPU\nhelp\ntechnician: which host?"


# --- the real encoder -------------------------------------------------------------------------------


def test_semantic_ranking_with_real_minilm(tmp_path):
    from agentlearn.embeddings import encode

    ws = open_workspace(Settings(home=tmp_path), encoder=encode)
    for n, (t, tool, tags) in enumerate(BANK):
        make_exemplar(ws, t, tool, tags, n=n)
    cases = {
        "I can't sign in, my login credentials stopped working": "reset_password",
        "the laser printer keeps crumpling sheets": "troubleshoot_printer",
        "internet keeps cutting out when I'm on the corporate tunnel": "troubleshoot_network",
    }
    for text, tool in cases.items():
        got = exemplars.select(ws, query(text), "semantic", k=3)
        assert got[0].exemplar.tool == tool, (text, texts(got))
        assert got[0].score > got[-1].score
    # MMR over real vectors returns k distinct tasks, its first pick the most similar one.
    got = exemplars.select(ws, query("printer paper jam"), "mmr", k=3)
    assert got[0].exemplar.tool == "troubleshoot_printer" and len({s.exemplar.task_id for s in got}) == 3


def test_a_change_made_through_another_workspace_is_seen(ws, bank):
    task = query("scanner offline")
    assert exemplars.select(ws, task, "bm25", k=1)[0].exemplar.tool != "fix_scanner"
    other = open_workspace(ws.settings, encoder=hash_encode)  # as another process would
    ex = exemplars.add_manual(other, SUITE, [Message(role="user", content="scanner offline")], ToolCall(name="fix_scanner"), who=ME)
    for mode in ("bm25", "semantic"):
        assert exemplars.select(ws, task, mode, k=1)[0].exemplar.id == ex.id
    exemplars.retire(other, ex.id, who=ME)
    assert ex.id not in [s.exemplar.id for s in exemplars.select(ws, task, "semantic", k=10)]


def test_bm25_scores_equal_rank_bm25_okapi():
    from rank_bm25 import BM25Okapi

    corpus = [exemplars.tokenize(t) for t, _, _ in BANK] + [["the", "the", "printer"], ["the"], []]
    ours = exemplars.Bm25(corpus)
    ref = BM25Okapi(corpus, k1=1.5, b=0.75)
    for q in ["the printer printer jammed", "vpn", "unknown words only", "the the network wifi", ""]:
        tokens = exemplars.tokenize(q)
        np.testing.assert_allclose(ours.get_scores(tokens), ref.get_scores(tokens), rtol=1e-12, atol=1e-12)
    assert exemplars.Bm25([[], []]).get_scores(["x"]).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("tag", ["rare", "common"])  # a rare tag scores only its rows, a common one all rows
def test_type_equals_semantic_restricted_to_the_tag(ws, tag):
    words = "printer network password drive laptop email vpn toner wifi monitor".split()
    for n in range(40):
        make_exemplar(ws, " ".join(words[(n * 3 + i) % 10] for i in range(n % 4 + 1)) + f" case{n}",
                      tags=["rare" if n % 20 == 0 else "common"], task_id=f"t{n}", n=n)
    task = query("printer email wifi", tags=[tag])
    everything = exemplars.select(ws, task, "semantic", k=40)
    expected = [(s.exemplar.id, s.score) for s in everything if tag in s.exemplar.tags][:3]
    got = exemplars.select(ws, task, "type", k=3)
    assert [s.exemplar.id for s in got] == [i for i, _ in expected]
    assert [s.score for s in got] == pytest.approx([sc for _, sc in expected], abs=1e-6)
    assert len(got) == (2 if tag == "rare" else 3)


# --- hybrid: reciprocal rank fusion -----------------------------------------------------------------


def _unit(cos: float, twist: int = 0) -> np.ndarray:
    """A unit vector whose cosine with the query [1, 0, 0, 0] is `cos` (twist: which other axis)."""
    v = np.zeros(4, dtype=np.float32)
    v[0], v[1 + twist % 3] = cos, np.sqrt(1 - cos * cos)
    return v


def test_hybrid_fuses_bm25_and_cosine_ranks_by_rrf(tmp_path):
    # BM25 order: A (both query words), B (one). Cosine order: B, C, A, D, then the fillers.
    vecs = {"alpha beta": _unit(1.0), "alpha beta gamma": _unit(0.7), "alpha delta": _unit(0.9),
            "zeta eta": _unit(0.8, 1), "theta": _unit(0.6, 2)}
    fillers = [f"filler{n} word{n}" for n in range(6)]
    vecs.update({f: _unit(-0.5 + n * 0.01, n) for n, f in enumerate(fillers)})
    ws = open_workspace(Settings(home=tmp_path), encoder=_vector_encoder(vecs))
    for n, t in enumerate(["alpha beta gamma", "alpha delta", "zeta eta", "theta", *fillers]):
        make_exemplar(ws, t, task_id=f"t{n}", n=n)
    task = query("alpha beta")
    assert texts(exemplars.select(ws, task, "bm25", k=2)) == ["alpha beta gamma", "alpha delta"]
    assert texts(exemplars.select(ws, task, "semantic", k=4)) == ["alpha delta", "zeta eta", "alpha beta gamma",
                                                                   "theta"]
    got = exemplars.select(ws, task, "hybrid", k=4)
    # B: 1/(60+2) + 1/(60+1); A: 1/(60+1) + 1/(60+3); C: cosine rank 2 only; D: cosine rank 4 only.
    assert texts(got) == ["alpha delta", "alpha beta gamma", "zeta eta", "theta"]
    assert [s.score for s in got] == pytest.approx([1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62, 1 / 64])


def test_rrf_of_one_ranking_keeps_its_order_and_marks_unranked_rows():
    fused = exemplars.rrf([np.array([2, 0])], 4)
    assert fused[2] > fused[0] and np.isinf(fused[[1, 3]]).all()
    both = exemplars.rrf([np.array([2, 0]), np.array([0, 3])], 4)
    assert both[0] == pytest.approx(1 / 62 + 1 / 61) and both[3] == pytest.approx(1 / 62)


def test_hybrid_without_shared_words_ranks_like_semantic(ws, bank):
    task = query("zzz qqq unmatched")
    assert texts(exemplars.select(ws, task, "hybrid", k=4)) == texts(exemplars.select(ws, task, "semantic", k=4))


# --- tool-aware selection ---------------------------------------------------------------------------


TOOL_BANK = [  # the printer wording dominates; two other tools share some of its words
    ("printer jammed paper tray floor two", "troubleshoot_printer"),
    ("printer jammed paper tray floor three", "troubleshoot_printer"),
    ("printer jammed paper tray lobby", "troubleshoot_printer"),
    ("printer jammed paper again", "troubleshoot_printer"),
    ("printer driver install access request", "provision_user_access"),
    ("printer network unreachable", "troubleshoot_network"),
    ("laptop battery drains", "diagnose_hardware_issue"),
]


@pytest.fixture
def tool_bank(ws):
    return [make_exemplar(ws, t, tool, task_id=f"t{n}", n=n) for n, (t, tool) in enumerate(TOOL_BANK)]


@pytest.mark.parametrize("mode", ["bm25", "semantic", "hybrid", "mmr", "fixed"])
def test_tool_aware_covers_the_distinct_tools_of_the_best_candidates(ws, tool_bank, mode):
    task = query("printer jammed paper tray")
    plain = exemplars.select(ws, task, mode, k=3)
    aware = exemplars.select(ws, task, mode, k=3, tool_aware=True)
    pool = exemplars.select(ws, task, mode, k=12)
    distinct = list(dict.fromkeys(s.exemplar.tool for s in pool))[:3]
    assert {s.exemplar.tool for s in aware} == set(distinct)
    assert aware[0].exemplar.id == plain[0].exemplar.id  # the best candidate always stays
    ranks = [[s.exemplar.id for s in pool].index(s.exemplar.id) for s in aware]
    assert ranks == sorted(ranks)  # the shots keep the mode's order
    if mode in ("bm25", "semantic"):
        assert {s.exemplar.tool for s in plain} == {"troubleshoot_printer"}  # k copies of one call


def test_tool_aware_fills_by_rank_when_tools_run_out(ws, tool_bank):
    task = query("printer jammed paper tray")
    got = exemplars.select(ws, task, "bm25", k=5, tool_aware=True)
    pool = [s.exemplar.id for s in exemplars.select(ws, task, "bm25", k=20)]
    tools = [s.exemplar.tool for s in got]
    assert len(got) == 5 and len(set(tools)) == 4  # every tool in the pool, then the next-best printer case
    assert [pool.index(s.exemplar.id) for s in got] == sorted(pool.index(s.exemplar.id) for s in got)


def test_cover_tools_picks_firsts_then_fills_in_rank_order():
    tools = np.asarray(["a", "a", "b", "a", "c"], dtype=object)
    assert exemplars.cover_tools([0, 1, 2, 3, 4], tools, 2) == [0, 2]
    assert exemplars.cover_tools([0, 1, 2, 3, 4], tools, 4) == [0, 1, 2, 4]
    assert exemplars.cover_tools([3, 1], tools, 3) == [3, 1]


# --- bank draws -------------------------------------------------------------------------------------


def _drawn(ws, size, seed=0, task=None):
    got = exemplars.select(ws, task or query("anything"), "fixed", k=1000, bank_size=size, bank_seed=seed)
    return {s.exemplar.id for s in got}


@pytest.fixture
def big_bank(ws):
    return [make_exemplar(ws, f"case {n} words", tool=f"tool{n % 5}", task_id=f"t{n}", n=n, ex_id=f"ex{n:02d}")
            for n in range(40)]


def test_bank_size_draws_are_deterministic_and_nested(ws, big_bank):
    draws = {size: _drawn(ws, size) for size in (0, 1, 4, 8, 16, 40, 100)}
    assert [len(draws[s]) for s in (0, 1, 4, 8, 16, 40, 100)] == [0, 1, 4, 8, 16, 40, 40]
    assert draws[1] <= draws[4] <= draws[8] <= draws[16] <= draws[40]  # a learning curve's banks nest
    assert draws[0] == set() and exemplars.select(ws, query("x"), "semantic", bank_size=0) == []
    caches.clear_all()
    again = open_workspace(ws.settings, encoder=hash_encode)  # a new process draws the same
    assert all(_drawn(again, s) == draws[s] for s in (4, 8, 16))
    assert _drawn(ws, 8, seed=1) != draws[8]  # another seed, another draw


def test_bank_size_applies_to_every_mode_and_still_leaves_the_task_out(ws, big_bank):
    allowed = _drawn(ws, 8)
    me = query("case 3 words", task_id="t3", tags=[])
    for mode in ("bm25", "semantic", "hybrid", "mmr", "fixed"):
        got = {s.exemplar.id for s in exemplars.select(ws, me, mode, k=20, bank_size=8)}
        assert got <= allowed - {"ex03"} and len(got) == len(allowed - {"ex03"})


def test_adding_exemplars_keeps_the_place_of_the_others_in_a_draw(ws, big_bank):
    before = _drawn(ws, 10)
    make_exemplar(ws, "a new case", task_id="t-new", n=99, ex_id="ex-new")
    after = _drawn(ws, 10)
    assert len(before - after) <= 1 and len(after - before) <= 1
