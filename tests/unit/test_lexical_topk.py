"""The lexical index's pruned top-k search (MaxScore) against BM25 computed by brute force.

The index skips, for the frequent terms of a query, the chunks that cannot reach the top k;
whatever it skips, the k chunks and scores it answers must be those of scoring every chunk
with every term, across segments, deletions and a document filter.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from src.docqa.lexical import K1, B, LexicalIndex


def zipf_texts(rng: np.random.Generator, count: int, words: int) -> list[str]:
    ranks = rng.zipf(1.1, size=(count, words)) % 3000
    return [" ".join(f"w{r}x" for r in row) for row in ranks]


def brute_force(index: LexicalIndex, texts: dict[str, str], origins: dict[str, str], query: str, k: int,
                names: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """BM25 of every live chunk with the index's collection statistics (deleted chunks count in
    them until their segment is merged, as in Lucene)."""
    terms = set(index.tokenizer.encode(query, grow=False))
    avgdl = index._length / index._docs
    scored = []
    for id_, text in texts.items():
        if names and origins[id_] not in names:
            continue
        counts = Counter(index.tokenizer.encode(text, grow=False))
        length = sum(counts.values())
        score = 0.0
        for t in terms & counts.keys():
            df = index._df[t]
            idf = math.log(1 + (index._docs - df + 0.5) / (df + 0.5))
            tf = counts[t]
            score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avgdl))
        if score > 0:
            scored.append((id_, score))
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored[:k]


@pytest.mark.parametrize("k", [1, 5, 40])
def test_pruned_search_answers_the_brute_force_top_k(k: int) -> None:
    rng = np.random.default_rng(k)
    index = LexicalIndex()
    texts: dict[str, str] = {}
    origins: dict[str, str] = {}
    for batch in range(12):  # 12 writes: several segments, some merged
        ids = [f"c{batch}-{i}" for i in range(400)]
        batch_texts = zipf_texts(rng, len(ids), 60)
        batch_origins = [f"f{i % 7}" for i in range(len(ids))]
        index.add(ids, batch_texts, batch_origins, batch_origins)
        texts.update(zip(ids, batch_texts, strict=True))
        origins.update(zip(ids, batch_origins, strict=True))
    gone = [f"c{b}-{i}" for b in (0, 5, 11) for i in range(0, 400, 3)]
    assert index.delete(gone) == len(gone)
    for id_ in gone:
        del texts[id_], origins[id_]
    pruned_somewhere = 0
    for question in zipf_texts(rng, 25, 8):
        for names in ((), ("f2", "f5")):
            expected = brute_force(index, texts, origins, question, k, names)
            got = [(h.id, h.score) for h in index.search(question, k, names)]
            assert [i for i, _ in got] == [i for i, _ in expected], question
            assert np.allclose([s for _, s in got], [s for _, s in expected], rtol=1e-4)
            pruned_somewhere += len(expected) == k
    assert pruned_somewhere > 0  # the questions had k answers: the pruning was exercised
