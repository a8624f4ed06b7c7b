"""Chat models behind one LangChain interface: an embedded model (agentlearn.models), or any OpenAI-compatible API."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agentlearn import grammar
from agentlearn.models import adapter_base, chat_model_dir, embedded_model, torch_threads
from agentlearn.settings import Settings
from agentlearn.toolcall import CLOSE, OPEN, TAGS

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
                 max_new_tokens: int | None = None, stop: list[str] | None = None,
                 on_row: Callable[[int], None] | None = None, steps: list[int] | None = None,
                 may_answer: list[bool] | None = None) -> list[str]:
        """Answers to many chats, `batch_size` at a time (shortest prompts together).

        With `tools` (one tool list per chat) each answer is constrained to one call of those tools
        (grammar.py) and comes back as `<tool_call>{json}</tool_call>`; a chat whose `steps` entry is n > 0
        is a step of an episode instead: 1..n tagged calls or (unless its `may_answer` entry is False) an
        answer in words (Compiler.compile_step), returned as written. Rows of both kinds share a batch, each with its own grammar. Without
        `tools`, generation stops at the end of a tool call or at a `stop` string, row by row. `on_row(i)`
        is called as chat i's answer ends, inside a batch as soon as its row stops (progress moves per
        answer, not per batch).
        """
        model, tokenizer = load_local(self.model_dir, self.adapter_dir)
        budget = max_new_tokens or self.max_new_tokens
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
        steps = steps or [0] * len(chats)
        # Steps of episodes: each prompt is the last one plus what happened since, so its keys and values
        # are kept for the next step (RowPrefixes).
        kept = row_prefixes(self.model_dir, self.adapter_dir) if any(steps) else None
        if kept is not None:
            with _generate_lock:
                kept.new_call()
        may_answer = may_answer or [True] * len(chats)
        if tools is not None:  # a single call: the grammar writes the JSON; the tags are fixed text
            texts = [t if n else t + OPEN for t, n in zip(texts, steps, strict=True)]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # less padding per batch
        out: list[str] = [""] * len(ids)
        size = max(1, self.batch_size)
        for start in range(0, len(order), size):
            rows = order[start:start + size]
            ended = (lambda r, rows=rows: on_row(rows[r])) if on_row else None
            answers = self._generate_rows(model, tokenizer, [ids[i] for i in rows],
                                          [tools[i] for i in rows] if tools is not None else None, budget, stop, ended,
                                          [steps[i] for i in rows], [may_answer[i] for i in rows], kept)
            for i, text in zip(rows, answers, strict=True):
                out[i] = text
        return out

    def _generate_rows(self, model: Any, tokenizer: Any, ids: list[list[int]], tools: list[list[dict]] | None,
                       budget: int, stop: list[str] | None, on_row: Callable[[int], None] | None = None,
                       steps: list[int] | None = None, may_answer: list[bool] | None = None,
                       kept: RowPrefixes | None = None) -> list[str]:
        import torch

        enc, cache = _with_shared_prefix(model, ids, tokenizer.pad_token_id, budget, kept)
        sample = self.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=budget, do_sample=sample,
                                      temperature=self.temperature if sample else None, top_p=None, top_k=None,
                                      pad_token_id=tokenizer.pad_token_id)
        if tools is not None:
            compiler = grammar_compiler(self.model_dir, self.adapter_dir)
            steps, may_answer = steps or [0] * len(tools), may_answer or [True] * len(tools)
            kwargs["eos_token_id"] = sorted({*compiler.stop_token_ids, tokenizer.eos_token_id})
            kwargs["logits_processor"] = [grammar.logits_processor(
                [compiler.compile_step(t, n, a) if n else compiler.compile(t)
                 for t, n, a in zip(tools, steps, may_answer, strict=True)],
                end_on_repeat=[n > 1 for n in steps], stop_ids=kwargs["eos_token_id"],
                decode=lambda row: decode_answer(tokenizer, row))]
        else:
            # A finished tool call ends the answer: generating past it only costs time.
            kwargs["stop_strings"], kwargs["tokenizer"] = [CLOSE, *(stop or [])], tokenizer
        ends = {tokenizer.pad_token_id, tokenizer.eos_token_id,
                *_ids(kwargs.get("eos_token_id", model.generation_config.eos_token_id))}
        watch = _RowsEnded(on_row, ends) if on_row else None
        if watch is not None:
            kwargs["stopping_criteria"] = [watch]
        # One thread unless the settings say otherwise: with any other work on a 2-core machine, two torch
        # threads made a batch of 6 constrained answers 8.6x slower (115 s against 13.4 s on one).
        with _generate_lock, torch.no_grad(), torch_threads(self.threads):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            kwargs["past_key_values"] = cache(model)
            generated = model.generate(**enc, **kwargs)
        if watch is not None:
            watch.rest(len(ids))  # rows that ran to the token budget, or stopped at the very last step
        answers = []
        for n, row in enumerate(generated[:, enc["input_ids"].shape[1]:]):
            text = decode_answer(tokenizer, row.tolist())
            if tools is not None:
                answers.append(text.strip() if steps[n] else f"{OPEN}{text.strip()}{CLOSE}")
                continue
            for end in [tokenizer.eos_token, "<|im_end|>", *(stop or [])]:
                if end and end in text:
                    text = text.split(end)[0]
            answers.append(text.strip())
        return answers


def decode_answer(tokenizer: Any, ids: list[int]) -> str:
    """The text of generated ids without special tokens (padding, ends), but with the tags: an SFT adapter's
    tokenizer holds `<tool_call>` and `<think>` as special tokens (training.runner.add_special_tokens), and
    skipping every special token dropped them, so an answer of several calls read as one bare call."""
    drop = _special_but_tags(tokenizer)
    return tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)


@lru_cache(maxsize=8)
def _special_but_tags(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokenizer's special tokens other than TAGS (read once: Gemma's tokenizer has thousands)."""
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return frozenset(special - {tokenizer.convert_tokens_to_ids(tag) for tag in TAGS if tag in tokenizer.get_vocab()})


