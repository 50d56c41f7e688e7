"""Reranking and OCR end to end: /v1/rerank, /rerank and gradio_client's /rerank; a scanned
PDF and a PNG uploaded over HTTP and answered from with their page and source.

One generate.py with the OpenAI API and the UI (OCR on by default, Debian's Tesseract),
``--reranker_model`` a tiny real cross-encoder written from a config (no package ships
cross-encoder weights); clients are httpx (the shape vLLM's and llama.cpp's rerank clients
send), the openai SDK and gradio_client.
"""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client

from tests.docqa.fixtures import scanned_pdf, text_image
from tests.docqa.plugin import tiny_cross_encoder
from tests.server import RemoteServer

QUERY = "When does the harbour ferry leave?"
DOCUMENTS = ["The harbour ferry leaves at seven fifteen.", {"text": "Penguins huddle in blizzards."},
             "Rye bread is sold on Tuesdays."]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rerank")
    model = tiny_cross_encoder(workdir / "tiny-ce")
    with RemoteServer(workdir, f"--reranker_model={model}", f"--db_root={workdir / 'db'}",
                      gradio=True) as srv:
        yield srv


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60)


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_rerank_returns_results_sorted_by_score_from_the_reranker(server, path: str) -> None:
    response = post(server, path, {"model": "anything", "query": QUERY, "documents": DOCUMENTS})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == "tiny-ce" and data["id"].startswith("rerank-")
    scores = [r["relevance_score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["index"] for r in data["results"]) == [0, 1, 2]
    texts = [d if isinstance(d, str) else d["text"] for d in DOCUMENTS]
    assert all(r["document"]["text"] == texts[r["index"]] for r in data["results"])
    assert data["usage"]["prompt_tokens"] == data["usage"]["total_tokens"] > 10


def test_top_n_and_return_documents(server) -> None:
    full = post(server, "/v1/rerank", {"query": QUERY, "documents": DOCUMENTS}).json()["results"]
    data = post(server, "/v1/rerank", {"query": QUERY, "documents": DOCUMENTS, "top_n": 2,
                                       "return_documents": False}).json()
    assert [r["index"] for r in data["results"]] == [r["index"] for r in full[:2]]
    assert all("document" not in r for r in data["results"])


@pytest.mark.parametrize("body, param", [
    ({"query": QUERY, "documents": []}, "documents"),
    ({"query": "", "documents": ["a"]}, "query"),
    ({"documents": ["a"]}, "query"),
    ({"query": QUERY, "documents": [3]}, "documents"),
    ({"query": QUERY, "documents": ["a"], "top_n": 0}, "top_n"),
])
def test_bad_rerank_input_is_a_400_envelope(server, body: dict, param: str) -> None:
    response = post(server, "/v1/rerank", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and param in (error["param"] or error["message"])


def test_gradio_client_rerank_matches_the_http_api(server) -> None:
    texts = [d if isinstance(d, str) else d["text"] for d in DOCUMENTS]
    http = post(server, "/v1/rerank", {"query": QUERY, "documents": texts}).json()
    client = Client(server.gradio_url, verbose=False, download_files=False)
    result = client.predict(QUERY, texts, 0, "", api_name="/rerank")
    assert result["model"] == "tiny-ce"
    assert [r["index"] for r in result["results"]] == [r["index"] for r in http["results"]]
    assert [r["relevance_score"] for r in result["results"]] == pytest.approx(
        [r["relevance_score"] for r in http["results"]], abs=1e-5)
    with pytest.raises(Exception, match="query"):
        client.predict("", texts, 0, "", api_name="/rerank")


SCANNED = "The lighthouse of Varnholm was repainted in 1987 by the keeper Ambrose Quill."
TYPED = "The ferry timetable for Skellig harbour lists a departure at seven fifteen."
IMAGE = "Invoice 4417 from Orchard Supplies is due on the twelfth of May."


def sources_of(server, question: str, **extra) -> list[dict]:
    client = server.client()
    response = client.chat.completions.create(
        model=server.model(), messages=[{"role": "user", "content": question}], max_tokens=16,
        temperature=0, extra_body={"langchain_mode": "UserData", "top_k_docs": 2, **extra},
    )
    assert response.choices[0].message.content
    return list((response.choices[0].model_extra or {}).get("sources") or [])


def test_a_scanned_pdf_and_a_png_are_answered_from_with_page_and_source(server) -> None:
    files = [("file", ("mixed.pdf", scanned_pdf(TYPED, SCANNED), "application/pdf")),
             ("file", ("invoice.png", text_image(IMAGE), "image/png"))]
    added = httpx.post(server.base_url + "/collections/UserData/files", files=files, timeout=300)
    assert added.status_code == 200, added.text
    assert {(f["source"], f["status"]) for f in added.json()["files"]} == {
        ("mixed.pdf", "added"), ("invoice.png", "added")}
    # the tiny reranker is random: rank by retrieval alone (the per-request override)
    top = sources_of(server, "When was the Varnholm lighthouse repainted?", rerank=False)[0]
    assert (top["source"], top["page"]) == ("mixed.pdf", 2) and "1987" in top["content"]
    top = sources_of(server, "When is invoice 4417 from Orchard Supplies due?", rerank=False)[0]
    assert top["source"] == "invoice.png" and "4417" in top["content"]
    top = sources_of(server, "When does the Skellig harbour ferry depart?", rerank=False)[0]
    assert (top["source"], top["page"]) == ("mixed.pdf", 1)
