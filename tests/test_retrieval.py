"""Retrieval per suite: resolve "auto", choose by leave-one-out in two stages, store the choice, the CLI.

Stage b runs through an injected runner that scores configurations as the test wants, except in the
tests that run the real agent with the fake chat model (tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest

from agentlearn import agent, cli
from agentlearn.embeddings import hash_encode
from agentlearn.memory import exemplars, retrieval
from agentlearn.memory.retrieval import Config
from agentlearn.methods import MODES, RETRIEVAL_MODES
from agentlearn.tasks import import_jsonl, load_tasks
from agentlearn.workspace import open_workspace
from storage.records import Suite, Task, ToolCall, Trajectory, Verdict

SUITE = "desk"
REQUESTS = [  # (request, tool, tag)
    ("the printer on floor two is jammed with paper", "troubleshoot_printer", "printer"),
    ("printer in the lobby shows a paper jam", "troubleshoot_printer", "printer"),
    ("toner is empty on the third floor printer", "troubleshoot_printer", "printer"),
    ("wifi is slow in the meeting room", "troubleshoot_network", "network"),
    ("the vpn connection drops every hour", "troubleshoot_network", "network"),
    ("internet is down in the warehouse office", "troubleshoot_network", "network"),
    ("reset the expired password of akhan", "reset_password", "password"),
    ("bob forgot his email password, please reset it", "reset_password", "password"),
    ("new hire needs access to the finance drive", "provision_user_access", "access"),
    ("grant dana access to the design share", "provision_user_access", "access"),
]


def write_suite(tmp_path, ws, with_tags=True, rows=REQUESTS, name=SUITE):
    lines = []
    for n, (text, tool, tag) in enumerate(rows):
        line = {"sample_id": f"{tag}_{n}" if with_tags else f"case{chr(97 + n)}",
                "input": [{"role": "user", "content": text}],
                "expected_function_call": {"name": tool, "arguments": {}}}
        if not with_tags:
            line["tags"] = []
        lines.append(json.dumps(line))
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines))
    return import_jsonl(ws, path, name, heldout=0.0)  # every task in train: leave-one-out uses them all


def shots(ws, task, config: Config) -> list[str]:
    """The exemplar ids the agent is shown for a task under a configuration."""
    return [x.exemplar.id for x in exemplars.select(ws, task, config.mode, k=config.k, tool_aware=config.tool_aware)]


def scripted_runner(judge):
    """A stage-b runner: judge(ws, task, config) -> (name right, call right) for each task it is given.

    A real model answers the same prompt the same way, so a judge should depend on the shots, not the name
    of the configuration: choose reuses an answer where an earlier finalist showed the same shots.
    """
    seen: list[tuple[Config, int]] = []

    def runner(ws, tasks: list[Task], config: Config, on_task, tools=None, ranker="auto") -> list[list[Trajectory]]:
        seen.append((config, len(tasks)))
        out = []
        for n, task in enumerate(tasks):
            right_name, right_call = judge(ws, task, config)
            scores = {"name_match": float(right_name), "call_match": float(right_call), "args_score": 1.0}
            out.append([Trajectory(task_id=task.id, suite=task.suite, split=task.split,
                                   tool_call=ToolCall(name=task.expected.name if right_name else "other"),
                                   verdict=Verdict(success=right_call, reward=float(right_call), reason="",
                                                   scores=scores))])
            on_task(n + 1)
        return out

    runner.seen = seen  # type: ignore[attr-defined]
    return runner


def first_tasks(share: float, call_share: float | None = None):
    """A judge that gets the first `share` of REQUESTS right by name (and `call_share` by call), whatever the shots."""
    texts = [text for text, _, _ in REQUESTS]

    def judge(ws, task, config):
        content = task.input[0].content
        n = texts.index(content) if content in texts else 0
        return n < round(share * len(REQUESTS)), n < round((share if call_share is None else call_share)
                                                           * len(REQUESTS))
    return judge


def like(ws, target: Config):
    """A judge that is right exactly where the shots are those `target` shows."""
    return lambda ws_, task, config: (shots(ws, task, config) == shots(ws, task, target),) * 2


# --- resolve ----------------------------------------------------------------------------------------


def test_resolve_auto_before_and_after_a_choice(ws, tmp_path):
    write_suite(tmp_path, ws)
    d = retrieval.DEFAULT_CHOICE
    train = load_tasks(ws, SUITE, "train")
    best = retrieval.finalists(retrieval.score_retrieval(ws, train, retrieval.candidates(True)), 1)[0]
    # First use: a model-free choice is made and stored, so the suite adapts before any model run.
    assert retrieval.resolve(ws, SUITE, "auto", 7, False) == (best.mode, best.k, best.tool_aware)
    assert ws.repo.get(Suite, SUITE).retrieval["stage_b"] == []
    assert retrieval.resolve(ws, "no-such-suite", "auto", 7, False) == (d["mode"], d["k"], d["tool_aware"])
    assert retrieval.resolve(ws, SUITE, "bm25", 5, False) == ("bm25", 5, False)  # concrete modes pass through
    with pytest.raises(ValueError, match="unknown exemplar mode 'nearest'; choose auto or one of fixed"):
        retrieval.resolve(ws, SUITE, "nearest", 3, False)
    ws.repo.update(Suite, SUITE, lambda s: s.model_copy(update={"retrieval": {"mode": "mmr", "k": 5,
                                                                              "tool_aware": False}}))
    assert retrieval.resolve(ws, SUITE, "auto", 3, True) == ("mmr", 5, False)
    assert retrieval.resolve(ws, SUITE, "semantic", 1, True) == ("semantic", 1, True)


def test_a_stored_choice_with_an_unknown_mode_is_made_again(ws, tmp_path):
    write_suite(tmp_path, ws)
    ws.repo.update(Suite, SUITE, lambda s: s.model_copy(update={"retrieval": {"mode": "gone", "k": 2}}))
    assert retrieval.current(ws, SUITE) == {}
    mode = retrieval.resolve(ws, SUITE, "auto", 3, False)[0]
    assert mode in retrieval.CANDIDATE_MODES and retrieval.current(ws, SUITE)["mode"] == mode


def test_a_suite_too_small_to_choose_for_gets_the_default(ws, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"sample_id": "a", "input": [{"role": "user", "content": "reset my password"}],
                                "expected_function_call": {"name": "reset", "arguments": {}}}))
    import_jsonl(ws, path, "tiny", heldout=0.0)
    d = retrieval.DEFAULT_CHOICE
    assert retrieval.resolve(ws, "tiny", "auto", 3, False) == (d["mode"], d["k"], d["tool_aware"])
    assert retrieval.current(ws, "tiny") == {}


# --- stage a ----------------------------------------------------------------------------------------


def test_candidates_cover_every_mode_k_and_tool_awareness():
    with_type = retrieval.candidates(with_type=True)
    assert {c.mode for c in with_type} == set(RETRIEVAL_MODES)
    assert len(with_type) == len(RETRIEVAL_MODES) * 3 * 2
    assert "type" not in {c.mode for c in retrieval.candidates(with_type=False)}


def test_stage_a_scores_recall_top1_and_share_of_the_expected_tool(ws, tmp_path):
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    rows = retrieval.score_retrieval(ws, train, [Config("bm25", 1, False), Config("bm25", 5, False),
                                                 Config("fixed", 1, False)])
    k1, k5, fixed = rows
    assert k1["recall"] == k1["top1"] == k1["share"]  # one shot: all three are the same question
    assert k5["recall"] >= k1["recall"] and k5["share"] <= k5["recall"]
    assert fixed["score"] < k1["score"]  # the first exemplar is right for few tasks; BM25's best for most
    for row in rows:
        expected = (row["recall"] + 0.5 * row["top1"] + 0.5 * row["share"]) / 2
        assert row["score"] == pytest.approx(expected, abs=1e-3)


def test_finalists_skip_configurations_that_pick_the_same_shots():
    rows = [{"mode": "bm25", "k": 1, "tool_aware": False, "score": 0.9, "_picks": (("a",),)},
            {"mode": "bm25", "k": 1, "tool_aware": True, "score": 0.9, "_picks": (("a",),)},
            {"mode": "semantic", "k": 3, "tool_aware": False, "score": 0.95, "_picks": (("b",),)},
            {"mode": "hybrid", "k": 1, "tool_aware": False, "score": 0.9, "_picks": (("c",),)},
            {"mode": "fixed", "k": 1, "tool_aware": False, "score": 0.1, "_picks": (("d",),)}]
    assert retrieval.finalists(rows, 3) == [Config("semantic", 3, False), Config("bm25", 1, False),
                                            Config("hybrid", 1, False)]


# --- choose -----------------------------------------------------------------------------------------


def test_choose_picks_what_the_agent_does_best_and_stores_it(ws, tmp_path):
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    expected_finalists = retrieval.finalists(retrieval.score_retrieval(ws, train, retrieval.candidates(True)))
    target = expected_finalists[1]  # not the stage-a favourite: stage b must decide
    runner = scripted_runner(like(ws, target))
    steps = []
    choice = retrieval.choose(ws, SUITE, progress=lambda i, n, what: steps.append((i, n, what)), runner=runner)

    assert [c for c, _ in runner.seen] == expected_finalists
    same_as_first = sum(shots(ws, t, target) == shots(ws, t, expected_finalists[0]) for t in train)
    assert [n for _, n in runner.seen][:2] == [len(train), len(train) - same_as_first]  # shown shots run once
    assert (choice["mode"], choice["k"], choice["tool_aware"]) == (target.mode, target.k, target.tool_aware)
    assert choice["n_train"] == len(train) == len(REQUESTS)
    assert len(choice["stage_a"]) == len(retrieval.candidates(True)) and "_picks" not in choice["stage_a"][0]
    rows = {Config(r["mode"], r["k"], r["tool_aware"]): r for r in choice["stage_b"]}
    assert rows[target]["name_accuracy"] == 1.0 and rows[target]["ran"] == len(train) - same_as_first
    assert all(r["name_accuracy"] < 1.0 for c, r in rows.items() if c != target)
    assert choice["model"] == ws.settings.model_label and choice["chosen_at"]
    assert ws.repo.get(Suite, SUITE).retrieval == choice
    assert retrieval.resolve(ws, SUITE, "auto", 1, False) == (target.mode, target.k, target.tool_aware)
    total = len(retrieval.candidates(True)) + 3 * len(train)  # stage b counts every task, run or reused
    n_a = len(retrieval.candidates(True))
    assert [s[0] for s in steps[:n_a + len(train)]] == list(range(1, n_a + len(train) + 1))  # stage a, first finalist
    assert steps[-1][0] == total and {s[1] for s in steps} == {total}
    assert steps[-1][2].startswith("stage b: ") and "name accuracy" in steps[-1][2]
    assert steps[n_a + len(train) - 2][2] == f"stage b: {expected_finalists[0].label()}, {len(train) - 1} of " \
        f"{len(train)} tasks"
    assert [s[0] for s in steps] == sorted(s[0] for s in steps)


def test_the_ranker_chooses_the_tool_when_its_top1_beats_the_model(ws, tmp_path):
    """With one tool offered the ranker's first tool is the answer's name: when that is right more often on
    train (leave-one-out) than the model choosing among the likeliest tools, auto offers one tool."""
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    stage_t = retrieval.score_tool_lists(ws, train)
    top1 = stage_t["top1"][stage_t["ranker"]]
    assert top1 > 0  # the fake encoder's ranker gets some first tools right

    worse = scripted_runner(lambda ws_, task, config: (False, False))  # the model never names the right tool
    choice = retrieval.choose(ws, SUITE, runner=worse)
    assert choice["tools"] == 1 and choice["ranker"] == stage_t["ranker"]
    assert choice["ranker_top1"] == stage_t["top1"]
    assert "tool chosen by the" in retrieval.summary(choice)

    better = scripted_runner(lambda ws_, task, config: (True, True))  # the model beats any ranker
    choice = retrieval.choose(ws, SUITE, runner=better)
    assert choice["tools"] == stage_t["tools"]


def test_a_model_free_choice_takes_stage_a_best_and_runs_nothing(ws, tmp_path):
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    best = retrieval.finalists(retrieval.score_retrieval(ws, train, retrieval.candidates(True)), 1)[0]
    runner = scripted_runner(like(ws, best))
    choice = retrieval.choose(ws, SUITE, runner=runner, how_many=0)
    assert runner.seen == [] and choice["stage_b"] == []
    assert (choice["mode"], choice["k"], choice["tool_aware"]) == (best.mode, best.k, best.tool_aware)
    with pytest.raises(ValueError, match="cannot be negative"):
        retrieval.choose(ws, SUITE, runner=runner, how_many=-1)


def test_choose_breaks_ties_by_call_accuracy_then_stage_a_then_smaller_k(ws, tmp_path):
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    finalists = retrieval.finalists(retrieval.score_retrieval(ws, train, retrieval.candidates(True)))
    by_call = retrieval.choose(ws, SUITE, runner=scripted_runner(
        lambda ws_, task, config: (True, like(ws, finalists[2])(ws_, task, config)[1])))
    assert (by_call["mode"], by_call["k"], by_call["tool_aware"]) == \
        (finalists[2].mode, finalists[2].k, finalists[2].tool_aware)
    by_stage_a = retrieval.choose(ws, SUITE, runner=scripted_runner(first_tasks(0.5)))
    assert (by_stage_a["mode"], by_stage_a["k"]) == (finalists[0].mode, finalists[0].k)


def test_type_is_a_candidate_only_when_exemplars_share_a_tag(ws, tmp_path):
    write_suite(tmp_path, ws, with_tags=False)
    choice = retrieval.choose(ws, SUITE, runner=scripted_runner(first_tasks(0.5)))
    assert "type" not in {r["mode"] for r in choice["stage_a"]}
    unique = [(text, tool, f"only{n}x") for n, (text, tool, _) in enumerate(REQUESTS)]  # one tag per task
    write_suite(tmp_path, ws, rows=unique, name="unique")
    assert all(t.tags for t in load_tasks(ws, "unique"))
    choice = retrieval.choose(ws, "unique", runner=scripted_runner(first_tasks(0.5)))
    assert "type" not in {r["mode"] for r in choice["stage_a"]}
    write_suite(tmp_path, ws, name="tagged")
    tagged = retrieval.choose(ws, "tagged", runner=scripted_runner(first_tasks(0.5)))
    assert "type" in {r["mode"] for r in tagged["stage_a"]}


def test_choose_refuses_a_suite_with_fewer_than_two_train_tasks_and_stores_nothing(ws, tmp_path):
    write_suite(tmp_path, ws, rows=REQUESTS[:1], name="tiny")
    with pytest.raises(ValueError, match="'tiny' has 1 train task.*at least 2"):
        retrieval.choose(ws, "tiny", runner=scripted_runner(first_tasks(1.0)))
    assert ws.repo.get(Suite, "tiny").retrieval == {}
    with pytest.raises(ValueError, match="no suite named 'nope'"):
        retrieval.choose(ws, "nope")


def test_choose_with_the_real_agent_and_a_fake_model(ws, tmp_path, make_fake_chat):
    write_suite(tmp_path, ws)
    ws.chat_factory = make_fake_chat(['<tool_call>{"name": "troubleshoot_printer", "arguments": {}}</tool_call>'])
    before = ws.repo.count(Trajectory)
    choice = retrieval.choose(ws, SUITE, runner=agent.run_with_agent)  # agent.run_tasks, nothing stored
    assert ws.repo.count(Trajectory) == before
    printer = sum(tool == "troubleshoot_printer" for _, tool, _ in REQUESTS) / len(REQUESTS)
    assert [r["name_accuracy"] for r in choice["stage_b"]] == [pytest.approx(printer)] * 3
    assert len(ws.chat_factory.seen) == sum(r["ran"] for r in choice["stage_b"])  # each distinct prompt once
    assert choice["stage_b"][0]["ran"] == len(REQUESTS)
    assert choice["mode"] in RETRIEVAL_MODES


# --- CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def cli_ws(ws, tmp_path, monkeypatch):
    write_suite(tmp_path, ws)
    monkeypatch.setattr(cli, "open_workspace", lambda *a, **kw: open_workspace(ws.settings, encoder=hash_encode))
    monkeypatch.setattr(agent, "run_with_agent", scripted_runner(first_tasks(0.7, 0.3)))
    return ws


def test_cli_choose_and_show(cli_ws, capsys):
    assert cli.main(["retrieval", "show", "--suite", SUITE]) == 0
    assert "no choice yet: the first run with auto makes a model-free one" in capsys.readouterr().out
    assert cli.main(["retrieval", "choose", "--suite", SUITE, "--json"]) == 0
    captured = capsys.readouterr()
    choice = json.loads(captured.out)
    assert choice == cli_ws.repo.get(Suite, SUITE).retrieval
    assert "stage a: " in captured.err and "stage b: " in captured.err
    assert cli.main(["retrieval", "show", "--suite", SUITE]) == 0
    out = capsys.readouterr().out
    assert f"by leave-one-out on {len(REQUESTS)} train tasks" in out
    # the ranker's first tool (90% on train) beats the model's 70%: it chooses the tool
    assert "tool chosen by the exemplars ranker" in out and "right on 90.0%" in out and "tools 70.0%" in out
    assert out.count("  agent  ") == 3 and out.count("  shots  ") == 10 and out.count("  tools  ") == 3
    assert cli.main(["retrieval", "show", "--suite", SUITE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == choice


def test_cli_refusals_are_one_clear_line(cli_ws, capsys, tmp_path):
    write_suite(tmp_path, cli_ws, rows=REQUESTS[:1], name="tiny")
    assert cli.main(["retrieval", "choose", "--suite", "tiny"]) == 2
    assert capsys.readouterr().err.startswith("error: suite 'tiny' has 1 train task(s)")
    assert cli.main(["retrieval", "show", "--suite", "nope"]) == 2
    assert "no suite named 'nope'" in capsys.readouterr().err
    assert cli.main(["retrieval", "choose", "--suite", SUITE, "--finalists", "-1"]) == 2
    assert "cannot be negative" in capsys.readouterr().err
    assert cli.main(["retrieval", "choose", "--suite", SUITE, "--finalists", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["stage_b"]) == 1


# --- the Exemplars page ----------------------------------------------------------------------------


@pytest.fixture
def page_ws(ws, monkeypatch, _navigation_like_a_server):
    """The seeded page-test workspace (tests/seed.py), opened by the app the way test_pages does."""
    from pages import _ui
    from tests.seed import seed_workspace

    monkeypatch.setenv("AGENTLEARN_DEMO", "0")
    monkeypatch.setenv("AGENTLEARN_LOCAL_USER", "alice")
    monkeypatch.setattr(_ui, "ENCODER", hash_encode)
    monkeypatch.setattr(_ui, "CHAT_FACTORY", ws.chat_factory)
    seed_workspace(ws.repo)
    _ui.clear()
    yield ws
    _ui.clear()


def test_exemplars_page_shows_modes_choice_tags_and_starts_a_choice(page_ws, monkeypatch):
    from agentlearn import processes
    from tests.seed import SUITE as SEEDED
    from tests.test_pages import open_page

    at = open_page("pages/exemplars.py")
    modes = [d for d in at.dataframe if "what it does" in d.value.columns][0].value
    assert list(modes["mode"]) == list(MODES)
    assert any(t.value.startswith("no choice yet: the first run with auto") for t in at.text)

    started = []
    monkeypatch.setattr(processes, "start", lambda ws, kind, args, who=None: started.append((kind, list(args))))
    at.button(key="ex_choose").click().run()
    assert started == [("auto", ["retrieval", "choose", "--suite", SEEDED])]

    choice = retrieval.choose(page_ws, SEEDED, runner=scripted_runner(first_tasks(0.5)))
    at = open_page("pages/exemplars.py")
    assert any("by leave-one-out on" in t.value for t in at.text)
    stage_b = [d for d in at.dataframe if "name_accuracy" in d.value.columns][0].value
    assert list(stage_b["mode"]) == [r["mode"] for r in choice["stage_b"]]
    counts = exemplars.tag_counts(page_ws, SEEDED)
    assert counts and at.multiselect(key="ex_query_tags").options == [f"{t} ({n})" for t, n in counts.items()]
    at.multiselect(key="ex_query_tags").select("accounts")
    at.checkbox(key="ex_tool_aware").check()
    at.text_area(key="ex_query").input("password reset for akhan").run()
    assert not at.exception
    headers = [m.value for m in at.markdown]
    assert all(f"**{m}**" in headers for m in MODES)
    assert any(c.value.startswith("= ") for c in at.caption)  # what auto resolved to
    assert any("not scores across columns" in c.value for c in at.caption)
    assert any(t.value.startswith("#1 · ") for t in at.text)  # ranked, with the score named


# --- the real encoder -------------------------------------------------------------------------------


@pytest.mark.slow
def test_choose_with_real_minilm(tmp_path, make_fake_chat):
    from agentlearn.embeddings import encode
    from agentlearn.settings import Settings

    ws = open_workspace(Settings(home=tmp_path / "home"), encoder=encode, chat_factory=make_fake_chat())
    write_suite(tmp_path, ws)
    train = load_tasks(ws, SUITE, "train")
    rows = {(r["mode"], r["k"], r["tool_aware"]): r
            for r in retrieval.score_retrieval(ws, train, retrieval.candidates(True))}
    # With real embeddings, the best shot of a help-desk request calls its tool for most tasks.
    for mode in ("semantic", "hybrid", "bm25"):
        assert rows[(mode, 1, False)]["top1"] >= 0.6, (mode, rows[(mode, 1, False)])
    assert rows[("hybrid", 5, True)]["recall"] >= rows[("hybrid", 5, False)]["recall"]
    assert rows[("fixed", 1, False)]["top1"] < rows[("semantic", 1, False)]["top1"]
    choice = retrieval.choose(ws, SUITE, runner=scripted_runner(first_tasks(0.5)))
    best_a = max(choice["stage_a"], key=lambda r: r["score"])
    assert choice["stage_b"][0]["stage_a_score"] == best_a["score"]