def _ids(value: Any) -> list[int]:
    return [] if value is None else [value] if isinstance(value, int) else list(value)


class _RowsEnded:
    """A stopping criterion that stops nothing: it tells `on_row` which rows of a batch have ended.

    generate() pads a row once any criterion ended it (an end token, a stop string, the grammar's
    end), so a row whose newest token is an end or the pad token has ended; a stop string is seen one
    step late, when the pad follows it. The model's own end tokens are read from its generation config.
    """

    def __init__(self, on_row: Callable[[int], None], ends: set[int]) -> None:
        self.on_row, self.ends, self.seen = on_row, ends, set()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        last = input_ids[:, -1].tolist()
        for row, token in enumerate(last):
            if row not in self.seen and token in self.ends:
                self._ended(row)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def rest(self, rows: int) -> None:
        for row in range(rows):
            if row not in self.seen:
                self._ended(row)

    def _ended(self, row: int) -> None:
        self.seen.add(row)
        self.on_row(row)


MIN_SHARED_PREFIX = 32  # tokens; below this a separate prefix pass costs more than it saves
PREFILL_ROWS = 4  # prompts prefilled together: rows of similar length, so little padding is computed


def _with_shared_prefix(model: Any, ids: list[list[int]], pad_id: int, budget: int,
                        kept: RowPrefixes | None = None) -> tuple[dict[str, Any], Any]:
    """Inputs for one generate() call, and a factory of its KV cache, prefilled up to each row's last token.

    What makes a batch cheap on a CPU (a model whose sliding-window layers are shorter than prompt plus
    answer gets no prefilled cache: generate() builds its own):
    - the cache is a StaticCache of the prompt width plus the token budget: a DynamicCache concatenates
      every layer's keys and values at every step, a third of a 16-row constrained batch's time here;
    - the prompts of one suite share their system message (instruction and tools), often half of every
      prompt: its keys and values are computed once and copied into each row;
    - the rest of each prompt is prefilled PREFILL_ROWS rows at a time (callers pass rows sorted by
      length), each group padded only to its own longest row: padding one batch of 32 demo prompts to
      its longest row computed 46% more prompt tokens than the prompts hold;
    - with `kept` (steps of episodes), a row that begins with a prompt prefilled at an earlier step
      starts from that prompt's keys and values and computes only what was added since (the model's
      last answer, the tools' results); every row's prompt is then kept for its next step.
    Rows are laid out as [shared prefix][padding][rest], or [padding][whole prompt] for a row continued
    from what was kept, the padding masked out; positions come from the attention mask, so every row
    sees the positions it would see alone. generate() then feeds the last token of every row.
    """
    import torch
    from transformers import StaticCache

    shared = len(os.path.commonprefix(ids))  # works on lists of token ids too
    shared = min(shared, min(len(r) for r in ids) - 1)  # every row keeps at least one token to feed
    width = max(len(r) for r in ids)
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    # A kept prefix is used where it is longer than what the batch shares (capped at the row less its last token).
    found = [kept.longest(row) if kept is not None else (0, None) for row in ids]
    found = [(min(n, len(row) - 1), entry) if n > max(shared, MIN_SHARED_PREFIX - 1) else (0, None)
             for (n, entry), row in zip(found, ids, strict=True)]
    leads = [0 if length else shared for length, _ in found]  # tokens laid out at the left of each row
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for n, row in enumerate(ids):
        lead = leads[n]
        rest = row[lead:]
        input_ids[n, :lead], mask[n, :lead] = torch.tensor(row[:lead]), 1
        input_ids[n, width - len(rest):], mask[n, width - len(rest):] = torch.tensor(rest), 1
    enc = {"input_ids": input_ids, "attention_mask": mask}

    def cache(model: Any) -> Any:
        static = StaticCache(config=model.config, max_cache_len=width + budget)
        if any(layer.max_cache_len < width + budget for layer in static.layers):
            return None  # a sliding-window layer (Gemma 3) shorter than prompt + answer: generate()'s own cache
        fresh = [n for n in range(len(ids)) if not found[n][0]]
        prefix = model(input_ids=input_ids[:1, :shared], use_cache=True).past_key_values if shared and fresh else None
        for start in range(0, len(fresh), PREFILL_ROWS):
            rows = fresh[start:start + PREFILL_ROWS]
            _prefill_rows(model, static, prefix, [ids[r][shared:-1] for r in rows], rows, len(ids), shared, width,
                          pad_id)
        for n, (length, entry) in enumerate(found):
            if length:
                _prefill_kept(model, static, entry, length, ids[n][:-1], n, len(ids), width)
        for layer in static.layers:
            layer.cumulative_length.fill_(width - 1)
            if hasattr(layer, "cumulative_length_int"):  # a sliding-window layer counts in a Python int too
                layer.cumulative_length_int = width - 1
        if kept is not None:
            for n, row in enumerate(ids):
                kept.put(row[:-1], [_row_tensors(layer, n, leads[n], len(row) - 1, width) for layer in static.layers])
        return static

    return enc, cache


