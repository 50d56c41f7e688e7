"""The one database module: an SQLAlchemy engine and sessions over SQLite or PostgreSQL.

``Database.from_settings(settings)`` opens ``--database_url`` when it is set (any SQLAlchemy
URL: ``postgresql+psycopg://user:pass@host/db`` for a server shared by many instances), else
the SQLite file ``<db_root>/h2ogpt.sqlite``. Tables are declared on :class:`Base` by the
modules that own them (``src/storage/*.py``) and created on open (``create_all``: new tables
only; nothing is altered or dropped behind the user's back).

SQLite is opened in WAL mode with a busy timeout, so the engine and N worker processes can
read while one writes. Workers and the engine may each open their own ``Database`` on the
same URL: that is how state is shared between them and between instances.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_NAME = "h2ogpt.sqlite"
BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """The declarative base of every stored table."""


def default_url(db_root: str) -> str:
    """The SQLite file under ``db_root`` (the folder is made if needed)."""
    root = Path(db_root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / SQLITE_NAME}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An engine and a session factory on one URL; tables created on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        Base.metadata.create_all(self.engine)
        log.info("database: %s", self.engine.url.render_as_string(hide_password=True))

    @classmethod
    def open(cls, database_url: str, db_root: str) -> Database:
        """``database_url`` when set, else the SQLite file under ``db_root``."""
        return cls(database_url or default_url(db_root))

    def create_tables(self) -> None:
        """Create the tables of modules imported after open (idempotent)."""
        Base.metadata.create_all(self.engine)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
