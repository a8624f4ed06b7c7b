"""One dataclass per training method, saved as YAML, plus named presets for the embedded SmolLM2.

A config says everything a job needs: the dataset file, the base model (a folder, or an embedded model's name),
LoRA and optimiser settings and the method's own knobs. `device="auto"` picks CUDA when there is one,
else CPU in float32 (TRL turns bf16 on by default, which breaks CPU training, so it is always set).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from agentlearn.methods import TRAINING_METHODS

METHODS = TRAINING_METHODS
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class JobConfig:
    """Settings shared by every method."""

    method: ClassVar[str] = ""
    dataset_path: str = ""
    export_id: str = ""
    suite: str = ""
    preset: str = ""
    base_model: str = ""  # a model folder or an embedded model's name (agentlearn.models); empty = the selected one
    init_adapter: str = ""  # an adapter folder to train further (its own LoRA settings apply)
    name: str = ""  # the adapter's display name; empty = "<method>-<suite>-<job>"
    max_steps: int = 2
    per_device_train_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    max_length: int = 1024  # tokens of prompt + answer; longer rows are left out, never cut
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: str = "all-linear"
    logging_steps: int = 1
    seed: int = 0
    device: str = "auto"
    quantize_4bit: bool = False  # QLoRA; only on CUDA (bitsandbytes)
    gradient_checkpointing: bool = False
    num_threads: int = 0  # torch CPU threads; 0 = torch's default

    def to_dict(self) -> dict[str, Any]:
        """All fields plus the method, as plain YAML/JSON values."""
        return {"method": self.method, **dataclasses.asdict(self)}

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path

    @property
    def effective_batch(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps


@dataclass
class SFTJobConfig(JobConfig):
    """Supervised fine-tuning on (prompt, tool call) conversations."""

    method: ClassVar[str] = "sft"
    add_special_tokens: bool = True  # <think>, </think>, <tool_call>, </tool_call> as single tokens
    completion_only_loss: bool = True  # learn the answer, not the prompt
    # SFT rows held out of training (training.validation). The base model answers them before the first
    # step and the adapter at the end, so the job says when its adapter scored below its base. With
    # validation_picks the adapter kept is the checkpoint with the best grader accuracy on them, checked
    # every validation_every steps (0 = once an epoch); without, it is the last one.
    validation_path: str = ""
    validation_every: int = 0
    validation_picks: bool = True


@dataclass
class DPOJobConfig(JobConfig):
    """Direct preference optimisation on (prompt, chosen, rejected) pairs."""

    method: ClassVar[str] = "dpo"
    learning_rate: float = 5e-5
    beta: float = 0.1
    loss_type: str = "sigmoid"


@dataclass
class GRPOJobConfig(JobConfig):
    """GRPO with verifiable rewards built from the graders."""

    method: ClassVar[str] = "grpo"
    learning_rate: float = 2e-5
    per_device_train_batch_size: int = 4
    num_generations: int = 4
    max_completion_length: int = 48
    temperature: float = 1.0
    beta: float = 0.0
    loss_type: str = "dapo"
    # Weights of the reward functions, in order: tool-call quality, format compliance.
    reward_weights: list[float] = field(default_factory=lambda: [1.0, 0.25])


CONFIGS: dict[str, type[JobConfig]] = {"sft": SFTJobConfig, "dpo": DPOJobConfig, "grpo": GRPOJobConfig}

# The allowed range of each numeric setting, both ends included. This table is the one owner of the
# limits: every config is checked against it where it is built or loaded (from_dict), and the Training
# page's inputs take their limits from it. A config file is as untrusted as the page's inputs.
BOUNDS: dict[str, tuple[float, float]] = {
    "max_steps": (1, 1_000_000),
    "per_device_train_batch_size": (1, 1024),
    "gradient_accumulation_steps": (1, 1024),
    "learning_rate": (1e-8, 1.0),
    "warmup_steps": (0, 1_000_000),
    "max_length": (16, 131_072),  # tokens; below 16 no prompt fits
    "lora_r": (1, 512),
    "lora_alpha": (1, 4096),
    "lora_dropout": (0.0, 0.9),
    "logging_steps": (1, 1_000_000),
    "seed": (0, 2**32 - 1),  # what numpy's seeding accepts
    "num_threads": (0, 512),  # 0 = torch's default
    "validation_every": (0, 1_000_000),
    "beta": (0.0, 100.0),  # GRPO's KL weight may be 0 (no reference model)
    "num_generations": (2, 256),  # GRPO compares answers within a group
    "max_completion_length": (1, 32_768),
    "temperature": (0.01, 10.0),
}
METHOD_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {"dpo": {"beta": (0.001, 100.0)}}  # DPO divides by beta
REWARD_WEIGHTS = 2  # GRPO's reward functions: tool-call quality, format compliance
REWARD_WEIGHT_BOUNDS = (-100.0, 100.0)


def bounds(method: str, name: str) -> tuple[float, float]:
    """The allowed (low, high) of a numeric setting of `method`'s config."""
    return METHOD_BOUNDS.get(method, {}).get(name) or BOUNDS[name]

