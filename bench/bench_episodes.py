"""Multi-step episodes on the embedded model, batched against one at a time, and the loop's own cost per step.

    python -m bench.bench_episodes [--n 64] [--max-steps 3] [--tokens 48] [--models DIR]

The episodes are a toy executed suite: "reset the password of NAME" with two tools bound to Python
functions (tests/data/toy_tools.py): find_user answers the id (or raises for an unknown name),
reset_password needs that id. Each episode loops act -> execute -> observe until the model answers or
--max-steps. Half the tasks are stored as train tasks, whose reference calls bound the grammar's strings
(as the agent does for every suite); all of them are run. The same tasks run twice in one process: batched (every episode in one batch, rows at
different steps) and one at a time (batch size 1). Prints tasks per second for each and the ratio,
steps per episode, and the loop's overhead per step: the wall time of the run less the time spent
inside the model's `complete` and in the store node, divided by the steps taken (graph, prompts, tool
calls, grading); the store's time (one durable write per batch) is printed per episode beside it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from agentlearn import agent
from agentlearn.agent import RunOptions, run_tasks
from agentlearn.settings import Settings
from agentlearn.workspace import open_workspace
from storage.records import Message, Suite, Task, ToolBinding, ToolCall
from tests.data.toy_tools import TOOLS, USERS

NAMES = [*USERS, "grace", "alan"]  # two that find_user does not know: their episodes read an error


def _tasks(n: int) -> list[Task]:
    out = []
    for i in range(n):
        name = NAMES[i % len(NAMES)]
        out.append(Task(suite="toy-accounts", sample_id=str(i), split="heldout" if i % 2 else "train", tools=TOOLS,
                        input=[Message(role="user", content=f"Please reset the password of {name}.")],
                        expected=ToolCall(name="reset_password", arguments={"user_id": USERS.get(name, "none")})))
    return out


def _timed(owner, name: str, total: list[float]):
    """Wrap owner.name so that its time adds up in total[0]; returns the original."""
    real = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(owner, name, timed)
    return real


def _run(ws, tasks: list[Task], chunk: int) -> dict:
    model, store = [0.0], [0.0]
    real_complete, real_store = _timed(agent, "complete", model), _timed(agent.Agent, "store", store)
    try:
        started = time.perf_counter()
        runs = run_tasks(ws, tasks, RunOptions(store=True), chunk=chunk)
        wall = time.perf_counter() - started
    finally:
        agent.complete, agent.Agent.store = real_complete, real_store
    steps = sum(len(r[-1].steps) for r in runs)
    return {"tasks": len(runs), "seconds": round(wall, 2), "tasks_per_s": round(len(runs) / wall, 3),
            "steps": steps, "steps_per_episode": round(steps / len(runs), 2), "model_seconds": round(model[0], 2),
            "overhead_ms_per_step": round(1000 * (wall - model[0] - store[0]) / steps, 2),
            "store_ms_per_episode": round(1000 * store[0] / len(runs), 2),
            "solved": sum(1 for r in runs if r[-1].verdict and r[-1].verdict.success),
            "calls_that_ran": sum(1 for r in runs for s in r[-1].steps for res in s.results if not res.error),
            "tool_errors": sum(1 for r in runs for s in r[-1].steps for res in s.results if res.error),
            "unreadable_calls": sum(1 for r in runs for s in r[-1].steps if s.observation.startswith("Error: the call"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="episodes (default 64)")
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=48, help="new tokens a step may take")
    ap.add_argument("--models", default="", help="folder of the converted model (default: the data home's)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-episodes-"))
    models = Path(args.models) if args.models else Settings.from_env().models_dir
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models.resolve(), target_is_directory=True)
    ws = open_workspace(Settings(home=home, max_new_tokens=args.tokens, batch_size=args.n))
    ws.repo.put(Suite(id="toy-accounts", name="toy-accounts", tools=TOOLS, max_steps=args.max_steps,
                      bindings=[ToolBinding(kind="python", target="tests.data.toy_tools")]))
    tasks = _tasks(args.n)
    ws.repo.put_many(tasks)  # the train half's reference calls bound the grammar's strings, as in any suite
    _run(ws, tasks[:2], chunk=2)  # load the model, compile the grammars
    batched = _run(ws, tasks, chunk=args.n)
    single = _run(ws, tasks, chunk=1)
    print(json.dumps({"n": args.n, "max_steps": args.max_steps, "tokens": args.tokens, "batched": batched,
                      "one_at_a_time": single,
                      "speedup": round(batched["tasks_per_s"] / single["tasks_per_s"], 2)}, indent=1))


if __name__ == "__main__":
    main()
