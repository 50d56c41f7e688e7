"""The SSE response: exact framing, in-band errors, pings, and a disconnect that stops
the source (so the engine's work is cancelled)."""

from __future__ import annotations

import anyio
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from openai_server.errors import InvalidRequestError
from openai_server.sse import EventStream, named_sse_response, sse_response


class Event(BaseModel):
    type: str
    n: int


def client(make) -> TestClient:
    async def endpoint(request):
        return make()
    return TestClient(Starlette(routes=[Route("/", endpoint)]))


async def numbers(count: int, fail: bool = False):
    for n in range(count):
        yield {"n": n}
    if fail:
        raise InvalidRequestError("bad value", param="x")


def test_data_events_then_done_with_no_proxy_buffering():
    response = client(lambda: sse_response(numbers(2))).get("/")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text == 'data: {"n": 0}\n\ndata: {"n": 1}\n\ndata: [DONE]\n\n'


def test_an_error_after_the_start_goes_in_band_then_done():
    text = client(lambda: sse_response(numbers(1, fail=True))).get("/").text
    events = text.split("\n\n")
    assert events[0] == 'data: {"n": 0}'
    assert '"error"' in events[1] and "bad value" in events[1] and '"param": "x"' in events[1]
    assert events[2] == "data: [DONE]"


def test_named_events_carry_their_type_and_no_done():
    async def typed():
        yield Event(type="response.created", n=1)
    text = client(lambda: named_sse_response(typed())).get("/").text
    assert text == 'event: response.created\ndata: {"type": "response.created", "n": 1}\n\n'


def test_an_idle_stream_is_pinged():
    async def slow():
        await anyio.sleep(0.35)
        yield b"data: late\n\n"
    text = client(lambda: EventStream(slow(), ping_seconds=0.1)).get("/").text
    assert text.count(": ping\n\n") >= 2 and text.endswith("data: late\n\n")


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
def test_a_client_that_goes_away_stops_the_source(spec_version):
    state = {"sent": 0, "closed": False}

    async def endless():
        try:
            while True:
                state["sent"] += 1
                yield b"data: x\n\n"
                await anyio.sleep(0.01)
        finally:
            state["closed"] = True

    async def run() -> None:
        gone = anyio.Event()

        async def receive():
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.body" and state["sent"] >= 3:
                if spec_version >= "2.4":  # ASGI 2.4: send raises once the client is gone
                    raise OSError("gone")
                gone.set()

        scope = {"type": "http", "asgi": {"spec_version": spec_version}}
        with anyio.fail_after(5):
            try:
                await EventStream(endless())(scope, receive, send)
            except Exception as exc:  # starlette's ClientDisconnect under 2.4
                assert type(exc).__name__ == "ClientDisconnect"

    anyio.run(run)
    assert state["closed"] and state["sent"] < 10
