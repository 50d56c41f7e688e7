"""Stored responses of the Responses API, on the shared database (src.storage.database).

A row holds one response as its JSON document (the API's response object), the input
items of its request, the ``previous_response_id`` it continued, and its owner: the
identity of the API key or user that made it (openai_server.identity). Every query is
scoped by owner, so another key's response is simply not found. ``purge`` removes the
responses older than the retention (--responses_retention_days).

The API workers each open their own :class:`ResponseStore` on the same URL (a SQLite
file under --db_root, or PostgreSQL with --database_url), which is how a response
stored through one worker or instance is read through another.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Float, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from src.storage.database import Base, Database

log = logging.getLogger(__name__)

#: The longest previous_response_id chain rebuilt into one conversation.
MAX_CHAIN = 1000


class ResponseRow(Base):
    __tablename__ = "stored_responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    previous_response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredResponse:
    """One stored response: the response document and its request's input items."""

    id: str
    owner: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]] = field(default_factory=list)
    previous_response_id: str | None = None
    created_at: float = field(default_factory=time.time)


def _record(row: ResponseRow) -> StoredResponse:
    return StoredResponse(id=row.id, owner=row.owner, response=dict(row.response),
                          input_items=list(row.input_items), previous_response_id=row.previous_response_id,
                          created_at=row.created_at)


class ResponseStore:
    """Save, read, delete and purge stored responses; every read is scoped by owner."""

    def __init__(self, db: Database, retention_days: float = 0.0) -> None:
        self.db = db
        self.retention_days = retention_days
        db.create_tables()

    @classmethod
    def open(cls, database_url: str, db_root: str, retention_days: float = 0.0) -> ResponseStore:
        return cls(Database.open(database_url, db_root), retention_days)

    def save(self, record: StoredResponse) -> None:
        """Insert or replace the response ``record.id``; old ones past retention go too."""
        with self.db.session() as session:
            session.merge(ResponseRow(
                id=record.id, owner=record.owner, created_at=record.created_at,
                previous_response_id=record.previous_response_id, response=record.response,
                input_items=record.input_items))
        self.purge()

    def get(self, owner: str, response_id: str) -> StoredResponse | None:
        with self.db.session() as session:
            row = session.execute(select(ResponseRow).where(
                ResponseRow.id == response_id, ResponseRow.owner == owner)).scalar_one_or_none()
            return _record(row) if row is not None else None

    def delete(self, owner: str, response_id: str) -> bool:
        with self.db.session() as session:
            result = session.execute(delete(ResponseRow).where(
                ResponseRow.id == response_id, ResponseRow.owner == owner))
            return bool(getattr(result, "rowcount", 0))

    def chain(self, owner: str, response_id: str) -> list[StoredResponse] | None:
        """The responses from the first of the conversation to ``response_id``, oldest first;
        None when ``response_id`` (or a response it continues) is not this owner's."""
        out: list[StoredResponse] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None and len(out) < MAX_CHAIN:
            if current in seen:
                break
            seen.add(current)
            record = self.get(owner, current)
            if record is None:
                return None
            out.append(record)
            current = record.previous_response_id
        out.reverse()
        return out

    def purge(self, now: float | None = None) -> int:
        """Remove the responses older than the retention (none when it is 0); how many went."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or time.time()) - self.retention_days * 86400
        with self.db.session() as session:
            result = session.execute(delete(ResponseRow).where(ResponseRow.created_at < cutoff))
            removed = int(getattr(result, "rowcount", 0) or 0)
        if removed:
            log.info("removed %d stored responses older than %g days", removed, self.retention_days)
        return removed
