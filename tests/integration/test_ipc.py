"""The engine IPC (HTTP on a Unix socket, msgpack): calls, streams, errors, cancellation, a gone engine."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from src.contract import EvaluateRequest
from src.errors import ContextLengthError, DomainError, EngineUnavailableError, InvalidParamsError
from src.ipc.client import EngineClient
from src.ipc.server import IpcServer
from src.ipc.services import register_engine_methods
from src.params import EvalParams
from tests.conftest import wait_idle


@pytest.fixture()
def address(tmp_path: Path) -> str:
    return str(tmp_path / "engine.sock")


@pytest.fixture()
def server(address):
    srv = IpcServer(address)
    stopped = threading.Event()

    def count(args, cancel):
        n, i = int(args["n"]), -1
        try:
            for i in range(n):
                if cancel.wait(args.get("delay", 0)):
                    return
                yield {"i": i, "bias": {7: 1.5}}
        finally:  # cancelled, or closed because the client went away, before the end
            if i < n - 1 or cancel.is_set():
                stopped.set()

    def fail(args):
        raise ContextLengthError("too long")

    def invalid(args):
        raise ValueError("bad value")

    srv.register("echo", lambda args: args)
    srv.register("fail", fail)
    srv.register("invalid", invalid)
    def refuse(args, cancel):
        raise InvalidParamsError("input must not be empty", param="input")
        yield  # a generator

    srv.register_stream("count", count)
    srv.register_stream("refuse", refuse)
    srv.stopped = stopped  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def run(coro):
    return asyncio.run(coro)


def test_calls_and_streams(server, address):
    async def main():
        client = EngineClient(address)
        echoed = await client.call("echo", {"x": [1, "a", None]})
        items = [item async for item in client.stream("count", {"n": 3})]
        await client.close()
        return echoed, items

    echoed, items = run(main())
    assert echoed == {"x": [1, "a", None]}
    assert [i["i"] for i in items] == [0, 1, 2] and items[0]["bias"] == {7: 1.5}


def test_errors_come_back_typed(server, address):
    async def main():
        client = EngineClient(address)
        errors = []
        for method in ("fail", "invalid", "missing"):
            try:
                await client.call(method)
            except Exception as exc:
                errors.append(exc)
        await client.close()
        return errors

    too_long, invalid, missing = run(main())
    assert isinstance(too_long, ContextLengthError)
    assert isinstance(invalid, InvalidParamsError)
    assert type(missing) is DomainError and missing.code == "internal_error"


def test_stream_errors_come_back_typed_and_the_connection_is_reused(server, address):
    """A refusal is the engine's answer, not a broken engine (InvalidParamsError is a
    ValueError too: it must not pass for a garbled reply)."""
    async def main():
        client = EngineClient(address)
        with pytest.raises(InvalidParamsError) as info:
            async for _ in client.stream("refuse"):
                pass
        assert info.value.param == "input"
        assert [item["i"] async for item in client.stream("count", {"n": 2})] == [0, 1]
        idle = len(client._idle)
        await client.close()
        return idle

    assert run(main()) == 1


def test_leaving_a_stream_cancels_it_in_the_engine(server, address):
    async def main():
        client = EngineClient(address)
        stream = client.stream("count", {"n": 1000, "delay": 0.01})
        async for item in stream:
            if item["i"] == 2:
                break
        await stream.aclose()
        await asyncio.sleep(0)
        await client.close()

    run(main())
    assert server.stopped.wait(20)  # a bound on liveness, not a speed figure


def test_leaving_a_stream_that_is_still_queued_cancels_it(server, address):
    """No item yet, so nothing to write to the gone client: the cancel call stops it."""
    async def main():
        client = EngineClient(address)

        async def consume():
            async for _ in client.stream("count", {"n": 1, "delay": 30}):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)  # the engine holds the stream before its first item
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()

    run(main())
    assert server.stopped.wait(20)  # a bound on liveness, not a speed figure


def test_connections_are_kept_alive_across_requests(server, address, monkeypatch):
    from src.ipc import server as ipc_server

    opened = []
    setup = ipc_server._Handler.setup
    monkeypatch.setattr(ipc_server._Handler, "setup", lambda self: (opened.append(1), setup(self)))

    async def main():
        client = EngineClient(address)
        for _ in range(3):
            assert [item["i"] async for item in client.stream("count", {"n": 2})] == [0, 1]
            assert await client.call("echo", {"a": 1}) == {"a": 1}
        await client.close()

    run(main())
    assert len(opened) == 1


def test_gone_engine_fails_fast_instead_of_hanging(tmp_path):
    async def main():
        client = EngineClient(str(tmp_path / "nobody.sock"))
        try:
            with pytest.raises(EngineUnavailableError):
                await client.call("health")
            with pytest.raises(EngineUnavailableError):
                async for _ in client.evaluate(EvaluateRequest()):
                    pass
        finally:
            await client.close()

    run(main())


def test_engine_dying_mid_stream_fails_the_request(address):
    srv = IpcServer(address)

    def slow(args, cancel):
        yield {"i": 0}
        cancel.wait(30)
        yield {"i": 1}

    srv.register_stream("slow", slow)
    srv.start()

    async def main():
        client = EngineClient(address)
        got = []
        with pytest.raises(EngineUnavailableError):
            async for item in client.stream("slow"):
                got.append(item)
                srv.stop()  # the engine goes away after the first item
        await client.close()
        return got

    assert run(main()) == [{"i": 0}]


def test_real_engine_cancellation_returns_active_requests_to_zero(evaluator, address):
    srv = IpcServer(address)
    register_engine_methods(srv, evaluator)
    srv.start()
    engine = evaluator.registry.default

    async def main():
        client = EngineClient(address)
        models = await client.models()
        stream = client.evaluate(EvaluateRequest(params=EvalParams(
            instruction="Tell me a long story.", max_new_tokens=2000, min_new_tokens=2000)))
        chunks = 0
        async for _chunk in stream:
            chunks += 1
            if chunks == 3:
                assert engine.active_requests == 1
                break
        await stream.aclose()
        await client.close()
        return models

    try:
        models = run(main())
        assert models[0].id == engine.name and models[0].backend == "transformers"
        assert wait_idle(engine, 20) == 0
    finally:
        srv.stop()


def test_api_over_a_missing_engine_answers_503(tmp_path):
    from fastapi.testclient import TestClient

    from openai_server.app import create_app
    from src.settings import build_settings

    client = EngineClient(str(tmp_path / "nobody.sock"))
    api = TestClient(create_app(build_settings({}), client))
    health = api.get("/health")
    assert health.status_code == 503 and health.json()["error"]["code"] == "engine_unavailable"
    chat = api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 503 and chat.json()["error"]["type"] == "server_error"
    run(client.close())


def test_a_stream_request_that_does_not_decode_is_an_error_not_a_hang(address):
    """A typed stream method refuses a malformed request as its stream's error."""
    srv = IpcServer(address)
    srv.register_typed_stream("typed", EvaluateRequest, lambda request, cancel: iter([]))
    srv.start()

    async def main():
        client = EngineClient(address)
        try:
            with pytest.raises(InvalidParamsError, match="unknown field"):
                async for _ in client.stream("typed", {"mesages": []}):
                    pass
        finally:
            await client.close()

    try:
        run(asyncio.wait_for(main(), 20))
    finally:
        srv.stop()
