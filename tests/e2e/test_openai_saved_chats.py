"""The OpenAI API continues a saved chat by its id (``extra_body={"chat_id": ...}``): the
chat's exchanges are the earlier turns, the new exchange is appended (streamed or not), the
same chat the UI and gradio_client see; another user's chat id is a 404."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from gradio_ui.client import GradioClient
from tests.server import RemoteServer

USERS = "[('alice', 'wonderland'), ('bob', 'builder')]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    workdir = tmp_path_factory.mktemp("openai_chats")
    with RemoteServer(workdir, f"--auth={USERS}", "--max_new_tokens=12", "--temperature=0",
                      "--langchain_modes=['LLM']", f"--db_root={workdir / 'db'}", gradio=True) as app:
        yield app


def as_user(server: RemoteServer, login: str) -> openai.OpenAI:
    return server.client(default_headers={"X-H2OGPT-User": login})


def ask(client: openai.OpenAI, question: str, **extra):
    return client.chat.completions.create(model="", messages=[{"role": "user", "content": question}],
                                          max_tokens=12, temperature=0, extra_body=extra)


def test_a_chat_id_continues_the_saved_chat_and_appends_to_it(server: RemoteServer):
    alice = as_user(server, "alice:wonderland")
    ui = GradioClient(server.gradio_url, auth=("alice", "wonderland"))
    chat = ui.new_chat()
    alone = ask(alice, "What is my name?").usage.prompt_tokens
    ask(alice, "My name is Ada Lovelace and I write programs.", chat_id=chat["chat_id"])
    second = ask(alice, "What is my name?", chat_id=chat["chat_id"])
    assert second.usage.prompt_tokens > alone + 5  # the saved exchange went into the prompt
    saved = ui.get_chat(chat["chat_id"])
    assert [e["question"] for e in saved["exchanges"]] == ["My name is Ada Lovelace and I write programs.",
                                                          "What is my name?"]
    assert saved["exchanges"][-1]["answer"] == second.choices[0].message.content != ""


def test_a_streamed_answer_is_saved_whole(server: RemoteServer):
    alice = as_user(server, "alice:wonderland")
    chat = GradioClient(server.gradio_url, auth=("alice", "wonderland")).new_chat("streamed")
    text = "".join(c.choices[0].delta.content or "" for c in alice.chat.completions.create(
        model="", messages=[{"role": "user", "content": "Name three colours."}], max_tokens=12, stream=True,
        extra_body={"chat_id": chat["chat_id"]}) if c.choices)
    saved = GradioClient(server.gradio_url, auth=("alice", "wonderland")).get_chat(chat["chat_id"])
    assert [e["answer"] for e in saved["exchanges"]] == [text] and text


def test_another_users_chat_id_is_a_404(server: RemoteServer):
    chat = GradioClient(server.gradio_url, auth=("alice", "wonderland")).new_chat()
    with pytest.raises(openai.NotFoundError) as refused:
        ask(as_user(server, "bob:builder"), "Hello", chat_id=chat["chat_id"])
    assert refused.value.body["code"] == "chat_not_found"
