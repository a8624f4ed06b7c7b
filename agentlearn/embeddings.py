"""Text -> unit vectors. The real encoder is MiniLM; a hashing encoder stands in for fast tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from agentlearn.models import EMBEDDING_DIM, embedding_model, one_thread


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
    """A query or a few: the model's own modules called directly, on one thread.

    The same tokenizer, transformer, mean pooling and normalisation as `model.encode` (equal to 1e-6),
    without its per-call set-up (device resolution, eval(), length sorting): 3 of the 15 ms a query
    took, on a request's path (the proxy's retrieval). One thread: with two, thread start-up after
    batch work costs hundreds of milliseconds on a 2-core machine.
    """
    import torch

    with one_thread(), torch.inference_mode():
        return model(model.preprocess(texts))["sentence_embedding"].numpy()


def hash_encode(texts: Sequence[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """A deterministic bag-of-words encoder for unit tests: shared words give similar vectors."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
            out[row, h % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
