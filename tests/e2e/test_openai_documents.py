"""Embeddings, files and HTTP ingestion on the OpenAI API, end to end.

One generate.py (2 workers, API keys enforced, UserData read-only and fed from a
user_path) with the real embedding model, real Chroma in tmp dirs and the real tiny LLM;
clients are the official openai SDK and httpx. Two keys are two users: alice and bob.
"""

from __future__ import annotations

import base64
import json
import struct

import httpx
import numpy as np
import openai
import pytest

from tests.docqa.fixtures import minimal_pdf
from tests.docqa.plugin import shared_embedder
from tests.server import RemoteServer

ALICE, BOB = "key-alice", "key-bob"
USER_FACT = "The Zanzibar project deadline is March 3rd and its budget is 40,000 euros."
ALICE_FACT = "The kestrel named Orbit nests on the clock tower of Varnholm station."
RAG = {"langchain_action": "Query", "top_k_docs": 5}


@pytest.fixture(scope="module", params=["transformers", "llamacpp"])
def server(request, tmp_path_factory):
    """Document Q&A through the API on both local backends."""
    workdir = tmp_path_factory.mktemp("openai_documents")
    docs = workdir / "docs"
    docs.mkdir()
    (docs / "zanzibar.txt").write_text(USER_FACT)
    keys = workdir / "keys.json"
    keys.write_text(json.dumps([ALICE, BOB]))
    flags = [
        "--openai_workers=2", "--enforce_h2ogpt_api_key=True", f"--h2ogpt_api_keys={keys}",
        "--allow_upload_to_user_data=False", f"--user_path={docs}", "--langchain_mode=UserData",
        f"--db_root={workdir / 'db'}", f"--openai_files_dir={workdir / 'files'}",
        f"--llm_backend={request.param}",
    ]
    with RemoteServer(workdir, *flags) as srv:
        yield srv


@pytest.fixture(scope="module")
def alice(server):
    return server.client(ALICE)


@pytest.fixture(scope="module")
def bob(server):
    return server.client(BOB)


def api(server, method, path, key=ALICE, **kwargs):
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, server.base_url + path, headers=headers, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def model(alice):
    return alice.models.list().data[0].id


