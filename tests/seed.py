"""Records for page tests, built directly with storage.records (no model runs).

Also a script: `python -m tests.seed HOME` seeds the workspace at HOME, so a real
`streamlit run` can be pointed at it.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from agentlearn import accounts
from agentlearn.accounts import Identity
from storage import open_repository
from storage.records import (
    EvalRun,
    Exemplar,
    Insight,
    InsightChange,
    InsightProposal,
    Label,
    MemoryUsed,
    Message,
    Step,
    Suite,
    Task,
    ToolCall,
    Trajectory,
    Verdict,
    now,
)

SUITE = "helpdesk-test"


def as_(name: str) -> Identity:
    """A person acting without accounts (the policy treats the local user as admin), recorded as `name`."""
    return Identity(name=name, role="admin", local=True)


ME = as_("tester")  # who acts in tests of a workspace without accounts


def admin_of(repo) -> Identity:
    """Who may manage users now: the first admin account, or the local user while there are none."""
    admin = next((a for a in accounts.list_users(repo) if a.role == "admin"), None)
    return accounts.identity_of(admin) if admin is not None else ME

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> **bold** [link](http://x)'
TOOLS = [
    {"name": "reset_password", "description": "Reset a user's password.",
     "parameters": {"type": "object", "properties": {"username": {"type": "string"},
                                                     "delivery": {"type": "string"}},
                    "required": ["username"]}},
    {"name": "create_ticket", "description": "Open a ticket.",
     "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}},
]
REQUESTS = [
    ("reset_password", {"username": "akhan", "delivery": "email"}, "I forgot my password, user akhan, email me."),
    ("create_ticket", {"title": "printer jam"}, "The printer on floor 2 is jammed again."),
    ("reset_password", {"username": "bnovak", "delivery": "sms"}, "Reset bnovak's password and text it to her."),
    ("create_ticket", {"title": "vpn down"}, "VPN does not connect since this morning."),
    ("reset_password", {"username": "cmoreau", "delivery": "sms"}, "cmoreau cannot log in, SMS please."),
    ("create_ticket", {"title": "monitor flicker"}, "My monitor flickers all the time."),
]


def _call_text(name: str, args: dict) -> str:
    import json

    return f'<tool_call>{json.dumps({"name": name, "arguments": args})}</tool_call>'


def seed_workspace(repo, hostile: bool = True) -> dict[str, list[str]]:
    """Write a small suite with runs, a label, insights, proposals, exemplars and eval runs; return ids."""
    t0 = now() - timedelta(days=3)
    repo.put(Suite(id=SUITE, name=SUITE, tools=TOOLS, description="test suite"))
    tasks, trajs, exemplars = [], [], []
    for i, (name, args, text) in enumerate(REQUESTS):
        split = "train" if i % 2 == 0 else "heldout"
        task = Task(id=f"{SUITE}:t{i}", suite=SUITE, sample_id=f"t{i}", split=split,
                    input=[Message(role="user", content=text)], tools=TOOLS, expected=ToolCall(name=name, arguments=args),
                    tags=["accounts" if name == "reset_password" else "tickets"], created=t0)
        tasks.append(task)
        if split == "train":
            exemplars.append(Exemplar(id=f"ref-{i}", suite=SUITE, task_id=task.id, kind="reference",
                                      input=task.input, call=task.expected, tool=name, tags=task.tags, created=t0))
        good = _call_text(name, args)
        bad = _call_text("create_ticket" if name == "reset_password" else "reset_password", {"title": "?"})
        for n, (out, ok, method) in enumerate(((good, True, "exemplars"), (bad, False, "none"))):
            call = ToolCall.model_validate_json(out[len("<tool_call>"):-len("</tool_call>")])
            trajs.append(Trajectory(
                id=f"tr{i}{'ok' if ok else 'bad'}", task_id=task.id, suite=SUITE, split=split,
                prompt=task.input, steps=[Step(thought="The user needs help.", action=out,
                                               observation=f"{call.name} accepted the arguments")],
                output=out, tool_call=call,
                verdict=Verdict(success=ok, reward=1.0 if ok else 0.0,
                                reason="name and arguments match" if ok else "wrong tool"),
                model="SmolLM2-135M-Instruct",
                memory=MemoryUsed(method=method, exemplar_ids=["ref-0"] if method == "exemplars" else [],
                                  exemplar_mode="semantic" if method == "exemplars" else ""),
                created=t0 + timedelta(hours=6 * i + n)))
    if hostile:
        trajs.append(Trajectory(
            id="trhostile", task_id=tasks[1].id, suite=SUITE, split="heldout", prompt=tasks[1].input,
            steps=[Step(thought=HOSTILE, action=HOSTILE, observation=HOSTILE)], output=HOSTILE, tool_call=None,
            verdict=Verdict(success=False, reward=0.0, reason=HOSTILE), model="SmolLM2-135M-Instruct",
            memory=MemoryUsed(method="none", reflections=[HOSTILE]), created=t0 + timedelta(days=1)))
    repo.put_many(tasks)
    repo.put_many(trajs)
    repo.put_many(exemplars)
    rule = Insight(id="ins-1", suite=SUITE, text="Always ask for the username before resetting a password.",
                   importance=2, history=[InsightChange(by="seed", operation="ADD", text="Always ask for the "
                                                        "username before resetting a password.", importance=2)])
    repo.put(rule)
    proposals = [
        InsightProposal(id="prop-add", suite=SUITE, operation="ADD",
                        text="Use create_ticket for hardware faults.", evidence=["tr1ok", "tr1bad"]),
        InsightProposal(id="prop-edit", suite=SUITE, operation="EDIT", target_id="ins-1",
                        text="Ask for the username and the delivery channel before resetting a password.",
                        evidence=["tr0ok"]),
    ]
    repo.put_many(proposals)
    repo.put(Label(trajectory_id="tr0ok", annotator="bob", verdict="success", score=5, comment="fine"))
    repo.put_many([
        EvalRun(suite=SUITE, split="heldout", method="none", n=3, name_accuracy=0.33, call_accuracy=0.0,
                model="SmolLM2-135M-Instruct", created=t0 + timedelta(days=1)),
        EvalRun(suite=SUITE, split="heldout", method="exemplars", exemplar_mode="semantic", k=3, n=3,
                name_accuracy=0.67, call_accuracy=0.33, model="SmolLM2-135M-Instruct", created=t0 + timedelta(days=2)),
    ])
    return {"tasks": [t.id for t in tasks], "trajectories": [t.id for t in trajs],
            "proposals": [p.id for p in proposals]}


if __name__ == "__main__":
    home = Path(sys.argv[1])
    seed_workspace(open_repository(str(home / "store")))
    print(f"seeded {home}")
