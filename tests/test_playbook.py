"""The playbook: outcome counters, error analysis, screening, the curator's parser, attribution, the verdict rule."""

from __future__ import annotations

import dataclasses
import json

import pytest

from agentlearn import verdicts
from agentlearn.agent import run_tasks
from agentlearn.cli import main
from agentlearn.memory import attribution, curator, error_analysis, insights, playbook, proposals
from agentlearn.methods import RunOptions
from storage.records import (
    ArgGrade,
    Insight,
    InsightProposal,
    Label,
    MemoryUsed,
    Message,
    Resolution,
    Suite,
    Task,
    ToolCall,
    Trajectory,
    Verdict,
)
from tests.seed import as_

TOOLS = [{"name": "reset_password", "parameters": {"type": "object", "required": ["username"],
                                                    "properties": {"username": {"type": "string"}}}},
         {"name": "create_ticket", "parameters": {"type": "object", "properties": {"title": {"type": "string"}}}}]
SUITE = "s"


def _task(ws, n: int, text: str = "", split: str = "train", tool: str = "reset_password") -> Task:
    args = {"username": f"user{n}"} if tool == "reset_password" else {"title": f"printer {n} broken"}
    return ws.repo.put(Task(suite=SUITE, sample_id=f"t{n}", split=split, tools=TOOLS,
                            input=[Message(role="user", content=text or f"Please reset the password of user{n}")],
                            expected=ToolCall(name=tool, arguments=args)))


def _run(ws, task: Task, call: ToolCall | None, ok: bool, shown: list[str] = (), args: list[ArgGrade] = ()):
    name = 1.0 if call is not None and call.name == task.expected.name else 0.0
    verdict = Verdict(success=ok, reward=float(ok), reason="ok" if ok else "wrong",
                      scores={"name_match": name}, arguments=list(args))
    return ws.repo.put(Trajectory(task_id=task.id, suite=SUITE, split=task.split, tool_call=call, verdict=verdict,
                                  output="" if call is None else json.dumps(call.model_dump()),
                                  memory=MemoryUsed(method="insights", insight_ids=list(shown))))


def _bullet(ws, text: str, section: str) -> Insight:
    return insights.add_manual(ws, SUITE, text, who=as_("ana"), section=section)


# --- counters -------------------------------------------------------------------------------------


def test_a_run_changes_the_counters_of_the_bullets_it_was_shown_and_only_those(ws):
    ws.chat_factory = lambda *a, **k: _FixedChat()
    ws.repo.put(Suite(id=SUITE, name=SUITE, tools=TOOLS))
    task = _task(ws, 1)
    shown = _bullet(ws, "Call reset_password when a password is forgotten.", "tool choice")
    other = insights.add_manual(ws, "other-suite", "Never shown to this suite.", who=as_("ana"))
    (trials,) = run_tasks(ws, [task], RunOptions(method="insights"))
    assert trials[-1].memory.insight_ids == [shown.id]
    after = ws.repo.get(Insight, shown.id)
    assert (after.helpful, after.harmful, after.neutral) == (1, 0, 0)  # the fake chat answers rightly
    assert after.history[-1].operation == "OUTCOMES" and after.history[-1].evidence == [trials[-1].id]
    untouched = ws.repo.get(Insight, other.id)
    assert (untouched.helpful, untouched.harmful, untouched.neutral, len(untouched.history)) == (0, 0, 0, 1)
    # A heldout run counts nothing: the counters order the prompt, heldout outcomes must not.
    heldout = _task(ws, 2, split="heldout")
    run_tasks(ws, [heldout], RunOptions(method="insights"))
    assert ws.repo.get(Insight, shown.id).helpful == 1


class _FixedChat:
    """Answers every prompt with the right call for user1 (what the fake model of conftest cannot know)."""

    def invoke(self, messages):
        from langchain_core.messages import AIMessage
        return AIMessage(content='<tool_call>{"name": "reset_password", "arguments": {"username": "user1"}}</tool_call>')


def test_outcomes_by_section_and_recount_after_people_label(ws):
    tool_b = _bullet(ws, "Pick the tool the request names.", "tool choice")
    arg_b = _bullet(ws, "Copy the username exactly.", "arguments")
    task = _task(ws, 1)
    wrong_tool = _run(ws, task, ToolCall(name="create_ticket"), False, [tool_b.id, arg_b.id])
    playbook.count_outcomes(ws, [wrong_tool])
    t, a = ws.repo.get(Insight, tool_b.id), ws.repo.get(Insight, arg_b.id)
    assert (t.harmful, t.neutral) == (1, 0)  # wrong tool: the tool-choice bullet was harmful
    assert (a.harmful, a.neutral) == (0, 1)  # the arguments bullet did not speak to it
    # A person says the run was fine after all: recount moves it to helpful for both.
    ws.repo.put(Label(trajectory_id=wrong_tool.id, annotator="bo", verdict="success"))
    changed = playbook.recount(ws, SUITE)
    assert {i.id for i in changed} == {tool_b.id, arg_b.id}
    t, a = ws.repo.get(Insight, tool_b.id), ws.repo.get(Insight, arg_b.id)
    assert (t.helpful, t.harmful, a.helpful, a.neutral) == (1, 0, 1, 0)
    assert playbook.recount(ws, SUITE) == []  # nothing changed since


