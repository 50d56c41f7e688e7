"""Stopping a caller's running answers (text-generation-webui's /v1/internal/stop-generation).

Every answer the ``evaluate`` method streams is tracked under its requester's name with a
:class:`StopEvent` of its own, which the engine's backends read as their cancel event.
``stop(name)`` sets those of ``name``: each generation ends within a token with its usual
last event (``finish_reason`` ``stop`` on the wire), and the stream is not broken off as it
is when the client leaves (the IPC's own cancel, which the event also reads).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class StopEvent(threading.Event):
    """Set by a stop, or by the IPC's cancel (the client left): either stops the answer."""

    def __init__(self, cancel: threading.Event) -> None:
        super().__init__()
        self.cancel = cancel

    def is_set(self) -> bool:
        return super().is_set() or self.cancel.is_set()


class RunningAnswers:
    """The stop events of the answers now running, by requester name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, set[StopEvent]] = {}

    @contextlib.contextmanager
    def track(self, name: str, cancel: threading.Event) -> Iterator[StopEvent]:
        event = StopEvent(cancel)
        with self._lock:
            self._running.setdefault(name, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._running.get(name, set())
                events.discard(event)
                if not events:
                    self._running.pop(name, None)

    def stop(self, name: str) -> int:
        """Stop every running answer of ``name``; how many there were."""
        with self._lock:
            events = list(self._running.get(name, ()))
        for event in events:
            event.set()
        return len(events)
