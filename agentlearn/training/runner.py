"""Set up and run one TRL trainer (SFT, DPO or GRPO) with LoRA, then save the adapter.

Hardware is chosen explicitly: CUDA in bf16 (fp16 where bf16 is missing), 4-bit QLoRA only on CUDA,
otherwise CPU in float32 with bf16 and fp16 off. Rows longer than `max_length` are left out rather
than cut: TRL 1.x no longer truncates DPO/GRPO prompts, and cutting an SFT row would cut its answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentlearn.settings import Settings
from agentlearn.toolcall import TAGS
from agentlearn.training import chat_template, quiet
from agentlearn.training.config import DPOJobConfig, GRPOJobConfig, JobConfig, SFTJobConfig

log = logging.getLogger("agentlearn.training")


@dataclass
class RunResult:
    """What a finished (or stopped) run produced."""

    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    rows: int = 0
    dropped: int = 0
    saved: bool = False


def resolve_device(config: JobConfig) -> str:
    """cpu or cuda, from the config and what this machine has."""
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the config asks for device 'cuda' but torch sees no CUDA GPU; use device 'cpu' or 'auto'")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def base_model_dir(config: JobConfig, models_dir: Path) -> str:
    """The base model folder: the config's folder, or the embedded model it names (empty: the one the
    settings select, AGENTLEARN_LOCAL_MODEL), converted on first use."""
    from agentlearn.models import EMBEDDED_MODELS, chat_model_dir

    if config.base_model and config.base_model not in EMBEDDED_MODELS:
        return config.base_model
    return str(chat_model_dir(models_dir, config.base_model or Settings.from_env().local_model))


def load_tokenizer(config: JobConfig, base_dir: str):
    """The tokenizer (the starting adapter's, if any, since it may carry added tokens)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.init_adapter or base_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def add_special_tokens(tokenizer) -> dict[str, list[int]]:
    """Add the <think>/<tool_call> tags as special tokens; returns new token -> ids of its old pieces."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in TAGS if t not in vocab]
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in missing}
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    return pieces


def load_model(config: JobConfig, base_dir: str, tokenizer, device: str, new_pieces: dict[str, list[int]]):
    """The base model, resized for added tokens; with `init_adapter`, that adapter ready to train further."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if device == "cuda":
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        import os

        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # one GPU per accelerate process
        if config.quantize_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=kwargs["dtype"])
    model = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        _resize_with_piece_means(model, tokenizer, new_pieces)
    model.config.use_cache = False
    if config.init_adapter:
        from peft import PeftModel

        # Train the same adapter further, so the result stays one self-contained adapter (with its added
        # tokens) that loads on the plain base model. DPO then uses a frozen copy of it as the reference.
        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    return model


def _resize_with_piece_means(model, tokenizer, new_pieces: dict[str, list[int]]) -> None:
    # A new token starts as the mean of the pieces it used to be split into, so the model begins
    # close to what it already writes for "<tool_call>" instead of from noise.
    import torch

    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        for token, pieces in new_pieces.items():
            if pieces:
                emb[tokenizer.convert_tokens_to_ids(token)] = emb[pieces].mean(dim=0)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            for token, pieces in new_pieces.items():
                if pieces:
                    out.weight[tokenizer.convert_tokens_to_ids(token)] = out.weight[pieces].mean(dim=0)


