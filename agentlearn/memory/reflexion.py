"""Reflexion (Shinn et al., 2023): after a failed trial, the model writes a plan for the next one.

The reflection query follows the official ALFWorld code (`_generate_reflection_query`), adapted to
tool calling: the framing, the task (conversation + tool names), the trial's thought / action /
observation transcript, `STATUS: FAIL`, the last three plans of earlier trials, then `Plan:`. The next
trial sees the last Ω = 3 reflections under the Reflexion header (`prompt_block`). The trial loop that
calls `reflect`, `recent` and `prompt_block` lives in agentlearn.agent.

A multi-step episode (episode_text.is_episode) is reflected on from what was observed: the framing asks
for the step that went wrong, the transcript shows its last LAST_STEPS steps with each call and the
observation it got (tool errors marked "Error:"), and `STATUS: FAIL` is followed by the grader's reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agentlearn import prompts
from agentlearn.episode_text import is_episode, step_lines, user_turns
from agentlearn.workspace import Workspace
from storage.records import Reflection, Task, Trajectory

MEMORY_WINDOW = 3  # Ω: the paper's ALFWorld runs keep the last three reflections

# A 135M model has a 2k-token context: long texts are cut (and say so) so the query always fits.
MAX_MESSAGE_CHARS = 600
MAX_FIELD_CHARS = 300
MAX_PLAN_CHARS = 300
TRUNCATED = " [truncated]"
MAX_PLAN_SENTENCES = 4
_BULLET = re.compile(r"^(?:[-*\u2022]|\d+[.)](?=\s|$))\s*")


def clip(text: str, limit: int) -> str:
    """The text cut to `limit` characters, marked as truncated when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + TRUNCATED


def tool_names(task: Task) -> list[str]:
    """Names of the tools a task offers (OpenAI-style `{"type": "function", "function": {...}}` or flat)."""
    names = []
    for tool in task.tools:
        spec = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = spec.get("name") if isinstance(spec, dict) else None
        if name:
            names.append(str(name))
    return names


def task_text(task: Task) -> str:
    """The task as the model saw it: the available tool names and the conversation."""
    lines = [f"Available tools: {', '.join(tool_names(task)) or '(none)'}", "Conversation:"]
    lines += [f"{m.role}: {clip(m.content, MAX_MESSAGE_CHARS)}" for m in task.input]
    return "\n".join(lines)


def transcript(trajectory: Trajectory) -> str:
    """The trial's numbered Thought / Action / Observation lines (the final output if it has no steps)."""
    lines = []
    for i, step in enumerate(trajectory.steps, 1):
        if step.thought.strip():
            lines.append(f"Thought {i}: {clip(step.thought, MAX_FIELD_CHARS)}")
        lines.append(f"Action {i}: {clip(step.action, MAX_FIELD_CHARS)}")
        if step.observation.strip():
            lines.append(f"Observation {i}: {clip(step.observation, MAX_FIELD_CHARS)}")
    if not trajectory.steps:
        lines.append(f"Action 1: {clip(trajectory.output, MAX_FIELD_CHARS)}")
    return "\n".join(lines)


LAST_STEPS = 5  # an episode's last steps shown to the reflection (the failure is usually near its end)


def episode_transcript(task: Task, trajectory: Trajectory) -> str:
    """An episode's last LAST_STEPS steps: each later user turn, each call and its observation, the answer."""
    steps = trajectory.steps
    first = max(0, len(steps) - LAST_STEPS)
    turns = user_turns(task)
    lines = [f"(steps 1 to {first} left out)"] if first else []
    turn = steps[first].turn if steps else 0
    for i, step in enumerate(steps[first:], first + 1):
        if step.turn != turn:
            turn = step.turn
            user = step.user or (turns[turn] if turn < len(turns) else "")
            lines.append(f"User (turn {turn + 1}): {clip(user, MAX_MESSAGE_CHARS)}")
        if step.thought.strip():
            lines.append(f"Thought {i}: {clip(step.thought, MAX_FIELD_CHARS)}")
        lines += step_lines(step, MAX_FIELD_CHARS, number=i)
    return "\n".join(lines) or f"Action 1: {clip(trajectory.output, MAX_FIELD_CHARS)}"


def status(trajectory: Trajectory) -> str:
    """`STATUS: FAIL`, with the grader's reason for an episode (what the next trial must fix)."""
    reason = trajectory.verdict.reason.strip() if trajectory.verdict else ""
    return f"STATUS: FAIL\nReason: {clip(reason, MAX_FIELD_CHARS)}" if reason and is_episode(trajectory) else "STATUS: FAIL"


