"""Which collections exist, who may see them, and where their databases live.

- ``UserData`` (and any collection of scope ``shared``) lives in ``<db_root>/db_dir_<name>``
  and is seen by everyone.
- ``MyData`` (and any ``personal`` collection) lives in ``<db_root>/users/<user>/db_dir_<name>``
  and is seen by its owner only. A scratch user (an anonymous session) gets its personal
  collections under a temporary folder that is removed when the server stops.
- ``LLM`` (no documents) and ``Disabled`` are modes, not collections.

Collections beyond the built-in ones are discovered from their folders, so a collection
made by ``make_db`` or by another server run is found without a registry file.

With ``--chroma_server`` the shared and (non-scratch) personal collections live in the
Chroma server instead, under the names :func:`server_collection_name` gives, and are
discovered by listing the server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from src import contract
from src.errors import (  # noqa: F401 (re-exported: the errors of this package)
    CollectionExistsError,
    DocQAError,
    DocumentsDisabledError,
    InvalidCollectionNameError,
    PermissionDeniedError,
    UnknownCollectionError,
)

Scope = Literal["shared", "personal"]
NO_COLLECTION_MODES = ("LLM", "Disabled")
BUILTIN_SCOPES: dict[str, Scope] = {"UserData": "shared", "MyData": "personal"}
DB_PREFIX = "db_dir_"
SERVER_SHARED = "h2ogpt.shared."
SERVER_USER = "h2ogpt.user."
#: Where a collection's database is: a local folder, or its name in the Chroma server.
Location = Path | str
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# Who asks (the engine contract's Requester): the UI passes the logged-in user (or a
# per-session scratch name for visitors); the API passes the user its key or login maps to.
# ``None`` stands for the server itself (start-up sync, make_db), which sees shared
# collections only.
Requester = contract.Requester


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as users see it."""

    name: str
    scope: Scope
    location: Location
    builtin: bool = False


def validate_name(name: str) -> str:
    if name in NO_COLLECTION_MODES or not _NAME.fullmatch(name):
        raise InvalidCollectionNameError(
            f"invalid collection name {name!r}: use 3 to 63 letters, digits, '_' or '-', "
            f"starting and ending with a letter or digit (not {' or '.join(NO_COLLECTION_MODES)})"
        )
    return name


def user_folder(name: str) -> str:
    """A folder name for a user: the name itself when it is safe, else a stable hash of it."""
    if _USER.fullmatch(name) and name not in (".", ".."):
        return name
    return "u-" + hashlib.sha256(name.encode()).hexdigest()[:24]


def server_user_key(name: str) -> str:
    """A user's part of a server collection name (Chroma refuses '..' and a '.' before the end)."""
    key = user_folder(name)
    if ".." in key or key.endswith("."):
        return "u-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    return key


def server_collection_name(name: str, scope: Scope, user: Requester | None) -> str:
    """The Chroma server's name of a collection: ``h2ogpt.shared.<name>`` or
    ``h2ogpt.user.<user>.<name>``. Valid Chroma names (3-512 of [A-Za-z0-9._-], no '..',
    alphanumeric at both ends); collection names hold no '.', so listing splits them back."""
    if scope == "shared":
        return SERVER_SHARED + name
    if user is None:
        raise PermissionDeniedError(f"collection {name!r} is personal: it needs a user")
    return f"{SERVER_USER}{server_user_key(user.name)}.{name}"


class CollectionLayout:
    """Maps (collection, user) to a database location and lists what a user can see.

    ``server_names``, when given, lists the collection names in the Chroma server; shared
    and non-scratch personal collections then live there (see :func:`server_collection_name`).
    """

    def __init__(self, db_root: Path, scratch_root: Path, modes: list[str],
                 mode_types: dict[str, str] | None = None,
                 server_names: Callable[[], list[str]] | None = None) -> None:
        self.db_root = Path(db_root)
        self.server_names = server_names
        self.scratch_root = Path(scratch_root)
        self.modes = list(modes)
        self.mode_types: dict[str, Scope] = dict(BUILTIN_SCOPES)
        for name, scope in (mode_types or {}).items():
            self.mode_types[name] = "personal" if scope == "personal" else "shared"

    def user_root(self, user: Requester) -> Path:
        base = self.scratch_root if user.scratch else self.db_root / "users"
        return base / user_folder(user.name)

    def on_server(self, scope: Scope, user: Requester | None) -> bool:
        return self.server_names is not None and not (scope == "personal" and user is not None
                                                      and user.scratch)

    def location(self, name: str, scope: Scope, user: Requester | None) -> Location:
        if self.on_server(scope, user):
            return server_collection_name(name, scope, user)
        if scope == "shared":
            return self.db_root / f"{DB_PREFIX}{name}"
        if user is None:
            raise PermissionDeniedError(f"collection {name!r} is personal: it needs a user")
        return self.user_root(user) / f"{DB_PREFIX}{name}"

    def _builtin(self, user: Requester | None) -> list[CollectionInfo]:
        found = []
        for name in self.modes:
            if name in NO_COLLECTION_MODES:
                continue
            scope = self.mode_types.get(name, "shared")
            if scope == "personal" and user is None:
                continue
            found.append(CollectionInfo(name, scope, self.location(name, scope, user), builtin=True))
        return found

    @staticmethod
    def _discover(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return sorted(
            p.name[len(DB_PREFIX):] for p in folder.iterdir()
            if p.is_dir() and p.name.startswith(DB_PREFIX) and (p / "chroma.sqlite3").exists()
        )

    @staticmethod
    def _discover_named(names: list[str], prefix: str) -> list[str]:
        return sorted(n[len(prefix):] for n in names
                      if n.startswith(prefix) and _NAME.fullmatch(n[len(prefix):]))

    def _found(self, scope: Scope, user: Requester | None, server: list[str] | None) -> list[str]:
        if server is not None and self.on_server(scope, user):
            prefix = server_collection_name("", scope, user)
            return self._discover_named(server, prefix)
        if scope == "shared":
            return self._discover(self.db_root)
        assert user is not None
        return self._discover(self.user_root(user))

    def visible(self, user: Requester | None) -> list[CollectionInfo]:
        """Built-in collections first, then shared and personal ones found on disk (or server)."""
        found = self._builtin(user)
        seen = {c.name for c in found}
        server = self.server_names() if self.server_names is not None else None
        scopes: list[Scope] = ["shared"] if user is None else ["shared", "personal"]
        for scope in scopes:
            for name in self._found(scope, user, server):
                if name not in seen:
                    found.append(CollectionInfo(name, scope, self.location(name, scope, user)))
                    seen.add(name)
        return found

    def resolve(self, name: str, user: Requester | None) -> CollectionInfo:
        for info in self.visible(user):
            if info.name == name:
                return info
        if user is None and self.mode_types.get(name) == "personal" and name in self.modes:
            raise PermissionDeniedError(f"collection {name!r} is personal: it needs a user")
        raise UnknownCollectionError(f"unknown collection {name!r}")
