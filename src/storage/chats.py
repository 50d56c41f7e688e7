"""Saved chats: every exchange of a conversation, per user, in the shared database.

A chat belongs to one :class:`ChatOwner`: a logged-in user (by name) or a guest (by the
random token their browser keeps, or their gradio_client session). Owners only ever see
their own chats: every query here is filtered by the owner's key, and a chat id of someone
else reads as "no such chat". Guests' chats expire ``--guest_chat_ttl_hours`` after their
last change; a deleted chat can be restored for :data:`UNDO_SECONDS`, then it is purged.

Each exchange is saved as it completes (:meth:`ChatStore.save_exchange`, an upsert at its
position, so regenerating replaces it and undo truncates). Chats export as h2oGPT's chat
JSON (``{title: [[question, answer], ...]}``, what h2oGPT's "Export Chats" writes and
"Import Chats" reads) and as Markdown; import reads the same JSON.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from src.storage.database import Base, Database

log = logging.getLogger(__name__)

UNDO_SECONDS = 600.0
"""How long a deleted chat can be restored before it is purged."""
PURGE_EVERY_SECONDS = 60.0
TITLE_CHARS = 80
MAX_TITLE_CHARS = 200
LIST_LIMIT = 500


class ChatError(ValueError):
    """A request about saved chats that cannot be done; the message says why (the caller's
    fault: front-ends show it as a 4xx-style error). Not a DomainError: it has no code of its own."""


class ChatNotFoundError(ChatError):
    """No chat of yours has that id."""


class ChatImportError(ChatError):
    """The file is not h2oGPT's chat JSON."""


@dataclass(frozen=True)
class ChatOwner:
    """Who a chat belongs to: a logged-in user, or a guest's browser/client session token."""

    kind: Literal["user", "guest"]
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def is_guest(self) -> bool:
        return self.kind == "guest"


@dataclass
class Exchange:
    """One question and its answer, with what produced it."""

    question: str
    answer: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    collection: str = ""  # langchain_mode
    action: str = ""  # langchain_action
    settings: dict[str, Any] = field(default_factory=dict)  # the EvalParams used (sampling, top_k_docs ...)
    created_at: float = 0.0


@dataclass(frozen=True)
class ChatSummary:
    """A chat as the sidebar lists it."""

    id: str
    title: str
    created_at: float
    updated_at: float
    exchanges: int


@dataclass
class Chat:
    """A chat with all its exchanges, oldest first."""

    summary: ChatSummary
    exchanges: list[Exchange]

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def title(self) -> str:
        return self.summary.title


