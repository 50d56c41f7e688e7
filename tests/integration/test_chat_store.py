"""Saved chats (src/storage/chats.py) on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from src.storage.chats import (
    UNDO_SECONDS,
    ChatError,
    ChatImportError,
    ChatNotFoundError,
    ChatOwner,
    ChatStore,
    Exchange,
    from_h2ogpt_json,
    title_from,
)
from src.storage.database import Database
from tests.postgres import PostgresServer

ALICE = ChatOwner("user", "alice")
BOB = ChatOwner("user", "bob")
GUEST = ChatOwner("guest", "0f" * 16)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'h2ogpt.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.url
    db = Database(server.url)  # a clean database for the next test
    from src.storage.chats import ChatRow, ExchangeRow

    with db.session() as session:
        session.query(ExchangeRow).delete()
        session.query(ChatRow).delete()
    db.close()


@pytest.fixture
def store(url: str) -> Iterator[ChatStore]:
    db = Database(url)
    yield ChatStore(db, guest_ttl_hours=1)
    db.close()


def exchange(question: str, answer: str = "an answer", **kw) -> Exchange:
    return Exchange(question, answer, **kw)


def test_an_exchange_is_saved_with_everything_that_produced_it(store: ChatStore):
    chat = store.create(ALICE)
    sources = [{"source": "report.pdf", "page": 3, "content": "PURPLE-42", "score": 0.81}]
    settings = {"temperature": 0.0, "top_k_docs": 3, "max_new_tokens": 48, "system_prompt": "Be brief."}
    store.append(ALICE, chat.id, exchange("What is the launch code?", "PURPLE-42", sources=sources,
                                          model="smollm2", collection="MyData", action="Query",
                                          settings=settings))
    got = store.get(ALICE, chat.id)
    assert got.title == "What is the launch code?"
    [saved] = got.exchanges
    assert (saved.question, saved.answer, saved.model, saved.collection, saved.action) == (
        "What is the launch code?", "PURPLE-42", "smollm2", "MyData", "Query")
    assert saved.sources == sources and saved.settings == settings and saved.created_at > 0


def test_a_user_sees_only_their_own_chats(store: ChatStore):
    mine = store.create(ALICE)
    store.append(ALICE, mine.id, exchange("alice's secret"))
    theirs = store.create(BOB)
    store.append(BOB, theirs.id, exchange("bob's question"))
    assert [c.id for c in store.list_chats(ALICE)] == [mine.id]
    assert [c.id for c in store.list_chats(BOB)] == [theirs.id]
    assert store.list_chats(GUEST) == []
    for call in (lambda: store.get(BOB, mine.id), lambda: store.rename(BOB, mine.id, "x"),
                 lambda: store.delete(BOB, mine.id), lambda: store.append(BOB, mine.id, exchange("sneak")),
                 lambda: store.history(GUEST, mine.id)):
        with pytest.raises(ChatNotFoundError):
            call()
    assert store.list_chats(BOB, search="secret") == []
    assert len(store.get(ALICE, mine.id).exchanges) == 1


def test_newest_first_and_search_over_titles_and_text(store: ChatStore):
    first = store.create(ALICE)
    store.append(ALICE, first.id, exchange("Tides of the North Sea", "They rise twice a day."))
    second = store.create(ALICE)
    store.append(ALICE, second.id, exchange("A poem about 100% cotton", "Soft and white."))
    assert [c.id for c in store.list_chats(ALICE)] == [second.id, first.id]
    store.append(ALICE, first.id, exchange("And in the Baltic?", "Barely."))
    assert [c.id for c in store.list_chats(ALICE)] == [first.id, second.id]
    assert [c.id for c in store.list_chats(ALICE, search="tides")] == [first.id]  # title
    assert [c.id for c in store.list_chats(ALICE, search="BARELY")] == [first.id]  # answer text
    assert [c.id for c in store.list_chats(ALICE, search="100%")] == [second.id]  # % is literal
    assert store.list_chats(ALICE, search="1_0") == []  # _ is literal
    assert store.list_chats(ALICE)[0].exchanges == 2


def test_regenerate_replaces_and_undo_truncates(store: ChatStore):
    chat = store.create(ALICE)
    for i in range(3):
        store.save_exchange(ALICE, chat.id, i, exchange(f"q{i}", f"a{i}"))
    store.save_exchange(ALICE, chat.id, 2, exchange("q2", "a2 again"))
    assert store.history(ALICE, chat.id) == [["q0", "a0"], ["q1", "a1"], ["q2", "a2 again"]]
    store.truncate(ALICE, chat.id, 1)
    assert store.history(ALICE, chat.id) == [["q0", "a0"]]
    store.save_exchange(ALICE, chat.id, 7, exchange("next", "one"))  # past the end: appended
    assert store.history(ALICE, chat.id) == [["q0", "a0"], ["next", "one"]]


def test_rename_delete_and_undo(store: ChatStore):
    chat = store.create(ALICE)
    store.append(ALICE, chat.id, exchange("hello"))
    assert store.rename(ALICE, chat.id, "  My   chat ").title == "My chat"
    with pytest.raises(ChatError, match="title cannot be empty"):
        store.rename(ALICE, chat.id, "   ")
    store.delete(ALICE, chat.id)
    assert store.list_chats(ALICE) == []
    with pytest.raises(ChatNotFoundError):
        store.get(ALICE, chat.id)
    store.restore(ALICE, chat.id)
    assert [c.title for c in store.list_chats(ALICE)] == ["My chat"]


def test_deleted_chats_are_purged_after_the_undo_window(store: ChatStore):
    import time

    chat = store.create(ALICE)
    store.append(ALICE, chat.id, exchange("to be purged"))
    store.delete(ALICE, chat.id)
    assert store.purge_expired(now=time.time(), force=True) == 0  # still undoable
    assert store.purge_expired(now=time.time() + UNDO_SECONDS + 5, force=True) == 1
    with pytest.raises(ChatNotFoundError):
        store.restore(ALICE, chat.id)


def test_guest_chats_expire_after_the_ttl(store: ChatStore):
    import time

    chat = store.create(GUEST)
    store.append(GUEST, chat.id, exchange("a visitor's question"))
    kept = store.create(ALICE)
    store.append(ALICE, kept.id, exchange("a user's question"))
    assert store.purge_expired(now=time.time() + 1800, force=True) == 0  # within --guest_chat_ttl_hours=1
    assert store.purge_expired(now=time.time() + 3700, force=True) == 1
    assert store.list_chats(GUEST) == []
    assert [c.id for c in store.list_chats(ALICE)] == [kept.id]  # users' chats never expire


def test_export_h2ogpt_json_and_markdown_and_import_round_trip(store: ChatStore):
    chat = store.create(ALICE)
    store.append(ALICE, chat.id, exchange("What is 2+2?", "4", model="smollm2",
                                          sources=[{"source": "/x/math.txt", "content": "2+2=4"}]))
    store.append(ALICE, chat.id, exchange("And 3+3?", "6", model="smollm2"))
    other = store.create(ALICE, "Same title")
    store.append(ALICE, other.id, exchange("one", "two"))
    third = store.create(ALICE, "Same title")
    store.append(ALICE, third.id, exchange("three", "four"))

    data = store.export_json(ALICE)
    assert data == {"Same title": [["three", "four"]], "Same title (2)": [["one", "two"]],
                    "What is 2+2?": [["What is 2+2?", "4"], ["And 3+3?", "6"]]}
    assert json.loads(json.dumps(data)) == data
    markdown = store.export_markdown(ALICE, [chat.id])
    assert markdown.startswith("# What is 2+2?\n")
    assert "> What is 2+2?" in markdown and "**smollm2:**\n\n4" in markdown and "/x/math.txt" in markdown

    imported = store.import_json(BOB, data)
    assert sorted(c.title for c in imported) == ["Same title", "Same title (2)", "What is 2+2?"]
    assert store.export_json(BOB) == data  # what was exported comes back the same
    assert len(store.list_chats(ALICE)) == 3  # alice's are untouched


def test_import_reads_h2ogpt_model_lock_form_and_refuses_other_json():
    assert from_h2ogpt_json({"t": [[["q", "a"]], [["q", "b"]]]}) == [("t", [("q", "a")])]
    assert from_h2ogpt_json({"t": [["q", None]]}) == [("t", [("q", "")])]
    for bad in ([["q", "a"]], {"t": "text"}, {"t": [["q", "a", "extra"]]}, {"t": [[1, 2]]}):
        with pytest.raises(ChatImportError):
            from_h2ogpt_json(bad)


def test_titles_come_from_the_first_question():
    assert title_from("  What   is\nthe tide? ") == "What is the tide?"
    long = title_from("word " * 40)
    assert long.endswith("…") and len(long) <= 81
    assert title_from("") == "New chat"


def test_two_instances_on_one_database_share_chats_and_the_secret(url: str):
    one, two = Database(url), Database(url)
    try:
        a, b = ChatStore(one), ChatStore(two)
        chat = a.create(ALICE)
        a.append(ALICE, chat.id, exchange("asked on instance one", "answered"))
        assert [c.id for c in b.list_chats(ALICE)] == [chat.id]
        b.append(ALICE, chat.id, exchange("continued on instance two", "still answered"))
        assert a.history(ALICE, chat.id)[-1] == ["continued on instance two", "still answered"]
        assert a.shared_secret("browser_state") == b.shared_secret("browser_state")
    finally:
        one.close()
        two.close()


def test_a_chat_is_made_with_its_first_exchange_and_ids_stay_private(store: ChatStore):
    chat_id = store.new_id()
    assert store.list_chats(ALICE) == []  # nothing written before the first answer
    store.save_exchange(ALICE, chat_id, 0, exchange("First question", "first answer"), create=True)
    assert [(c.id, c.title, c.exchanges) for c in store.list_chats(ALICE)] == [(chat_id, "First question", 1)]
    with pytest.raises(ChatNotFoundError):  # someone else's id is not created over
        store.save_exchange(BOB, chat_id, 1, exchange("mine now?"), create=True)
    assert store.history(ALICE, chat_id) == [["First question", "first answer"]]
