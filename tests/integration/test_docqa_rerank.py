"""Reranking with a real sentence-transformers CrossEncoder (a tiny one written from a config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.docqa.embeddings import EmbeddingModelError
from src.docqa.rerank import Reranker
from src.docqa.splitting import indexed_text
from tests.docqa.plugin import make_service, shared_embedder, tiny_cross_encoder
from tests.integration.test_docqa_hybrid import write_notes


@pytest.fixture(scope="module")
def reranker(tmp_path_factory) -> Reranker:
    return Reranker(str(tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "tiny-ce"))).load()


def test_the_cross_encoder_scores_each_pair_deterministically(reranker: Reranker) -> None:
    docs = ["The ferry leaves at seven.", "Bananas are yellow.", "The ferry leaves at seven."]
    scores = reranker.score("When does the ferry leave?", docs)
    assert len(scores) == 3 and scores[0] == pytest.approx(scores[2]) and scores[0] != scores[1]
    assert reranker.score("When does the ferry leave?", docs) == scores
    assert reranker.count_tokens("q", docs) > 3 * 3


def test_retrieval_candidates_come_back_in_the_rerankers_order(reranker: Reranker, tmp_path: Path) -> None:
    plain = make_service(tmp_path / "db")
    plain.add_files("UserData", write_notes(tmp_path / "notes"), None)
    question = "Which setting controls the standby feedback?"
    candidates = plain.retrieve("UserData", question, 10, None)
    plain.close()
    ranked = make_service(tmp_path / "db", reranker=reranker)
    hits = ranked.retrieve("UserData", question, 10, None)
    assert {h.id for h in hits} == {h.id for h in candidates}
    scores = reranker.score(question, [indexed_text(h.content, h.metadata) for h in hits])
    assert scores == sorted(scores, reverse=True)
    assert [h.id for h in hits] != [h.id for h in candidates]  # it did reorder
    _, model, _ = ranked.rerank(question, ["a", "b"])
    assert model == "tiny-ce"
    ranked.close()


def test_without_a_reranker_rerank_scores_by_embedding_cosine(tmp_path: Path) -> None:
    docs = make_service(tmp_path / "db")
    texts = ["The harbour ferry leaves at seven fifteen.", "Penguins huddle in blizzards."]
    scores, model, tokens = docs.rerank("When does the ferry leave?", texts)
    vectors = shared_embedder().embed(["When does the ferry leave?", *texts])
    assert scores == pytest.approx([float(vectors[1] @ vectors[0]), float(vectors[2] @ vectors[0])], abs=1e-5)
    assert scores[0] > scores[1] and model == shared_embedder().name and tokens > 10
    docs.close()


def test_a_reranker_that_is_not_a_local_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError, match="not a local folder"):
        Reranker("cross-encoder/ms-marco-MiniLM-L-6-v2")