# --- tables -------------------------------------------------------------------------------
class ChatRow(Base):
    __tablename__ = "chats"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(300), index=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS), default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    deleted_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class ExchangeRow(Base):
    __tablename__ = "chat_exchanges"
    __table_args__ = (UniqueConstraint("chat_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model: Mapped[str] = mapped_column(String(300), default="")
    collection: Mapped[str] = mapped_column(String(300), default="")
    action: Mapped[str] = mapped_column(String(40), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class SecretRow(Base):
    """Named random secrets every instance on the database shares (the UI's browser-state key)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


def title_from(question: str) -> str:
    """A chat's title from its first question: the first line, cut at a word near TITLE_CHARS."""
    line = " ".join((question or "").split())
    if len(line) <= TITLE_CHARS:
        return line or "New chat"
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return cut + "…"


def _summary(row: ChatRow, count: int) -> ChatSummary:
    return ChatSummary(row.id, row.title or "New chat", row.created_at, row.updated_at, count)


def _exchange(row: ExchangeRow) -> Exchange:
    return Exchange(row.question, row.answer, list(row.sources or []), row.model, row.collection, row.action,
                    dict(row.settings or {}), row.created_at)


class ChatStore:
    """The saved chats in one :class:`Database`; safe to share between threads."""

    def __init__(self, db: Database, guest_ttl_hours: float = 168.0) -> None:
        self.db = db
        db.create_tables()
        self.guest_ttl_seconds = guest_ttl_hours * 3600.0
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    @property
    def saves_guests(self) -> bool:
        return self.guest_ttl_seconds > 0

    # --- writing --------------------------------------------------------------------------
    def _expiry(self, owner: ChatOwner, now: float) -> float | None:
        return now + self.guest_ttl_seconds if owner.is_guest else None

    def create(self, owner: ChatOwner, title: str = "") -> ChatSummary:
        """A new empty chat (titled from its first question unless ``title`` is given)."""
        now = time.time()
        row = ChatRow(id=self.new_id(), owner=owner.key, title=self._clean_title(title, allow_empty=True),
                      created_at=now, updated_at=now, expires_at=self._expiry(owner, now))
        with self.db.session() as session:
            session.add(row)
        return _summary(row, 0)

    @staticmethod
    def new_id() -> str:
        """An id for a chat that :meth:`save_exchange` creates with its first exchange."""
        return uuid.uuid4().hex

    def save_exchange(self, owner: ChatOwner, chat_id: str, position: int, exchange: Exchange,
                      create: bool = False) -> ChatSummary:
        """Save ``exchange`` as the chat's ``position``-th (0-based): replace the one there, or
        append; a position past the end appends. Titles an untitled chat from the first question.
        With ``create``, a chat of that id (from :meth:`new_id`) is made if there is none yet,
        so that starting a chat costs nothing before its first answer."""
        now = time.time()
        with self.db.session() as session:
            if create and session.get(ChatRow, chat_id) is None:
                session.add(ChatRow(id=chat_id, owner=owner.key, title="", created_at=now, updated_at=now,
                                    expires_at=self._expiry(owner, now)))
                session.flush()
            chat = self._row(session, owner, chat_id)
            count = self._count(session, chat_id)
            position = max(0, min(int(position), count))
            row = session.scalars(select(ExchangeRow).where(
                ExchangeRow.chat_id == chat_id, ExchangeRow.position == position)).first()
            if row is None:
                row = ExchangeRow(chat_id=chat_id, position=position, created_at=exchange.created_at or now)
                session.add(row)
                count += 1
            row.question, row.answer = exchange.question, exchange.answer
            row.sources, row.model = list(exchange.sources), exchange.model
            row.collection, row.action, row.settings = exchange.collection, exchange.action, dict(exchange.settings)
            if not chat.title and position == 0:
                chat.title = title_from(exchange.question)
            chat.updated_at, chat.expires_at = now, self._expiry(owner, now)
            return _summary(chat, count)

    def append(self, owner: ChatOwner, chat_id: str, exchange: Exchange) -> ChatSummary:
        """Save ``exchange`` after the chat's last one."""
        return self.save_exchange(owner, chat_id, 1 << 30, exchange)

    def truncate(self, owner: ChatOwner, chat_id: str, length: int) -> ChatSummary:
        """Keep the first ``length`` exchanges (undo removes the last one)."""
        with self.db.session() as session:
            chat = self._row(session, owner, chat_id)
            session.execute(delete(ExchangeRow).where(ExchangeRow.chat_id == chat_id,
                                                      ExchangeRow.position >= max(0, int(length))))
            chat.updated_at = time.time()
            return _summary(chat, self._count(session, chat_id))

    def rename(self, owner: ChatOwner, chat_id: str, title: str) -> ChatSummary:
        with self.db.session() as session:
            chat = self._row(session, owner, chat_id)
            chat.title = self._clean_title(title)
            return _summary(chat, self._count(session, chat_id))

    def delete(self, owner: ChatOwner, chat_id: str) -> ChatSummary:
        """Delete a chat; :meth:`restore` brings it back within UNDO_SECONDS."""
        with self.db.session() as session:
            chat = self._row(session, owner, chat_id)
            chat.deleted_at = time.time()
            return _summary(chat, self._count(session, chat_id))

    def restore(self, owner: ChatOwner, chat_id: str) -> ChatSummary:
        """Undo :meth:`delete`."""
        with self.db.session() as session:
            chat = self._row(session, owner, chat_id, deleted=True)
            chat.deleted_at = None
            return _summary(chat, self._count(session, chat_id))

    # --- reading --------------------------------------------------------------------------
    def list_chats(self, owner: ChatOwner, search: str = "", limit: int = LIST_LIMIT) -> list[ChatSummary]:
        """The owner's chats, newest first; ``search`` matches titles, questions and answers
        (case-insensitive substring)."""
        self.purge_expired()
        mine = select(ChatRow.id).where(ChatRow.owner == owner.key, ChatRow.deleted_at.is_(None))
        counts = (select(ExchangeRow.chat_id, func.count().label("n"))
                  .where(ExchangeRow.chat_id.in_(mine)).group_by(ExchangeRow.chat_id).subquery())
        query = (select(ChatRow, func.coalesce(counts.c.n, 0))
                 .outerjoin(counts, counts.c.chat_id == ChatRow.id)
                 .where(ChatRow.owner == owner.key, ChatRow.deleted_at.is_(None))
                 .order_by(ChatRow.updated_at.desc(), ChatRow.id).limit(limit))
        needle = " ".join((search or "").split()).lower()
        if needle:
            in_text = select(ExchangeRow.chat_id).where(ExchangeRow.chat_id.in_(mine), or_(
                func.lower(ExchangeRow.question).contains(needle, autoescape=True),
                func.lower(ExchangeRow.answer).contains(needle, autoescape=True)))
            query = query.where(or_(func.lower(ChatRow.title).contains(needle, autoescape=True),
                                    ChatRow.id.in_(in_text)))
        with self.db.session() as session:
            return [_summary(row, int(n)) for row, n in session.execute(query).all()]

    def get(self, owner: ChatOwner, chat_id: str) -> Chat:
        """One chat with its exchanges; ChatNotFoundError unless it is the owner's."""
        with self.db.session() as session:
            chat = self._row(session, owner, chat_id)
            rows = session.scalars(select(ExchangeRow).where(ExchangeRow.chat_id == chat_id)
                                   .order_by(ExchangeRow.position)).all()
            return Chat(_summary(chat, len(rows)), [_exchange(r) for r in rows])

    def history(self, owner: ChatOwner, chat_id: str) -> list[list[str]]:
        """The chat as h2oGPT's [human, bot] pairs (what evaluate() takes as chat_conversation)."""
        return [[e.question, e.answer] for e in self.get(owner, chat_id).exchanges]

    # --- export and import ----------------------------------------------------------------
    def chats(self, owner: ChatOwner, chat_ids: list[str] | None = None) -> list[Chat]:
        """The given chats (all the owner's when None), newest first."""
        ids = chat_ids if chat_ids is not None else [c.id for c in self.list_chats(owner)]
        return [self.get(owner, chat_id) for chat_id in ids]

    def export_json(self, owner: ChatOwner, chat_ids: list[str] | None = None) -> dict[str, list[list[str]]]:
        """h2oGPT's chat JSON: ``{title: [[question, answer], ...]}`` (titles made unique)."""
        return to_h2ogpt_json(self.chats(owner, chat_ids))

    def export_markdown(self, owner: ChatOwner, chat_ids: list[str] | None = None) -> str:
        return to_markdown(self.chats(owner, chat_ids))

    def import_json(self, owner: ChatOwner, data: Any) -> list[ChatSummary]:
        """Add the chats of h2oGPT's chat JSON (a dict of title -> [[q, a], ...]; each value may
        also be a list of such histories, one per model, as h2oGPT writes with --model_lock:
        the first is taken). Returns the new chats."""
        parsed = from_h2ogpt_json(data)
        created = []
        for title, pairs in parsed:
            summary = self.create(owner, title)
            now = time.time()
            with self.db.session() as session:
                session.add_all([ExchangeRow(chat_id=summary.id, position=i, question=q, answer=a,
                                             sources=[], settings={}, created_at=now)
                                 for i, (q, a) in enumerate(pairs)])
            created.append(ChatSummary(summary.id, summary.title, summary.created_at, summary.updated_at,
                                       len(pairs)))
        return created

    # --- upkeep ---------------------------------------------------------------------------
    def purge_expired(self, now: float | None = None, force: bool = False) -> int:
        """Remove guests' chats past their expiry and deleted chats past the undo window
        (at most once a minute unless ``force``). Returns the number removed."""
        now = time.time() if now is None else now
        if not force and now - self._last_purge < PURGE_EVERY_SECONDS:
            return 0
        if not self._purge_lock.acquire(blocking=False):
            return 0
        try:
            self._last_purge = now
            with self.db.session() as session:
                doomed = select(ChatRow.id).where(or_(ChatRow.expires_at < now,
                                                      ChatRow.deleted_at < now - UNDO_SECONDS))
                ids = list(session.scalars(doomed).all())
                if ids:
                    session.execute(delete(ExchangeRow).where(ExchangeRow.chat_id.in_(ids)))
                    session.execute(delete(ChatRow).where(ChatRow.id.in_(ids)))
            if ids:
                log.info("purged %d expired or deleted chat(s)", len(ids))
            return len(ids)
        finally:
            self._purge_lock.release()

    def shared_secret(self, name: str) -> str:
        """A random secret kept in the database under ``name`` (made on first use), so every
        instance on this database and every restart uses the same one."""
        with self.db.session() as session:
            row = session.get(SecretRow, name)
            if row is not None:
                return row.value
        value = secrets.token_urlsafe(32)
        try:
            with self.db.session() as session:
                session.add(SecretRow(name=name, value=value))
        except IntegrityError:  # another instance made it first: read theirs
            log.debug("secret %s made concurrently; reading it", name)
        with self.db.session() as session:
            stored = session.get(SecretRow, name)
            return stored.value if stored is not None else value

    # --- internals ------------------------------------------------------------------------
    @staticmethod
    def _clean_title(title: str, allow_empty: bool = False) -> str:
        text = " ".join(str(title or "").split())
        if not text and not allow_empty:
            raise ChatError("a chat title cannot be empty")
        return text[:MAX_TITLE_CHARS]

    @staticmethod
    def _count(session: Session, chat_id: str) -> int:
        return int(session.scalar(select(func.count()).select_from(ExchangeRow)
                                  .where(ExchangeRow.chat_id == chat_id)) or 0)

    @staticmethod
    def _row(session: Session, owner: ChatOwner, chat_id: str, deleted: bool = False) -> ChatRow:
        if not isinstance(chat_id, str) or not chat_id:
            raise ChatNotFoundError("a chat id is required")
        row = session.get(ChatRow, chat_id)
        if row is None or row.owner != owner.key or (row.deleted_at is not None) != deleted:
            raise ChatNotFoundError(f"no chat {chat_id!r}")
        if row.expires_at is not None and row.expires_at < time.time():
            raise ChatNotFoundError(f"no chat {chat_id!r} (it expired)")
        return row


# --- formats ------------------------------------------------------------------------------
def to_h2ogpt_json(chats: list[Chat]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for chat in chats:
        title, n = chat.title, 2
        while title in out:
            title, n = f"{chat.title} ({n})", n + 1
        out[title] = [[e.question, e.answer] for e in chat.exchanges]
    return out


def _pairs(value: Any) -> list[tuple[str, str]] | None:
    if not isinstance(value, list):
        return None
    pairs = []
    for step in value:
        if not (isinstance(step, (list, tuple)) and len(step) == 2):
            return None
        q, a = step
        if not all(x is None or isinstance(x, str) for x in (q, a)):
            return None
        pairs.append((q or "", a or ""))
    return pairs


def from_h2ogpt_json(data: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, pairs) of each chat in h2oGPT's chat JSON; ChatImportError says what is wrong."""
    if not isinstance(data, dict):
        raise ChatImportError("expected h2oGPT's chat JSON: an object of title -> [[question, answer], ...]")
    chats = []
    for title, value in data.items():
        pairs = _pairs(value)
        if pairs is None and isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            pairs = _pairs(value[0])  # one history per model (h2oGPT with --model_lock)
        if pairs is None:
            raise ChatImportError(f"chat {str(title)[:60]!r} is not a list of [question, answer] pairs")
        if pairs:
            chats.append((" ".join(str(title).split())[:MAX_TITLE_CHARS] or title_from(pairs[0][0]), pairs))
    return chats


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in (text or "").splitlines()) or ">"


def to_markdown(chats: list[Chat]) -> str:
    """Chats as Markdown: a heading per chat, the questions quoted, the answers as written,
    each answer's model and sources below it."""
    parts = []
    for chat in chats:
        parts.append(f"# {chat.title}\n")
        for e in chat.exchanges:
            parts.append(f"**You:**\n\n{_quote(e.question)}\n")
            parts.append(f"**{e.model or 'Assistant'}:**\n\n{e.answer}\n")
            names = [str(s.get("source") or (s.get("metadata") or {}).get("source") or "document")
                     for s in e.sources]
            if names:
                parts.append("Sources: " + ", ".join(dict.fromkeys(names)) + "\n")
    return "\n".join(parts)