def error_of(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def source_names(choice) -> list[str]:
    return [s["source"] for s in (choice.model_extra or {}).get("sources") or []]


# --- embeddings ----------------------------------------------------------------------------
def test_embeddings_float_and_base64_match_the_model(alice):
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by 12 percent."]
    raw = shared_embedder().embed(texts)
    floats = alice.embeddings.create(input=texts, model="text-embedding-3-small", encoding_format="float")
    assert floats.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.usage.prompt_tokens > 0 and floats.usage.total_tokens == floats.usage.prompt_tokens
    got = np.array([d.embedding for d in floats.data], dtype=np.float32)
    assert got.shape == (2, 384)
    np.testing.assert_allclose(got, raw, atol=1e-5)
    # The SDK asks for base64 by default (numpy is installed) and decodes float32 itself.
    default = alice.embeddings.create(input=texts, model="ignored")
    np.testing.assert_array_equal(np.array([d.embedding for d in default.data], dtype=np.float32), got)
    one = alice.embeddings.create(input=texts[0], model="ignored", encoding_format="base64")
    assert len(one.data) == 1


def test_embeddings_base64_is_little_endian_float32(server):
    body = {"input": "hello world", "model": "x", "encoding_format": "base64"}
    data = api(server, "POST", "/embeddings", json=body).json()["data"][0]["embedding"]
    assert isinstance(data, str)
    vector = struct.unpack("<384f", base64.b64decode(data))
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-3  # unit length


@pytest.mark.parametrize("value, words", [
    ([], "must not be empty"), (["x"] * 2049, "at most 2048"), ([""], "empty strings"),
    ([[-1, 2]], "must not be negative"),
])
def test_embeddings_bad_input_is_400(server, value, words):
    error = error_of(api(server, "POST", "/embeddings", json={"input": value, "model": "x"}), 400)
    assert error["type"] == "invalid_request_error" and words in error["message"]


def test_embeddings_take_token_ids_of_the_embedding_model(server):
    from tokenizers import Tokenizer

    from src.docqa.embeddings import resolve_embedding_model
    from src.settings_model import DEFAULT_EMBEDDING_MODEL

    tokenizer = Tokenizer.from_file(f"{resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)}/tokenizer.json")
    tokenizer.no_padding()  # the file pads to 128
    ids = tokenizer.encode("hello world", add_special_tokens=False).ids
    by_text = api(server, "POST", "/embeddings", json={"input": "hello world"}).json()["data"][0]
    one_answer = api(server, "POST", "/embeddings", json={"input": ids}).json()
    many_answer = api(server, "POST", "/embeddings", json={"input": [ids, ids]}).json()
    one, many = one_answer["data"], many_answer["data"]
    assert len(one) == 1 and len(many) == 2
    # usage counts the ids given (2 here), not the re-read text's tokens (4, with [CLS] and [SEP])
    assert one_answer["usage"]["prompt_tokens"] == len(ids) == one_answer["usage"]["total_tokens"] == 2
    assert many_answer["usage"]["prompt_tokens"] == 2 * len(ids)
    for got in (one[0], many[0], many[1]):
        assert max(abs(a - b) for a, b in zip(got["embedding"], by_text["embedding"], strict=True)) < 1e-5
    error = error_of(api(server, "POST", "/embeddings", json={"input": [10**7]}), 400)
    assert "token ids must be in" in error["message"]


def test_embeddings_longer_than_the_window_are_a_400_with_the_numbers(server):
    error = error_of(api(server, "POST", "/embeddings", json={"input": ["ok", "word " * 400]}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    assert "input 1 has 402 tokens" in error["message"] and "at most 256" in error["message"]


# --- files ---------------------------------------------------------------------------------
def test_files_api_through_the_sdk(alice, bob):
    created = alice.files.create(file=("notes.txt", b"first line\nsecond line\n"), purpose="assistants")
    assert created.id.startswith("file-") and created.object == "file"
    assert created.bytes == 23 and created.filename == "notes.txt" and created.purpose == "assistants"
    assert created.id in [f.id for f in alice.files.list()]
    assert alice.files.retrieve(created.id).filename == "notes.txt"
    assert alice.files.content(created.id).read() == b"first line\nsecond line\n"
    # Another key sees nothing of it.
    assert created.id not in [f.id for f in bob.files.list()]
    for call in (bob.files.retrieve, bob.files.content, bob.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(created.id)
    deleted = alice.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(created.id)


def test_file_purpose_is_checked(server):
    response = api(server, "POST", "/files", files={"file": ("a.txt", b"x")}, data={"purpose": "nope"})
    assert error_of(response, 400)["param"] == "purpose"


# --- ingestion and answers -----------------------------------------------------------------
def test_userdata_answers_carry_sources(alice, model):
    response = alice.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "When is the Zanzibar project deadline?"}],
        max_tokens=24, temperature=0, extra_body={"langchain_mode": "UserData", **RAG},
    )
    assert response.choices[0].message.content
    assert any(name.endswith("zanzibar.txt") for name in source_names(response.choices[0]))


def test_http_ingestion_then_rag_answer_names_the_file(server, alice, model):
    pdf = minimal_pdf(ALICE_FACT)
    added = api(server, "POST", "/collections/MyData/files", files={"file": ("orbit.pdf", pdf)}).json()
    assert added["files"][0]["source"] == "orbit.pdf" and added["files"][0]["status"] == "added"
    sources = api(server, "GET", "/collections/MyData/sources").json()["data"]
    assert "orbit.pdf" in [s["source"] for s in sources]
    response = alice.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Where does the kestrel Orbit nest?"}],
        max_tokens=24, temperature=0, extra_body={"langchain_mode": "MyData", **RAG},
    )
    assert source_names(response.choices[0])[0] == "orbit.pdf"


