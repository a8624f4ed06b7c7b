"""Text -> unit vectors. The real encoder is MiniLM; a hashing encoder stands in for fast tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from agentlearn.models import EMBEDDING_DIM, embedding_model, one_thread


def encode(texts: Sequence[str]) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2: float32 rows of length 384, L2-normalised."""
    model = embedding_model()
    if len(texts) <= 4:
        # One query is fastest on one thread: with two, thread start-up after batch work costs
        # hundreds of milliseconds on a 2-core machine.
        with one_thread():
            out = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
    else:
        out = model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), EMBEDDING_DIM)


def hash_encode(texts: Sequence[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """A deterministic bag-of-words encoder for unit tests: shared words give similar vectors."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
            out[row, h % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