def test_prompt_shows_sections_best_first_within_the_budget(ws):
    weak = _bullet(ws, "A weak rule about tools.", "tool choice")
    strong = _bullet(ws, "A strong rule about tools.", "tool choice")
    fmt = _bullet(ws, "Write one tool call.", "format")
    ws.repo.update(Insight, strong.id, lambda i: i.model_copy(update={"helpful": 5}))
    ws.repo.update(Insight, weak.id, lambda i: i.model_copy(update={"harmful": 2}))
    chosen = playbook.for_prompt(insights.active(ws, SUITE), budget_tokens=1000)
    assert [b.id for b in chosen] == [strong.id, weak.id, fmt.id]  # tool choice first, best first within it
    tight = playbook.for_prompt(insights.active(ws, SUITE), budget_tokens=22)  # 55 characters: one tool bullet fits
    assert [b.id for b in tight] == [strong.id, fmt.id]
    assert [b.id for b in playbook.for_prompt(insights.active(ws, SUITE), 1000, exclude=[strong.id])] == [weak.id,
                                                                                                        fmt.id]


# --- error analysis ---------------------------------------------------------------------------------


def _seed_failures(ws):
    ws.repo.put(Suite(id=SUITE, name=SUITE, tools=TOOLS))
    runs = []
    for n in range(4):  # the same wrong tool four times on password requests
        task = _task(ws, n, f"I forgot my password, account user{n}, please reset it")
        runs.append(_run(ws, task, ToolCall(name="create_ticket", arguments={"title": "x"}), False))
    for n in range(4, 7):  # the right tool without its required argument, three times
        task = _task(ws, n)
        runs.append(_run(ws, task, ToolCall(name="reset_password"), False, args=[
            ArgGrade(name="username", kind="extractive", status="missing", score=0.0, expected=f"user{n}")]))
    return runs


def test_error_analysis_drafts_a_rule_for_each_pattern_seen_three_times(ws):
    runs = _seed_failures(ws)
    analysis = error_analysis.analyse(ws, SUITE)
    by_pattern = {d.pattern: d for d in analysis.drafts}
    assert "tool:reset_password:create_ticket" in by_pattern
    assert "missing:reset_password:username" in by_pattern
    tool_rule = by_pattern["tool:reset_password:create_ticket"]
    assert "call reset_password, not create_ticket" in tool_rule.text and tool_rule.section == "tool choice"
    assert tool_rule.rationale.startswith("4 failed runs on 4 tasks")
    assert set(tool_rule.evidence) == {r.id for r in runs[:4]}
    missing = by_pattern["missing:reset_password:username"]
    assert "reset_password always needs username" in missing.text and len(missing.evidence) == 3


def test_error_analysis_says_why_when_nothing_repeats(ws):
    assert "no train runs yet" in error_analysis.analyse(ws, SUITE).reason
    task = _task(ws, 1)
    _run(ws, task, ToolCall(name="create_ticket"), False)
    _run(ws, _task(ws, 2), ToolCall(name="create_ticket"), False)
    reason = error_analysis.analyse(ws, SUITE).reason
    assert reason.startswith("no failure pattern repeats 3 times in 2 failed train runs") and "label or run more" in reason


def test_propose_stores_error_patterns_once_and_explains_empty_sources(ws):
    _seed_failures(ws)
    made = proposals.propose(ws, SUITE, sources=("errors", "model"))
    assert made.counts["errors"] >= 2 and all(p.status == "pending" for p in made.proposals)
    assert "model" in made.reasons and "no new valid ExpeL operation" in made.reasons["model"]
    again = proposals.propose(ws, SUITE, sources=("errors",))
    assert again.proposals == [] and "proposed before" in again.reasons["errors"]


