"""ExpeL insights: the parser and count rules on exact examples, then the reviewed product layer."""

from __future__ import annotations

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agentlearn import prompts
from agentlearn.embeddings import hash_encode
from agentlearn.memory import insights, playbook
from agentlearn.memory.insights import apply_operations, parse_operations
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage.records import Insight, InsightProposal, Label, Message, Step, Task, ToolCall, Trajectory, Verdict

# --- fakes and fixtures ---------------------------------------------------------------------------


@pytest.fixture
def scripted(make_fake_chat):
    """A fake chat model answering with canned texts in order (the last repeats), and the prompts it saw."""
    def make(answers: list[str]) -> tuple[BaseChatModel, list[list[BaseMessage]]]:
        factory = make_fake_chat(answers)
        return factory(Settings()), factory.seen
    return make


TOOLS = [{"name": "reset_password", "description": "Reset a password",
          "parameters": {"type": "object", "properties": {"username": {"type": "string"}}}},
         {"name": "create_ticket", "description": "Open a ticket", "parameters": {"type": "object"}}]


def _task(ws, sample_id: str, text: str, suite: str = "s", split: str = "train") -> Task:
    return ws.repo.put(Task(suite=suite, sample_id=sample_id, split=split,
                            input=[Message(role="user", content=text)], tools=TOOLS,
                            expected=ToolCall(name="reset_password", arguments={"username": sample_id})))


def _run(ws, task: Task, ok: bool | None, action: str, trial: int = 0) -> Trajectory:
    verdict = None if ok is None else Verdict(success=ok, reward=float(ok), reason="name matches" if ok else
                                              "expected reset_password, got create_ticket")
    return ws.repo.put(Trajectory(
        task_id=task.id, suite=task.suite, split=task.split, trial=trial, output=action, verdict=verdict,
        steps=[Step(thought=f"thinking about {task.sample_id}", action=action, observation=f"ran {action}")]))


RULE_A = "Call the tool the user asks for, not a similar one."
RULE_B = "Copy argument values exactly as the user wrote them."

# --- parse_operations: ExpeL's parse_rules ----------------------------------------------------------

WORKED_RULES = [("Verify answers before Finish.", 3), ("Search each entity separately.", 2)]
WORKED_ANSWER = ("AGREE 1: Verify answers before Finish.\n"
                 "REMOVE 2: Search each entity separately.\n"
                 "ADD 3: If search fails, try synonyms or broader terms.")


def test_parse_worked_example_discards_the_add_number():
    assert parse_operations(WORKED_ANSWER) == [
        ("AGREE", 1, "Verify answers before Finish."),
        ("REMOVE", 2, "Search each entity separately."),
        ("ADD", None, "If search fails, try synonyms or broader terms."),
    ]


def test_parse_quirk_label_group_spans_a_newline():
    # The unterminated EDIT line plus the next line's "ADD" are eaten as a "label", as in ExpeL.
    assert parse_operations("EDIT 2: improve search\nADD: Tip: check dates.") == [("EDIT", 2, "Tip: check dates.")]


def test_parse_strips_a_label_prefix_and_keeps_unnumbered_operations():
    assert parse_operations("EDIT 3: Rule 3: Check the date format.") == [("EDIT", 3, "Check the date format.")]
    assert parse_operations("REMOVE: Ask before acting.") == [("REMOVE", None, "Ask before acting.")]


@pytest.mark.parametrize("answer", [
    "add 1: Lower-case operations are ignored.",          # upper case only
    "ADD 1 Missing the colon.",                           # ": " is required
    "ADD 1:No space after the colon.",
    "ADD 1: A rule without a final period",               # cut off
    "ADD 1: Mentions EDIT inside the rule.",              # banned words
    "AGREE 2: Use ADD carefully.",
    "EDIT 1:   ",                                         # empty
    "ADD 1: Rule one\nis split over two lines.",          # only the first line counts, and it has no period
    "",
    "Sure! Here are some rules: be careful.",
])
def test_parse_rejects_malformed_operations(answer):
    assert parse_operations(answer) == []