def expose_trained_token_rows(model) -> Callable[[], None]:
    """Let TRL's fused LM head see the added tokens' trained rows.

    TRL computes log-probabilities from `get_output_embeddings().weight` directly. Under PEFT's
    trainable tokens that is the base weight without the trained rows (and the wrapper has no
    `.bias`), so the model's own head is swapped, for this model object only, for a view that merges
    the rows of the active adapter (or none, when adapters are disabled for a reference pass).
    Returns a function that puts the model's own head back.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layer = getattr(base.get_output_embeddings(), "token_adapter", None)
    if layer is None:
        return lambda: None

    class MergedHead:
        bias = None

        @property
        def weight(self):
            if layer.disable_adapters or layer.merged or not layer.active_adapters:
                return layer.base_layer.weight
            return layer.get_merged_weights(layer.active_adapters)

    head = MergedHead()
    base.get_output_embeddings = lambda: head
    return lambda: base.__dict__.pop("get_output_embeddings", None)


def lora_config(config: JobConfig, token_ids: list[int], tied: bool = True):
    """The LoRA settings; added tokens get trainable embedding rows saved with the adapter."""
    from peft import LoraConfig

    rows = None
    if token_ids:  # a tied head follows the embedding; an untied one needs its own rows
        rows = {"embed_tokens": token_ids} if tied else {"embed_tokens": token_ids, "lm_head": token_ids}

    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=config.target_modules if config.target_modules == "all-linear"
        else [m.strip() for m in config.target_modules.split(",") if m.strip()],
        task_type="CAUSAL_LM",
        # Only the added tokens' embedding rows train and go into the adapter.
        trainable_token_indices=rows,
    )


def common_args(config: JobConfig, device: str, output_dir: str) -> dict[str, Any]:
    """TrainingArguments shared by every method, with precision set explicitly for the hardware."""
    import torch

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=output_dir, max_steps=config.max_steps, per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type, warmup_steps=config.warmup_steps,
        logging_steps=config.logging_steps, seed=config.seed, save_strategy="no", report_to="none",
        bf16=bf16, fp16=device == "cuda" and not bf16, use_cpu=device == "cpu",
        activation_checkpointing=config.gradient_checkpointing, dataloader_num_workers=0,
        disable_tqdm=True,
    )


# --- datasets ----------------------------------------------------------------------------------


def load_rows(config: JobConfig, tokenizer) -> tuple[Any, int]:
    """The training Dataset for the method, rows longer than max_length left out; (dataset, dropped)."""
    from datasets import Dataset

    rows = read_jsonl(config.dataset_path)
    tool_calls = chat_template.has_tool_calls(rows)
    if tool_calls and chat_template.ensure_tool_calling(tokenizer):
        log.info("the tokenizer's chat template drops tool calls: training with %s", chat_template.TEMPLATE.name)
    kept = []
    for row in rows:
        if isinstance(config, SFTJobConfig) and config.completion_only_loss:
            row = {"prompt": row["messages"][:-1], "completion": row["messages"][-1:],
                   **({"tools": row["tools"]} if row.get("tools") else {})}
        if row_tokens(config, row, tokenizer) <= config.max_length:
            kept.append(row)
    if not kept:
        raise ValueError(f"every row of {config.dataset_path} is longer than max_length={config.max_length} tokens; "
                         "raise max_length")
    if tool_calls:
        # Each call's arguments have their own keys: as JSON values they are not merged into one struct.
        return _json_dataset(kept), len(rows) - len(kept)
    return Dataset.from_list(kept), len(rows) - len(kept)


def _json_dataset(rows: list[dict[str, Any]]):
    """Rows whose message lists (and tools) are stored as JSON values, each exactly as written."""
    from datasets import Dataset, Features, Json, List

    columns = sorted({k for row in rows for k in row})
    features = Features({k: List(Json()) for k in columns})
    return Dataset.from_list([{k: row.get(k) for k in columns} for row in rows], features=features)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """The rows of a JSON lines file; an error names the bad line."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"dataset file {path} does not exist; export one first")
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
    return rows


def row_tokens(config: JobConfig, row: dict[str, Any], tokenizer) -> int:
    """Tokens a row needs: the whole conversation (SFT), prompt + longer answer (DPO), prompt + completion (GRPO)."""
    def n(messages: list[dict[str, Any]], generation: bool = False) -> int:
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation,
                                            return_dict=True)["input_ids"]
        return len(ids)

    if "messages" in row:
        return n(row["messages"])
    if "completion" in row:
        return n(row["prompt"] + row["completion"])
    if "chosen" in row:
        return max(n(row["prompt"] + row["chosen"]), n(row["prompt"] + row["rejected"]))
    budget = config.max_completion_length if isinstance(config, GRPOJobConfig) else 0
    return n(row["prompt"], generation=True) + budget


# --- rewards (GRPO) ----------------------------------------------------------------------------


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(str(m.get("content", "")) for m in completion)
    return str(completion)


def call_reward(completions: list[Any], expected_name: list[str], expected_arguments: list[str],
                tools: list[str], arg_kinds: list[str] | None = None, **kwargs: Any) -> list[float]:
    """Tool-call quality under the evaluation's graders: half for the right tool, half for the arguments,
    each scored by its kind's rule (graders.args_score: exact for identifiers and categories, token F1 for
    free text), so the reward is what heldout accuracy measures. Rows without `arg_kinds` (older exports)
    decide each argument's kind from its value, as the graders do."""
    from agentlearn import graders
    from agentlearn.toolcall import parse_tool_call
    from storage.records import ToolCall

    kinds = arg_kinds if arg_kinds is not None else ["{}"] * len(completions)
    out = []
    for completion, name, args, tool_json, kind_json in zip(completions, expected_name, expected_arguments, tools,
                                                             kinds, strict=True):
        text = _text(completion)
        call = parse_tool_call(text).call
        expected = ToolCall(name=name, arguments=json.loads(args))
        offered = json.loads(tool_json)
        known = json.loads(kind_json or "{}")
        score = 0.5 * graders.name_match(text, call, expected, offered).score
        score += 0.5 * graders.args_score(text, call, expected, offered, kinds=known).score
        out.append(score)
    return out


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """Format compliance: 1 for valid JSON inside <tool_call> tags, 0.5 for valid JSON alone, else 0."""
    from agentlearn.toolcall import CLOSE, OPEN, parse_tool_call

    out = []
    for completion in completions:
        text = _text(completion).strip()
        if parse_tool_call(text).call is None:
            out.append(0.0)
        elif OPEN in text and CLOSE in text:
            out.append(1.0)
        else:
            out.append(0.5)
    return out


# --- trainers ----------------------------------------------------------------------------------