def test_a_near_duplicate_of_an_active_bullet_becomes_a_merge(ws):
    bullet = _bullet(ws, "Call reset_password for forgotten passwords.", "tool choice")
    draft = InsightProposal(suite=SUITE, operation="ADD", text="Call reset_password for forgotten passwords!")
    (kept,) = proposals.screen(ws, SUITE, [draft])
    assert (kept.operation, kept.target_id) == ("MERGE", bullet.id) and "restates an active bullet" in kept.rationale
    other = _bullet(ws, "Tickets need a title.", "arguments")
    ws.repo.update(Insight, other.id, lambda i: i.model_copy(update={"helpful": 2}))
    merge = ws.repo.put(InsightProposal(suite=SUITE, operation="MERGE", target_id=bullet.id, merge_ids=[other.id],
                                        text="Call reset_password for passwords; tickets need a title."))
    kept_bullet = insights.approve(ws, merge.id, as_("rev"))
    assert kept_bullet.text.startswith("Call reset_password for passwords") and kept_bullet.helpful == 2
    assert ws.repo.get(Insight, other.id).status == "removed"
    assert ws.repo.get(Insight, other.id).text == "Tickets need a title."  # the folded text stays restorable


def test_person_and_attribution_proposals(ws):
    p = proposals.from_person(ws, SUITE, "Ask which printer before opening a ticket.", who=as_("cy"),
                              evidence=["tr-1"])
    assert (p.source, p.status, p.evidence, p.section) == ("person", "pending", ["tr-1"], "")
    with pytest.raises(ValueError, match="already waits"):
        proposals.from_person(ws, SUITE, "Ask which printer before opening a ticket.", who=as_("cy"))
    with pytest.raises(ValueError, match="empty"):
        proposals.from_person(ws, SUITE, "  ", who=as_("cy"))
    bullet = _bullet(ws, "Always open a ticket.", "domain rules")
    retire = proposals.retire(ws, bullet.id, as_("rev"), "counted harmful 4 times")
    assert (retire.operation, retire.target_id, retire.source) == ("REMOVE", bullet.id, "attribution")
    assert proposals.retire(ws, bullet.id, as_("rev"), "again").id == retire.id  # one is enough


# --- the curator ---------------------------------------------------------------------------------------


def test_curator_parses_defensively_and_drops_what_cannot_apply(ws):
    bullet = _bullet(ws, "Call reset_password for passwords.", "tool choice")
    call = ('<tool_call>{"name": "playbook_update", "arguments": {"operations": ['
            '{"op": "ADD", "section": "arguments", "text": "Copy the username from the request exactly."},'
            '{"op": "EDIT", "section": "tool choice", "bullet": 7, "text": "Out of range bullet number here."},'
            '{"op": "AGREE", "section": "tool choice", "bullet": 0, "text": "x"},'
            '{"op": "ADD", "section": "format", "text": "A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A"}]}}'
            '</tool_call>')
    ops = curator.parse(call)
    assert len(ops) == 4
    drafts = curator.to_proposals(SUITE, [bullet], ops, ["tr"], frozenset({"username", "reset_password"}))
    assert [(d.operation, d.target_id or "") for d in drafts] == [("ADD", ""), ("AGREE", bullet.id)]
    assert drafts[0].section == "arguments" and drafts[0].source == "curator"
    assert curator.parse('Sure! {"op": "ADD", "text": "Copy the username exactly please."} done') == [
        {"op": "ADD", "text": "Copy the username exactly please."}]
    assert curator.parse("no json at all") == [] and curator.parse("") == []
    empty = curator.tool(0)["parameters"]["properties"]["operations"]["items"]["properties"]
    assert empty["op"]["enum"] == ["ADD"] and "bullet" not in empty  # only ADD can apply to an empty playbook


# --- attribution, verdicts, the CLI ------------------------------------------------------------------------


def test_attribution_compares_runs_of_the_same_tasks_with_and_without_a_bullet(ws):
    bullet = _bullet(ws, "A bullet that goes with failure.", "domain rules")
    for n in range(6):
        task = _task(ws, n)
        _run(ws, task, ToolCall(name="create_ticket"), False, [bullet.id])
        _run(ws, task, ToolCall(name="reset_password", arguments={"username": f"user{n}"}), True)
    _task(ws, 99)  # a task never shown the bullet is not part of its comparison
    row = attribution.bullets(ws, SUITE).iloc[0]
    assert (row["shown"], row["success_shown"], row["not_shown"], row["success_not_shown"]) == (6, 0.0, 6, 1.0)
    assert row["difference"] == -1.0 and row["high"] < 0 and "interval is below 0" in row["flag"]


def test_a_resolution_wins_over_people_and_people_over_the_verifier(ws):
    task = _task(ws, 1)
    run = _run(ws, task, ToolCall(name="create_ticket"), False)
    assert verdicts.judge(ws).succeeded(run) is False
    ws.repo.put(Label(trajectory_id=run.id, annotator="a", verdict="success"))
    ws.repo.put(Label(trajectory_id=run.id, annotator="b", verdict="fail"))
    assert verdicts.judge(ws).succeeded(run) is False  # a tie is a fail
    ws.repo.put(Resolution(trajectory_id=run.id, reviewer="rev", verdict="success"))
    assert verdicts.judge(ws).succeeded(run) is True