def _row_tensors(layer: Any, n: int, lead: int, length: int, width: int) -> tuple[Any, Any]:
    """Row n's keys and values for its first `length` tokens, out of the [lead][padding][rest] layout."""
    import torch

    tail = length - lead
    parts = [(layer.keys[n:n + 1, :, :lead], layer.values[n:n + 1, :, :lead])] if lead else []
    parts.append((layer.keys[n:n + 1, :, width - 1 - tail:width - 1], layer.values[n:n + 1, :, width - 1 - tail:width - 1]))
    return torch.cat([k for k, _ in parts], dim=2), torch.cat([v for _, v in parts], dim=2)


def _prefill_kept(model: Any, static: Any, entry: Any, length: int, row: list[int], n: int, batch: int,
                  width: int) -> None:
    """Prefill row n (its tokens less the last) from the keys and values kept for its first `length` tokens,
    right-aligned to column width - 1."""
    import torch
    from transformers import DynamicCache

    past = DynamicCache()
    for layer_index, (keys, values) in enumerate(entry.layers):
        past.update(keys[:, :, :length], values[:, :, :length], layer_index)
    if length < len(row):
        new = torch.tensor([row[length:]])
        positions = torch.arange(length, len(row)).unsqueeze(0)
        past = model(input_ids=new, attention_mask=torch.ones((1, len(row)), dtype=torch.long),
                     position_ids=positions, past_key_values=past, use_cache=True).past_key_values
    for layer_index, layer in enumerate(static.layers):
        keys, values = past.layers[layer_index].keys, past.layers[layer_index].values
        _allocate(layer, keys, batch)
        layer.keys[n, :, width - 1 - len(row):width - 1] = keys[0]
        layer.values[n, :, width - 1 - len(row):width - 1] = values[0]


