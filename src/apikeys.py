"""API keys from --h2ogpt_api_keys: a list, or a JSON file (a list of keys) re-read on change.

Shared by the OpenAI API and the Gradio UI, which enforce keys independently
(--enforce_h2ogpt_api_key and --enforce_h2ogpt_ui_key). Keys are kept as SHA-256
digests; a check compares the given key against every stored digest with
``secrets.compare_digest``, with no early exit, so its time does not reveal which key
matched. See h2ogpt_api_keys.json.example for the file format: a list whose entries are
keys, or objects ``{"key": ..., "rate_limit": "10/minute"}`` that give a key its own
--api_rate_limit.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from src.watched_json import WatchedJson

log = logging.getLogger(__name__)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _valid_limit(limit: str) -> bool:
    from limits import parse_many

    try:
        parse_many(limit)
    except ValueError:
        log.error("ignoring the rate_limit %r of a key in the keys file: write it as '60/minute'", limit)
        return False
    return True


class ApiKeys:
    """The accepted keys; ``check(key)`` is True for one of them."""

    def __init__(self, keys: list[str] | str, reload_seconds: float = 2.0) -> None:
        self._digests: list[bytes] = []
        self._limits: dict[bytes, str] = {}
        self._file: WatchedJson | None = None
        if isinstance(keys, str):
            if keys:
                self._file = WatchedJson(keys, self._from_file, reload_seconds)
        else:
            self._digests = [key_digest(str(k)) for k in keys if k]

    @property
    def reload_seconds(self) -> float:
        return self._file.reload_seconds if self._file else 0.0

    @reload_seconds.setter
    def reload_seconds(self, value: float) -> None:
        if self._file:
            self._file.reload_seconds = value

    def __len__(self) -> int:
        self._maybe_reload()
        return len(self._digests)

    def check(self, key: str | None) -> bool:
        if not key:
            return False
        self._maybe_reload()
        given = key_digest(key)
        found = False
        for known in list(self._digests):  # no early exit
            found |= secrets.compare_digest(given, known)
        return found

    def rate_limit(self, key: str | None) -> str | None:
        """The key's own rate limit from the keys file, if it has one."""
        if not key:
            return None
        self._maybe_reload()
        return self._limits.get(key_digest(key))

    def _maybe_reload(self) -> None:
        if self._file is not None:
            self._file.maybe_reload()

    def _from_file(self, data: Any) -> None:
        if data is None:
            self._digests = []
            return
        if isinstance(data, dict):  # {"name": "key"} is accepted too
            data = list(data.values())
        if not isinstance(data, list):
            log.error("an API keys file must hold a JSON list of keys; keeping the previous keys")
            return
        digests, limits = [], {}
        for entry in data:
            key, limit = (entry.get("key"), entry.get("rate_limit")) if isinstance(entry, dict) else (entry, None)
            if not key:
                continue
            digests.append(key_digest(str(key)))
            if limit and _valid_limit(str(limit)):
                limits[digests[-1]] = str(limit)
        self._digests, self._limits = digests, limits
