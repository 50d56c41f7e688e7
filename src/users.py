"""Users from --auth: a list of (user, password) pairs or a JSON file, with open or closed access.

The JSON file is h2oGPT's auth file: ``{"name": {"password": "..."}, ...}`` (a plain
``{"name": "password"}`` map is accepted too). It is re-read when its modification time
changes, at most once per ``reload_seconds``. In ``open`` mode an unknown user is
registered at first login (and written back to the file when there is one); in
``closed`` mode only listed users get in.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from typing import Any

from src.watched_json import WatchedJson

log = logging.getLogger(__name__)


class UserStore:
    """Checks user names and passwords in constant time."""

    def __init__(
        self,
        auth: list[tuple[str, str]] | list[list[str]] | str,
        access: str = "open",
        reload_seconds: float = 2.0,
    ) -> None:
        self.access = access
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._file: WatchedJson | None = None
        self._users: dict[str, str] = {}
        if isinstance(auth, str):
            if auth:
                self._file = WatchedJson(auth, self._from_file, reload_seconds)
        else:
            self._users = {str(user): str(password) for user, password in auth}

    @property
    def enabled(self) -> bool:
        """True when --auth named users or a file: logins are then required."""
        return bool(self._users) or self._file is not None

    def names(self) -> list[str]:
        self._maybe_reload()
        return sorted(self._users)

    def check(self, user: str, password: str) -> bool:
        """True when the pair may log in; in open mode an unknown user is registered."""
        if not user:
            return False
        self._maybe_reload()
        with self._lock:
            known = self._users.get(user)
            if known is not None:
                return secrets.compare_digest(known.encode(), password.encode())
            if self.access != "open":
                return False
            self._users[user] = password
        self._save_file()
        log.info("registered new user %r", user)
        return True

    def check_pair(self, user_field: str | None) -> bool:
        """Check an OpenAI ``user`` field written as ``username:password``."""
        if not user_field or ":" not in user_field:
            return False
        user, password = user_field.split(":", 1)
        return self.check(user, password)

    # --- the JSON file --------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        if self._file is not None:
            self._file.maybe_reload()

    def _from_file(self, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            log.error("an auth file must hold a JSON object of users; keeping the previous users")
            return
        users = {
            str(name): str(value.get("password", "") if isinstance(value, dict) else value)
            for name, value in raw.items()
        }
        with self._lock:
            self._users = users

    def _save_file(self) -> None:
        if self._file is None:
            return
        with self._lock:
            data = {name: {"password": password} for name, password in self._users.items()}
        path = self._file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth-")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
        self._file.mark_written()
