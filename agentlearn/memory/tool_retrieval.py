"""Tool retrieval: offer the model the few tools a request most likely needs, not every tool of the suite.

A 135M model choosing among a dozen tools mostly copies the closest exemplar or guesses; among three
likely ones it chooses far better, and a shorter tool list is a shorter prompt. Two lists rank the tools:
- votes: the tools that the suite's closest exemplars call (the RANK_SHOTS most similar by MiniLM cosine,
  those at VOTE_MIN_COSINE or more, in order of first appearance): what solved similar requests;
- description: MiniLM cosine between the request and each tool's text (its name with words split, its
  description, its argument names): how a request names what it needs, for tools no exemplar calls yet.
A ranker (RANKERS) uses them: "fused" adds both by reciprocal rank fusion (score = sum of
1 / (RRF_C + rank)); "description" and "exemplars" use one list, the other only breaking ties. Which one
serves a suite differs: where most requests need a tool no exemplar calls, the votes point at the wrong
tools and the description alone ranks best. `shortlist(ws, task, m, ranker)` keeps the m best, in the
suite's own tool order; with m = 1 the ranker chooses the tool and the model writes the arguments. Only
exemplar-based methods use it (the ranker and m are chosen from the bank by leave-one-out:
retrieval.choose); zero-shot always sees every tool.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from agentlearn.memory import exemplars
from agentlearn.methods import TOOL_RANKERS
from agentlearn.workspace import Workspace
from storage.records import Task

RRF_C = 2  # small lists (a suite's tools): the top ranks must count far more than the tail
RANK_SHOTS = 10
VOTE_MIN_COSINE = 0.25  # an exemplar less similar than this to the request is no evidence for its tool
RANKERS = TOOL_RANKERS
TIE_BREAK = 1e-3  # weight of the other list in a single-list ranker: it only orders tools the first ties
_GENERIC = re.compile(r"\(schema inferred from \d+ example calls?\)")


def tool_text(tool: dict[str, Any]) -> str:
    """The words a tool is known by: its name split into words, its description, its argument names."""
    name = re.sub(r"[_\-.]+", " ", tool["name"])
    description = _GENERIC.sub("", tool.get("description") or "").strip()
    if description == tool["name"]:
        description = ""  # a derived tool's description is its own name again
    props = (tool.get("parameters") or {}).get("properties") or {}
    args = ", ".join(re.sub(r"[_\-.]+", " ", a) for a in props)
    return ". ".join(p for p in (name, description, f"arguments: {args}" if args else "") if p)


def _tool_vectors(ws: Workspace, texts: list[str]) -> np.ndarray:
    """Each text's vector by the workspace's encoder, encoded once per encoder (the key holds the encoder
    itself, so a vector of one encoder is never served for another)."""
    known = ws.caches.table("tool vectors")
    missing = [t for t in texts if (ws.encoder, t) not in known]
    if missing:
        for text, vector in zip(missing, ws.encoder(missing), strict=True):
            known[(ws.encoder, text)] = np.asarray(vector, dtype=np.float32)
    return np.stack([known[(ws.encoder, t)] for t in texts])


def check_ranker(ranker: str) -> str:
    """The ranker itself, or ValueError naming the known ones."""
    if ranker not in RANKERS:
        raise ValueError(f"unknown tool ranker {ranker!r}; choose one of {', '.join(RANKERS)}")
    return ranker


def rank_tools(ws: Workspace, task: Task, query_vector: np.ndarray | None = None,
               ranker: str = "fused") -> list[tuple[str, float]]:
    """Every tool of the task, best first, with its score under `ranker`."""
    check_ranker(ranker)
    weight_description = TIE_BREAK if ranker == "exemplars" else 1.0
    weight_votes = TIE_BREAK if ranker == "description" else 1.0
    tools = task.tools
    if not tools:
        return []
    query = query_vector if query_vector is not None else ws.encoder([exemplars.text_of(task.input)])[0]
    matrix = _tool_vectors(ws, [tool_text(t) for t in tools])
    q = np.asarray(query, dtype=np.float32)
    cosine = matrix @ q / np.maximum(np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(q)), 1e-12), 1e-12)
    score = {t["name"]: 0.0 for t in tools}
    for rank, i in enumerate(np.argsort(-cosine, kind="stable"), 1):
        score[tools[int(i)]["name"]] += weight_description / (RRF_C + rank)
    shots = exemplars.select(ws, task, "semantic", k=RANK_SHOTS, query_vector=query)
    seen: list[str] = []
    for s in shots:
        if s.score >= VOTE_MIN_COSINE and s.exemplar.tool in score and s.exemplar.tool not in seen:
            seen.append(s.exemplar.tool)
    for rank, name in enumerate(seen, 1):
        score[name] += weight_votes / (RRF_C + rank)
    order = {t["name"]: n for n, t in enumerate(tools)}
    return sorted(score.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def shortlist(ws: Workspace, task: Task, m: int | None, query_vector: np.ndarray | None = None,
              ranker: str = "fused") -> tuple[list[dict], list[str]]:
    """The m most likely tools of the task in the suite's order (all when m is None or covers them), and
    every tool's name best first."""
    if m is not None and m < 1:
        raise ValueError(f"a tool shortlist keeps at least 1 tool, not {m}")
    ranked = [name for name, _ in rank_tools(ws, task, query_vector, ranker)]
    keep = set(ranked if m is None else ranked[:m])
    return [t for t in task.tools if t["name"] in keep], ranked
