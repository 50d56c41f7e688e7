"""The document endpoints' translation over a scripted engine: identities, files, errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from openai_server.app import create_app
from openai_server.auth import Authenticator
from openai_server.errors import AuthenticationError
from openai_server.files import FileStore
from openai_server.identity import file_owner, identify
from src import contract
from src.errors import CollectionExistsError, UnknownCollectionError
from src.settings import build_settings
from tests.unit.fake_engine import FakeEngine


class DocsEngine(FakeEngine):
    """Answers the document calls: a 3-dimensional embedder and a collection registry."""

    def __init__(self) -> None:
        super().__init__()
        self.doc_calls: list[tuple[str, dict[str, Any]]] = []

    def _doc(self, method: str, request: Any) -> None:
        self.doc_calls.append((method, msgspec.to_builtins(request)))
        named = getattr(request, "collection", None) or getattr(request, "name", None)
        if named == "Nowhere":
            raise UnknownCollectionError("unknown collection 'Nowhere'")

    async def embed(self, request: contract.EmbedRequest) -> contract.EmbedResult:
        vectors = [[1.0, 0.5, -0.25] for _ in request.texts or []]
        blob = b"".join(struct.pack("<3f", *v) for v in vectors)
        return contract.EmbedResult(model="tiny", dimension=3, tokens=7, data=blob)

    async def add_files(self, request: contract.AddFilesRequest) -> contract.IngestReport:
        self._doc("add_files", request)
        return contract.IngestReport(files=[contract.IngestedFile(
            source=f.filename, status="failed", reason="unsupported file type '.exe'") for f in request.files],
            summary="0 added")

    async def list_sources(self, request: contract.CollectionRequest) -> list[contract.SourceInfo]:
        self._doc("list_sources", request)
        return []

    async def list_collections(self, request: contract.CollectionsRequest) -> list[contract.CollectionInfo]:
        self._doc("list_collections", request)
        return []

    async def create_collection(self, request: contract.CreateCollectionRequest) -> contract.CollectionInfo:
        self._doc("create_collection", request)
        raise CollectionExistsError("collection 'Team' already exists")


@pytest.fixture
def engine() -> DocsEngine:
    return DocsEngine()


@pytest.fixture
def api(engine, tmp_path) -> TestClient:
    return TestClient(create_app(build_settings({"openai_files_dir": str(tmp_path / "files")}), engine))


def test_embeddings_float_and_base64(api):
    floats = api.post("/v1/embeddings", json={"input": ["a", "b"], "model": "whatever"}).json()
    assert floats["model"] == "tiny" and floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert [d["embedding"] for d in floats["data"]] == [[1.0, 0.5, -0.25]] * 2
    encoded = api.post("/v1/embeddings", json={"input": "a", "encoding_format": "base64"}).json()
    assert struct.unpack("<3f", base64.b64decode(encoded["data"][0]["embedding"])) == (1.0, 0.5, -0.25)
    wrong = api.post("/v1/embeddings", json={"input": "a", "dimensions": 8})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "dimensions"


def test_docqa_errors_map_to_statuses(api):
    missing = api.get("/v1/collections/Nowhere/sources")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
    exists = api.post("/v1/collections", json={"name": "Team", "scope": "shared"})
    assert exists.status_code == 409 and exists.json()["error"]["code"] == "collection_exists"
    bad = api.post("/v1/collections/MyData/files", files={"file": ("tool.exe", b"MZ")})
    assert bad.status_code == 400 and "tool.exe: unsupported file type" in bad.json()["error"]["message"]
    empty = api.post("/v1/collections/MyData/files", data={"chunk": "true"})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "file"


def test_anonymous_requesters_are_scratch_per_key(api, engine):
    api.get("/v1/collections", headers={"Authorization": "Bearer EMPTY"})
    api.get("/v1/collections", headers={"Authorization": "Bearer other"})
    first, second = (args["requester"] for _, args in engine.doc_calls)
    assert first["scratch"] and second["scratch"] and first["name"] != second["name"]
    assert "EMPTY" not in first["name"]


def test_chat_carries_the_requester(api, engine):
    api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
             headers={"x-api-key": "k1"})
    assert engine.requests[-1].requester is not None and engine.requests[-1].requester.scratch is True


def test_identity_with_keys_and_users():
    keyed = Authenticator(build_settings({"enforce_h2ogpt_api_key": True, "h2ogpt_api_keys": ["s3cret"]}))
    who = identify(keyed, {"authorization": "Bearer s3cret"})
    assert not who.scratch and "s3cret" not in who.name
    assert who == identify(keyed, {"x-api-key": "s3cret"})
    users = Authenticator(build_settings({"auth": [("alice", "pw")], "auth_access": "closed"}))
    assert identify(users, {}, "alice:pw").name == "alice"
    assert identify(users, {"x-h2ogpt-user": "alice:pw"}).name == "alice"
    for given in ("alice:wrong", None):
        with pytest.raises(AuthenticationError):
            identify(users, {}, given)
    open_users = Authenticator(build_settings({"auth": [("alice", "pw")]}))
    assert identify(open_users, {}, "end-user-42").scratch  # OpenAI's free-form id: not a login


def test_file_store_is_scoped_and_safe(tmp_path):
    store = FileStore(tmp_path)
    alice, bob = file_owner({"authorization": "Bearer a"}), file_owner({"authorization": "Bearer b"})
    obj = store.create(alice, "n.txt", "assistants", b"abc")
    assert store.content(alice, obj.id) == b"abc" and [f.id for f in store.list_files(alice)] == [obj.id]
    assert store.get(bob, obj.id) is None and store.list_files(bob) == []
    assert store.get(alice, "../../etc/passwd") is None and not store.delete(alice, "file-../x")
    with pytest.raises(ValueError):
        store.list_files("../escape")
    assert store.delete(alice, obj.id) and store.get(alice, obj.id) is None