def test_ingest_a_stored_file_and_text(server, alice):
    stored = alice.files.create(file=("tides.md", b"# Tides\nThe tide tables of Port Lumen are in tides.md.\n"),
                                purpose="user_data")
    added = api(server, "POST", "/collections/MyData/files", json={"file_id": stored.id}).json()
    assert [f["source"] for f in added["files"]] == ["tides.md"]
    text = api(server, "POST", "/collections/MyData/text",
               json={"text": "The spare key is under the blue flowerpot.", "source": "key.txt"}).json()
    assert text["files"][0]["status"] == "added"
    names = [s["source"] for s in api(server, "GET", "/collections/MyData/sources").json()["data"]]
    assert {"tides.md", "key.txt"} <= set(names)
    gone = api(server, "DELETE", "/collections/MyData/sources", params={"source": ["key.txt", "nope.txt"]})
    assert gone.json()["deleted"] == ["key.txt"]


def test_collections_create_list_delete(server):
    created = api(server, "POST", "/collections", json={"name": "Recipes", "scope": "personal"}).json()
    assert created == {"object": "collection", "name": "Recipes", "scope": "personal", "builtin": False}
    assert error_of(api(server, "POST", "/collections", json={"name": "Recipes"}), 409)["code"] == \
        "collection_exists"
    api(server, "POST", "/collections/Recipes/text", json={"text": "Add salt.", "source": "soup.txt"})
    names = [c["name"] for c in api(server, "GET", "/collections").json()["data"]]
    assert names[:2] == ["UserData", "MyData"] and "Recipes" in names
    assert api(server, "DELETE", "/collections/Recipes").json()["deleted"] is True
    assert "Recipes" not in [c["name"] for c in api(server, "GET", "/collections").json()["data"]]


def test_user_b_never_sees_user_a_mydata(server, bob, model):
    api(server, "POST", "/collections/MyData/text", json={"text": ALICE_FACT, "source": "secret.txt"})
    api(server, "POST", "/collections", json={"name": "AliceOnly"})
    assert api(server, "GET", "/collections/MyData/sources", key=BOB).json()["data"] == []
    assert "AliceOnly" not in [c["name"] for c in api(server, "GET", "/collections", key=BOB).json()["data"]]
    assert error_of(api(server, "GET", "/collections/AliceOnly/sources", key=BOB), 404)["code"] == \
        "collection_not_found"
    deleted = api(server, "DELETE", "/collections/MyData/sources", key=BOB, params={"source": "secret.txt"})
    assert deleted.json()["deleted"] == []
    response = bob.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Where does the kestrel Orbit nest?"}],
        max_tokens=8, extra_body={"langchain_mode": "MyData", "document_subset": "RelSources", **RAG},
    )
    assert source_names(response.choices[0]) == []
    assert "Orbit" not in (response.choices[0].message.content or "")
    assert "secret.txt" in [s["source"] for s in api(server, "GET", "/collections/MyData/sources").json()["data"]]


# --- errors --------------------------------------------------------------------------------
def test_unknown_collection_is_404(server, alice, model):
    error = error_of(api(server, "POST", "/collections/Nowhere/text", json={"text": "x"}), 404)
    assert error["code"] == "collection_not_found" and "Nowhere" in error["message"]
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                      max_tokens=2, extra_body={"langchain_mode": "Nowhere"})


def test_upload_to_read_only_userdata_is_403(server):
    response = api(server, "POST", "/collections/UserData/files", files={"file": ("a.txt", b"hello")})
    error = error_of(response, 403)
    assert error["type"] == "permission_error" and "allow_upload_to_user_data" in error["message"]


def test_bad_file_is_400_naming_it(server):
    response = api(server, "POST", "/collections/MyData/files",
                   files={"file": ("broken.pdf", b"%PDF-1.4 this is not a pdf")})
    error = error_of(response, 400)
    assert "broken.pdf" in error["message"] and error["code"] == "file_not_ingested"
    response = api(server, "POST", "/collections/MyData/files", files={"file": ("tool.exe", b"MZ")})
    assert "tool.exe" in error_of(response, 400)["message"]
    assert error_of(api(server, "POST", "/collections/MyData/files", json={"file_id": "file-0"}), 404)
    assert error_of(api(server, "POST", "/collections", json={"name": "a b"}), 400)["code"] == \
        "invalid_collection_name"
