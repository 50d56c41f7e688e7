"""evaluate() with documents on the real tiny LLM, the real embedder and real Chroma in a tmp dir."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from src.docqa.collections import Requester, UnknownCollectionError
from src.engine.registry import ModelRegistry
from src.engine.transformers_backend import TransformersBackend
from src.evaluate import Evaluator
from src.params import EvalParams
from src.settings import build_settings
from tests.conftest import wait_idle
from tests.docqa.plugin import service_in

ALICE = Requester("alice")


@pytest.fixture
def docs(tmp_path: Path):
    yield from service_in(tmp_path)


@pytest.fixture
def ev(registry, docs, tmp_path: Path) -> Evaluator:
    settings = build_settings({"db_root": str(tmp_path / "db"), "langchain_mode": "UserData"})
    docs.add_text("UserData", "The Zanzibar project deadline is March 3rd. Its budget is 40,000 euros.",
                  "zanzibar.txt", None)
    docs.add_text("UserData", "Photosynthesis lets plants turn sunlight into sugar.", "plants.txt", None)
    return Evaluator(settings, registry, docs)


def run(ev: Evaluator, user: Requester | None = None, **params):
    params.setdefault("max_new_tokens", 24)
    params.setdefault("temperature", 0.0)
    chunks = list(ev.evaluate(EvalParams(**params), user=user))
    assert chunks[-1].finish_reason is not None
    assert all(not c.sources for c in chunks[:-1])  # sources come with the last chunk
    # the first chunk names the model that answers (EvalEvent.model), the others do not
    assert chunks[0].model == ev.registry.main.name and all(c.model is None for c in chunks[1:])
    return chunks[-1]


def test_query_answers_from_documents_with_sources(ev) -> None:
    final = run(ev, instruction="When is the Zanzibar project deadline?")
    assert "March" in final.response
    assert final.sources[0]["source"] == "zanzibar.txt"
    assert set(final.sources[0]) == {"source", "page", "content", "score"}
    assert "40,000" in final.sources[0]["content"] and 0 < final.sources[0]["score"] <= 1
    assert all(s["source"] != "plants.txt" for s in final.sources)  # beyond the cut-off


def test_no_match_falls_back_to_llm_or_says_so(ev) -> None:
    final = run(ev, instruction="What is the capital of France?")
    assert final.response and final.sources[0]["source"] == ""
    assert "without documents" in final.sources[0]["content"]
    refused = run(ev, instruction="What is the capital of France?", use_llm_if_no_docs=False)
    assert refused.response == "No matching documents were found in UserData." and refused.sources == []


def test_source_listings_do_not_call_the_llm(ev) -> None:
    rel = run(ev, instruction="How do plants use sunlight?", document_subset="RelSources")
    assert [s["source"] for s in rel.sources] == ["plants.txt"]
    assert rel.completion_tokens == 0 and "plants.txt" in rel.response
    top = run(ev, instruction="anything", document_subset="TopKSources", top_k_docs=5)
    assert {s["source"] for s in top.sources} == {"plants.txt", "zanzibar.txt"}


def test_document_choice_restricts_sources(ev) -> None:
    final = run(ev, instruction="What is the budget?", document_choice=["plants.txt"],
                document_subset="RelSources")
    assert {s["source"] for s in final.sources} <= {"plants.txt"}


def test_summarize_and_extract(ev) -> None:
    summary = run(ev, langchain_action="Summarize", document_choice=["zanzibar.txt"])
    assert summary.response and [s["source"] for s in summary.sources] == ["zanzibar.txt"]
    extract = run(ev, langchain_action="Extract", stream_output=True)
    assert extract.response and {s["source"] for s in extract.sources} == {"plants.txt", "zanzibar.txt"}
    assert extract.completion_tokens > 0


@pytest.fixture
def small(engine, docs, tmp_path: Path):
    """An evaluator whose model has a 900-token window: chapters need several map groups."""
    backend = TransformersBackend(dataclasses.replace(engine.loaded, max_seq_len=900), concurrency=8)
    settings = build_settings({"db_root": str(tmp_path / "db"), "langchain_mode": "UserData"})
    for i in range(3):
        docs.add_text("UserData", f"Chapter {i}: " + "The caravan crossed the desert at night. " * 40,
                      f"chapter{i}.txt", None)
    yield Evaluator(settings, ModelRegistry([backend]), docs), backend
    backend.shutdown()


CHAPTERS = {"langchain_action": "Summarize", "instruction": "the caravan",
            "document_choice": [f"chapter{i}.txt" for i in range(3)]}


def test_summarize_map_reduce_over_many_groups(small) -> None:
    ev, _ = small
    final = run(ev, **CHAPTERS)
    assert final.response and len({s["source"] for s in final.sources}) == 3


def test_map_steps_run_as_one_batch_and_the_first_chunk_comes_at_once(small) -> None:
    ev, backend = small
    peak = 0
    chunks = ev.evaluate(EvalParams(max_new_tokens=24, temperature=0.0, **CHAPTERS))
    first = next(chunks)  # comes when the map starts, long before any answer text
    assert (first.delta, first.response, first.finish_reason, first.model) == ("", "", None, backend.name)
    while backend.stats()["running"] + backend.stats()["queued"] > 0:
        peak = max(peak, backend.stats()["running"])
        time.sleep(0.005)
    rest = list(chunks)
    assert peak >= 2  # the map groups ran side by side in the batch
    assert rest[-1].finish_reason == "stop" and rest[-1].response


def test_cancel_stops_every_map_step(small) -> None:
    ev, backend = small
    cancel = threading.Event()
    params = EvalParams(max_new_tokens=400, min_new_tokens=400, temperature=0.0, **CHAPTERS)
    chunks = ev.evaluate(params, cancel)
    next(chunks)  # the map has started
    while backend.stats()["running"] < 2:
        time.sleep(0.005)
    cancel.set()
    assert wait_idle(backend, 10) == 0
    rest = list(chunks)
    assert not rest or rest[-1].completion_tokens < 400
    assert backend.stats()["kv_cache_used_tokens"] == 0


def test_text_context_list_needs_no_database(registry, tmp_path: Path) -> None:
    settings = build_settings({"db_root": str(tmp_path / "none")})
    bare = Evaluator(settings, registry)
    final = run(bare, instruction="What colour is the sky in the story?",
                text_context_list=["In the story, the sky is green."])
    assert final.sources[0]["source"] == "text_context_list[0]"
    assert not (tmp_path / "none").exists()


def test_personal_collection_needs_its_owner(ev, docs) -> None:
    docs.add_text("MyData", "Alice's wifi password is tangerine42.", "wifi.txt", ALICE)
    mine = run(ev, ALICE, langchain_mode="MyData", instruction="What is the wifi password?")
    assert mine.sources[0]["source"] == "wifi.txt"
    other = run(ev, Requester("bob"), langchain_mode="MyData", instruction="What is the wifi password?",
                document_subset="RelSources")
    assert other.sources == []
    with pytest.raises(UnknownCollectionError):
        run(ev, langchain_mode="NoSuchCollection", instruction="hi")
