"""Hybrid retrieval over real Chroma (local folders and a real `chroma run`), the real model.

The lexical index is kept beside each collection: it must find exact identifiers dense
retrieval misses, follow adds, updates and deletes, survive a restart without being
rebuilt, and be consistent between two instances sharing one Chroma server.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from src.docqa.chroma_server import ChromaServer
from src.docqa.lexical import LexicalIndex
from src.docqa.retrieval import DEFAULT_ALPHA, convex
from src.docqa.service import DocumentService
from tests.chroma_server import ChromaRun
from tests.docqa.plugin import make_service, service_in, shared_embedder

#: Paragraphs about one topic, one of which holds the identifier asked about.
SETTINGS_NOTES = [
    f"The replication subsystem exposes many tuning knobs. Setting {name} changes how the "
    f"primary ships its write-ahead log to standbys, and operators adjust it during load tests."
    for name in ("wal_sender_timeout", "max_wal_senders", "wal_keep_size", "hot_standby_feedback",
                 "synchronous_commit", "wal_receiver_status_interval", "recovery_min_apply_delay",
                 "max_replication_slots", "wal_compression", "archive_timeout")
]


def write_notes(folder: Path) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, text in enumerate(SETTINGS_NOTES):
        path = folder / f"note{i}.txt"
        path.write_text(text)
        files.append((path, path.name))
    return files


@pytest.fixture
def docs(tmp_path: Path):
    yield from service_in(tmp_path)


def lexical_sources(docs, query: str, k: int = 3) -> list[str]:
    store = docs._store(docs.collection("UserData", None))
    hits = store.get_ids([h.id for h in store.search_lexical(query, k)])[0]
    return [str(h.metadata["source"]) for h in hits]


def test_an_exact_identifier_is_found_first_with_hybrid_search(docs, tmp_path: Path) -> None:
    docs.add_files("UserData", write_notes(tmp_path / "notes"), None)
    question = "What does recovery_min_apply_delay do?"
    hybrid = docs.retrieve("UserData", question, 3, None)
    assert hybrid[0].metadata["source"] == "note6.txt"
    assert lexical_sources(docs, question)[0] == "note6.txt"
    # per-request override: embeddings alone, ranked by distance
    dense = docs.retrieve("UserData", question, 3, None, hybrid=False)
    assert [h.distance for h in dense] == sorted(h.distance for h in dense)
    assert all(0.0 <= h.distance <= 1.0 for h in hybrid)  # lexical hits carry their true distance


def test_only_the_lexical_hits_kept_are_fetched_and_the_ranking_is_unchanged(docs, tmp_path: Path,
                                                                             monkeypatch) -> None:
    """The fused ranking needs no chunk text: a k-deep search fetches from Chroma only the
    lexical hits among its first k (not every lexical candidate), and answers the first k of
    the whole fused ranking."""
    docs.add_files("UserData", write_notes(tmp_path / "notes"), None)
    docs.retrieval = replace(docs.retrieval, candidates=6)  # fewer than the 10 notes: lexical hits outside the dense 6
    store = docs._store(docs.collection("UserData", None))
    fetched: list[str] = []
    get_ids = store.get_ids
    monkeypatch.setattr(store, "get_ids", lambda ids: fetched.extend(ids) or get_ids(ids))
    monkeypatch.setattr(docs, "_store", lambda info: store)
    fetched_needed = 0
    for question in ("What does recovery_min_apply_delay do?", "standby write-ahead log tuning",
                     "archive_timeout and wal_compression during load tests"):
        vector = docs.embedder.embed_query(question)
        for k in (1, 8):
            n = max(k, 6)  # each search gives max(k, candidates)
            dense, lexical = store.query(vector, n, None), store.search_lexical(question, n)
            fused = convex({h.id: 1.0 - h.distance for h in dense}, {h.id: h.score for h in lexical},
                           DEFAULT_ALPHA)
            expected = sorted(fused, key=lambda i: -fused[i])[:k]
            fetched.clear()
            assert [h.id for h in docs.retrieve("UserData", question, k, None, max_distance=2.0)] == expected
            assert set(fetched) == set(expected) - {h.id for h in dense}  # not every lexical hit the dense search missed
            fetched_needed += len(fetched)
    assert fetched_needed  # some lexical hits in the answer were not among the dense ones


def test_lexical_index_survives_a_restart_without_being_rebuilt(tmp_path: Path) -> None:
    first = make_service(tmp_path / "db")
    first.add_files("UserData", write_notes(tmp_path / "notes"), None)
    folder = tmp_path / "db" / "db_dir_UserData" / "lexical"
    assert (folder / "manifest.json").is_file()
    first.close()
    on_disk = LexicalIndex(folder)  # what a restarted server opens
    assert len(on_disk) == len(SETTINGS_NOTES)
    second = make_service(tmp_path / "db")
    store = second._store(second.collection("UserData", None))
    assert store.lexical.ids() == on_disk.ids()
    assert lexical_sources(second, "max_replication_slots")[0] == "note7.txt"
    second.close()


def test_lexical_index_follows_deletions_and_updates(docs, tmp_path: Path) -> None:
    files = write_notes(tmp_path / "notes")
    docs.add_files("UserData", files, None)
    assert "note4.txt" in lexical_sources(docs, "synchronous_commit")
    assert docs.delete_sources("UserData", ["note4.txt"], None) == ["note4.txt"]
    assert "note4.txt" not in lexical_sources(docs, "synchronous_commit", k=10)
    files[2][0].write_text("The checkpoint_completion_target spreads checkpoint writes out.")
    assert docs.add_files("UserData", [files[2]], None).count("updated") == 1
    assert lexical_sources(docs, "checkpoint_completion_target")[0] == "note2.txt"
    assert "note2.txt" not in lexical_sources(docs, "wal_keep_size", k=10)
    # and after a restart, from the files on disk
    again = make_service(tmp_path / "db")
    assert "note4.txt" not in lexical_sources(again, "synchronous_commit", k=10)
    assert lexical_sources(again, "checkpoint_completion_target")[0] == "note2.txt"
    again.close()


def test_a_collection_built_without_a_lexical_index_gets_one_on_open(tmp_path: Path) -> None:
    import shutil

    first = make_service(tmp_path / "db")
    first.add_files("UserData", write_notes(tmp_path / "notes"), None)
    first.close()
    shutil.rmtree(tmp_path / "db" / "db_dir_UserData" / "lexical")  # as main left it
    second = make_service(tmp_path / "db")
    assert lexical_sources(second, "wal_compression")[0] == "note8.txt"
    assert len(LexicalIndex(tmp_path / "db" / "db_dir_UserData" / "lexical")) == len(SETTINGS_NOTES)
    second.close()


def test_document_choice_restricts_lexical_hits(docs, tmp_path: Path) -> None:
    docs.add_files("UserData", write_notes(tmp_path / "notes"), None)
    question = "wal_sender_timeout or hot_standby_feedback"
    assert "note0.txt" in {h.metadata["source"] for h in docs.retrieve("UserData", question, 3, None)}
    hits = docs.retrieve("UserData", question, 3, None, document_choice=["note3.txt"])
    assert {h.metadata["source"] for h in hits} == {"note3.txt"}


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with ChromaRun(tmp_path_factory.mktemp("chroma")) as run:
        yield run


def on_server(root: Path, url: str) -> DocumentService:
    return DocumentService(shared_embedder(), db_root=root, chroma_server=ChromaServer(url).connect())


def test_two_fronts_on_one_chroma_server_see_each_others_files_lexically(chroma, tmp_path: Path) -> None:
    a, b = on_server(tmp_path / "a", chroma.url), on_server(tmp_path / "b", chroma.url)
    files = write_notes(tmp_path / "notes")
    a.add_files("UserData", files[:5], None)
    assert lexical_sources(b, "hot_standby_feedback")[0] == "note3.txt"  # b opened its index now
    a.add_files("UserData", files[5:], None)  # b's index exists: it must follow, no restart
    assert lexical_sources(b, "archive_timeout")[0] == "note9.txt"
    b.delete_sources("UserData", ["note9.txt"], None)
    assert "note9.txt" not in lexical_sources(a, "archive_timeout", k=10)
    files[0][0].write_text("The idle_in_transaction_session_timeout ends idle sessions.")
    b.add_files("UserData", [files[0]], None)
    assert lexical_sources(a, "idle_in_transaction_session_timeout")[0] == "note0.txt"
    store = a._store(a.collection("UserData", None))
    old = store.get_ids([h.id for h in store.search_lexical("wal_sender_timeout", 10)])[0]
    assert old and not any("wal_sender_timeout" in h.content for h in old)  # the old version is gone
    hits = a.retrieve("UserData", "What is idle_in_transaction_session_timeout for?", 1, None)
    assert hits[0].metadata["source"] == "note0.txt"
    client = ChromaServer(chroma.url).client()
    for c in client.list_collections():
        client.delete_collection(c.name)
    a.close()
    b.close()