def test_insights_list_pending_json_is_one_array(ws, capsys):
    _seed_failures(ws)
    proposals.propose(ws, SUITE, sources=("errors",))
    capsys.readouterr()
    assert main(["insights", "list", "--suite", SUITE, "--status", "pending", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) >= 2 and all(r["evidence"] and r["rationale"] for r in rows)
    assert main(["insights", "approve", "--suite", SUITE, "--all", "--by", "rev"]) == 0
    assert insights.pending(ws, SUITE) == [] and len(insights.active(ws, SUITE)) >= 2


def test_reflections_are_counted_by_the_trial_that_followed_them(ws):
    from storage.records import Reflection

    task = _task(ws, 1)
    first = ws.repo.put(Trajectory(task_id=task.id, suite=SUITE, split="train", episode_id="e1", trial=0,
                                   verdict=Verdict(success=False, reward=0, reason="wrong")))
    ws.repo.put(Trajectory(task_id=task.id, suite=SUITE, split="train", episode_id="e1", trial=1,
                           verdict=Verdict(success=True, reward=1, reason="ok")))
    ws.repo.put(Reflection(task_id=task.id, trajectory_id=first.id, episode_id="e1", trial=0, text="Use reset."))
    table = attribution.reflections(ws, SUITE)
    assert table.to_dict("records")[0]["next_trial"] == "success"
    assert attribution.reflection_summary(table).startswith("the trial after a reflection succeeded 1 of 1 times")


def test_ablation_leaves_one_bullet_out_and_is_compared_with_the_whole_playbook(ws, make_fake_chat):
    from agentlearn.evaluate import baseline_for, evaluate
    from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite

    ensure_demo_suite(ws)
    ws.chat_factory = make_fake_chat(["no call"])
    keep = insights.add_manual(ws, DEMO_SUITE, "Kept bullet about tickets.", who=as_("ana"))
    drop = insights.add_manual(ws, DEMO_SUITE, "Ablated bullet about passwords.", who=as_("ana"))
    whole = evaluate(ws, DEMO_SUITE, RunOptions(method="insights", limit=2))
    ablated = evaluate(ws, DEMO_SUITE, RunOptions(method="insights", limit=2, ablate=(drop.id,)))
    assert ablated.ablated == [drop.id] and whole.ablated == []
    runs = [ws.repo.get(Trajectory, tid) for tid in ablated.trajectory_ids]
    assert all(r.memory.insight_ids == [keep.id] for r in runs)
    assert all("Ablated bullet" not in r.prompt[0].content and "Kept bullet" in r.prompt[0].content for r in runs)
    assert baseline_for(ws, ablated, "insights").id == whole.id
    assert baseline_for(ws, whole, "insights") is None  # a whole-playbook run is not its own baseline


def test_drafts_from_the_same_runs_for_the_same_target_become_one_proposal(ws):
    runs = ["r1", "r2", "r3"]
    drafts = [InsightProposal(suite=SUITE, operation="ADD", text=text, source="errors", evidence=runs,
                              rationale="3 failed runs")
              for text in ("Call reset_password for passwords.", "Use reset_password, not create_ticket.",
                           "Password requests go to reset_password.")]
    other = InsightProposal(suite=SUITE, operation="ADD", text="Tickets need a title.", source="errors",
                            evidence=["r4", "r5", "r6"])
    kept = proposals.screen(ws, SUITE, [*drafts, other])
    assert [k.text for k in kept] == [drafts[0].text, other.text]
    assert kept[0].rationale == ("3 failed runs; also drafted from the same runs: Use reset_password, not "
                                 "create_ticket.; also drafted from the same runs: Password requests go to reset_password.")
    ws.repo.put_many(kept)
    assert proposals.screen(ws, SUITE, [drafts[2].model_copy(update={"id": "again"})]) == []  # one already waits
    mine = InsightProposal(suite=SUITE, operation="ADD", text="Ask for the username.", source="person", evidence=runs)
    assert proposals.screen(ws, SUITE, [mine]) == [mine]  # a person's own wording is kept


def test_model_sources_are_not_a_default_on_the_embedded_model(ws, monkeypatch):
    assert ws.settings.backend == "embedded" and proposals.default_sources(ws) == ("errors",)
    _seed_failures(ws)
    made = proposals.propose(ws, SUITE)
    assert set(made.counts) == {"errors"}
    monkeypatch.setattr(ws, "settings", dataclasses.replace(ws.settings, backend="openai"))
    assert proposals.default_sources(ws) == ("errors", "model", "curator")
