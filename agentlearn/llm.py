"""Chat models behind one LangChain interface: the embedded SmolLM2, or any OpenAI-compatible API."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentlearn import grammar
from agentlearn.models import chat_model_dir, torch_threads
from agentlearn.settings import Settings
from agentlearn.toolcall import CLOSE, OPEN

_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_generate_lock = threading.Lock()  # one generation at a time: the model is shared


@lru_cache(maxsize=4)
def load_local(model_dir: str, adapter_dir: str = ""):
    """Load (once per process) a local causal LM and its tokenizer, with a LoRA adapter if given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir or model_dir)
    tokenizer.padding_side = "left"  # batched generation: every row's answer starts at the same column
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir:
        from agentlearn.training import quiet

        quiet.install()  # importing peft imports bitsandbytes, whose CPU-kernel notice would reach run logs
        from peft import PeftModel

        if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # adapters may add special tokens
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.eval()
    return model, tokenizer


class LocalChatModel(BaseChatModel):
    """A transformers model on this machine as a LangChain chat model. Greedy unless temperature > 0.

    `complete` is the batched entry the agent uses; `invoke` (one prompt) goes through it too.
    """

    model_dir: str
    adapter_dir: str = ""
    max_new_tokens: int = 160
    temperature: float = 0.0
    seed: int | None = None
    batch_size: int = 16
    threads: int = 1

    @property
    def _llm_type(self) -> str:
        return "agentlearn-local"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        chat = [{"role": _ROLE.get(m.type, m.type), "content": str(m.content)} for m in messages]
        text = self.complete([chat], stop=stop)[0]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def complete(self, chats: list[list[dict[str, str]]], tools: list[list[dict[str, Any]]] | None = None,
                 max_new_tokens: int | None = None, stop: list[str] | None = None) -> list[str]:
        """Answers to many chats, `batch_size` at a time (shortest prompts together).

        With `tools` (one tool list per chat) each answer is constrained to one call of those tools
        (grammar.py) and comes back as `<tool_call>{json}</tool_call>`. Without, generation stops at the
        end of a tool call or at a `stop` string, row by row.
        """
        model, tokenizer = load_local(self.model_dir, self.adapter_dir)
        budget = max_new_tokens or self.max_new_tokens
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
        if tools is not None:
            texts = [t + OPEN for t in texts]  # the grammar writes the JSON; the tags are fixed text
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # less padding per batch
        out: list[str] = [""] * len(ids)
        size = max(1, self.batch_size)
        for start in range(0, len(order), size):
            rows = order[start:start + size]
            answers = self._generate_rows(model, tokenizer, [ids[i] for i in rows],
                                          [tools[i] for i in rows] if tools is not None else None, budget, stop)
            for i, text in zip(rows, answers, strict=True):
                out[i] = text
        return out

    def _generate_rows(self, model: Any, tokenizer: Any, ids: list[list[int]], tools: list[list[dict]] | None,
                       budget: int, stop: list[str] | None) -> list[str]:
        import torch

        enc, cache = _with_shared_prefix(model, ids, tokenizer.pad_token_id)
        sample = self.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=budget, do_sample=sample,
                                      temperature=self.temperature if sample else None, top_p=None, top_k=None,
                                      pad_token_id=tokenizer.pad_token_id)
        if tools is not None:
            compiler = grammar_compiler(self.model_dir, self.adapter_dir)
            kwargs["logits_processor"] = [grammar.logits_processor([compiler.compile(t) for t in tools])]
            kwargs["eos_token_id"] = sorted({*compiler.stop_token_ids, tokenizer.eos_token_id})
        else:
            # A finished tool call ends the answer: generating past it only costs time.
            kwargs["stop_strings"], kwargs["tokenizer"] = [CLOSE, *(stop or [])], tokenizer
        # One thread unless the settings say otherwise: with any other work on a 2-core machine, two torch
        # threads made a batch of 6 constrained answers 8.6x slower (115 s against 13.4 s on one).
        with _generate_lock, torch.no_grad(), torch_threads(self.threads):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            if cache is not None:
                kwargs["past_key_values"] = cache(model)
            generated = model.generate(**enc, **kwargs)
        answers = []
        for row in generated[:, enc["input_ids"].shape[1]:]:
            text = tokenizer.decode(row, skip_special_tokens=True)
            if tools is not None:
                answers.append(f"{OPEN}{text.strip()}{CLOSE}")
                continue
            for end in [tokenizer.eos_token, "<|im_end|>", *(stop or [])]:
                if end and end in text:
                    text = text.split(end)[0]
            answers.append(text.strip())
        return answers


MIN_SHARED_PREFIX = 32  # tokens; below this a separate prefix pass costs more than it saves


def _with_shared_prefix(model: Any, ids: list[list[int]], pad_id: int) -> tuple[dict[str, Any], Any]:
    """Inputs for one generate() call, and a factory of the shared prefix's KV cache (or None).

    The prompts of one suite share their system message (instruction and tools), often half of every
    prompt. Its keys and values are computed once and repeated for each row; the rows are laid out as
    [shared prefix][padding][rest], with the padding masked out. Positions come from the attention mask,
    so every row sees the same positions as it would alone.
    """
    import torch

    shared = len(os.path.commonprefix(ids))  # works on lists of token ids too
    shared = min(shared, min(len(r) for r in ids) - 1)  # every row keeps at least one token to feed
    width = max(len(r) for r in ids)
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for n, row in enumerate(ids):
        rest = row[shared:]
        input_ids[n, :shared], mask[n, :shared] = torch.tensor(row[:shared]), 1
        input_ids[n, width - len(rest):], mask[n, width - len(rest):] = torch.tensor(rest), 1
    enc = {"input_ids": input_ids, "attention_mask": mask}
    if not shared:
        return enc, None

    def cache(model: Any) -> Any:
        prefix = model(input_ids=input_ids[:1, :shared], use_cache=True).past_key_values
        prefix.batch_repeat_interleave(len(ids))
        return prefix

    return enc, cache


@lru_cache(maxsize=4)
def grammar_compiler(model_dir: str, adapter_dir: str = "") -> grammar.Compiler:
    """The tool-call grammar compiler for a loaded model's tokenizer (once per process)."""
    model, tokenizer = load_local(model_dir, adapter_dir)
    return grammar.Compiler(tokenizer, vocab_size=model.config.vocab_size)


def chat_model(settings: Settings, adapter_dir: str = "", temperature: float = 0.0,
               seed: int | None = None) -> BaseChatModel:
    """The chat model the settings ask for. The OpenAI key is read from the environment only."""
    if settings.backend == "openai":
        from langchain_openai import ChatOpenAI

        if adapter_dir:
            raise ValueError("LoRA adapters run only with the embedded model, not an OpenAI endpoint")
        if not settings.openai_model:
            raise ValueError("set AGENTLEARN_OPENAI_MODEL to the model name of the OpenAI-compatible endpoint")
        return ChatOpenAI(
            model=settings.openai_model,
            base_url=settings.openai_base_url or None,
            api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
            temperature=temperature,
            max_completion_tokens=settings.max_new_tokens,
            seed=seed,
        )
    return LocalChatModel(
        model_dir=str(chat_model_dir(Path(settings.models_dir))), adapter_dir=adapter_dir,
        max_new_tokens=settings.max_new_tokens, temperature=temperature, seed=seed, batch_size=settings.batch_size,
        threads=settings.threads,
    )
