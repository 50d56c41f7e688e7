"""A WebSocket upgrade to the API gets an HTTP error envelope and leaves no ERROR in the
log (uvicorn's sans-I/O protocol logs "ASGI callable returned without completing handshake"
for each refusal unless the worker's protocol counts the refusal as the handshake's end).
The worker's own uvicorn configuration, on a loopback port, with the official websockets
client and httpx."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import uvicorn
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from openai_server.app import create_app
from openai_server.worker import RefusingWebSocketProtocol
from src.settings import build_settings
from tests.conftest import free_port
from tests.unit.fake_engine import FakeEngine

UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def served():
    port = free_port()
    app = create_app(build_settings({}), FakeEngine())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", ws=RefusingWebSocketProtocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    records = Records()
    logging.getLogger("uvicorn.error").addHandler(records)
    yield f"127.0.0.1:{port}", records
    logging.getLogger("uvicorn.error").removeHandler(records)
    server.should_exit = True
    thread.join(timeout=10)


def test_websocket_upgrades_are_refused_cleanly(served):
    address, records = served
    assert httpx.get(f"http://{address}/v1/models", headers=UPGRADE).status_code == 400
    assert httpx.get(f"http://{address}/nope", headers=UPGRADE).json()["error"]["code"] == "not_found"
    with pytest.raises(InvalidStatus) as info:
        websockets.sync.client.connect(f"ws://{address}/v1/realtime", open_timeout=10)
    assert info.value.response.status_code == 404
    time.sleep(0.3)  # the server's task for the last connection finishes after its response
    assert not [r.getMessage() for r in records.records], "a refused upgrade logged a warning or an error"
    assert httpx.get(f"http://{address}/v1/models").status_code == 200  # the server serves on