@pytest.mark.parametrize("garbage", [None, 42, b"ADD 1: bytes.", ["ADD 1: list."], "\x00" * 1000,
                                     "ADD 1: " + "a b " * 20000])
def test_parse_survives_garbage(garbage):
    assert parse_operations(garbage) == []


def test_parse_keeps_every_operation_of_a_long_answer():
    answer = "\n".join(f"ADD {i}: Rule number {i} is fine." for i in range(1, 31))
    assert [t for _, _, t in parse_operations(answer)] == [f"Rule number {i} is fine." for i in range(1, 31)]


# --- apply_operations: ExpeL's update_rules ---------------------------------------------------------


def test_apply_worked_example_exactly():
    rules = list(WORKED_RULES)
    assert apply_operations(rules, parse_operations(WORKED_ANSWER)) == [
        ("Verify answers before Finish.", 4),
        ("If search fails, try synonyms or broader terms.", 2),
        ("Search each entity separately.", 1),
    ]
    assert rules == WORKED_RULES  # the caller's list is not changed


def test_apply_second_remove_deletes_and_full_list_removes_at_once():
    once = apply_operations(WORKED_RULES, parse_operations(WORKED_ANSWER))
    twice = apply_operations(once, [("REMOVE", 3, "Search each entity separately.")])
    assert "Search each entity separately." not in [t for t, _ in twice]
    # With max_num_rules + 5 rules or more, one REMOVE costs 3: a count-2 rule goes at once.
    many = [(f"Filler rule {i}.", 5) for i in range(6)] + [("Search each entity separately.", 2)]
    out = apply_operations(many, [("REMOVE", 7, "Search each entity separately.")], max_num_rules=2)
    assert len(out) == 6 and all(t.startswith("Filler") for t, _ in out)
    kept = apply_operations(many, [("REMOVE", 7, "Search each entity separately.")], max_num_rules=3)
    assert ("Search each entity separately.", 1) in kept  # 3 + 5 > 7 rules: not full, -1


def test_apply_edit_that_restates_a_rule_is_agreement():
    assert apply_operations([("A rule.", 2)], [("EDIT", 1, "A rule. extended")]) == [("A rule.", 3)]
    # It agrees with the rule whose text it contains, whatever number it gave.
    rules = [("Other.", 2), ("A rule.", 2)]
    assert apply_operations(rules, [("EDIT", 1, "So: A rule. More")]) == [("A rule.", 3), ("Other.", 2)]


def test_apply_edit_replaces_text_and_counts_up():
    out = apply_operations([("Old one.", 2), ("Keep.", 3)], parse_operations("EDIT 1: New one."))
    assert out == [("New one.", 3), ("Keep.", 3)]  # a tie keeps the list order


def test_apply_numbering_off_by_one():
    rules = [("First.", 2), ("Second.", 2)]
    # EDIT past the end, or without a number, is dropped.
    assert apply_operations(rules, [("EDIT", 3, "Third.")]) == rules
    assert apply_operations(rules, [("EDIT", None, "Third.")]) == rules
    # EDIT n is 1-based: EDIT 2 is the second rule.
    assert apply_operations(rules, [("EDIT", 2, "Changed.")]) == [("Changed.", 3), ("First.", 2)]
    # EDIT 0 edits the last rule (ExpeL indexes rules[-1]); against no rules it is dropped.
    assert apply_operations(rules, [("EDIT", 0, "Zero.")]) == [("Zero.", 3), ("First.", 2)]
    assert apply_operations([], [("EDIT", 0, "Zero.")]) == []
    # REMOVE/AGREE follow the text; a wrong number does not matter, a wrong text drops them.
    assert apply_operations(rules, [("AGREE", 1, "Second.")]) == [("Second.", 3), ("First.", 2)]
    assert apply_operations(rules, [("REMOVE", 2, "Not a rule.")]) == rules


