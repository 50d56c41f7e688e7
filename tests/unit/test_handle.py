"""RequestHandle with a source: read on the consumer's thread, or pumped in the background."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from src.engine.handle import RequestHandle
from src.engine.types import GenerationRequest, TokenEvent
from src.errors import RemoteUnavailableError


class Source:
    """Three events; records the thread that made them and whether it was closed."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.threads: list[threading.Thread] = []
        self.closed = threading.Event()
        self.fail_after = fail_after
        self.made = threading.Event()

    def __call__(self) -> Iterator[TokenEvent]:
        try:
            for i in range(3):
                if self.fail_after == i:
                    raise RemoteUnavailableError("the inference server went away")
                self.threads.append(threading.current_thread())
                yield TokenEvent(f"t{i}", 1, i + 1, "stop" if i == 2 else None)
            self.made.set()
        finally:
            self.closed.set()


def handle_of(source: Source) -> RequestHandle:
    return RequestHandle(1, GenerationRequest(prompt="hi"), None, None, source=source)


def test_a_handle_with_a_source_is_read_on_the_consumers_thread() -> None:
    source = Source()
    events = list(handle_of(source))
    assert [e.delta for e in events] == ["t0", "t1", "t2"]
    assert set(source.threads) == {threading.current_thread()}


def test_background_makes_the_events_before_anyone_reads() -> None:
    source = Source()
    handle = handle_of(source)
    handle.background()
    assert source.made.wait(5), "the source did not run on its own"
    assert threading.current_thread() not in source.threads
    assert [e.delta for e in handle] == ["t0", "t1", "t2"]
    handle.background()  # a second call is a no-op: the events are not made twice
    assert len(source.threads) == 3


@pytest.mark.parametrize("background", [False, True])
def test_a_source_error_reaches_the_consumer(background: bool) -> None:
    handle = handle_of(Source(fail_after=1))
    if background:
        handle.background()
    seen = []
    with pytest.raises(RemoteUnavailableError, match="went away"):
        for event in handle:
            seen.append(event.delta)
    assert seen == ["t0"]


def test_leaving_early_closes_the_source_and_cancels() -> None:
    source = Source()
    handle = handle_of(source)
    events = iter(handle)
    assert next(events).delta == "t0"
    events.close()  # type: ignore[attr-defined]  # a generator
    assert source.closed.is_set()
    assert handle.is_cancelled()
