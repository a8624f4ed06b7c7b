"""The real MiniLM encoder: the short-query path gives what sentence-transformers' own encode gives."""

import numpy as np

from agentlearn.embeddings import encode
from agentlearn.models import embedding_model

TEXTS = ["The printer on floor 3 is jammed again", "reset my password please", "x",
         "The VPN drops every hour when I work from the lab, and the wiki is unreachable"]


def test_one_and_a_few_texts_embed_as_sentence_transformers_does_and_a_kept_vector_cannot_be_changed():
    want = embedding_model().encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    few = encode(TEXTS)  # up to 4: the modules called directly
    assert few.shape == (4, 384) and few.dtype == np.float32
    np.testing.assert_allclose(few, want, atol=1e-5)
    one = encode(TEXTS[:1])  # one: kept for the next request with the same text
    np.testing.assert_allclose(one[0], want[0], atol=1e-5)
    one[0, :] = 0  # the caller's copy, not the kept vector
    np.testing.assert_allclose(encode(TEXTS[:1])[0], want[0], atol=1e-5)
    many = encode(TEXTS * 2)  # more than 4: sentence-transformers' batched encode
    np.testing.assert_allclose(many[:4], want, atol=1e-5)
    assert not embedding_model().training  # dropout off: the direct path relies on eval() at load
