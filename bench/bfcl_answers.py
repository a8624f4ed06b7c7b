"""Real model answers to BFCL tasks, written once to tests/data/bfcl_answers.jsonl.

tests/test_bfcl_references.py grades these answers with agentlearn.suites.references.grade and with
BFCL's own ast_checker and requires the two to agree. The answers come from the embedded model
(SmolLM2-135M) on the first tasks of simple_python, multiple, parallel, parallel_multiple and
irrelevance, sampled at TEMPERATURE, --copies answers per task, in two modes:
- constrained (every category): under the tool-call grammar (one well-formed call of an offered
  tool), so the arguments are what the checkers disagree on if anything;
- free (the categories where several calls or none are right): without the grammar, told it may
  answer with a list of calls or with no call, so the answers hold several calls, none, and
  malformed ones.
The copies of one task form one batch: the embedded model computes a prompt prefix the rows share
once (llm._with_shared_prefix), so the prompt is read once for all of them. Measured on the shared
2-core machine (one torch thread, nice 10): about 1.5 CPU-seconds an answer with 8 copies, 1.8 with 4,
model loading included.

    nice -n 10 .venv/bin/python -m bench.bfcl_answers --constrained 13 --free 3 --copies 8

The committed file joins runs of one category each (--categories C --out FILE): simple_python with
--constrained 26 --copies 4, the other four with the defaults; 520 constrained answers over 78 tasks,
plus the free answers that finished (the file says which: "mode").

Each line: {"id", "category", "mode", "output" (the model's text), "calls" ([{"name", "arguments"}] read
from it; [] when it made none)}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from agentlearn import prompts
from agentlearn.llm import chat_model
from agentlearn.settings import Settings
from agentlearn.suites import bfcl
from agentlearn.toolcall import CLOSE, OPEN, parse_tool_call

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
FREE_CATEGORIES = ("parallel", "parallel_multiple", "irrelevance")
TEMPERATURE = 0.8
OUT = Path(__file__).parent.parent / "tests" / "data" / "bfcl_answers.jsonl"
FREE_RULES = (
    "Answer with the tool calls the request needs, written as\n"
    '<tool_call>[{"name": "<tool name>", "arguments": {...}}, ...]</tool_call>\n'
    "with one object per call (several when the request asks for several things). If none of the tools "
    "can do what is asked, answer in plain words without a tool call."
)


def read_calls(text: str) -> list[dict[str, Any]]:
    """Every call in an answer: a `<tool_call>` block holding one call or a list of them; [] for none."""
    start = text.find(OPEN)
    if start < 0:
        found = parse_tool_call(text).call  # a bare JSON call without the tags
        return [{"name": found.name, "arguments": found.arguments}] if found else []
    body = text[start + len(OPEN):].split(CLOSE)[0].strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        found = parse_tool_call(text).call
        return [{"name": found.name, "arguments": found.arguments}] if found else []
    items = value if isinstance(value, list) else [value]
    return [{"name": v["name"], "arguments": v.get("arguments") if isinstance(v.get("arguments"), dict) else {}}
            for v in items if isinstance(v, dict) and isinstance(v.get("name"), str)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--constrained", type=int, default=13, help="tasks per category answered under the grammar")
    parser.add_argument("--free", type=int, default=3, help="tasks per category of FREE_CATEGORIES answered freely")
    parser.add_argument("--copies", type=int, default=8, help="answers sampled per task, in one batch")
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated; several processes "
                        "can share the categories, each with its own --out, and their files be joined")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    settings = Settings.from_env().with_(batch_size=args.copies)
    chat = chat_model(settings, temperature=TEMPERATURE, seed=0)
    started, written = time.perf_counter(), 0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = open(args.out, "w", encoding="utf-8")
    for category in args.categories.split(","):
        every = bfcl.read(category)["drafts"]
        for mode in ("constrained", "free"):
            tasks = every[:args.constrained if mode == "constrained" else args.free if category in FREE_CATEGORIES else 0]
            drafts = [d for d in tasks for _ in range(args.copies)]
            if not drafts:
                continue
            rules = prompts.FORMAT_RULES if mode == "constrained" else FREE_RULES
            chats = [[{"role": "system", "content": "\n".join([prompts.DEFAULT_INSTRUCTION, rules, "", "Tools:",
                                                               *(prompts.tool_signature(t) for t in d.tools)])},
                      *({"role": m.role, "content": m.content} for m in d.input)] for d in drafts]
            t0 = time.perf_counter()
            outputs = chat.complete(chats, tools=[d.tools for d in drafts] if mode == "constrained" else None,
                                    max_new_tokens=96)
            print(f"{category} {mode}: {len(drafts)} answers in {time.perf_counter() - t0:.0f} s", flush=True)
            for d, text in zip(drafts, outputs, strict=True):
                out.write(json.dumps({"id": d.sample_id, "category": category, "mode": mode, "output": text,
                                      "calls": read_calls(text)}, ensure_ascii=False) + "\n")
            out.flush()
            written += len(drafts)
    out.close()
    print(f"{written} answers to {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
