"""Ingestion into real Chroma with the real embedding model: loaders, dedupe, update, delete, sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.docqa.collections import (
    CollectionExistsError,
    InvalidCollectionNameError,
    PermissionDeniedError,
    Requester,
    UnknownCollectionError,
)
from src.docqa.store import ChromaStore, EmbeddingModelMismatch
from src.metrics import EngineMetrics
from tests.docqa.fixtures import FACTS, write_all, write_targz, write_zip
from tests.docqa.plugin import make_service, service_in

ALICE, BOB = Requester("alice"), Requester("bob")


@pytest.fixture
def docs(tmp_path: Path):
    yield from service_in(tmp_path)
LOADER_QUESTIONS = {
    "pdf": "What colour does Ambrose paint the lighthouse?",
    "docx": "When does the Quince Street bakery sell rye bread?",
    "pptx": "What is the name of the robotics team's rover?",
    "xlsx": "How many crates of oranges are in warehouse seven?",
    "epub": "What does the dragon Ignatius guard?",
    "eml": "When is the board meeting about the solar farm?",
    "html": "How do penguins survive blizzards?",
    "csv": "What are Saturn's rings made of?",
    "json": "Where was the violin crafted?",
    "jsonl": "What do marathon runners eat at kilometre thirty?",
    "md": "Since when has Kilauea been erupting?",
    "rst": "How do honeybees communicate where flowers are?",
    "py": "recursive fibonacci function",
    "txt": "When is the Zanzibar project deadline?",
}


def test_every_loader_ingests_and_is_retrievable(docs, tmp_path: Path) -> None:
    paths = write_all(tmp_path / "files")
    report = docs.add_files("UserData", [(p, p.name) for p in paths.values()], None)
    assert report.failed == [], report.failed
    assert report.count("added") == len(paths)
    for ext, question in LOADER_QUESTIONS.items():
        hits = docs.retrieve("UserData", question, 1, None)
        assert hits and hits[0].metadata["source"] == f"sample.{ext}", (ext, hits)
        assert FACTS[ext].split()[1] in hits[0].content
    meta = docs.retrieve("UserData", LOADER_QUESTIONS["pdf"], 1, None)[0].metadata
    assert meta["page"] == 1 and meta["chunk_id"] == 0 and len(meta["hash"]) == 64
    assert meta["ingested_at"].startswith("20")


def test_dedupe_update_and_delete(docs, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("The office plant is watered on Mondays.")
    assert docs.add_files("UserData", [(note, "note.txt")], None).count("added") == 1
    assert docs.add_files("UserData", [(note, "note.txt")], None).count("skipped") == 1
    note.write_text("The office plant is watered on Thursdays now.")
    report = docs.add_files("UserData", [(note, "note.txt")], None)
    assert report.count("updated") == 1
    sources = docs.list_sources("UserData", None)
    assert [(s.source, s.chunks) for s in sources] == [("note.txt", 1)]
    contents = [h.content for h in docs.chunks("UserData", None)]
    assert contents == ["The office plant is watered on Thursdays now."]  # old chunks replaced
    assert docs.delete_sources("UserData", ["note.txt", "missing.txt"], None) == ["note.txt"]
    assert docs.list_sources("UserData", None) == []


def test_the_observer_counts_every_ingestion_by_outcome(tmp_path: Path) -> None:
    metrics = EngineMetrics()
    docs = make_service(tmp_path / "db", observer=metrics)
    note, bad = tmp_path / "note.txt", tmp_path / "img.png"
    note.write_text("The office plant is watered on Mondays.")
    bad.write_bytes(b"\x89PNG")
    docs.add_files("UserData", [(note, "note.txt"), (bad, "img.png")], None)
    docs.add_files("UserData", [(note, "note.txt")], None)
    docs.add_text("UserData", "The spare key is under the blue flowerpot.", "key.txt", None)
    folder = tmp_path / "user_path"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha facts: the alpha wolf leads the pack.")
    docs.sync_user_path(folder, progress=False)
    docs.close()
    counted = {status: metrics.registry.get_sample_value("h2ogpt_documents_ingested_total", {"status": status})
               for status in ("added", "skipped", "failed")}
    assert counted == {"added": 3.0, "skipped": 1.0, "failed": 1.0}


def test_bad_files_are_reported_and_do_not_stop_the_batch(docs, tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Tea\nGreen tea is steeped at 80 degrees.")
    corrupt = tmp_path / "corrupt.docx"
    corrupt.write_bytes(b"PK\x03\x04 not really a docx")
    empty = tmp_path / "empty.txt"
    empty.write_text("   ")
    files = [(corrupt, "corrupt.docx"), (tmp_path / "blob.bin", "blob.bin"), (empty, "empty.txt"),
             (good, "good.md")]
    (tmp_path / "blob.bin").write_bytes(b"\x89PNG")
    report = docs.add_files("UserData", files, None)
    reasons = {f.source: f.reason for f in report.failed}
    assert set(reasons) == {"corrupt.docx", "blob.bin", "empty.txt"}
    assert "unsupported" in reasons["blob.bin"] and "docx" in reasons["corrupt.docx"]
    assert report.count("added") == 1


def test_archives_ingest_members(docs, tmp_path: Path) -> None:
    z = write_zip(tmp_path / "pack.zip", {"a/tides.txt": "Tides are caused by the moon.",
                                          "b/logo.bin": "\x00\x01"})
    t = write_targz(tmp_path / "pack.tar.gz", {"clouds.md": "Cumulus clouds look like cotton."})
    report = docs.add_files("UserData", [(z, "pack.zip"), (t, "pack.tar.gz")], None)
    assert {f.source for f in report.failed} == {"pack.zip/b/logo.bin"}
    hit = docs.retrieve("UserData", "What causes tides?", 1, None)[0]
    assert hit.metadata["source"] == "pack.zip/a/tides.txt" and hit.metadata["origin"] == "pack.zip"
    assert {s.source for s in docs.list_sources("UserData", None)} == {"pack.zip", "pack.tar.gz"}
    docs.delete_sources("UserData", ["pack.zip"], None)
    assert {s.source for s in docs.list_sources("UserData", None)} == {"pack.tar.gz"}


def test_user_path_sync_adds_skips_and_removes(docs, tmp_path: Path) -> None:
    folder = tmp_path / "user_path"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha facts: the alpha wolf leads the pack.")
    (folder / "b.txt").write_text("Beta facts: beta testing finds bugs.")
    first = docs.sync_user_path(folder, progress=False)
    assert first.count("added") == 2
    (folder / "b.txt").unlink()
    (folder / "c.txt").write_text("Gamma facts: gamma rays are energetic.")
    second = docs.sync_user_path(folder, progress=False)
    assert (second.count("added"), second.count("skipped")) == (1, 1)
    assert second.removed == [str((folder / "b.txt").resolve())]
    names = {Path(s.source).name for s in docs.list_sources("UserData", None)}
    assert names == {"a.txt", "c.txt"}
    assert "1 removed" in second.summary()


def test_personal_collections_are_isolated(docs) -> None:
    docs.add_text("MyData", "Alice's locker code is 7391.", "alice.txt", ALICE)
    assert docs.retrieve("MyData", "locker code", 3, BOB) == []
    assert docs.list_sources("MyData", BOB) == []
    assert [s.source for s in docs.list_sources("MyData", ALICE)] == ["alice.txt"]
    docs.create_collection("Recipes", "personal", ALICE)
    assert "Recipes" in [c.name for c in docs.list_collections(ALICE)]
    assert "Recipes" not in [c.name for c in docs.list_collections(BOB)]
    with pytest.raises(UnknownCollectionError):
        docs.add_text("Recipes", "x", "x.txt", BOB)
    with pytest.raises(PermissionDeniedError):
        docs.list_sources("MyData", None)
    scratch = Requester("anon-1", scratch=True)
    docs.add_text("MyData", "Scratch note.", "s.txt", scratch)
    assert docs.list_sources("MyData", Requester("anon-2", scratch=True)) == []


def test_shared_collections_create_delete(docs) -> None:
    info = docs.create_collection("Team-Docs", "shared", ALICE)
    assert info.scope == "shared"
    assert "Team-Docs" in [c.name for c in docs.list_collections(BOB)]
    with pytest.raises(CollectionExistsError):
        docs.create_collection("Team-Docs", "personal", BOB)
    with pytest.raises(InvalidCollectionNameError):
        docs.create_collection("../x", "shared", ALICE)
    docs.add_text("Team-Docs", "The team offsite is in Lisbon.", "offsite.txt", BOB)
    assert docs.retrieve("Team-Docs", "Where is the offsite?", 1, ALICE)[0].content.endswith("Lisbon.")
    docs.delete_collection("Team-Docs", BOB)
    assert "Team-Docs" not in [c.name for c in docs.list_collections(ALICE)]
    with pytest.raises(UnknownCollectionError):
        docs.retrieve("Team-Docs", "offsite", 1, ALICE)


def test_upload_permission_flags(tmp_path: Path) -> None:
    service = make_service(tmp_path / "db", allow_upload_to_user_data=False, allow_upload_to_my_data=False)
    with pytest.raises(PermissionDeniedError, match="allow_upload_to_user_data"):
        service.add_text("UserData", "x", "x.txt", ALICE)
    with pytest.raises(PermissionDeniedError, match="allow_upload_to_my_data"):
        service.add_text("MyData", "x", "x.txt", ALICE)
    service.close()


def test_other_embedding_model_is_refused(docs, tmp_path: Path) -> None:
    docs.add_text("UserData", "Some text.", "t.txt", None)
    path = tmp_path / "db" / "db_dir_UserData"
    other = ChromaStore(path, "UserData", "/models/another-embedder")
    with pytest.raises(EmbeddingModelMismatch, match="--hf_embedding_model=sentence-transformers/all-MiniLM"):
        other.open()


def test_queries_are_answered_while_an_ingestion_runs(docs, tmp_path: Path) -> None:
    import threading

    seed = tmp_path / "seed.txt"
    seed.write_text("The harbour ferry leaves at seven fifteen every morning.")
    docs.add_files("UserData", [(seed, "seed.txt")], None)
    batch = tmp_path / "batch"
    batch.mkdir()
    files = []
    for i in range(40):
        path = batch / f"note_{i:02d}.txt"
        path.write_text(f"Note {i}. " + "The archive holds letters about shipping routes. " * 60)
        files.append((path, path.name))
    reports = []
    ingest = threading.Thread(target=lambda: reports.append(docs.add_files("UserData", files, None)))
    ingest.start()
    answered_during_ingestion = 0
    while ingest.is_alive():
        hits = docs.retrieve("UserData", "When does the ferry leave?", 1, None)
        assert hits and hits[0].metadata["source"] == "seed.txt"
        if ingest.is_alive():
            answered_during_ingestion += 1
    ingest.join()
    assert answered_during_ingestion >= 2  # queries did not wait for the whole batch
    assert reports[0].failed == [] and reports[0].count("added") == 40
    assert len(docs.list_sources("UserData", None)) == 41
