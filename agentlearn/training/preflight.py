"""Checks run before a job starts, so that a bad setting fails in a second, not after the model loads.

Everything here reads the config, the dataset file and the tokenizer only. Problems that stop a job are
errors; rows that will be left out for length are warnings (an error when no row is left).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from agentlearn.models import EMBEDDED_MODELS
from agentlearn.training.config import GRPOJobConfig, JobConfig, SFTJobConfig, problems


@dataclass
class Preflight:
    """The result of checking a config and its dataset."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    too_long: int = 0
    longest: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def check(config: JobConfig, models_dir: Path) -> Preflight:
    """Check settings, hardware, dataset schema and token lengths; never raises for bad input."""
    found = problems(config)  # a value of the wrong type or out of range: the other checks would misread it
    out = Preflight(errors=found + ([] if found else setting_problems(config)) + hardware_problems(config))
    if out.errors:
        return out
    rows = _dataset_rows(config, out)
    if not rows:
        return out
    try:
        _lengths(config, rows, models_dir, out)
    except (OSError, ValueError, RuntimeError) as e:
        out.errors.append(f"could not load the tokenizer to measure rows: {e}")
    return out


def validate(config: JobConfig, models_dir: Path) -> list[str]:
    """The readable errors that stop a launch (empty when the job may start)."""
    return check(config, models_dir).errors


def setting_problems(config: JobConfig) -> list[str]:
    """Files the config names that are not there, and the GRPO batch arithmetic (ranges: config.problems)."""
    out = []
    if config.init_adapter and not (Path(config.init_adapter) / "adapter_config.json").exists():
        out.append(f"init_adapter {config.init_adapter} is not an adapter folder (no adapter_config.json)")
    if (config.base_model and config.base_model not in EMBEDDED_MODELS
            and not (Path(config.base_model) / "config.json").exists()):
        out.append(f"base_model {config.base_model} is neither an embedded model ({', '.join(EMBEDDED_MODELS)}) "
                   "nor a model folder (no config.json)")
    if isinstance(config, SFTJobConfig) and config.validation_path and not Path(config.validation_path).exists():
        out.append(f"validation_path {config.validation_path} does not exist; export the dataset again")
    if isinstance(config, GRPOJobConfig) and config.num_generations >= 2 and (
            config.effective_batch % config.num_generations):
        out.append(f"the effective batch (per_device_train_batch_size {config.per_device_train_batch_size} x "
                   f"gradient_accumulation_steps {config.gradient_accumulation_steps} = {config.effective_batch}) "
                   f"must be divisible by num_generations={config.num_generations}")
    return out


def hardware_problems(config: JobConfig) -> list[str]:
    """Requests this machine cannot serve (CUDA, 4-bit)."""
    import torch

    cuda = torch.cuda.is_available()
    out = []
    if config.device == "cuda" and not cuda:
        out.append("device is 'cuda' but torch sees no CUDA GPU here; use device 'cpu' or 'auto'")
    if config.quantize_4bit and (config.device == "cpu" or not cuda):
        out.append("quantize_4bit (QLoRA) needs a CUDA GPU and bitsandbytes; on CPU set quantize_4bit to false "
                   "(training runs in float32)")
    return out


def _dataset_rows(config: JobConfig, out: Preflight) -> list[dict]:
    from agentlearn.datasets import row_problem

    if not config.dataset_path:
        out.errors.append("no dataset_path: export a dataset first")
        return []
    path = Path(config.dataset_path)
    if not path.exists():
        out.errors.append(f"dataset file {path} does not exist; export the dataset again")
        return []
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            out.errors.append(f"{path}, line {i}: not valid JSON ({e.msg})")
            return []
        problem = row_problem(row, config.method) if isinstance(row, dict) else "a row must be a JSON object"
        if problem:
            out.errors.append(f"{path}, line {i}: not a {config.method} row: {problem}")
            return []
        rows.append(row)
    out.rows = len(rows)
    if not rows:
        out.errors.append(f"{path} has no rows")
    return rows


def _lengths(config: JobConfig, rows: list[dict], models_dir: Path, out: Preflight) -> None:
    from agentlearn.training import runner

    tokenizer = runner.load_tokenizer(config, runner.base_model_dir(config, models_dir))
    if isinstance(config, SFTJobConfig) and config.add_special_tokens:
        runner.add_special_tokens(tokenizer)
    sizes = [runner.row_tokens(config, row, tokenizer) for row in rows]
    out.longest = max(sizes)
    out.too_long = sum(1 for n in sizes if n > config.max_length)
    what = "prompt + max_completion_length" if isinstance(config, GRPOJobConfig) else "prompt + answer"
    if out.too_long == len(rows):
        out.errors.append(f"all {len(rows)} rows need more than max_length={config.max_length} tokens ({what}; "
                          f"the longest needs {out.longest}); raise max_length to at least {out.longest}")
    elif out.too_long:
        out.warnings.append(f"{out.too_long} of {len(rows)} rows need more than max_length={config.max_length} "
                            f"tokens ({what}; longest {out.longest}) and will be left out, not truncated")
