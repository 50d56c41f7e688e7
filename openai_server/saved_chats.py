"""Saved chats for the OpenAI API: ``extra_body={"chat_id": ...}`` continues a saved chat.

The chat's exchanges (the same store as the UI's sidebar and gradio_client's chat endpoints,
src/storage/chats.py, on ``--database_url`` or the SQLite file under ``--db_root``) become the
conversation's earlier turns, and the new exchange is appended when the answer is complete.
Whose chats they are is the request's identity (openai_server/identity.py): a logged-in user
is the same owner as in the UI; an API key without a login is a guest named after the key's
digest (so a script with one key keeps its chats). The store is opened in the worker on first
use: workers share it through the database, as instances do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from openai_server.errors import InvalidRequestError, NotFoundError
from src.contract import Requester
from src.settings import Settings
from src.storage.chats import ChatError, ChatNotFoundError, ChatOwner, ChatStore, Exchange
from src.storage.database import Database

log = logging.getLogger(__name__)


def owner_of(requester: Requester | None) -> ChatOwner:
    if requester is None:
        raise InvalidRequestError("chat_id needs to know whose chat it is (an API key or a user)",
                                  param="chat_id")
    return ChatOwner("guest" if requester.scratch else "user", requester.name)


class SavedChats:
    """The saved-chat store as the API uses it (opened on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: ChatStore | None = None
        self._lock = threading.Lock()

    def _opened(self) -> ChatStore:
        with self._lock:
            if self._store is None:
                db = Database.open(self.settings.database_url, self.settings.db_root)
                self._store = ChatStore(db, self.settings.guest_chat_ttl_hours)
            return self._store

    async def history(self, requester: Requester | None, chat_id: str) -> list[list[str]]:
        """The chat's [question, answer] pairs; an id that is not the caller's is a 404."""
        owner = owner_of(requester)
        try:
            return await asyncio.to_thread(lambda: self._opened().history(owner, chat_id))
        except ChatNotFoundError as exc:
            raise NotFoundError(str(exc), param="chat_id", code="chat_not_found") from None
        except ChatError as exc:
            raise InvalidRequestError(str(exc), param="chat_id") from None

    async def append(self, requester: Requester | None, chat_id: str, question: str, answer: str,
                     sources: list[dict[str, Any]], model: str, settings: dict[str, Any]) -> None:
        """Append the finished exchange (a failure is logged: the answer was already given)."""
        owner = owner_of(requester)
        exchange = Exchange(question=question, answer=answer, sources=sources, model=model,
                            collection=str(settings.get("langchain_mode") or ""),
                            action=str(settings.get("langchain_action") or ""), settings=settings,
                            created_at=time.time())
        try:
            await asyncio.to_thread(lambda: self._opened().append(owner, chat_id, exchange))
        except Exception:
            log.exception("could not save the exchange to chat %s", chat_id)
