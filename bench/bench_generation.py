"""Sequential against batched generation on the embedded model: the same prompts, in one run.

    python -m bench.bench_generation [--prompts 32] [--batch 32] [--free]

Prompts are the agent's real prompts for the built-in demo suite's tasks (suite instruction, tools,
3 exemplars retrieved by BM25), greedy, under the tool-call grammar unless --free. Sequential is the
library's batch size 1 (one torch thread, as the agent uses for a single prompt); batched is one
`complete` call with the given batch size. Prints tasks per second for each, the speed-up, and how
many rows came out identical; a row that differs is shown, since greedy batched decoding differs from
sequential only through float rounding in padded matrix products.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agentlearn import grammar, prompts
from agentlearn.agent import reference_calls, token_budget
from agentlearn.llm import LocalChatModel
from agentlearn.memory import exemplars
from agentlearn.models import chat_model_dir
from agentlearn.settings import Settings
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
from agentlearn.workspace import open_workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--free", action="store_true", help="no grammar: free decoding with the </tool_call> stop")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the batched run (default 1)")
    ap.add_argument("--skip-sequential", action="store_true", help="only the batched run")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    ws = open_workspace(Settings(home=home))
    ensure_demo_suite(ws)
    tasks = (load_tasks(ws, DEMO_SUITE, "heldout") + load_tasks(ws, DEMO_SUITE, "train"))[: args.prompts]
    instruction = prompts.instruction_for(None)
    chats = []
    for task in tasks:
        shots = [s.exemplar for s in exemplars.select(ws, task, "bm25", k=3)]
        chats.append([m.model_dump() for m in prompts.build_prompt(task, prompts.order_shots(shots), instruction)])
    # The grammar the agent uses: every string bounded by the suite's longest reference value.
    limits = grammar.value_limits(reference_calls(ws, DEMO_SUITE))
    tools = None if args.free else [grammar.with_value_limits(t.tools, limits) for t in tasks]
    budget = token_budget(ws, DEMO_SUITE, 512)
    model_dir = str(chat_model_dir(Settings.from_env().models_dir))
    print(f"{len(chats)} prompts, budget {budget} new tokens, {'free' if args.free else 'constrained'} decoding")

    warm = LocalChatModel(model_dir=model_dir, batch_size=1)
    warm.complete(chats[:1], tools=tools[:1] if tools else None, max_new_tokens=budget)  # load, compile

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    def count(messages: list[dict]) -> int:
        return len(tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"])

    lengths = [count(c) for c in chats]
    system = count(chats[0][:1])
    print(f"prompt tokens: mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}; "
          f"system message {system} (shared by every prompt)")

    started = time.perf_counter()
    batched = LocalChatModel(model_dir=model_dir, batch_size=args.batch, threads=args.threads).complete(
        chats, tools=tools, max_new_tokens=budget)
    bat_s = time.perf_counter() - started
    print(f"batched (batch {args.batch}, {args.threads} thread(s)): {bat_s:.1f} s, {len(chats) / bat_s:.2f} tasks/s",
          flush=True)
    if args.skip_sequential:
        return
    started = time.perf_counter()
    sequential = LocalChatModel(model_dir=model_dir, batch_size=1).complete(chats, tools=tools, max_new_tokens=budget)
    seq_s = time.perf_counter() - started

    same = sum(a == b for a, b in zip(sequential, batched, strict=True))
    print(f"sequential: {seq_s:.1f} s, {len(chats) / seq_s:.2f} tasks/s")
    print(f"speed-up: {seq_s / bat_s:.2f}x; identical rows: {same}/{len(chats)}")
    for i, (a, b) in enumerate(zip(sequential, batched, strict=True)):
        if a != b:
            print(f"row {i} ({tasks[i].id}) differs:\n  sequential: {a}\n  batched:    {b}")


if __name__ == "__main__":
    main()
