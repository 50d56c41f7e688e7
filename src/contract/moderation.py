"""The contract's moderation service: texts in, OpenAI's category scores out.

Part of the engine contract (src/contract/__init__.py re-exports every name here). The
categories are OpenAI's keys, in the order of its moderation reference; ``scores`` of a
verdict has every one of them (0.0 where the scorer has nothing for a category).
"""

from __future__ import annotations

from typing import Literal

from src.contract.base import Contract

#: OpenAI's moderation categories (omni-moderation), exactly as its API spells them.
MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)


class ModerateRequest(Contract):
    """One verdict per text, in their order."""

    texts: list[str]


class ModerationVerdict(Contract):
    """Scores in [0, 1] for every category, and whether each is over the scorer's threshold."""

    scores: dict[str, float]
    flags: dict[str, bool]


class ModerateResult(Contract):
    """``model``: what scored (the classifier's folder name, or the embedding model's);
    ``method``: a trained classifier, or the embedding-similarity heuristic."""

    model: str
    method: Literal["classifier", "embedding_similarity"]
    threshold: float
    results: list[ModerationVerdict]
