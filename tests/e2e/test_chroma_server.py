"""Two fronts sharing one Chroma server (`chroma run`), end to end.

Instances A and B are real generate.py processes, each with its own --db_root, both with
--chroma_server pointed at one `chroma run` on a free loopback port. A document ingested
through A (at start from its user_path, or uploaded over its HTTP API) is cited in B's
answers; B's deletion is seen by A; a stopped Chroma server is a 503 on the API.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import openai
import pytest

from tests.chroma_server import ChromaRun
from tests.conftest import ROOT, free_port
from tests.docqa.fixtures import minimal_pdf
from tests.server import GUARDED_RUN, RemoteServer

USER_FACT = "The Zanzibar project deadline is March 3rd and its budget is 40,000 euros."
UPLOAD_FACT = "The kestrel named Orbit nests on the clock tower of Varnholm station."
RAG = {"langchain_mode": "UserData", "langchain_action": "Query", "top_k_docs": 3}


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with ChromaRun(tmp_path_factory.mktemp("chroma")) as run:
        yield run


@pytest.fixture(scope="module")
def fronts(tmp_path_factory, chroma):
    """(A, B): A ingests a user_path at start; B has no documents of its own."""
    work_a, work_b = tmp_path_factory.mktemp("front_a"), tmp_path_factory.mktemp("front_b")
    docs = work_a / "docs"
    docs.mkdir()
    (docs / "zanzibar.txt").write_text(USER_FACT)
    common = [f"--chroma_server={chroma.url}", "--langchain_mode=UserData"]
    with RemoteServer(work_a, *common, f"--db_root={work_a / 'db'}", f"--user_path={docs}") as a, \
            RemoteServer(work_b, *common, f"--db_root={work_b / 'db'}") as b:
        yield a, b


def api(server, method, path, **kwargs):
    return httpx.request(method, server.base_url + path, timeout=120, **kwargs)


def ask(server, question: str) -> list[str]:
    """The source names B's (or A's) answer cites, with a short answer."""
    client = server.client()
    response = client.chat.completions.create(
        model=server.model(), messages=[{"role": "user", "content": question}],
        max_tokens=8, temperature=0, extra_body=RAG,
    )
    return [s["source"] for s in (response.choices[0].model_extra or {}).get("sources") or []]


def test_user_path_ingested_by_a_is_cited_by_b(fronts) -> None:
    a, b = fronts
    assert any(name.endswith("zanzibar.txt") for name in ask(b, "When is the Zanzibar project deadline?"))
    assert not (a.workdir / "db" / "db_dir_UserData").exists()  # nothing kept locally


def test_upload_through_a_is_cited_by_b_and_deleted_through_b(fronts) -> None:
    a, b = fronts
    added = api(a, "POST", "/collections/UserData/files", files={"file": ("orbit.pdf", minimal_pdf(UPLOAD_FACT))})
    assert added.json()["files"][0]["status"] == "added", added.text
    assert "orbit.pdf" in [s["source"] for s in api(b, "GET", "/collections/UserData/sources").json()["data"]]
    assert ask(b, "Where does the kestrel Orbit nest?")[0] == "orbit.pdf"
    assert api(b, "DELETE", "/collections/UserData/sources", params={"source": "orbit.pdf"}).json()["deleted"] \
        == ["orbit.pdf"]
    assert "orbit.pdf" not in [s["source"] for s in api(a, "GET", "/collections/UserData/sources").json()["data"]]


def test_collections_made_through_b_are_listed_by_a(fronts) -> None:
    a, b = fronts
    assert api(b, "POST", "/collections", json={"name": "Handbook", "scope": "shared"}).status_code == 200
    assert "Handbook" in [c["name"] for c in api(a, "GET", "/collections").json()["data"]]
    assert api(a, "DELETE", "/collections/Handbook").json()["deleted"] is True
    assert "Handbook" not in [c["name"] for c in api(b, "GET", "/collections").json()["data"]]


def test_make_db_builds_a_collection_the_fronts_serve(fronts, chroma, tmp_path) -> None:
    a, b = fronts
    (tmp_path / "manual.md").write_text("# Pump\nThe bilge pump is primed by turning the red valve.\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "src" / "make_db.py"), f"--user_path={tmp_path}",
         "--collection_name=Manuals", f"--db_root={tmp_path / 'db'}", f"--chroma_server={chroma.url}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0 and "1 added" in done.stdout, done.stderr[-2000:]
    assert "Manuals" in [c["name"] for c in api(a, "GET", "/collections").json()["data"]]
    sources = api(b, "GET", "/collections/Manuals/sources").json()["data"]
    assert [s["source"] for s in sources] == [str((tmp_path / "manual.md").resolve())]


def test_stopped_chroma_server_is_a_503(fronts, chroma) -> None:
    """Last in the module: it stops the shared Chroma server."""
    _, b = fronts
    chroma.stop()
    response = api(b, "GET", "/collections/UserData/sources")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "vector_store_unavailable" and chroma.url in error["message"]
    with pytest.raises(openai.APIStatusError) as info:
        ask(b, "When is the Zanzibar project deadline?")
    assert info.value.status_code == 503
    plain = b.client().chat.completions.create(
        model=b.model(), messages=[{"role": "user", "content": "Say hi."}], max_tokens=4,
        extra_body={"langchain_mode": "LLM"},
    )
    assert plain.choices[0].message.content  # chat without documents still works


def test_unreachable_chroma_server_stops_start_up_naming_the_url(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = GUARDED_RUN.format(root=str(ROOT), script=str(ROOT / "generate.py"))
    done = subprocess.run(
        [sys.executable, "-c", code, f"--chroma_server={url}", "--gradio=False",
         f"--openai_port={free_port()}", f"--db_root={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"the Chroma server at {url} (--chroma_server) cannot be reached" in done.stderr
