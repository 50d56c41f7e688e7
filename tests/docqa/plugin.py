"""Fixtures for the document Q&A tests: the real embedding model (loaded once) and services in tmp dirs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path


@functools.cache
def shared_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per test process."""
    from src.docqa.embeddings import Embedder

    return Embedder().load()


def make_service(root: Path, **kwargs):
    from src.docqa.service import DocumentService

    return DocumentService(shared_embedder(), db_root=root, **kwargs)


def service_in(tmp_path: Path) -> Iterator[object]:
    """A DocumentService over a fresh db_root in a temp dir (use with ``yield from`` in a fixture)."""
    service = make_service(tmp_path / "db")
    yield service
    service.close()


def tiny_cross_encoder(folder: Path) -> Path:
    """A real (randomly initialised, seeded) 2-layer BERT cross-encoder written from a config,
    with all-MiniLM-L6-v2's tokenizer: what --reranker_model loads, in a few hundred KB."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    source = Path(shared_embedder().path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    return folder
