"""Who may use the UI and the Gradio API: --auth users and --h2ogpt_api_keys keys.

Users come from :class:`src.users.UserStore` (a list or h2oGPT's JSON auth file, open or
closed access). API keys come from ``--h2ogpt_api_keys``: a list, or the path of a JSON
file holding a list; the file is re-read when its modification time changes. Keys are
kept as SHA-256 digests and compared in constant time. With
``--enforce_h2ogpt_ui_key=True`` every UI action and every Gradio API call needs a key;
this is independent of ``--enforce_h2ogpt_api_key``, which guards the OpenAI API.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from src.settings import Settings
from src.users import UserStore

log = logging.getLogger(__name__)


class AccessDenied(PermissionError):
    """The request lacks a valid API key or user; the message is safe to show."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The --h2ogpt_api_keys keys: a list, or a JSON file of a list re-read when it changes."""

    def __init__(self, keys: list[str] | str, reload_seconds: float = 2.0) -> None:
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._file: Path | None = None
        self._mtime: float | None = None
        self._checked = 0.0
        self._digests: list[bytes] = []
        if isinstance(keys, str):
            if keys:
                self._file = Path(keys).expanduser()
                self._load_file()
        else:
            self._digests = [_digest(str(k)) for k in keys]

    def __len__(self) -> int:
        self._maybe_reload()
        return len(self._digests)

    def valid(self, key: str | None) -> bool:
        """True when ``key`` is one of the keys; every stored key is compared (constant time)."""
        if not key:
            return False
        self._maybe_reload()
        wanted = _digest(key)
        with self._lock:
            digests = list(self._digests)
        found = False
        for digest in digests:
            found |= secrets.compare_digest(digest, wanted)
        return found

    def _maybe_reload(self) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if now - self._checked < self.reload_seconds:
            return
        self._checked = now
        try:
            mtime = self._file.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self._load_file()

    def _load_file(self) -> None:
        assert self._file is not None
        try:
            raw: Any = json.loads(self._file.read_text() or "[]")
            mtime = self._file.stat().st_mtime
        except FileNotFoundError:
            log.error("API keys file %s does not exist; no key is valid", self._file)
            return
        except json.JSONDecodeError as exc:
            log.error("API keys file %s is not valid JSON (%s); keeping the previous keys", self._file, exc)
            return
        if not isinstance(raw, list):
            log.error("API keys file %s must hold a JSON list of keys", self._file)
            return
        with self._lock:
            self._digests = [_digest(str(k)) for k in raw]
            self._mtime = mtime


class Access:
    """The access rules of the UI and the Gradio API, built once from the Settings."""

    def __init__(self, settings: Settings) -> None:
        self.users = UserStore(settings.auth, settings.auth_access)
        self.keys = ApiKeys(settings.h2ogpt_api_keys)
        self.enforce_key = settings.enforce_h2ogpt_ui_key
        self.guest_name = settings.guest_name

    @property
    def login_required(self) -> bool:
        return self.users.enabled

    def login(self, user: str, password: str) -> bool:
        """Gradio's login callback: a known pair, or a new user when access is open."""
        return self.users.check(user, password)

    def check_key(self, key: str | None) -> None:
        """Raise AccessDenied unless keys are not enforced or ``key`` is valid."""
        if not self.enforce_key:
            return
        if not key:
            raise AccessDenied("an API key is required (h2ogpt_key)")
        if not self.keys.valid(key):
            raise AccessDenied("invalid API key (h2ogpt_key)")

    def user_name(self, username: str | None) -> str:
        """The logged-in user's name, or --guest_name for visitors."""
        return username or self.guest_name
