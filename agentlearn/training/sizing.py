"""Training sized by the data: the longest row sets max_length (within the model's context), and the
number of rows sets the steps (epochs over them, with a floor and a cap).

A preset's max_steps is the cap. SFT's floor is config.SFT_MIN_STEPS (measured: fewer steps on a small
suite left the adapter below its base), so 12 rows at batch 2 train 40 steps, not the 18 of 3 epochs; a
row of 1,235 tokens raises max_length instead of being refused. The cpu-tiny preset is a smoke test and
keeps its fixed 2 steps. SFT holds out a validation slice (from MIN_ROWS_FOR_VALIDATION rows); it picks
the checkpoint only when it has config.VALIDATION_PICKS_FROM rows, else it only reports base vs adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from agentlearn.training import runner
from agentlearn.training.config import (
    SFT_EPOCHS,
    SFT_MIN_STEPS,
    VALIDATION_PICKS_FROM,
    JobConfig,
    SFTJobConfig,
    from_dict,
)

EPOCHS = {"sft": SFT_EPOCHS, "dpo": 2, "grpo": 1}
MIN_STEPS = {"sft": SFT_MIN_STEPS, "dpo": 4, "grpo": 4}
LENGTH_MARGIN = 32  # tokens above the longest row: the chat template's own turn markers, rounding
LENGTH_STEP = 64
FIXED_PRESETS = ("cpu-tiny",)
DEFAULT_CONTEXT = 2048
VALIDATION_FRACTION = 0.2
MIN_ROWS_FOR_VALIDATION = 10  # below this a slice is too small to choose by, and training needs every row


def model_context(base_dir: str) -> int:
    """The base model's context length (config.json max_position_embeddings), DEFAULT_CONTEXT if unknown."""
    try:
        data = json.loads((Path(base_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_CONTEXT
    return int(data.get("max_position_embeddings") or DEFAULT_CONTEXT)


def row_lengths(config: JobConfig, models_dir: Path) -> list[int]:
    """Tokens each row of the config's dataset needs, measured with the tokenizer the job will use."""
    tokenizer = runner.load_tokenizer(config, runner.base_model_dir(config, models_dir))
    if isinstance(config, SFTJobConfig) and config.add_special_tokens:
        runner.add_special_tokens(tokenizer)
    return [runner.row_tokens(config, row, tokenizer) for row in runner.read_jsonl(config.dataset_path)]


def steps_for(method: str, rows: int, effective_batch: int, cap: int) -> int:
    """Epochs over the rows, at least the method's MIN_STEPS and at most `cap`."""
    wanted = math.ceil(EPOCHS.get(method, 1) * rows / max(1, effective_batch))
    return max(1, min(cap, max(MIN_STEPS.get(method, 4), wanted)))


def size(config: JobConfig, models_dir: Path, keep: tuple[str, ...] = ()) -> tuple[JobConfig, dict[str, Any]]:
    """The config with max_length and max_steps from its dataset (fields named in `keep` left alone);
    returns it and what was measured."""
    lengths = row_lengths(config, models_dir)
    context = model_context(runner.base_model_dir(config, models_dir))
    longest = max(lengths, default=0)
    facts: dict[str, Any] = {"rows": len(lengths), "longest": longest, "context": context}
    if config.preset in FIXED_PRESETS or not lengths:
        return config, facts
    change: dict[str, Any] = {}
    if "max_length" not in keep:
        change["max_length"] = min(context, math.ceil((longest + LENGTH_MARGIN) / LENGTH_STEP) * LENGTH_STEP)
    if "max_steps" not in keep:
        change["max_steps"] = steps_for(config.method, len(lengths), config.effective_batch, config.max_steps)
        change["warmup_steps"] = min(config.warmup_steps, change["max_steps"] // 10)
    facts.update(change)
    return from_dict({**config.to_dict(), **change}), facts


def describe(config: JobConfig, facts: dict[str, Any]) -> str:
    """One line on what the job will use and which of it the data set, for the person launching it."""
    if not facts.get("rows"):
        return f"{config.max_steps} steps, max_length {config.max_length}: the dataset has no rows to size them by."
    if config.preset in FIXED_PRESETS:
        return (f"{config.max_steps} steps, max_length {config.max_length}: the {config.preset} preset keeps its "
                f"own sizes (the longest of {facts['rows']} rows needs {facts['longest']} tokens).")
    said = [f"{config.max_steps} steps" + (" (from the data)" if "max_steps" in facts else " (as given)"),
            f"max_length {config.max_length}" + (" (from the data)" if "max_length" in facts else " (as given)")]
    val = (f", {facts['validation_rows']} more held out for validation ("
           + ("it picks the checkpoint" if facts.get("validation_picks") else "base vs adapter; the last checkpoint is kept")
           + ")") if facts.get("validation_rows") else ""
    return (f"{', '.join(said)}: {facts['rows']} training rows{val}, the longest needs {facts['longest']} tokens "
            f"of the model's {facts['context']}.")


def split_rows(path: str | Path, fraction: float = VALIDATION_FRACTION,
               min_rows: int = MIN_ROWS_FOR_VALIDATION) -> tuple[str, str]:
    """(train file, validation file) from one SFT file; the same rows every time (by a hash of each row).
    With fewer than `min_rows` rows there is no validation file ("")."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < min_rows:
        return str(path), ""
    ranked = sorted(lines, key=lambda line: hashlib.sha256(line.encode()).hexdigest())
    val = set(ranked[:max(1, round(len(lines) * fraction))])
    train = [line for line in lines if line not in val]
    train_path, val_path = path.with_name(path.stem + ".train.jsonl"), path.with_name(path.stem + ".val.jsonl")
    train_path.write_text("\n".join(train) + "\n", encoding="utf-8")
    val_path.write_text("\n".join(line for line in lines if line in val) + "\n", encoding="utf-8")
    return str(train_path), str(val_path)


def prepare(config: JobConfig, models_dir: Path, keep: tuple[str, ...] = ()) -> tuple[JobConfig, dict[str, Any]]:
    """A job sized by its data: for SFT a validation slice first (best checkpoint), then `size` on the rest."""
    if isinstance(config, SFTJobConfig) and config.preset not in FIXED_PRESETS and not config.validation_path:
        train, val = split_rows(config.dataset_path)
        if val:
            picks = len(runner.read_jsonl(val)) >= VALIDATION_PICKS_FROM
            config = from_dict({**config.to_dict(), "dataset_path": train, "validation_path": val,
                                "validation_picks": picks})
    sized, facts = size(config, models_dir, keep)
    if isinstance(sized, SFTJobConfig) and sized.validation_path:
        facts["validation_rows"] = len(runner.read_jsonl(sized.validation_path))
        facts["validation_picks"] = sized.validation_picks
    return sized, facts
