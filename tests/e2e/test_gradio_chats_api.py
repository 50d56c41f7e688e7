"""Saved chats through gradio_client (GradioClient) on a real server: continue a chat by its
id, list/rename/search/delete/restore/export/import, per-user privacy, and two instances on
one real PostgreSQL showing the same user's chats."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from gradio_client.exceptions import AppError

from gradio_ui.client import GradioClient
from tests.e2e.gradio_server import GradioApp
from tests.postgres import PostgresServer

USERS = "[('alice', 'wonderland'), ('bob', 'builder')]"
ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")
FLAGS = (f"--auth={USERS}", "--max_new_tokens=12", "--temperature=0", "--langchain_modes=['LLM']")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GradioApp]:
    server = GradioApp(tmp_path_factory.mktemp("gradio_chats"), *FLAGS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alice(app: GradioApp) -> GradioClient:
    return GradioClient(app.url, auth=ALICE)


@pytest.fixture(scope="module")
def bob(app: GradioApp) -> GradioClient:
    return GradioClient(app.url, auth=BOB)


CHAT_ENDPOINTS = {"/new_chat", "/list_chats", "/get_chat", "/rename_chat", "/delete_chat", "/restore_chat",
                  "/export_chats", "/import_chats"}


def test_the_chat_endpoints_are_published(alice: GradioClient):
    info = alice.client.view_api(print_info=False, return_format="dict")
    assert CHAT_ENDPOINTS <= set(info["named_endpoints"])


def test_a_chat_id_continues_the_saved_chat(alice: GradioClient):
    alone = alice.question("What is my name?")
    alone_tokens = alice.last_result["prompt_tokens"]
    chat = alice.new_chat()
    alice.question("My name is Ada Lovelace and I write programs.", chat_id=chat["chat_id"])
    first_tokens = alice.last_result["prompt_tokens"]
    answer = alice.question("What is my name?", chat_id=chat["chat_id"])
    assert alice.last_result["chat_id"] == chat["chat_id"]
    # the saved first exchange went into the prompt of the second question
    assert alice.last_result["prompt_tokens"] > alone_tokens + first_tokens // 2
    saved = alice.get_chat(chat["chat_id"])
    assert saved["title"] == "My name is Ada Lovelace and I write programs."
    assert [e["question"] for e in saved["exchanges"]] == ["My name is Ada Lovelace and I write programs.",
                                                          "What is my name?"]
    last = saved["exchanges"][-1]
    assert last["answer"] == answer and answer != "" and alone != ""
    assert last["model"] and last["collection"] == "LLM" and last["action"] == "Query"
    assert last["settings"]["max_new_tokens"] == 12 and last["settings"]["temperature"] == 0


def test_streaming_with_a_chat_id_saves_the_whole_answer(alice: GradioClient):
    chat = alice.new_chat("streamed")
    pieces = list(alice.question_stream("Name three colours.", chat_id=chat["chat_id"]))
    saved = alice.get_chat(chat["chat_id"])
    assert len(saved["exchanges"]) == 1 and saved["exchanges"][0]["answer"] == "".join(pieces)
    assert saved["title"] == "streamed"


def test_list_rename_search_delete_restore(alice: GradioClient):
    chat = alice.new_chat()
    alice.question("Tell me about the zebra finch.", chat_id=chat["chat_id"])
    assert alice.list_chats()[0]["chat_id"] == chat["chat_id"]  # newest first
    assert alice.rename_chat(chat["chat_id"], "Birds")["title"] == "Birds"
    assert [c["chat_id"] for c in alice.list_chats("birds")] == [chat["chat_id"]]
    assert [c["chat_id"] for c in alice.list_chats("zebra finch")] == [chat["chat_id"]]  # question text
    alice.delete_chat(chat["chat_id"])
    assert chat["chat_id"] not in [c["chat_id"] for c in alice.list_chats()]
    with pytest.raises(AppError, match="no chat"):
        alice.get_chat(chat["chat_id"])
    alice.restore_chat(chat["chat_id"])
    assert alice.get_chat(chat["chat_id"])["title"] == "Birds"


def test_export_and_import_round_trip(alice: GradioClient, bob: GradioClient):
    chat = alice.new_chat("Round trip")
    alice.question("Say yes.", chat_id=chat["chat_id"])
    exported = json.loads(alice.export_chats([chat["chat_id"]]))
    saved = alice.get_chat(chat["chat_id"])["exchanges"]
    assert exported == {"Round trip": [[saved[0]["question"], saved[0]["answer"]]]}
    markdown = alice.export_chats([chat["chat_id"]], fmt="markdown")
    assert markdown.startswith("# Round trip") and "> Say yes." in markdown
    everything = json.loads(alice.export_chats())
    assert "Round trip" in everything and len(everything) == len(alice.list_chats())

    [imported] = bob.import_chats(exported)
    assert imported["title"] == "Round trip" and imported["exchanges"] == 1
    assert json.loads(bob.export_chats([imported["chat_id"]])) == exported
    with pytest.raises(AppError, match="not JSON"):
        bob.import_chats("this is not json")
    with pytest.raises(AppError, match="pairs"):
        bob.import_chats({"bad": "shape"})


def test_a_user_never_sees_another_users_chats(alice: GradioClient, bob: GradioClient):
    chat = alice.new_chat("alice only")
    alice.question("A private question.", chat_id=chat["chat_id"])
    assert chat["chat_id"] not in [c["chat_id"] for c in bob.list_chats()]
    assert bob.list_chats("private question") == []
    for call in (lambda: bob.get_chat(chat["chat_id"]), lambda: bob.rename_chat(chat["chat_id"], "mine"),
                 lambda: bob.delete_chat(chat["chat_id"]),
                 lambda: bob.question("Hijack?", chat_id=chat["chat_id"])):
        with pytest.raises(AppError, match="no chat"):
            call()
    assert len(alice.get_chat(chat["chat_id"])["exchanges"]) == 1
    assert "alice only" not in bob.export_chats()


def test_bad_chat_requests_are_clear_errors(alice: GradioClient):
    with pytest.raises(AppError, match="no chat"):
        alice.question("hi", chat_id="0" * 32)
    with pytest.raises(AppError, match="title cannot be empty"):
        alice.rename_chat(alice.new_chat()["chat_id"], "  ")
    with pytest.raises(AppError, match="fmt must be"):
        alice.export_chats(fmt="pdf")


def test_two_instances_on_one_postgres_show_the_same_chats(tmp_path):
    with PostgresServer() as pg:
        flags = (*FLAGS, f"--database_url={pg.url}")
        one = GradioApp(tmp_path / "one", *flags).start()
        two = GradioApp(tmp_path / "two", *flags).start()
        try:
            on_one, on_two = GradioClient(one.url, auth=ALICE), GradioClient(two.url, auth=ALICE)
            chat = on_one.new_chat()
            on_one.question("Asked on the first instance.", chat_id=chat["chat_id"])
            assert [c["chat_id"] for c in on_two.list_chats()] == [chat["chat_id"]]
            on_two.question("Continued on the second.", chat_id=chat["chat_id"])
            assert [e["question"] for e in on_one.get_chat(chat["chat_id"])["exchanges"]] == [
                "Asked on the first instance.", "Continued on the second."]
            assert GradioClient(two.url, auth=BOB).list_chats() == []
        finally:
            one.stop()
            two.stop()