# How a job is sized by its data (training.sizing), for SFT. Chosen from measured runs, embedded
# SmolLM2-135M on CPU, cpu-small preset (batch 2, learning rate 5e-4, linear, warm-up 3), heldout
# tool-name accuracy of the adapter alone with n (README "Training defaults" has the whole table):
# - suite A (12 train / 19 heldout, issue 20): 3 epochs = 15 steps, checkpoint picked by 2 rows: 15.8%,
#   below zero-shot 26.3%; a fixed 40 steps: 52.6%.
# - suite B (21 train / 11 heldout, issue 20): data-sized: 45.5%; 40 steps: 81.8% (zero-shot 27.3%).
# - IT help desk (17 train / 14 heldout): 3 epochs = 21 steps, 3-row slice at 0/3 at every check: 21.4%,
#   equal to the base model's 21.4% (McNemar p = 1.0).
# - the demo (45 train / 45 heldout): 60 steps: 57.8% (base 0%).
# - BFCL simple_python (165 rows / 194 heldout, call accuracy by BFCL's rule, base 46.4%): 40 steps (half an
#   epoch, the old cap): 53.6%; 120 steps (1.45 epochs): 59.8% (+6.2 points over 40 steps, p = 0.029).
# Data-sized runs of under 40 steps ended below their base (A), equal to it (IT) or far under 40 steps (B);
# every run of 40 or more steps ended well above its base, and a large suite gained from more than 40.
# The step count is the measured difference; schedule (linear, cosine, constant) and checkpoint picking
# were not separated by a measurement (bench/bench_training_defaults.py sweeps them; on this machine a
# step of the public suites' 1,600-token rows took over a minute, so it did not finish).
# So: never fewer than SFT_MIN_STEPS steps however few the rows (more for large data: SFT_EPOCHS epochs,
# up to the preset's max_steps, 120 on cpu-small), the preset's warm-up and linear schedule kept, and the validation slice
# picks the checkpoint only from VALIDATION_PICKS_FROM rows: one row of a 2-4 row slice is 25-50 points,
# so a choice by it is chance, while it still tells whether the adapter ended below its base model.
SFT_MIN_STEPS = 40
SFT_EPOCHS = 3
VALIDATION_PICKS_FROM = 10

