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

from agentlearn.models import chat_model_dir, one_thread
from agentlearn.settings import Settings

_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_generate_lock = threading.Lock()  # one generation at a time: the model is shared


@lru_cache(maxsize=4)
def load_local(model_dir: str, adapter_dir: str = ""):
    """Load (once per process) a local causal LM and its tokenizer, with a LoRA adapter if given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir or model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))  # adapters may add special tokens
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.eval()
    return model, tokenizer


class LocalChatModel(BaseChatModel):
    """A transformers model on this machine as a LangChain chat model. Greedy unless temperature > 0."""

    model_dir: str
    adapter_dir: str = ""
    max_new_tokens: int = 96
    temperature: float = 0.0
    seed: int | None = None

    @property
    def _llm_type(self) -> str:
        return "agentlearn-local"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        import torch

        model, tokenizer = load_local(self.model_dir, self.adapter_dir)
        chat = [{"role": _ROLE.get(m.type, m.type), "content": str(m.content)} for m in messages]
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        sample = self.temperature > 0
        with _generate_lock, torch.no_grad(), one_thread():
            if self.seed is not None:
                torch.manual_seed(self.seed)
            out = model.generate(
                **ids, max_new_tokens=self.max_new_tokens, do_sample=sample,
                temperature=self.temperature if sample else None, top_p=None, top_k=None,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                # A finished tool call ends the answer: generating past it only costs time.
                stop_strings=["</tool_call>", *(stop or [])], tokenizer=tokenizer,
            )
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=False)
        for end in [tokenizer.eos_token, "<|im_end|>", *(stop or [])]:
            if end and end in text:
                text = text.split(end)[0]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text.strip()))])


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
        max_new_tokens=settings.max_new_tokens, temperature=temperature, seed=seed,
    )