def test_apply_duplicates():
    rules = [("Check the tool name.", 2)]
    # An ADD that contains an existing rule is a duplicate.
    assert apply_operations(rules, [("ADD", None, "Check the tool name.")]) == rules
    assert apply_operations(rules, [("ADD", None, "Always: Check the tool name. Twice.")]) == rules
    # Two equal ADDs in one answer are both added (ExpeL checks against the old list only).
    out = apply_operations(rules, [("ADD", None, "New."), ("ADD", None, "New.")])
    assert out == [("Check the tool name.", 2), ("New.", 2), ("New.", 2)]


def test_apply_order_remove_before_agree_and_drop_only_at_the_end():
    rules = [("Only.", 1)]
    # AGREE is written first but REMOVE runs first; the count passes through 0 and ends at 1.
    assert apply_operations(rules, [("AGREE", 1, "Only."), ("REMOVE", 1, "Only.")]) == [("Only.", 1)]


def test_apply_sort_is_stable_and_ignores_unknown_operations():
    rules = [("B.", 2), ("A.", 2), ("C.", 1)]
    assert apply_operations(rules, [("AGREE", 3, "C."), ("UPVOTE", 1, "B.")]) == [("B.", 2), ("A.", 2), ("C.", 2)]


def test_random_divide_list_uses_the_ceil_formula():
    rng = insights.random.Random(0)
    chunks = insights.random_divide_list(list(range(17)), 8, rng)
    assert [len(c) for c in chunks] == [6, 6, 5] and sorted(sum(chunks, [])) == list(range(17))
    assert [len(c) for c in insights.random_divide_list(list(range(8)), 8, rng)] == [8]
    assert insights.random_divide_list([], 8, rng) == []


def test_numbered_shows_an_empty_list_as_one_empty_rule():
    assert insights.numbered([]) == "1. "
    assert insights.numbered(["A.", "B."]) == "1. A.\n2. B."


# --- review: approve / reject / history on real TinyDB files ---------------------------------------


def _propose(ws, operation: str, text: str, target: str = "", evidence=("t1",)) -> InsightProposal:
    return ws.repo.put(InsightProposal(suite="s", operation=operation, target_id=target, text=text,
                                       evidence=list(evidence)))


def test_approve_each_operation_with_expel_counts_and_history(ws):
    add = _propose(ws, "ADD", RULE_A)
    rule = insights.approve(ws, add.id, "ana")
    assert (rule.text, rule.importance, rule.status) == (RULE_A, 2, "active")
    rule = insights.approve(ws, _propose(ws, "AGREE", RULE_A, rule.id).id, "ben")
    assert rule.importance == 3
    rule = insights.approve(ws, _propose(ws, "EDIT", RULE_B, rule.id, ("t2", "t3")).id, "ana")
    assert (rule.text, rule.importance) == (RULE_B, 4)
    for _ in range(4):
        rule = insights.approve(ws, _propose(ws, "REMOVE", RULE_B, rule.id).id, "ben")
    assert (rule.importance, rule.status) == (0, "removed")

    # Read back from the files with a fresh workspace: nothing lives only in memory.
    again = open_workspace(Settings(home=ws.settings.home), encoder=hash_encode)
    stored = again.repo.get(Insight, rule.id)
    assert [(h.by, h.operation, h.importance) for h in stored.history] == [
        ("ana", "ADD", 2), ("ben", "AGREE", 3), ("ana", "EDIT", 4),
        ("ben", "REMOVE", 3), ("ben", "REMOVE", 2), ("ben", "REMOVE", 1), ("ben", "REMOVE", 0)]
    assert stored.history[0].proposal_id == add.id and stored.history[2].evidence == ["t2", "t3"]
    assert stored.history[2].text == RULE_B and stored.history[0].text == RULE_A
    assert again.repo.get(InsightProposal, add.id).status == "approved"
    assert again.repo.get(InsightProposal, add.id).reviewer == "ana"
    assert insights.active(again, "s") == []