# Presets: overrides of the defaults. cpu-small is sized to finish in minutes on 2 cores.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu-tiny": {
        "sft": {"max_steps": 2, "per_device_train_batch_size": 2, "device": "cpu"},
        "dpo": {"max_steps": 2, "per_device_train_batch_size": 2, "device": "cpu"},
        "grpo": {"max_steps": 2, "per_device_train_batch_size": 2, "num_generations": 2,
                 "max_completion_length": 24, "device": "cpu"},
    },
    "cpu-small": {
        "sft": {"max_steps": 120, "per_device_train_batch_size": 2, "learning_rate": 5e-4, "lora_r": 16,
                "lora_alpha": 32, "warmup_steps": 3, "logging_steps": 2, "device": "cpu"},
        "dpo": {"max_steps": 30, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2,
                "learning_rate": 5e-5, "logging_steps": 2, "device": "cpu"},
        "grpo": {"max_steps": 20, "per_device_train_batch_size": 4, "num_generations": 4,
                 "max_completion_length": 48, "learning_rate": 2e-5, "logging_steps": 1, "device": "cpu"},
    },
    "cuda-qlora": {
        "sft": {"max_steps": 300, "per_device_train_batch_size": 16, "learning_rate": 5e-4, "lora_r": 16,
                "lora_alpha": 32, "warmup_steps": 10, "logging_steps": 5, "device": "cuda", "quantize_4bit": True,
                },
        "dpo": {"max_steps": 200, "per_device_train_batch_size": 8, "learning_rate": 5e-5, "logging_steps": 5,
                "device": "cuda", "quantize_4bit": True, },
        "grpo": {"max_steps": 200, "per_device_train_batch_size": 16, "num_generations": 8,
                 "max_completion_length": 96, "logging_steps": 5, "device": "cuda", "quantize_4bit": True,
                 },
    },
}


def from_dict(data: dict[str, Any]) -> JobConfig:
    """Build the method's config from a dict (e.g. parsed YAML); unknown keys are an error."""
    data = dict(data or {})
    method = data.pop("method", "")
    if method not in CONFIGS:
        raise ValueError(f"config: 'method' must be one of {', '.join(METHODS)}, not {method!r}")
    cls = CONFIGS[method]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"config: unknown {method} setting(s) {unknown}; known: {sorted(names)}")
    for f in dataclasses.fields(cls):
        if isinstance(f.default, float) and isinstance(data.get(f.name), str):
            try:  # YAML 1.1 reads 1e-3 (no dot) as a string
                data[f.name] = float(data[f.name])
            except ValueError:
                pass
    try:
        config = cls(**data)
    except TypeError as e:
        raise ValueError(f"config: {e}") from None
    found = problems(config)
    if found:
        raise ValueError("config: " + "; ".join(found))
    return config


def load(path: str | Path) -> JobConfig:
    """Read a YAML config file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no config file at {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping of settings")
    return from_dict(data)


def preset(method: str, name: str = "cpu-tiny", **overrides: Any) -> JobConfig:
    """A config from a named preset with some settings changed."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if method not in CONFIGS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return from_dict({"method": method, **PRESETS[name][method], "preset": name, **overrides})


def type_problems(config: JobConfig) -> list[str]:
    """Settings whose values have the wrong type (YAML edits make these easy to get wrong)."""
    out = []
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), f.default
        if default is dataclasses.MISSING:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            out.append(f"{f.name} must be true or false, not {value!r}")
        elif isinstance(default, int) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, int)):
            out.append(f"{f.name} must be a whole number, not {value!r}")
        elif isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            out.append(f"{f.name} must be a number, not {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            out.append(f"{f.name} must be a string, not {value!r}")
    if config.device not in DEVICES:
        out.append(f"device must be one of {', '.join(DEVICES)}, not {config.device!r}")
    return out


def problems(config: JobConfig) -> list[str]:
    """Every setting of the wrong type or outside its allowed range, each naming the setting and what is allowed."""
    return type_problems(config) + range_problems(config)


def range_problems(config: JobConfig) -> list[str]:
    """Numeric settings outside BOUNDS (infinity and NaN included) and malformed reward weights."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name not in BOUNDS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # not bounded, or a type problem already reported
        low, high = bounds(config.method, f.name)
        if not (math.isfinite(value) and low <= value <= high):
            out.append(f"{f.name} must be from {_number(low)} to {_number(high)}, not {value!r}")
    if isinstance(config, GRPOJobConfig):
        weights, (low, high) = config.reward_weights, REWARD_WEIGHT_BOUNDS
        if not (isinstance(weights, list) and len(weights) == REWARD_WEIGHTS and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and low <= w <= high
                for w in weights)):
            out.append(f"reward_weights must be {REWARD_WEIGHTS} numbers from {_number(low)} to {_number(high)} "
                       f"(tool-call quality, format compliance), not {weights!r}")
    return out


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"