def _copy_token_rows_to_reference(model) -> None:
    # DPO on a trained adapter makes a frozen "ref" copy of it, but copies only parameters named
    # ".default."; the added tokens' rows are named "...trainable_tokens_delta.default" and would be
    # left at their initial values, so the reference would not be the starting adapter.
    for name, param in model.named_parameters():
        if "trainable_tokens_delta" in name and name.endswith(".default"):
            try:
                model.get_parameter(name[: -len("default")] + "ref").data.copy_(param.data)
            except AttributeError:
                pass  # no reference adapter (a new LoRA: the reference is the base model)


def build_trainer(config: JobConfig, model, tokenizer, dataset, device: str, output_dir: str,
                  token_ids: list[int], callbacks: list):
    """The TRL trainer for the config's method."""
    args = common_args(config, device, output_dir)
    # A model that already carries an adapter (init_adapter) trains that adapter; otherwise a new LoRA.
    tied = bool(getattr(model.config, "tie_word_embeddings", True))
    peft = None if hasattr(model, "peft_config") else lora_config(config, token_ids, tied)
    if isinstance(config, SFTJobConfig):
        from trl import SFTConfig, SFTTrainer

        targs = SFTConfig(**args, max_length=config.max_length, completion_only_loss=config.completion_only_loss or None,
                          packing=False)
        return SFTTrainer(model=model, args=targs, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft, callbacks=callbacks)
    if isinstance(config, DPOJobConfig):
        from trl import DPOConfig, DPOTrainer

        targs = DPOConfig(**args, max_length=config.max_length, beta=config.beta, loss_type=[config.loss_type])
        trainer = DPOTrainer(model=model, args=targs, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft, callbacks=callbacks)
        _copy_token_rows_to_reference(trainer.model)
        return trainer
    if isinstance(config, GRPOJobConfig):
        from trl import GRPOConfig, GRPOTrainer

        targs = GRPOConfig(**args, num_generations=config.num_generations,
                           max_completion_length=config.max_completion_length, temperature=config.temperature,
                           beta=config.beta, loss_type=config.loss_type, reward_weights=config.reward_weights,
                           remove_unused_columns=False)
        return GRPOTrainer(model=model, reward_funcs=[call_reward, format_reward], args=targs,
                           train_dataset=dataset, processing_class=tokenizer, peft_config=peft, callbacks=callbacks)
    raise ValueError(f"unknown method {config.method!r}")


def train(config: JobConfig, models_dir: Path, output_dir: Path, adapter_dir: Path, callbacks: list,
          should_save=lambda: True) -> RunResult:
    """Load, train, and save the adapter to `adapter_dir` (unless `should_save()` says no after a stop)."""
    quiet.install()  # before peft, TRL and bitsandbytes are first imported
    import torch

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config)
    base_dir = base_model_dir(config, models_dir)
    tokenizer = load_tokenizer(config, base_dir)
    pieces = add_special_tokens(tokenizer) if isinstance(config, SFTJobConfig) and config.add_special_tokens else {}
    dataset, dropped = load_rows(config, tokenizer)
    if dropped:
        log.warning("left out %d row(s) longer than max_length=%d tokens", dropped, config.max_length)
    model = load_model(config, base_dir, tokenizer, device, pieces)
    token_ids = [tokenizer.convert_tokens_to_ids(t) for t in pieces]
    best = _validation(config, tokenizer, adapter_dir, len(dataset))
    trainer = build_trainer(config, model, tokenizer, dataset, device, str(output_dir), token_ids,
                            [*callbacks, best] if best else callbacks)
    restore = expose_trained_token_rows(trainer.model)
    output = trainer.train()
    restore()
    result = RunResult(metrics=_numbers(output.metrics), steps=trainer.state.global_step, rows=len(dataset),
                       dropped=dropped)
    for entry in trainer.state.log_history:  # the last value of each logged metric
        result.metrics.update({f"last_{k}": v for k, v in _numbers(entry).items() if k not in output.metrics})
    if best is not None:
        result.metrics.update(best.metrics())
    if best is not None and best.picks:
        if not should_save():  # stopped without saving: the best checkpoint written meanwhile goes too
            import shutil

            shutil.rmtree(adapter_dir, ignore_errors=True)
            return result
        result.saved = best.best is not None  # the best checkpoint is in adapter_dir already
        return result
    if should_save():
        adapter_dir.mkdir(parents=True, exist_ok=True)
        # The added tokens' rows are in the adapter already; a full copy of the resized embedding is not needed.
        trainer.model.save_pretrained(str(adapter_dir), save_embedding_layers=False)
        tokenizer.save_pretrained(str(adapter_dir))
        result.saved = True
    return result


def _validation(config: JobConfig, tokenizer, adapter_dir: Path, rows: int):
    """The best-checkpoint callback when an SFT config names validation rows, else None."""
    if not isinstance(config, SFTJobConfig) or not config.validation_path:
        return None
    from agentlearn.training.validation import BestOnValidation, read_rows

    every = config.validation_every or max(1, -(-rows // config.effective_batch))  # once an epoch
    return BestOnValidation(read_rows(config.validation_path), tokenizer, adapter_dir, every,
                            picks=config.validation_picks)


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