def test_approve_twice_and_reject_rules(ws):
    add = _propose(ws, "ADD", RULE_A)
    insights.approve(ws, add.id, "ana")
    with pytest.raises(ValueError, match="already approved"):
        insights.approve(ws, add.id, "ben")
    other = _propose(ws, "ADD", RULE_B)
    assert insights.reject(ws, other.id, "ben").status == "rejected"
    with pytest.raises(ValueError, match="already rejected"):
        insights.approve(ws, other.id, "ana")
    with pytest.raises(ValueError, match="already rejected"):
        insights.reject(ws, other.id, "ana")
    assert [i.text for i in insights.active(ws, "s")] == [RULE_A]  # the rejected one changed nothing
    with pytest.raises(ValueError, match="no InsightProposal"):
        insights.approve(ws, "nope", "ana")
    with pytest.raises(ValueError, match="reviewer"):
        insights.approve(ws, _propose(ws, "ADD", "X.").id, " ")


def test_edit_then_approve(ws):
    add = _propose(ws, "ADD", "Check tool name.")
    rule = insights.approve(ws, add.id, "ana", text="  Check the tool name against the request.  ")
    assert rule.text == "Check the tool name against the request."
    assert ws.repo.get(InsightProposal, add.id).text == rule.text
    edit = _propose(ws, "EDIT", "Something.", rule.id)
    assert insights.approve(ws, edit.id, "ana", text=RULE_B).text == RULE_B
    agree = _propose(ws, "AGREE", RULE_B, rule.id)
    with pytest.raises(ValueError, match="only ADD and EDIT"):
        insights.approve(ws, agree.id, "ana", text="Reworded.")
    with pytest.raises(ValueError, match="empty"):
        insights.approve(ws, agree.id, "ana", text="   ")
    assert ws.repo.get(InsightProposal, agree.id).status == "pending"


def test_proposal_on_a_removed_insight_stays_pending(ws):
    rule = insights.add_manual(ws, "s", RULE_A, by="ana")
    agree = _propose(ws, "AGREE", RULE_A, rule.id)
    insights.demote(ws, rule.id, "ben")
    insights.demote(ws, rule.id, "ben")
    with pytest.raises(ValueError, match="removed meanwhile"):
        insights.approve(ws, agree.id, "ana")
    assert ws.repo.get(InsightProposal, agree.id).status == "pending"
    assert ws.repo.get(Insight, rule.id).importance == 0
    insights.restore(ws, rule.id, 0, "ana")
    assert insights.approve(ws, agree.id, "ana").importance == 3


def test_remove_costs_three_when_the_list_is_full(ws):
    rules = [insights.add_manual(ws, "s", f"Rule {i}.", by="ana") for i in range(7)]
    remove = _propose(ws, "REMOVE", "Rule 0.", rules[0].id)
    out = insights.approve(ws, remove.id, "ana", max_num_rules=2)  # 7 >= 2 + 5
    assert (out.importance, out.status) == (-1, "removed")


def test_manual_changes_history_and_restore(ws):
    rule = insights.add_manual(ws, "s", RULE_A, by="ana")
    rule = insights.edit(ws, rule.id, RULE_B, by="ben")
    assert (rule.text, rule.importance) == (RULE_B, 2)
    rule = insights.promote(ws, rule.id, by="ana")
    assert rule.importance == 3
    for _ in range(3):
        rule = insights.demote(ws, rule.id, by="ben")
    assert (rule.importance, rule.status) == (0, "removed")
    with pytest.raises(ValueError, match="removed"):
        insights.promote(ws, rule.id, by="ana")
    with pytest.raises(ValueError, match="removed"):
        insights.edit(ws, rule.id, "X.", by="ana")
    rule = insights.restore(ws, rule.id, 0, by="cy")  # back to the first text, importance 2
    assert (rule.text, rule.importance, rule.status) == (RULE_A, 2, "active")
    rule = insights.restore(ws, rule.id, -2, by="cy")  # the last demote left importance 0: restored at 1
    assert (rule.text, rule.importance, rule.status) == (RULE_B, 1, "active")
    ops = [h.operation for h in ws.repo.get(Insight, rule.id).history]
    assert ops == ["ADD", "MANUAL_EDIT", "PROMOTE", "DEMOTE", "DEMOTE", "DEMOTE", "RESTORE", "RESTORE"]
    with pytest.raises(ValueError, match="no entry 99"):
        insights.restore(ws, rule.id, 99, by="cy")
    with pytest.raises(ValueError, match="empty"):
        insights.add_manual(ws, "s", "  ", by="cy")
    with pytest.raises(ValueError, match="no Insight"):
        insights.promote(ws, "missing", by="cy")


