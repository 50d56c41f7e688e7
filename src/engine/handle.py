"""RequestHandle: the caller's side of one submitted request, shared by every backend.

Iterate it for :class:`TokenEvent` s. The first event, with empty text, says the request
left the queue and started. ``cancel()`` (or closing the iterator, or setting the
``cancel`` event given at submit time from another thread) stops the generation within
one token step; cancelling a handle never sets the caller's event, so one event can
stop many handles (the map steps of a summary). A request that waits longer than ``max_queue_time`` to start is refused
with :class:`QueueTimeoutError`, which cannot happen once it has started.

A backend whose events come from a blocking read (the remote backends) gives the handle a
*source* instead of putting events on it: the consumer's own thread then reads the events
as it iterates, with no hand-off between threads per token (on a machine whose cores
decode, each hand-off is a wake-up that delays the decoder). A caller that reads several
handles one after another, and needs them all to progress meanwhile, calls
:meth:`RequestHandle.background` on each first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from src.engine.types import GenerationRequest, TokenEvent
from src.errors import QueueTimeoutError

_DONE = object()


class RequestHandle:
    """A submitted request: iterate it for events; ``cancel()`` or ``close()`` to stop it."""

    def __init__(
        self,
        request_id: int,
        request: GenerationRequest,
        max_queue_time: float | None,
        cancelled: threading.Event | None = None,
        source: Callable[[], Iterator[TokenEvent]] | None = None,
    ):
        self.id = request_id
        self.request = request
        self.submitted = time.monotonic()
        self.max_queue_time = max_queue_time
        self.cancelled = threading.Event()
        self.parent = cancelled
        self.started = False
        self.lock = threading.Lock()
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._source = source  # not started yet: pulled by the consumer, or pumped by background()

    # --- the caller's side ------------------------------------------------------------
    def cancel(self) -> None:
        self.cancelled.set()

    close = cancel

    def is_cancelled(self) -> bool:
        """Cancelled by this handle, or by the caller's event given at submit time."""
        return self.cancelled.is_set() or (self.parent is not None and self.parent.is_set())

    def background(self) -> None:
        """Produce this handle's events on a thread of its own from now on (no-op when the
        backend already does, or the consumer is reading)."""
        source = self._take_source()
        if source is not None:
            threading.Thread(target=self._pump, args=(source,), daemon=True, name=f"handle-{self.id}").start()

    def _take_source(self) -> Callable[[], Iterator[TokenEvent]] | None:
        with self.lock:
            source, self._source = self._source, None
        return source

    def _pump(self, source: Callable[[], Iterator[TokenEvent]]) -> None:
        try:
            for event in source():
                self.put(event)
        except BaseException as exc:  # re-raised on the consumer's side
            self.fail(exc)
        finally:
            self.finish()

    def __iter__(self) -> Iterator[TokenEvent]:
        source = self._take_source()
        try:
            if source is not None:  # read on this thread
                yield from source()
                return
            while True:
                item = self._next()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel()  # a consumer that leaves early stops the generation

    def _next(self) -> Any:
        if self.started or not self.max_queue_time:
            return self.events.get()
        while True:
            remaining = self.submitted + self.max_queue_time - time.monotonic()
            try:
                return self.events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                with self.lock:
                    if not self.started:
                        self.cancelled.set()
                        raise QueueTimeoutError(
                            f"the request waited over {self.max_queue_time:g} s for the engine"
                        ) from None

    # --- the backend's side -------------------------------------------------------------
    def start(self) -> bool:
        """Mark the request started unless it was cancelled (or timed out) while queued."""
        with self.lock:
            self.started = not self.is_cancelled()
            return self.started

    def put(self, event: TokenEvent) -> None:
        self.events.put(event)

    def fail(self, error: BaseException) -> None:
        self.events.put(error)

    def finish(self) -> None:
        self.events.put(_DONE)
