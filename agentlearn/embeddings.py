"""Text -> unit vectors. The real encoder is MiniLM; a hashing encoder stands in for fast tests."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from agentlearn.models import EMBEDDING_DIM, embedding_model, embedding_model_dir
from storage.files import write_atomic


def encode(texts: Sequence[str]) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2: float32 rows of length 384, L2-normalised."""
    model = embedding_model()
    if len(texts) == 1:
        out = _encode_one(texts[0]).copy()
    elif len(texts) <= 4:
        out = _encode_few(model, list(texts))
    else:
        out = model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), EMBEDDING_DIM)


@lru_cache(maxsize=4096)
def _encode_one(text: str) -> np.ndarray:
    """One text's vector, kept: an agent behind the proxy sends the same request at every step of an
    episode, and each step retrieves for it again (4096 vectors: 6 MB)."""
    return _encode_few(embedding_model(), [text])


def _encode_few(model, texts: list[str]) -> np.ndarray:
    """A query or a few: the model's tokenizer, then its transformer, mean pooling and normalisation run by
    ONNX Runtime on one thread (equal to sentence-transformers' encode to 1e-6).

    On a request's path (the proxy's retrieval) PyTorch spent 14-17 ms a query, most of it in per-operator
    overhead on a 20-token input; ONNX Runtime runs the same graph in 5-8 ms. One thread: with two, thread
    start-up after batch work costs hundreds of milliseconds on a 2-core machine.
    """
    features = model.preprocess(texts)
    feed = {name: features[name].numpy() for name in _INPUTS}
    return _query_session().run(None, feed)[0]


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@lru_cache(maxsize=1)
def _query_session():
    """MiniLM as an ONNX Runtime session, from a file exported once per machine (seconds) and kept in the
    user's cache folder (in memory only where that cannot be written)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(_onnx_model(), options, providers=["CPUExecutionProvider"])


def _onnx_model() -> bytes | str:
    import onnxruntime
    import torch

    key = hashlib.sha256(f"{embedding_model_dir().resolve()}|{torch.__version__}|{onnxruntime.__version__}"
                         .encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentlearn" / f"minilm-{key}.onnx"
    if cache.exists():
        return str(cache)
    exported = _export_onnx()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, exported)
    except OSError:
        pass  # a read-only home: export again in the next process
    return exported


def _export_onnx() -> bytes:
    """The transformer with mean pooling and normalisation (sentence-transformers' modules 1 and 2 for this
    model) as one ONNX graph, batch and length dynamic."""
    import io
    import warnings

    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    model = embedding_model()
    sample = model.preprocess(["a query"])
    dynamic = {name: {0: "batch", 1: "length"} for name in _INPUTS}
    out = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings about the model's Python branches
        torch.onnx.export(Pooled(model[0].auto_model).eval(), tuple(sample[n] for n in _INPUTS), out,
                          input_names=list(_INPUTS), output_names=["embedding"], dynamic_axes=dynamic,
                          opset_version=17, dynamo=False)
    return out.getvalue()


def hash_encode(texts: Sequence[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """A deterministic bag-of-words encoder for unit tests: shared words give similar vectors."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
            out[row, h % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
