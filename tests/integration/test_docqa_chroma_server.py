"""Collections in a real Chroma server (`chroma run` on a free loopback port).

Two DocumentServices with their own db_root folders stand for two instances pointed at
one server: what one writes, the other lists, retrieves and deletes. The embedding model
is the real one; nothing is mocked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from src.docqa.chroma_server import ChromaServer, ServerChromaStore
from src.docqa.collections import (
    CollectionExistsError,
    Requester,
    UnknownCollectionError,
    server_collection_name,
)
from src.docqa.service import DocumentService
from src.errors import EmbeddingModelMismatch, VectorStoreUnavailableError
from tests.chroma_server import ChromaRun
from tests.conftest import free_port
from tests.docqa.plugin import shared_embedder

ALICE, BOB = Requester("alice"), Requester("bob")
#: Chroma's own rule for collection names (its error message states it).
CHROMA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with ChromaRun(tmp_path_factory.mktemp("chroma")) as run:
        yield run


def service(root: Path, url: str) -> DocumentService:
    return DocumentService(shared_embedder(), db_root=root, chroma_server=ChromaServer(url).connect())


@pytest.fixture
def pair(chroma, tmp_path: Path):
    """Instances A and B (separate db_root folders) on one Chroma server, emptied afterwards."""
    a, b = service(tmp_path / "a", chroma.url), service(tmp_path / "b", chroma.url)
    yield a, b
    client = ChromaServer(chroma.url).client()
    for name in [c.name for c in client.list_collections()]:
        client.delete_collection(name)
    a.close()
    b.close()


def test_ingest_in_one_instance_list_retrieve_delete_in_the_other(pair, tmp_path: Path) -> None:
    a, b = pair
    note = tmp_path / "ferry.txt"
    note.write_text("The harbour ferry to Skellig leaves at seven fifteen every morning.")
    assert a.add_files("UserData", [(note, "ferry.txt")], None).count("added") == 1
    assert [(s.source, s.chunks) for s in b.list_sources("UserData", None)] == [("ferry.txt", 1)]
    hits = b.retrieve("UserData", "When does the ferry to Skellig leave?", 1, None)
    assert hits and hits[0].metadata["source"] == "ferry.txt"
    assert b.add_files("UserData", [(note, "ferry.txt")], None).count("skipped") == 1  # hash in Chroma
    assert b.delete_sources("UserData", ["ferry.txt"], None) == ["ferry.txt"]
    assert a.list_sources("UserData", None) == []
    assert not any((tmp_path / x).exists() for x in ("a/db_dir_UserData", "b/db_dir_UserData"))


def test_user_path_sync_is_shared(pair, tmp_path: Path) -> None:
    a, b = pair
    folder = tmp_path / "user_path"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha facts: the alpha wolf leads the pack.")
    (folder / "b.txt").write_text("Beta facts: beta testing finds bugs.")
    assert a.sync_user_path(folder, progress=False).count("added") == 2
    (folder / "b.txt").unlink()
    (folder / "c.txt").write_text("Gamma facts: gamma rays are energetic.")
    second = b.sync_user_path(folder, progress=False)
    assert (second.count("added"), second.count("skipped")) == (1, 1)
    assert second.removed == [str((folder / "b.txt").resolve())]
    assert {Path(s.source).name for s in a.list_sources("UserData", None)} == {"a.txt", "c.txt"}


def test_personal_collections_follow_the_user_across_instances(pair, chroma) -> None:
    a, b = pair
    a.add_text("MyData", "Alice's locker code is 7391.", "alice.txt", ALICE)
    assert [s.source for s in b.list_sources("MyData", ALICE)] == ["alice.txt"]
    assert b.list_sources("MyData", BOB) == [] and b.retrieve("MyData", "locker code", 3, BOB) == []
    a.create_collection("Recipes", "personal", ALICE)
    assert "Recipes" in [c.name for c in b.list_collections(ALICE)]
    assert "Recipes" not in [c.name for c in b.list_collections(BOB)]
    with pytest.raises(UnknownCollectionError):
        b.add_text("Recipes", "x", "x.txt", BOB)
    a.add_text("MyData", "Scratch note.", "s.txt", Requester("anon-1", scratch=True))  # stays local
    names = set(ChromaServer(chroma.url).names())
    assert names == {"h2ogpt.user.alice.MyData", "h2ogpt.user.alice.Recipes"}


def test_shared_collections_created_and_deleted_across_instances(pair) -> None:
    a, b = pair
    a.create_collection("Team-Docs", "shared", ALICE)
    assert "Team-Docs" in [c.name for c in b.list_collections(None)]
    with pytest.raises(CollectionExistsError):
        b.create_collection("Team-Docs", "shared", BOB)
    b.add_text("Team-Docs", "The team offsite is in Lisbon.", "offsite.txt", BOB)
    assert a.retrieve("Team-Docs", "Where is the offsite?", 1, ALICE)[0].content.endswith("Lisbon.")
    b.delete_collection("Team-Docs", BOB)
    assert "Team-Docs" not in [c.name for c in a.list_collections(ALICE)]
    with pytest.raises(UnknownCollectionError):
        a.retrieve("Team-Docs", "offsite", 1, ALICE)


@pytest.mark.parametrize("user", ["alice", "a..b", "trailing.", "x" * 64, "名前 with spaces/../x"])
def test_server_names_are_valid_distinct_chroma_names(pair, user: str) -> None:
    a, _ = pair
    name = server_collection_name("Recipes", "personal", Requester(user))
    assert CHROMA_NAME.fullmatch(name) and ".." not in name
    assert name != server_collection_name("Recipes", "personal", Requester(user + "z"))
    a.create_collection("Recipes", "personal", Requester(user))  # the server accepts it
    assert [c.name for c in a.list_collections(Requester(user))][-1] == "Recipes"


def test_other_embedding_model_is_refused(pair, chroma) -> None:
    a, _ = pair
    a.add_text("UserData", "Some text.", "t.txt", None)
    other = ServerChromaStore(ChromaServer(chroma.url), "h2ogpt.shared.UserData", "UserData", "/m/other")
    with pytest.raises(EmbeddingModelMismatch, match="--hf_embedding_model=sentence-transformers"):
        other.open()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(VectorStoreUnavailableError, match=re.escape(url)):
        ChromaServer(url).connect()
    with ChromaRun(tmp_path / "chroma") as run:
        docs = service(tmp_path / "db", run.url)
        docs.add_text("UserData", "The ferry leaves at seven.", "ferry.txt", None)
    for call in (lambda: docs.list_sources("UserData", None), lambda: docs.list_collections(None),
                 lambda: docs.add_text("UserData", "More.", "more.txt", None),
                 lambda: docs.retrieve("UserData", "ferry", 1, None)):
        with pytest.raises(VectorStoreUnavailableError, match=re.escape(run.url)):
            call()
    docs.close()
