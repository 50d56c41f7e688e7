"""Hybrid retrieval: dense (Chroma) and lexical (BM25) candidates, fused, optionally reranked.

The dense and the lexical search each return up to ``candidates`` chunks; the lists are
fused by a convex combination of the min-max normalised scores (``alpha`` * cosine +
(1 - alpha) * BM25, the default, alpha 0.3) or by reciprocal rank fusion
(``score = sum 1 / (RRF_K + rank)``, Cormack et al.; ``RRF_K`` 60) (``--hybrid_fusion``),
the reranker (when loaded) reorders the fused head, and the first ``k`` are kept. Every
returned hit carries its true cosine distance to the question (lexical-only hits get theirs
from their stored vector), so sources keep showing similarity as before.

The defaults were chosen on ``bench/retrieval.py`` (see docs/performance.md): on 48 git-doc
questions convex fusion reached recall@5 0.958 for every alpha in 0.2-0.5 (MRR highest,
0.821, at 0.3), RRF 0.917, dense alone 0.771.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from src.docqa.lexical import LexicalHit
from src.docqa.store import ChromaStore, Hit, Where

Fusion = Literal["rrf", "convex"]
RRF_K = 60
DEFAULT_CANDIDATES = 40
DEFAULT_ALPHA = 0.3


@dataclass(frozen=True)
class RetrievalOptions:
    """How one retrieval runs (the server's flags, overridden per request)."""

    hybrid: bool = True
    fusion: Fusion = "convex"
    alpha: float = DEFAULT_ALPHA      # convex: weight of the dense score
    candidates: int = DEFAULT_CANDIDATES
    rerank: bool = True               # use the reranker when one is loaded


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion of ranked id lists (best first)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, id_ in enumerate(ranking, start=1):
            scores[id_] = scores.get(id_, 0.0) + 1.0 / (k + rank)
    return scores


def _minmax(values: dict[str, float]) -> dict[str, float]:
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    span = hi - lo
    return {k: (v - lo) / span if span > 0 else 1.0 for k, v in values.items()}


def convex(dense: dict[str, float], lexical: dict[str, float], alpha: float) -> dict[str, float]:
    """``alpha * dense + (1 - alpha) * lexical`` over min-max normalised scores (0 when absent)."""
    d, lx = _minmax(dense), _minmax(lexical)
    return {i: alpha * d.get(i, 0.0) + (1 - alpha) * lx.get(i, 0.0) for i in {*d, *lx}}


def hybrid_search(store: ChromaStore, query: str, vector: np.ndarray, depth: int,
                  where: Where | None, names: Sequence[str], options: RetrievalOptions,
                  max_distance: float = math.inf) -> list[Hit]:
    """The ``depth`` best hits, fused, best first.

    The dense and the lexical search each give ``max(depth, candidates)``; dense hits farther
    than ``max_distance`` are dropped, lexical ones kept whatever their distance. Only the
    lexical hits that rank among the first ``depth`` are fetched from Chroma (their text and
    their vector, for their distance): a fused score does not need them, and at 1,000,000
    chunks fetching all 40 lexical candidates cost about 6 ms a question."""
    n = max(depth, options.candidates)
    dense = store.query(vector, n, where)
    if not options.hybrid:
        return [h for h in dense if h.distance <= max_distance][:depth]
    lexical: list[LexicalHit] = store.search_lexical(query, n, names)
    found = {h.id for h in lexical}
    by_id = {h.id: h for h in dense}
    if options.fusion == "convex":
        scores = convex({h.id: 1.0 - h.distance for h in dense}, {h.id: h.score for h in lexical},
                        options.alpha)
    else:
        scores = rrf([[h.id for h in dense], [h.id for h in lexical]])
    ranked = sorted((i for i in scores if i in found or by_id[i].distance <= max_distance),
                    key=lambda i: -scores[i])
    head: list[str] = []
    start = 0
    while len(head) < depth and start < len(ranked):  # a lexical hit Chroma lacks is skipped
        batch = ranked[start: start + depth - len(head)]
        start += len(batch)
        hits, vectors = store.get_ids([i for i in batch if i not in by_id])
        for hit, vec in zip(hits, vectors, strict=True):
            by_id[hit.id] = replace(hit, distance=float(1.0 - np.dot(vec, vector)))
        head.extend(i for i in batch if i in by_id)
    head.sort(key=lambda i: (-scores[i], by_id[i].distance))
    return [by_id[i] for i in head]
