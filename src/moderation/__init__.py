"""Moderation in the engine process: OpenAI's categories scored for texts (/v1/moderations).

Two scorers answer the contract's ``ModerateRequest``: a trained classifier when
``--moderation_model`` names one (classifier.py), else the embedding-similarity heuristic
over the server's embedding model (heuristic.py). The classifier is loaded at start, so a
bad folder stops the server before it serves; the heuristic loads nothing of its own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from src.contract import ModerateRequest, ModerateResult, ModerationVerdict
from src.errors import InvalidParamsError
from src.moderation.classifier import ClassifierModerator, ModerationModelError
from src.moderation.heuristic import EmbeddingModerator

if TYPE_CHECKING:
    from src.settings import Settings

MAX_INPUTS = 64

__all__ = ["ClassifierModerator", "EmbeddingModerator", "ModerationModelError", "Moderator", "build_moderator"]


class Scorer(Protocol):
    name: str
    method: str
    threshold: float

    def score(self, texts: list[str]) -> list[ModerationVerdict]: ...


class Moderator:
    """The scorer the flags chose; ``embedder`` is a callable giving the embedding model
    (the document service's when documents are on), asked for only when first needed."""

    def __init__(self, classifier: ClassifierModerator | None, embedder: Any) -> None:
        self._classifier = classifier
        self._embedder = embedder
        self._heuristic: EmbeddingModerator | None = None
        self._lock = threading.Lock()

    def scorer(self) -> Scorer:
        if self._classifier is not None:
            return self._classifier
        with self._lock:
            if self._heuristic is None:
                self._heuristic = EmbeddingModerator(self._embedder())
            return self._heuristic

    def moderate(self, request: ModerateRequest) -> ModerateResult:
        if not request.texts:
            raise InvalidParamsError("input must not be empty", param="input")
        if len(request.texts) > MAX_INPUTS:
            raise InvalidParamsError(f"input takes at most {MAX_INPUTS} texts, got {len(request.texts)}",
                                     param="input")
        scorer = self.scorer()
        return ModerateResult(model=scorer.name, method=scorer.method,  # type: ignore[arg-type]
                              threshold=scorer.threshold, results=scorer.score(request.texts))


def build_moderator(settings: Settings, docs: Any = None) -> Moderator:
    """The moderator of the flags: ``--moderation_model`` loaded now, else the heuristic over
    ``docs.embedder`` (or an embedding model of ``--hf_embedding_model`` when documents are off)."""
    classifier = ClassifierModerator(settings.moderation_model) if settings.moderation_model else None

    def embedder() -> Any:
        if docs is not None:
            return docs.embedder
        from src.docqa.embeddings import Embedder

        return Embedder(settings.hf_embedding_model)

    return Moderator(classifier, embedder)