def test_active_order_version_and_prompt_block(ws):
    a = insights.add_manual(ws, "s", "Older tie.", by="ana")
    b = insights.add_manual(ws, "s", "Newer tie.", by="ana")
    c = insights.add_manual(ws, "s", "Most important.", by="ana")
    insights.add_manual(ws, "other", "Other suite.", by="ana")
    version = insights.insights_version(ws, "s")
    insights.promote(ws, c.id, by="ana")
    assert insights.insights_version(ws, "s") == version + 1
    assert [i.id for i in insights.active(ws, "s")] == [c.id, a.id, b.id]
    block = prompts.playbook_block(playbook.grouped(playbook.for_prompt(insights.active(ws, "s"), 300)))
    assert block.startswith(prompts.PLAYBOOK_HEADER)
    assert block.endswith("\nDomain rules:\n- Most important.\n- Older tie.\n- Newer tie.")
    assert prompts.playbook_block([]) == ""


def test_validate_operations_resolves_targets_by_text(ws):
    first = insights.add_manual(ws, "s", RULE_A, by="ana")
    second = insights.add_manual(ws, "s", RULE_B, by="ana")
    insights.promote(ws, second.id, by="ana")  # shown as rule 1 now
    ops = parse_operations(f"AGREE 2: {RULE_A}\nEDIT 1: Copy values verbatim.\nADD 3: {RULE_A}\nREMOVE 9: Nope.")
    proposals = insights.validate_operations(ws, "s", ops, evidence=["t9"])
    assert [(p.operation, p.target_id, p.text) for p in proposals] == [
        ("AGREE", first.id, RULE_A), ("EDIT", second.id, "Copy values verbatim.")]
    assert all(p.evidence == ["t9"] and p.status == "pending" for p in proposals)
    assert ws.repo.count(InsightProposal) == 0  # validation stores nothing


# --- extract: ExpeL's procedure with a scripted model -----------------------------------------------


def _experience(ws):
    """Task A: a success and two failures. Task B: a success. Task C: failures only. Heldout D: ignored."""
    a = _task(ws, "a", "Reset the password for user akhan.")
    b = _task(ws, "b", "Reset the password for bnovak please.")
    c = _task(ws, "c", "My laptop is broken.")
    d = _task(ws, "d", "Heldout request.", split="heldout")
    runs = {
        "a_fail0": _run(ws, a, False, "create_ticket()"),
        "a_fail1": _run(ws, a, False, "reset_password(user=akhan)", trial=1),
        "a_ok": _run(ws, a, True, "reset_password(username=akhan)", trial=2),
        "b_ok": _run(ws, b, True, "reset_password(username=bnovak)"),
        "c_fail": _run(ws, c, False, "reset_password()"),
        "c_unjudged": _run(ws, c, None, "create_ticket()"),
        "d_ok": _run(ws, d, True, "reset_password()"),
        "d_fail": _run(ws, d, False, "create_ticket()"),
    }
    return {"a": a, "b": b, "c": c, "d": d}, runs


