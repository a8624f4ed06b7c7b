"""Find similar: trajectories whose request and output read most like one another (embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from agentlearn.feedback.index import trajectory_index
from agentlearn.workspace import Workspace

SIMILAR_TABLE = "trajectories"


def similar(ws: Workspace, trajectory_id: str, k: int = 10, among: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """The k trajectories whose request and output read most like this one's (cosine, embeddings).

    Embeds trajectories not seen before (incrementally), so the first call on a big store takes longer.
    """
    idx = trajectory_index(ws)
    if trajectory_id not in idx.position:
        raise ValueError(f"no trajectory with id {trajectory_id!r}")
    table = ws.vectors(SIMILAR_TABLE)
    if len(table.ids) != len(idx) or trajectory_id not in set(table.ids):
        # sync() only encodes ids that are new or whose text changed.
        table.sync(dict(zip(idx.ids.tolist(), idx.text.tolist(), strict=True)), ws.encoder)
    query = table.rows([trajectory_id])[0]
    scores = table.matrix @ query
    ids = np.array(table.ids, dtype=object)
    if among is not None:
        keep = pd.Index(ids).isin(list(among))
        ids, scores = ids[keep], scores[keep]
    order = np.argsort(-scores)
    out = [(str(ids[n]), float(scores[n])) for n in order if ids[n] != trajectory_id]
    return out[:k]