def reflection_messages(task: Task, trajectory: Trajectory, previous: Sequence[str]) -> list[BaseMessage]:
    """The reflection query for a failed trial; `previous` are earlier plans (only the last 3 are shown)."""
    episode = is_episode(trajectory)
    shown_steps = episode_transcript(task, trajectory) if episode else transcript(trajectory)
    parts = [f"Here is the task:\n{task_text(task)}", shown_steps, status(trajectory)]
    shown = list(previous)[-MEMORY_WINDOW:]
    if shown:
        plans = "\n".join(f"Trial #{i}: {clip(p, MAX_PLAN_CHARS)}" for i, p in enumerate(shown))
        parts.append(f"Plans from past attempts:\n{plans}")
    parts.append("Plan:")
    framing = prompts.REFLEXION_EPISODE_FRAMING if episode else prompts.REFLEXION_FRAMING
    return [SystemMessage(content=framing), HumanMessage(content="\n\n".join(parts))]


def clean(text: str) -> str:
    """The plan the model wrote, on one line: its first paragraph, each sentence once, no cut-off tail."""
    text = text.strip()
    for label in ("New plan:", "Plan:", "PLAN:", "plan:"):
        if text.startswith(label):
            text = text[len(label):].strip()
    paragraph = text.split("\n\n")[0]
    # A small model often carries on with the query's own pattern; stop where it does.
    for marker in ("STATUS:", "Trial #", "Here is the task", "Plans from past attempts"):
        paragraph = paragraph.split(marker)[0]
    sentences, seen = [], set()
    for piece in re.split(r"(?<=[.!?])\s+|\n+", paragraph):
        piece = _BULLET.sub("", piece.strip()).strip()
        key = " ".join(piece.lower().split())
        if piece and key not in seen:  # small models loop: keep each sentence once
            seen.add(key)
            sentences.append(piece)
    if len(sentences) > 1 and not sentences[-1].endswith((".", "!", "?")):
        sentences.pop()  # cut off by the token limit
    return " ".join(sentences[:MAX_PLAN_SENTENCES])


def fallback(trajectory: Trajectory) -> str:
    """A plan stated from the verifier's reason, used when the model writes nothing usable."""
    reason = trajectory.verdict.reason.strip() if trajectory.verdict else ""
    why = f" The verifier said: {reason.rstrip('.')}." if reason else ""
    return ("The previous attempt failed." + why + " Next time, read the request again, choose the tool it "
            "asks for and fill every required argument with the values the user gave.")


def reflect(ws: Workspace, task: Task, trajectory: Trajectory, chat: BaseChatModel | None = None) -> Reflection:
    """Write, store and return a reflection on a failed trial (greedy decoding)."""
    return reflect_many(ws, [(task, trajectory)], chat=chat)[0]


REFLECTION_TOKENS = 96


def reflect_many(ws: Workspace, failed: Sequence[tuple[Task, Trajectory]],
                 chat: BaseChatModel | None = None) -> list[Reflection]:
    """Reflections on many failed trials, written together (one batch on the embedded model) and stored."""
    for task, trajectory in failed:
        if trajectory.task_id != task.id:
            raise ValueError(f"trajectory {trajectory.id} belongs to task {trajectory.task_id}, not {task.id}")
    if not failed:
        return []
    queries = []
    for task, trajectory in failed:
        previous = [r.text for r in recent(ws, task.id, MEMORY_WINDOW, episode_id=trajectory.episode_id or None)]
        queries.append(reflection_messages(task, trajectory, previous))
    model = chat if chat is not None else ws.chat()
    contents = _answers(model, queries)
    out = [Reflection(task_id=task.id, trajectory_id=trajectory.id, episode_id=trajectory.episode_id,
                      trial=trajectory.trial, text=clean(content) or fallback(trajectory))
           for (task, trajectory), content in zip(failed, contents, strict=True)]
    ws.repo.put_many(out)
    return out


def _answers(model: BaseChatModel, queries: list[list[BaseMessage]]) -> list[str]:
    from agentlearn.llm import LocalChatModel

    if isinstance(model, LocalChatModel):
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        chats = [[{"role": roles[m.type], "content": str(m.content)} for m in q] for q in queries]
        return model.complete(chats, max_new_tokens=REFLECTION_TOKENS, stop=["\n\n"])
    return [a.content if isinstance(a.content, str) else str(a.content) for a in (model.invoke(q) for q in queries)]


def recent(ws: Workspace, task_id: str, n: int = MEMORY_WINDOW, episode_id: str | None = None) -> list[Reflection]:
    """The last `n` reflections of a task (of one episode if given), oldest first: Reflexion's memory."""
    if n <= 0:
        return []
    found = ws.repo.find(Reflection, task_id=task_id)
    if episode_id is not None:
        found = [r for r in found if r.episode_id == episode_id]
    return found[-n:]


def prompt_block(reflections: Sequence[Reflection | str]) -> str:
    """The Reflexion block for the actor's prompt ("" when there is nothing to inject)."""
    texts = [r.text if isinstance(r, Reflection) else str(r) for r in reflections]
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        return ""
    return prompts.REFLEXION_HEADER + "Reflections:\n- " + "\n- ".join(texts)