ANSWERS = [
    f"ADD 1: {RULE_A}",
    f"AGREE 1: {RULE_A}\nADD 2: {RULE_B}",
    "EDIT 2: Copy argument values exactly, with no renaming.",
]


def _human(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def test_extract_compares_pairs_then_successes_and_stores_pending_proposals(ws, scripted):
    tasks, runs = _experience(ws)
    chat, seen = scripted(ANSWERS)
    proposals = insights.extract(ws, "s", chat=chat)

    assert len(seen) == 3  # 2 pairs for task A, then one chunk of the 2 first successes
    first, second, third = (_human(m) for m in seen)
    assert seen[0][0].content.startswith("You are an advanced reasoning agent that can add, edit or remove "
                                         "rules from your existing rule set")
    for prompt, failure in ((first, "create_ticket()"), (second, "reset_password(user=akhan)")):
        assert "TRIAL TASK:\n" in prompt and "Reset the password for user akhan." in prompt
        success_part, fail_part = prompt.split("SUCCESSFUL TRIAL:\n")[1].split("FAILED TRIAL:\n")
        assert "reset_password(username=akhan)" in success_part and failure in fail_part
        assert prompt.endswith("Below are the operations you do to the above list of EXISTING RULES:\n")
    assert "Here are the EXISTING RULES:\n1. \n" in first  # ExpeL shows an empty list as "1. "
    # Later prompts see the rules as if the pending proposals were applied (ExpeL's evolving list).
    assert f"Here are the EXISTING RULES:\n1. {RULE_A}\n\n" in second
    assert f"Here are the EXISTING RULES:\n1. {RULE_A}\n2. {RULE_B}\n\n" in third
    assert "Here are the trials:" in third and "SUCCESSFUL TRIAL" not in third
    assert "akhan" in third and "bnovak" in third and "laptop" not in third and "Heldout" not in third
    assert "Available tools: reset_password, create_ticket" in third

    assert [(p.operation, p.text) for p in proposals] == [
        ("ADD", RULE_A), ("AGREE", RULE_A), ("ADD", RULE_B), ("EDIT", "Copy argument values exactly, with no renaming.")]
    assert all(p.status == "pending" for p in proposals)
    assert ws.repo.count(InsightProposal) == 4 and ws.repo.count(Insight) == 0
    assert proposals[0].evidence == [runs["a_ok"].id, runs["a_fail0"].id]
    assert proposals[1].evidence == [runs["a_ok"].id, runs["a_fail1"].id]
    assert set(proposals[3].evidence) == {runs["a_ok"].id, runs["b_ok"].id}
    assert proposals[0].raw == f"ADD 1: {RULE_A}"
    # Targets that only a pending ADD would create point at that ADD proposal.
    assert proposals[1].target_id == proposals[0].id and proposals[3].target_id == proposals[2].id
    with pytest.raises(ValueError, match="review that proposal first"):
        insights.approve(ws, proposals[1].id, "ana")
    insights.approve(ws, proposals[0].id, "ana")
    assert insights.approve(ws, proposals[1].id, "ana").importance == 3
    insights.reject(ws, proposals[2].id, "ana")
    with pytest.raises(ValueError, match="rejected"):
        insights.approve(ws, proposals[3].id, "ana")


def test_extract_people_win_over_the_verifier(ws, scripted):
    tasks, runs = _experience(ws)
    ws.repo.put(Label(trajectory_id=runs["b_ok"].id, annotator="ana", verdict="fail"))
    ws.repo.put(Label(trajectory_id=runs["c_fail"].id, annotator="ana", verdict="success"))
    chat, seen = scripted(["nothing useful"])
    insights.extract(ws, "s", chat=chat)
    prompts = [_human(m) for m in seen]
    compares = [p for p in prompts if "SUCCESSFUL TRIAL" in p]
    # C's labeled "success" has no judged failure to pair with (the other run has no verdict), and B's
    # verifier success is a failure now: only task A's two pairs remain.
    assert len(compares) == 2 and all("akhan" in p for p in compares)
    success_prompt = prompts[-1]
    assert "laptop" in success_prompt and "bnovak" not in success_prompt


def test_extract_chunks_successes_with_the_seed(ws, scripted):
    for i in range(5):
        _run(ws, _task(ws, f"t{i}", f"Request number {i}."), True, f"call_{i}()")
    seen = []
    for _ in range(2):
        chat, prompts = scripted(["no operations"])
        assert insights.extract(ws, "s", chat=chat, success_chunk=2, seed=7) == []
        seen.append([_human(m) for m in prompts])
    assert len(seen[0]) == 3  # ceil(5/2) = 3 chunks of ceil(5/3) = 2, 2, 1
    assert seen[0] == seen[1]
    counts = [sum(f"Request number {i}." in p for i in range(5)) for p in seen[0]]
    assert counts == [2, 2, 1]


def test_extract_full_suffix_when_rules_reach_the_target(ws, scripted):
    insights.add_manual(ws, "s", RULE_A, by="ana")
    insights.add_manual(ws, "s", RULE_B, by="ana")
    _run(ws, _task(ws, "a", "Reset akhan."), True, "reset_password(username=akhan)")
    chat, seen = scripted(["no operations"])
    insights.extract(ws, "s", chat=chat, max_num_rules=2)
    assert "Focus on REMOVE rules first" in _human(seen[0])
    assert f"1. {RULE_A}\n2. {RULE_B}" in _human(seen[0])


def test_extract_uses_the_workspace_model_and_auto_applies(tmp_path, make_fake_chat):
    factory = make_fake_chat(ANSWERS)
    ws = open_workspace(Settings(home=tmp_path, auto_apply_insights=True), encoder=hash_encode,
                        chat_factory=factory)
    _experience(ws)
    proposals = insights.extract(ws, "s")
    assert len(factory.seen) == 3
    assert [p.status for p in proposals] == ["approved"] * 4 and {p.reviewer for p in proposals} == {"auto"}
    # The stored insights are exactly ExpeL's list after the same three answers.
    expected: list[tuple[str, int]] = []
    for answer in ANSWERS:
        expected = apply_operations(expected, parse_operations(answer))
    assert sorted((i.text, i.importance) for i in insights.active(ws, "s")) == sorted(expected)
    assert all(i.history[-1].by == "auto" for i in insights.active(ws, "s"))


def test_extract_survives_garbage_answers_and_an_empty_suite(ws, scripted):
    assert insights.extract(ws, "s", chat=scripted(["x"])[0]) == []
    _experience(ws)
    chat, _ = scripted(["ADD 1 no colon", "EDIT 5: Out of range.", "\x00\x01 REMOVE"])
    assert insights.extract(ws, "s", chat=chat) == []
    with pytest.raises(ValueError, match="success_chunk"):
        insights.extract(ws, "s", chat=chat, success_chunk=0)


@pytest.mark.slow
def test_extract_with_the_real_model(tmp_path, shared_models):
    """The embedded SmolLM2 answers ExpeL's prompts; whatever it writes becomes valid pending proposals."""
    (tmp_path / "models").symlink_to(shared_models, target_is_directory=True)
    ws = open_workspace(Settings(home=tmp_path, max_new_tokens=64), encoder=hash_encode)
    a = _task(ws, "a", "Reset the password for user akhan, send it by email.")
    _run(ws, a, False, "create_ticket()")
    _run(ws, a, True, '<tool_call>{"name": "reset_password", "arguments": {"username": "akhan"}}</tool_call>')
    answers: list[str] = []
    proposals = insights.extract(ws, "s", on_call=lambda messages, answer: answers.append(answer))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    expected = [op for answer in answers for op in parse_operations(answer)]
    assert len(proposals) <= len(expected)
    assert all(p.status == "pending" and p.operation in insights.OPERATIONS for p in proposals)
    assert all(p.raw and any(p.raw in answer for answer in answers) for p in proposals)
