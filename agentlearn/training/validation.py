"""The checkpoint kept is the best on a validation slice under the graders, not the last one.

A slice of the train split's SFT rows is held out of training (sizing.split_rows). Every `every` steps, and
at the end, the model answers the slice's prompts greedily in batches; each answer is parsed and graded
against the row's own answer (name, then every argument under its kind's rule, graders.py). Whenever
the score (name accuracy, then call accuracy, then the mean argument score) is at least the best so
far, the adapter is saved: a later checkpoint that ties wins, since it has seen more data.

Before the first step the untrained model (the base: LoRA starts as a no-op) answers the slice too, so the
job can say when its adapter ends up below its base (jobs.below_base); that check is not a candidate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

MAX_NEW_TOKENS = 96


def grade_answers(answers: list[str], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Name accuracy, call accuracy and mean argument score of answers against each row's own answer."""
    from agentlearn import graders
    from agentlearn.toolcall import parse_tool_call

    names = calls = args = 0.0
    for answer, row in zip(answers, rows, strict=True):
        expected = parse_tool_call(row["messages"][-1]["content"]).call
        if expected is None:
            continue
        call = parse_tool_call(answer).call
        names += graders.name_match(answer, call, expected, []).score
        calls += graders.call_match(answer, call, expected, []).score
        args += graders.args_score(answer, call, expected, []).score
    n = max(1, len(rows))
    return {"val_name_accuracy": names / n, "val_call_accuracy": calls / n, "val_args_score": args / n}


class BestOnValidation(TrainerCallback):
    """Grades the model on the validation rows every `every` steps and at the end; saves the best adapter."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer, adapter_dir: Path, every: int,
                 batch_size: int = 8, picks: bool = True) -> None:
        """`picks`: save the best checkpoint; without, grade only the base and the end (the caller saves)."""
        self.rows, self.tokenizer, self.adapter_dir, self.picks = rows, tokenizer, Path(adapter_dir), picks
        self.every, self.batch_size = max(1, every), batch_size
        self.best: tuple[float, float, float] | None = None
        self.best_step, self.last_checked = 0, -1
        self.history: list[dict[str, float]] = []
        self.base: dict[str, float] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and not self.base:
            self.base = grade_answers(self.answers(model), self.rows)
        return control

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.picks and model is not None and state.global_step % self.every == 0:
            self.check(model, state.global_step)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.last_checked != state.global_step:
            self.check(model, state.global_step)
        return control

    def check(self, model, step: int) -> dict[str, float]:
        """Grade the model now; when picking, save it if it is at least as good as the best so far."""
        scores = grade_answers(self.answers(model), self.rows)
        self.last_checked = step
        self.history.append({"step": float(step), **scores})
        key = (scores["val_name_accuracy"], scores["val_call_accuracy"], scores["val_args_score"])
        if not self.picks:
            self.best, self.best_step = key, step  # the last checkpoint is the one kept
        elif self.best is None or key >= self.best:
            self.best, self.best_step = key, step
            self.adapter_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(str(self.adapter_dir), save_embedding_layers=False)
            self.tokenizer.save_pretrained(str(self.adapter_dir))
        return scores

    def answers(self, model) -> list[str]:
        """Greedy answers to every validation prompt, in batches (left padding, as the agent generates)."""
        import torch

        tok, side = self.tokenizer, self.tokenizer.padding_side
        was_training = model.training
        model.eval()
        tok.padding_side = "left"
        out: list[str] = []
        try:
            for start in range(0, len(self.rows), self.batch_size):
                prompts = [tok.apply_chat_template(r["messages"][:-1], tokenize=False, add_generation_prompt=True)
                           for r in self.rows[start:start + self.batch_size]]
                batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                with torch.no_grad():
                    made = model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, use_cache=True,
                                          pad_token_id=tok.pad_token_id)
                width = batch["input_ids"].shape[1]
                out += [tok.decode(row[width:], skip_special_tokens=False) for row in made]
        finally:
            tok.padding_side = side
            if was_training:
                model.train()
        return [_until_end(text, tok) for text in out]

    def metrics(self) -> dict[str, float]:
        """The best scores and the step they were reached at (for the job's metrics)."""
        if self.best is None:
            return {}
        name, call, args = self.best
        base = {f"base_{k}": v for k, v in self.base.items()}
        return {"val_name_accuracy": name, "val_call_accuracy": call, "val_args_score": args,
                "best_step": float(self.best_step), "val_rows": float(len(self.rows)), **base}


def _until_end(text: str, tok) -> str:
    for stop in (tok.eos_token or "", tok.pad_token or "", "<|im_end|>"):
        if stop and stop in text:
            text = text.split(stop, 1)[0]
    return text


def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a validation file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
