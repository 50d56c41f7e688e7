"""make_db as users run it; a SIGKILL mid-ingestion; start-up with an existing database."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from src.docqa.store import ChromaStore
from tests.conftest import ROOT
from tests.docqa.plugin import make_service, shared_embedder

WORDS = "river mountain lantern copper violet harbor meadow falcon timber glacier".split()


def write_corpus(folder: Path, files: int, paragraphs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        text = "\n\n".join(
            f"Document {i} paragraph {p}: " + " ".join(WORDS[(i + p + k) % len(WORDS)] for k in range(300))
            for p in range(paragraphs)
        )
        (folder / f"doc{i:03d}.txt").write_text(text)


def make_db(user_path: Path, db_root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "make_db.py"), f"--user_path={user_path}",
         "--collection_name=UserData", f"--db_root={db_root}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def assert_complete(store: ChromaStore, expected_files: int) -> None:
    firsts = store.get({"chunk_id": 0})
    assert len(firsts) == expected_files
    for first in firsts:
        origin, n = first.metadata["origin"], first.metadata["n_chunks"]
        assert store.count_where({"origin": origin}) == n, origin  # no duplicates, nothing missing
    assert store.count() == sum(f.metadata["n_chunks"] for f in firsts)


def test_sigkill_mid_ingestion_then_rerun_completes(tmp_path: Path) -> None:
    user_path, db_root = tmp_path / "docs", tmp_path / "db"
    write_corpus(user_path, files=16, paragraphs=4)
    proc = make_db(user_path, db_root)
    store_file = db_root / "db_dir_UserData" / "chroma.sqlite3"
    deadline = time.monotonic() + 240
    store = ChromaStore(db_root / "db_dir_UserData", "UserData", shared_embedder().name)
    while time.monotonic() < deadline and proc.poll() is None:  # wait for the first chunks
        if store_file.exists() and store.count() > 0:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "make_db finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the collection is usable after the kill
    service = make_service(db_root)
    partial = service.list_sources("UserData", None)
    assert len(partial) < 16
    assert service.retrieve("UserData", "Document 0 river mountain", 2, None, max_distance=2.0)
    service.close()
    # re-running completes it without duplicates
    rerun = make_db(user_path, db_root)
    out, err = rerun.communicate(timeout=400)
    assert rerun.returncode == 0, err.decode()[-2000:]
    fresh = ChromaStore(db_root / "db_dir_UserData", "UserData", shared_embedder().name)
    assert_complete(fresh, 16)
    assert "UserData:" in out.decode()


def test_startup_with_existing_database_reembeds_nothing(tmp_path: Path, caplog) -> None:
    from src.app import build_documents
    from src.settings import build_settings

    user_path, db_root = tmp_path / "docs", tmp_path / "db"
    write_corpus(user_path, files=3, paragraphs=1)
    built = make_db(user_path, db_root)
    out, err = built.communicate(timeout=300)
    assert built.returncode == 0, err.decode()[-2000:]
    assert "3 added" in out.decode()
    settings = build_settings({"db_root": str(db_root), "user_path": str(user_path),
                               "langchain_mode": "UserData"})
    with caplog.at_level(logging.INFO, logger="src.docqa.service"):
        docs = build_documents(settings)
    assert docs is not None
    assert "0 added, 0 updated, 3 unchanged, 0 failed, 0 chunks written" in caplog.text
    assert len(docs.list_sources("UserData", None)) == 3
    docs.close()
