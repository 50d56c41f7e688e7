"""Streamed POSTs to a server on this machine's loopback, with the standard library's http.client.

The llama.cpp backend reads its llama-server child's stream once per token, on the cores
that decode. Read with httpx, a streamed read costs 0.17 ms of CPU (its pool, the h11 state
machine, five layers of generators); with http.client, 0.075 ms. The remote backend keeps
httpx for remote engines, where its pooling, TLS and proxies-off matter and the network
costs more than either.

Each request opens its own connection (0.1 ms on loopback): llama-server (cpp-httplib)
closes a kept-alive connection after a few requests without saying so, and a request sent
on it just then would fail.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit


class LoopbackResponse:
    """What the remote backend reads of a response: the status, the body, the stream."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response
        self.status_code = response.status
        self._body: bytes | None = None

    def read(self) -> bytes:
        if self._body is None:
            self._body = self._response.read()
        return self._body

    def json(self) -> Any:
        return json.loads(self.read())

    @property
    def text(self) -> str:
        return self.read().decode(errors="replace")

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives: one read of the socket at most per item."""
        while chunk := self._response.read1(65536):
            yield chunk


@contextlib.contextmanager
def post_stream(base_url: str, path: str, body: dict[str, Any], timeout: float) -> Iterator[LoopbackResponse]:
    """POST ``body`` as JSON to ``base_url + path``; the connection closes on leaving."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        connection.request("POST", url.path + path, body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        yield LoopbackResponse(connection.getresponse())
    finally:
        connection.close()
