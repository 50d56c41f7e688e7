"""The reranker: a local sentence-transformers ``CrossEncoder`` (``--reranker_model``).

A cross-encoder reads the question and one candidate together and gives a relevance score;
it reorders the fused candidates of a retrieval and scores ``/v1/rerank``. No package ships
cross-encoder weights, so the flag takes a local folder (e.g. a copy of
``cross-encoder/ms-marco-MiniLM-L-6-v2``); nothing is downloaded. Pairs longer than the
model's window are truncated by the model, as every cross-encoder server does.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from src.docqa.embeddings import EmbeddingModelError

log = logging.getLogger(__name__)

BATCH_SIZE = 32


class Reranker:
    """Scores (query, document) pairs with a cross-encoder; thread-safe."""

    def __init__(self, path: str, device: str | None = None) -> None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise EmbeddingModelError(
                f"--reranker_model={path!r} is not a local folder; this server runs offline, so give "
                "the path of a sentence-transformers cross-encoder (e.g. a copy of "
                "cross-encoder/ms-marco-MiniLM-L-6-v2)")
        self.path = str(folder)
        self.name = folder.name
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Reranker:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                start = time.perf_counter()
                self._model = CrossEncoder(self.path, device=self.device or "cpu")
                log.info("loaded reranker %s in %.1f s", self.path, time.perf_counter() - start)
        return self

    @property
    def model(self) -> Any:
        return self._model if self._model is not None else self.load()._model

    def score(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document (higher is more relevant)."""
        if not documents:
            return []
        scores = self.model.predict([(query, d) for d in documents], batch_size=BATCH_SIZE,
                                    show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(documents), -1)[:, -1]]

    def count_tokens(self, query: str, documents: list[str]) -> int:
        """Tokens the model reads for the pairs (usage of /v1/rerank), truncation aside."""
        tokenizer = self.model.tokenizer
        encoded = tokenizer([query] * len(documents), documents, truncation=True,
                            max_length=self.model.max_seq_length)
        return sum(len(ids) for ids in encoded["input_ids"])
