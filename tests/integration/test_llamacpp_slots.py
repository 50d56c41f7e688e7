"""The llama.cpp backend keeps the answers in flight in llama-server's lowest slots
(src/engine/llamacpp_slots.py): llama-server's own choice, the least recently used slot,
scatters them, and it decodes scattered slots in one forward pass per run of neighbours.
Read off llama-server's own /slots monitor and its answers' timings, on the default model's
packaged GGUF."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from src.engine.llamacpp_backend import LlamaCppBackend, server_path
from src.engine.model_source import resolve_model
from src.engine.types import GenerationRequest, SamplingOptions, TokenEvent
from src.settings_model import DEFAULT_BASE_MODEL

pytestmark = pytest.mark.skipif(server_path() is None, reason="llama-server is not built (scripts/install_llamacpp.sh)")


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    binary = server_path()
    assert binary is not None
    llama = LlamaCppBackend(resolve_model(DEFAULT_BASE_MODEL), "m", binary, {"n_parallel": 4, "n_ctx": 2048})
    yield llama
    llama.shutdown()


def busy(backend: LlamaCppBackend) -> set[int]:
    slots = httpx.get(backend.server.url + "/slots", timeout=10, trust_env=False).json()
    return {int(s["id"]) for s in slots if s["is_processing"]}


def decoding(backend: LlamaCppBackend, words: str) -> Iterator[TokenEvent]:
    """An answer that will not end by itself (its end of turn ignored for 1,500 tokens),
    read up to its first text: it holds its slot until closed."""
    request = GenerationRequest(messages=({"role": "user", "content": f"Write a long story about {words}."},),
                                options=SamplingOptions(max_new_tokens=1500, min_new_tokens=1500))
    events = iter(backend.submit(request))
    while not next(events).delta:
        pass
    return events


def settled(backend: LlamaCppBackend, expected: set[int]) -> set[int]:
    """llama-server's busy slots once a closed answer's slot is released there (it sees the
    connection gone at its next token)."""
    deadline = time.monotonic() + 30
    while (found := busy(backend)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_answers_in_flight_take_the_lowest_free_slots(backend):
    first = [decoding(backend, w) for w in ("a lighthouse", "a storm", "a ship")]
    try:
        assert busy(backend) == {0, 1, 2}  # llama-server alone would have taken 3, 2, 1
        first[1].close()  # the answer in slot 1 leaves
        assert settled(backend, {0, 2}) == {0, 2}
        second = decoding(backend, "a harbour")
        try:
            assert busy(backend) == {0, 1, 2}  # slot 1 again, not the never-used slot 3
        finally:
            second.close()
    finally:
        for events in first:
            events.close()
    assert settled(backend, set()) == set()
    assert backend.slots.free == 4


def read_in_slot_0(backend: LlamaCppBackend, messages: list[dict[str, str]]) -> tuple[str, int, int]:
    """(answer, prompt tokens, prompt tokens llama-server read rather than took from a cache)
    of a short answer decoded in slot 0, as the backend names it (``id_slot``)."""
    body = {"model": "m", "messages": messages, "max_tokens": 8, "temperature": 0, "id_slot": 0}
    reply = httpx.post(backend.server.url + "/v1/chat/completions", json=body, timeout=120, trust_env=False).json()
    return reply["choices"][0]["message"]["content"], reply["usage"]["prompt_tokens"], reply["timings"]["prompt_n"]


def test_a_conversation_keeps_its_cached_prompt_when_another_answer_took_its_slot(backend):
    """What naming slots relies on: when another prompt takes the slot between two turns of a
    conversation, llama-server saves the slot's prompt to its RAM prompt cache and reads the
    next turn from there, not again from the start."""
    lighthouse = [{"role": "user", "content": "Here is a long document about lighthouses. " * 60}]
    reply, _, _ = read_in_slot_0(backend, lighthouse)
    read_in_slot_0(backend, [{"role": "user", "content": "Here is another text, about storms at sea. " * 60}])
    _, prompt, read = read_in_slot_0(backend, [*lighthouse, {"role": "assistant", "content": reply},
                                               {"role": "user", "content": "Summarise it."}])
    assert prompt > 600 and read < 0.1 * prompt  # measured: 17 of 655
