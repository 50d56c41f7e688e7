"""Which of llama-server's slots an answer decodes in: the lowest free one.

llama-server with a KV cache per slot (the backend's default layout) decodes a step's
sequences in one forward pass only where their slot numbers follow one another: its batch
splitter (``llama_batch_allocr::split_equal`` with ``sequential``, for a cache of several
streams) starts a new micro-batch at every gap, and each micro-batch is a whole pass over
the model's weights. Left to itself it gives a new request the least recently used free
slot, so after a while the answers in flight sit in scattered slots (8 answers in 16 slots:
up to 8 passes a step where one would do).

The backend therefore names the slot of every answer (``id_slot``): the lowest one that no
answer of ours holds, so the answers in flight stay packed at the low end. A prompt that
another slot had cached is not lost: llama-server saves a slot's prompt to its RAM prompt
cache when a different prompt takes the slot, and loads the best cached match for the new one.
"""

from __future__ import annotations

import heapq
import threading


class SlotPool:
    """Slots ``0..size-1``, handed out lowest first; thread-safe (the engine serves each
    answer on its own thread)."""

    def __init__(self, size: int) -> None:
        self._free = list(range(size))
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """The lowest free slot, now held; None when all are held (llama-server then picks
        one itself, or queues the request until one is free)."""
        with self._lock:
            return heapq.heappop(self._free) if self._free else None

    def release(self, slot: int) -> None:
        with self._lock:
            heapq.heappush(self._free, slot)

    @property
    def free(self) -> int:
        with self._lock:
            return len(self._free)
