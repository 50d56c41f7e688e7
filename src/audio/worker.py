"""A job queue served by one daemon thread: the speech and image services each own one.

Work submitted here never runs on the LLM's generation thread, so a transcription or an
image holds up only the jobs queued behind it in its own service. ``run`` waits for a
call's result; ``stream`` runs a generator on the worker thread and hands its items to
the caller as they come, and stops it between items when ``cancel`` is set.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()


class Worker:
    """One thread taking jobs in FIFO order; ``close()`` stops it after the running job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and return its result (or raise its error)."""
        future: Future[T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)

        self._jobs.put(job)
        return future.result()

    def stream(self, items: Callable[[], Iterator[T]], cancel: threading.Event | None = None) -> Iterator[T]:
        """Iterate ``items()`` on the worker thread; each item reaches the caller as soon as made."""
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = cancel or threading.Event()

        def job() -> None:
            try:
                for item in items():
                    if stop.is_set():
                        break
                    out.put(item)
                out.put(_END)
            except BaseException as exc:  # re-raised on the caller's side
                out.put(exc)

        self._jobs.put(job)
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # the caller left early: the job stops at its next item

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # jobs report their own errors; this is a bug
                log.exception("%s: job failed", self.name)
