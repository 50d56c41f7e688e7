"""Shared fixtures: offline environment, the real tiny model, free ports."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)


def wait_idle(engine, timeout: float = 10.0) -> int:
    """Wait until the engine has no active request (or ``timeout`` passes); the count left."""
    deadline = time.monotonic() + timeout
    while engine.active_requests and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(engine.active_requests)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def settings():
    from src.settings import build_settings

    return build_settings({"llm_backend": "transformers"})  # the in-process engine's own suites


@pytest.fixture(scope="session")
def evaluator(settings) -> Iterator[object]:
    """The real default model (SmolLM2-135M-Instruct) behind a real engine, shared per session."""
    from src.app import build_evaluator

    ev = build_evaluator(settings)
    yield ev
    ev.registry.shutdown()


@pytest.fixture(scope="session")
def registry(evaluator):
    return evaluator.registry


@pytest.fixture(scope="session")
def engine(registry):
    """The default model's backend (the transformers backend over the real tiny model)."""
    return registry.default
