"""Moderation without a classifier: embedding similarity to category descriptions.

text-generation-webui's method for its OpenAI-compatible ``/v1/moderations``: embed the
input and a description of each category with the embedding model the server already
loads (``--hf_embedding_model``, all-MiniLM-L6-v2 by default), and score each category by
the cosine similarity of the two, clipped to [0, 1]. A category is flagged at
``THRESHOLD``.

This is a heuristic, not a trained moderation model: it tells an input that is *about* a
category's subject from one that is not (on all-MiniLM-L6-v2 a neutral sentence scores
below 0.2 on every category, a plainly violent one 0.35 to 0.5 on the violent ones), but it
cannot tell a threat from a news report of one, and its scores are not probabilities.
Give ``--moderation_model`` a trained classifier for real moderation.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from src.contract import MODERATION_CATEGORIES, ModerationVerdict

THRESHOLD = 0.4

#: What each category is about, in the words a matching input would use.
DESCRIPTIONS: dict[str, str] = {
    "harassment": "insulting, bullying, demeaning or harassing a person",
    "harassment/threatening": "threatening to hurt or kill a specific person",
    "hate": "hateful slurs or contempt for people because of their race, religion, gender or origin",
    "hate/threatening": "threats of violence against a group because of their race, religion or origin",
    "illicit": "how to commit crimes: steal, hack, or buy and sell illegal drugs",
    "illicit/violent": "how to make weapons or bombs to attack people",
    "self-harm": "suicide, cutting or hurting oneself",
    "self-harm/intent": "suicidal thoughts: I want to die, I am going to hurt myself",
    "self-harm/instructions": "instructions for how to commit suicide or self-harm",
    "sexual": "explicit sexual content, sex acts, pornography",
    "sexual/minors": "sexual content involving children or minors",
    "violence": "violence: killing, stabbing, shooting, beating or attacking people",
    "violence/graphic": "graphic gore, blood, mutilated bodies and wounds",
}
assert tuple(DESCRIPTIONS) == MODERATION_CATEGORIES


class EmbeddingModerator:
    """Scores texts by similarity to :data:`DESCRIPTIONS` with an ``Embedder``
    (src/docqa/embeddings.py: L2-normalised vectors, so a dot product is the cosine)."""

    method = "embedding_similarity"
    threshold = THRESHOLD

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.name = str(embedder.name).rstrip("/").rsplit("/", 1)[-1]
        self._categories: np.ndarray | None = None
        self._lock = threading.Lock()

    def categories(self) -> np.ndarray:
        with self._lock:
            if self._categories is None:
                self._categories = np.asarray(self.embedder.embed(list(DESCRIPTIONS.values())))
            return self._categories

    def score(self, texts: list[str]) -> list[ModerationVerdict]:
        similarity = np.asarray(self.embedder.embed(texts)) @ self.categories().T
        verdicts = []
        for row in np.clip(similarity, 0.0, 1.0):
            scores = {c: float(s) for c, s in zip(MODERATION_CATEGORIES, row, strict=True)}
            verdicts.append(ModerationVerdict(scores=scores,
                                              flags={c: s >= THRESHOLD for c, s in scores.items()}))
        return verdicts
