"""Multi-step episodes for labeling tests, written straight into a store (records only, no model runs).

`ep-turns`: two user turns (turn_calls), four steps, imported from traces; its second turn's tool failed
with a long hostile message. `ep-ref`: one turn with a reference of acceptable alternatives, three steps
by the built-in agent, the first one wrong. Both on the seed suite's tools.
"""

from __future__ import annotations

from storage.records import (
    OMIT,
    CallReference,
    Message,
    Reference,
    Step,
    Task,
    ToolCall,
    ToolResult,
    Trajectory,
    Verdict,
)
from tests.seed import HOSTILE, SUITE, TOOLS

LONG = "line of a long listing\n" * 30 + HOSTILE
TURNS, REF = "ep-turns", "ep-ref"
TURN2 = "Also open a ticket about the printer jam."


def _call(name: str, cid: str, **args) -> ToolCall:
    return ToolCall(name=name, arguments=args, id=cid)


def seed_episodes(repo) -> dict[str, Trajectory]:
    """Store the two episodes and their tasks; returns them by id."""
    repo.put(Task(id=f"{SUITE}:{TURNS}", suite=SUITE, sample_id=TURNS, split="train", tools=TOOLS,
                  input=[Message(role="user", content="Reset akhan's password and send it by sms.")],
                  expected=_call("reset_password", "", username="akhan", delivery="sms"),
                  turns=[[Message(role="user", content=TURN2)]],
                  turn_calls=[[_call("reset_password", "", username="akhan", delivery="sms")],
                              [_call("create_ticket", "", title="printer jam")]]))
    repo.put(Task(id=f"{SUITE}:{REF}", suite=SUITE, sample_id=REF, split="train", tools=TOOLS,
                  input=[Message(role="user", content="akhan is locked out; reset the password.")],
                  expected=_call("reset_password", "", username="akhan", delivery="sms"),
                  reference=Reference(calls=[CallReference(name="reset_password", arguments={
                      "username": ["akhan"], "delivery": ["sms", OMIT]})])))
    a = _call("reset_password", "c1", username="akhan", delivery="email")
    b = _call("create_ticket", "c2", title=HOSTILE)
    turns = Trajectory(id=TURNS, task_id=f"{SUITE}:{TURNS}", suite=SUITE, split="train", source="traces",
                       trace_id="4bf92f3577b34da6a3ce929d0e0e4736", model="gpt-4o-mini", steps=[
        Step(calls=[a], results=[ToolResult(call_id="c1", name=a.name, content="password reset; mail sent to akhan",
                                            seconds=0.012)], seconds=0.84, tokens_in=212, tokens_out=31),
        Step(answer="Done: akhan has a new password by email.", seconds=0.41),
        Step(turn=1, user=TURN2, calls=[b], results=[ToolResult(call_id="c2", name=b.name, content=LONG, error=True,
                                                                seconds=2.5)], seconds=0.9),
        Step(turn=1, answer=HOSTILE, seconds=0.3),
    ], output=HOSTILE, verdict=Verdict(success=False, reward=0.0, reason="turn 1: delivery email, expected sms"))
    wrong = _call("reset_password", "d1", username="akhn")
    right = _call("reset_password", "d2", username="akhan", delivery="sms")
    ref = Trajectory(id=REF, task_id=f"{SUITE}:{REF}", suite=SUITE, split="train", source="agent", steps=[
        Step(calls=[wrong], results=[ToolResult(call_id="d1", name=wrong.name, content="error: no user akhn",
                                                error=True, seconds=0.004)], seconds=0.5),
        Step(calls=[right], results=[ToolResult(call_id="d2", name=right.name, content="password reset; sms sent",
                                                seconds=0.006)], seconds=0.6),
        Step(answer="The password is reset and was sent by sms.", seconds=0.2),
    ], output="The password is reset and was sent by sms.", tool_call=wrong, tool_calls=[wrong],
        verdict=Verdict(success=True, reward=1.0, reason="the reference call was made"))
    for t in (turns, ref):
        repo.put(t)
    return {TURNS: turns, REF: ref}
