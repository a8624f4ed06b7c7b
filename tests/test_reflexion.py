"""Reflexion: the reflection query, cleaning, storage, the Ω = 3 memory window and the prompt block."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from agentlearn.embeddings import hash_encode
from agentlearn.memory import reflexion
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage.records import Message, Reflection, Step, Task, ToolCall, Trajectory, Verdict


def _no_chat(*args: Any, **kwargs: Any):
    raise AssertionError("this test passes its own chat model")


@pytest.fixture
def ws(tmp_path):
    return open_workspace(Settings(home=tmp_path), encoder=hash_encode, chat_factory=_no_chat)


TOOLS = [{"name": "reset_password", "parameters": {"type": "object"}},
         {"type": "function", "function": {"name": "create_ticket", "parameters": {"type": "object"}}}]


def _task(ws, text: str = "Reset the password for user akhan and email it.") -> Task:
    return ws.repo.put(Task(suite="s", sample_id="a", split="train", input=[Message(role="user", content=text)],
                            tools=TOOLS, expected=ToolCall(name="reset_password", arguments={"username": "akhan"})))


def _failed(ws, task: Task, trial: int = 0, episode: str = "ep1", observation: str = "create_ticket accepted {}"):
    return ws.repo.put(Trajectory(
        task_id=task.id, suite="s", split="train", trial=trial, episode_id=episode, output="create_ticket()",
        steps=[Step(thought="The user has a problem, open a ticket.", action="create_ticket()",
                    observation=observation)],
        verdict=Verdict(success=False, reward=0.0, reason="expected reset_password, got create_ticket")))


def test_reflection_query_shape(ws):
    task = _task(ws)
    messages = reflexion.reflection_messages(task, _failed(ws, task), [])
    assert isinstance(messages[0], SystemMessage) and isinstance(messages[-1], HumanMessage)
    assert messages[0].content.startswith("You will be given the history of a past experience")
    assert "You were unsuccessful in completing the task." in messages[0].content
    query = messages[-1].content
    assert "Available tools: reset_password, create_ticket" in query
    assert "user: Reset the password for user akhan and email it." in query
    assert "Thought 1: The user has a problem, open a ticket.\nAction 1: create_ticket()\n" in query
    assert "Observation 1: create_ticket accepted {}" in query
    assert "STATUS: FAIL" in query and "Plans from past attempts" not in query
    assert query.endswith("Plan:")


def test_reflection_query_shows_only_the_last_three_plans(ws):
    task = _task(ws)
    plans = [f"Plan number {i}." for i in range(5)]
    query = reflexion.reflection_messages(task, _failed(ws, task), plans)[-1].content
    assert "Plans from past attempts:\nTrial #0: Plan number 2.\nTrial #1: Plan number 3.\n" \
           "Trial #2: Plan number 4.\n\nPlan:" in query
    assert "Plan number 1." not in query
    assert query.index("STATUS: FAIL") < query.index("Plans from past attempts")


def test_reflection_query_truncates_long_texts(ws):
    task = _task(ws, text="please " * 2000)
    long = _failed(ws, task, observation="x" * 5000)
    messages = reflexion.reflection_messages(task, long, ["p" * 2000] * 3)
    query = messages[-1].content
    assert query.count(reflexion.TRUNCATED) == 1 + 1 + 3  # the message, the observation, three plans
    assert len(query) + len(messages[0].content) < 4500  # fits a 2k-token context with room to answer


def test_transcript_without_steps_shows_the_output(ws):
    task = _task(ws)
    bare = Trajectory(task_id=task.id, suite="s", split="train", output="hello")
    assert reflexion.transcript(bare) == "Action 1: hello"


@pytest.mark.parametrize("raw, expected", [
    ("Plan: Call reset_password with username akhan.", "Call reset_password with username akhan."),
    ("  New plan: First line.\nSecond line.\n\nAnother paragraph.", "First line. Second line."),
    ("Plan:\n\n- Open a ticket.\n- Call reset_password.\n- Open a ticket.\n- Call reset_password with the",
     "Open a ticket. Call reset_password."),
    ("Think first. You should think about it. You should think about it. You should think about",
     "Think first. You should think about it."),
    ("1. One. 2) Two! 3. Three? 4. Four. 5. Five.", "One. Two! Three? Four."),
    ("A plan without a period", "A plan without a period"),
    ("Wait 3.5 seconds, then retry.", "Wait 3.5 seconds, then retry."),
    ("Use reset_password. STATUS: FAIL\nTrial #1: again", "Use reset_password."),
    ("", ""),
    ("\n\n   \n", ""),
])
def test_clean(raw, expected):
    assert reflexion.clean(raw) == expected


def test_reflect_stores_the_cleaned_plan(ws):
    task = _task(ws)
    trial = _failed(ws, task, trial=1)
    chat = FakeListChatModel(responses=["Plan: I should call reset_password with username akhan.\n\nExtra."])
    reflection = reflexion.reflect(ws, task, trial, chat=chat)
    assert reflection.text == "I should call reset_password with username akhan."
    stored = ws.repo.get(Reflection, reflection.id)
    assert (stored.task_id, stored.trajectory_id, stored.episode_id, stored.trial) == (task.id, trial.id, "ep1", 1)


def test_reflect_falls_back_to_the_verifier_reason(ws):
    task = _task(ws)
    reflection = reflexion.reflect(ws, task, _failed(ws, task), chat=FakeListChatModel(responses=["   "]))
    assert "expected reset_password, got create_ticket" in reflection.text
    assert reflection.text.startswith("The previous attempt failed.")


def test_reflect_refuses_a_trajectory_of_another_task(ws):
    task, other = _task(ws), _task(ws, "Something else.")
    with pytest.raises(ValueError, match="belongs to task"):
        reflexion.reflect(ws, task, _failed(ws, other), chat=FakeListChatModel(responses=["x"]))


def test_memory_window_keeps_the_last_three_of_the_episode(ws):
    task = _task(ws)
    responses = [f"Plan {i}: try reset_password." for i in range(5)]
    chat = FakeListChatModel(responses=responses)
    for i in range(5):
        reflexion.reflect(ws, task, _failed(ws, task, trial=i), chat=chat)
    other_episode = _failed(ws, task, episode="ep2")
    reflexion.reflect(ws, task, other_episode, chat=FakeListChatModel(responses=["Other episode plan."]))

    window = reflexion.recent(ws, task.id, episode_id="ep1")
    assert [r.text for r in window] == [f"Plan {i}: try reset_password." for i in (2, 3, 4)]
    assert [r.text for r in reflexion.recent(ws, task.id)][-1] == "Other episode plan."
    assert reflexion.recent(ws, task.id, n=0) == [] and reflexion.recent(ws, "missing") == []

    block = reflexion.prompt_block(window)
    assert block.startswith("You have attempted to solve the task before but failed. The following reflection(s) "
                            "give a plan to avoid failing the task in the same way you did previously. Use them "
                            "to improve your strategy of solving the task successfully.\nReflections:\n- ")
    assert block.endswith("- Plan 2: try reset_password.\n- Plan 3: try reset_password.\n- Plan 4: try "
                          "reset_password.")
    assert "Plan 1:" not in block and reflexion.prompt_block([]) == ""


def test_reflect_shows_the_episode_s_previous_plans_to_the_model(ws):
    task = _task(ws)
    seen: list[str] = []

    class Recording(FakeListChatModel):
        def _call(self, messages, stop=None, run_manager=None, **kwargs):
            seen.append(messages[-1].content)
            return super()._call(messages, stop, run_manager, **kwargs)

    chat = Recording(responses=[f"Plan {i}." for i in range(5)])
    for i in range(5):
        reflexion.reflect(ws, task, _failed(ws, task, trial=i), chat=chat)
    assert "Plans from past attempts" not in seen[0]
    assert "Trial #0: Plan 1.\nTrial #1: Plan 2.\nTrial #2: Plan 3.\n" in seen[4] and "Plan 0." not in seen[4]


def test_reflect_with_the_real_model(tmp_path, shared_models):
    """The embedded SmolLM2 writes a real reflection that is stored."""
    (tmp_path / "models").symlink_to(shared_models, target_is_directory=True)
    ws = open_workspace(Settings(home=tmp_path), encoder=hash_encode)
    task = _task(ws)
    trial = _failed(ws, task)
    reflection = reflexion.reflect(ws, task, trial)
    stored = ws.repo.get(Reflection, reflection.id)
    assert stored is not None and stored.text.strip() and stored.trajectory_id == trial.id
    assert "\n" not in stored.text and "STATUS" not in stored.text  # cleaned to one line of plan
    assert reflexion.recent(ws, task.id) == [stored]