class RowPrefixes:
    """Keys and values of episode prompts already prefilled, kept for the next step of each episode.

    An episode's next prompt is its last prompt plus the model's answer, the tools' results and the chat
    template's tags, so the longest kept prompt it begins with saves most of its prefill: a BFCL
    multi-turn prompt carries ~5k tokens of function schemas at every step. Bounded by bytes: a new
    prompt replaces the ones it extends; room is made by dropping prompts no row of the current call
    used (oldest first); what still does not fit is not kept (an episode of this call is not pushed out
    by another of the same call, which would leave every row missing at the next step). A prompt the last
    call did not use is dropped when the next one starts. Used under llm's generation lock only.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: dict[tuple[int, ...], _Kept] = {}  # in the order kept
        self.bytes = 0
        self.call = 0
        self.hits = self.misses = self.reused_tokens = 0

    def new_call(self) -> None:
        """Start a generation call: prompts the last call neither used nor kept are dropped (their episodes
        ended; an episode's rows come back at every call until it ends), so nothing outlives its run."""
        for key in [k for k, e in self.entries.items() if e.call < self.call]:
            self._drop(key)
        self.call += 1

    def longest(self, row: list[int]) -> tuple[int, _Kept | None]:
        """The kept prompt sharing the longest beginning with `row`, and that length (0, None if none)."""
        best, best_entry = 0, None
        have = np.asarray(row)
        for entry in self.entries.values():
            m = min(len(have), len(entry.ids))
            same = have[:m] == entry.ids[:m]
            n = m if same.all() else int(same.argmin())
            if n > best:
                best, best_entry = n, entry
        if best_entry is not None:
            best_entry.call = self.call
            self.hits, self.reused_tokens = self.hits + 1, self.reused_tokens + best
        else:
            self.misses += 1
        return best, best_entry

    def put(self, row: list[int], layers: list[tuple[Any, Any]]) -> None:
        key = tuple(row)
        entry = _Kept(np.asarray(row), [(k.clone(), v.clone()) for k, v in layers], self.call)
        for old_key in [k for k in self.entries if len(k) <= len(key) and key[:len(k)] == k]:
            self._drop(old_key)  # a prompt this one extends: its episode moved on
        for old_key in [k for k, e in self.entries.items() if e.call < self.call]:
            if self.bytes + entry.nbytes <= self.max_bytes:
                break
            self._drop(old_key)
        if self.bytes + entry.nbytes <= self.max_bytes:
            self.entries[key] = entry
            self.bytes += entry.nbytes

    def _drop(self, key: tuple[int, ...]) -> None:
        self.bytes -= self.entries.pop(key).nbytes


class _Kept:
    """One kept prompt: its token ids and each layer's (keys, values) over them, shaped [1, heads, tokens, dim]."""

    def __init__(self, ids: Any, layers: list[tuple[Any, Any]], call: int) -> None:
        self.ids, self.layers, self.call = ids, layers, call
        self.nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)


# Kept episode prompts per model: 4 GiB holds ~14 BFCL multi-turn prompts of 6k tokens on SmolLM2-135M (46 KB of
# keys and values a token); the static cache of a 16-row batch of them takes ~5 GiB besides.
ROW_PREFIX_BYTES = 4 * 1024**3


