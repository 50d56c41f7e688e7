"""A JSON file that is re-read when it changes, checked at most every ``reload_seconds``.

Used for the API keys file and the --auth users file: an edit takes effect within
seconds, without a restart, and the file is never read (or even stat'ed) per request.
A file that is missing or not valid JSON is logged and the last good content is kept.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class WatchedJson:
    """Calls ``on_load(data)`` with the file's parsed JSON at start and after every change."""

    def __init__(self, path: str | Path, on_load: Callable[[Any], None], reload_seconds: float = 2.0):
        self.path = Path(path).expanduser()
        self.on_load = on_load
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._load()

    def maybe_reload(self) -> None:
        """Re-read the file if its modification time changed (at most every reload_seconds)."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.reload_seconds:
                return
            self._checked = now
        try:
            mtime: float | None = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self._load()

    def mark_written(self) -> None:
        """Record the file's current mtime after this process wrote it itself."""
        self._mtime = self.path.stat().st_mtime

    def _load(self) -> None:
        try:
            text = self.path.read_text()
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            log.error("%s does not exist; treating it as empty", self.path)
            self._mtime = None
            self.on_load(None)
            return
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            log.error("%s is not valid JSON (%s); keeping its previous content", self.path, exc)
            self._mtime = mtime
            return
        self._mtime = mtime
        self.on_load(data)
        log.info("loaded %s", self.path)