@lru_cache(maxsize=4)
def row_prefixes(model_dir: str, adapter_dir: str = "") -> RowPrefixes:
    """The kept episode prompts of one loaded model (once per process)."""
    return RowPrefixes(ROW_PREFIX_BYTES)


def _prefill_rows(model: Any, static: Any, prefix: Any, rests: list[list[int]], rows: list[int], batch: int,
                  shared: int, width: int, pad_id: int) -> None:
    """Prefill `rows` (their tokens after the shared prefix, less the last) into the static cache, right-aligned
    to column width - 1."""
    import torch
    from transformers import DynamicCache

    span = max(len(r) for r in rests)
    n = len(rows)
    new_k = new_v = None
    if span:
        sub = torch.full((n, span), pad_id, dtype=torch.long)
        sub_mask = torch.zeros((n, span), dtype=torch.long)
        for i, rest in enumerate(rests):
            if rest:
                sub[i, span - len(rest):], sub_mask[i, span - len(rest):] = torch.tensor(rest), 1
        positions = (shared + sub_mask.cumsum(-1) - 1).clamp(min=0)
        past = DynamicCache()
        if prefix is not None:
            for layer_index, layer in enumerate(prefix.layers):
                past.update(layer.keys.expand(n, -1, -1, -1).contiguous(),
                            layer.values.expand(n, -1, -1, -1).contiguous(), layer_index)
        full_mask = torch.cat([torch.ones((n, shared), dtype=torch.long), sub_mask], dim=1)
        out = model(input_ids=sub, attention_mask=full_mask, position_ids=positions, past_key_values=past,
                    use_cache=True).past_key_values
        new_k = [layer.keys[:, :, shared:] for layer in out.layers]
        new_v = [layer.values[:, :, shared:] for layer in out.layers]
    index = torch.tensor(rows)
    for layer_index, layer in enumerate(static.layers):
        source = prefix.layers[layer_index] if prefix is not None else None
        if new_k is None and source is None:
            continue  # one-token prompts: nothing to prefill, generate() fills the cache
        _allocate(layer, new_k[layer_index] if new_k is not None else source.keys, batch)
        if source is not None:
            layer.keys[index, :, :shared] = source.keys
            layer.values[index, :, :shared] = source.values
        if new_k is not None:
            layer.keys[index, :, width - 1 - span:width - 1] = new_k[layer_index]
            layer.values[index, :, width - 1 - span:width - 1] = new_v[layer_index]


def _allocate(layer: Any, keys: Any, batch: int) -> None:
    """Allocate a static cache layer's tensors for the whole batch, shaped like this model's `keys`, once."""
    if not layer.is_initialized:
        like = keys[:1, :, :1]
        layer.lazy_initialization(like.expand(batch, -1, -1, -1), like.expand(batch, -1, -1, -1))


@lru_cache(maxsize=4)
def grammar_compiler(model_dir: str, adapter_dir: str = "") -> grammar.Compiler:
    """The tool-call grammar compiler for a loaded model's tokenizer (once per process)."""
    model, tokenizer = load_local(model_dir, adapter_dir)
    return grammar.Compiler(tokenizer, vocab_size=model.config.vocab_size)


def check_adapter_base(adapter_dir: str, local_model: str) -> None:
    """Refuse an adapter trained on another embedded model than the one selected (its weights would not fit)."""
    trained_on = adapter_base(adapter_dir)
    if trained_on is not None and trained_on.name != local_model:
        raise ValueError(f"the adapter in {adapter_dir} was trained on {trained_on.label}, but the embedded model is "
                         f"{embedded_model(local_model).label}; select {trained_on.name} (AGENTLEARN_LOCAL_MODEL or "
                         "the dashboard's sidebar) to use it")


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
    if adapter_dir:
        check_adapter_base(adapter_dir, settings.local_model)
    return LocalChatModel(
        model_dir=str(chat_model_dir(Path(settings.models_dir), settings.local_model)), adapter_dir=adapter_dir,
        max_new_tokens=settings.max_new_tokens, temperature=temperature, seed=seed, batch_size=settings.batch_size,
        threads=settings.threads,
    )
