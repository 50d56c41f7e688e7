"""The worker-side IPC client: calls and streams to the engine process, HTTP on a Unix socket.

One :class:`EngineClient` per worker process, used from that worker's event loop; it keeps
a pool of keep-alive connections to the engine's socket. A gone engine is noticed at once:
the socket refuses the connection, or drops it mid-answer, and the request fails with
``EngineUnavailableError`` instead of hanging. Leaving a stream early (the HTTP client
went away) drops its connection and tells the engine to cancel it.

The HTTP it speaks is the fixed dialect of ``src/ipc/server.py`` (one POST, a 200 with a
``Content-Length`` body or a chunked body of one msgpack map per chunk), read with
asyncio's own streams. A general HTTP client (httpx, tried first) re-registers the socket
with the event loop on every read and runs a protocol state machine per chunk: 0.25 ms of
CPU per streamed token against 0.07 ms here, and on a machine whose cores decode, the
worker's CPU per token comes out of the decoder's (docs/performance.md).

The engine's own methods are typed (:meth:`EngineClient.evaluate`, ``models``, ``health``,
``tokenize``, ``detokenize``: the contract of src/contract/, decoded and checked on
arrival), as are the document, media and operations services; ``call`` / ``stream`` reach a
method by name with plain data (the transport's own tests).

This module is torch-free: workers import it, never the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

import msgspec

from src.contract import (
    AddFilesRequest,
    AddTextRequest,
    CancelRequest,
    ChatPrompt,
    CollectionDeleted,
    CollectionInfo,
    CollectionRequest,
    CollectionsRequest,
    CreateCollectionRequest,
    DeleteCollectionRequest,
    DeleteSourcesRequest,
    DetokenizeRequest,
    DetokenizeResult,
    EmbedRequest,
    EmbedResult,
    EvalEvent,
    EvaluateRequest,
    Health,
    HttpObservation,
    ImagesRequest,
    ImagesResult,
    IngestReport,
    LoadModelRequest,
    LogitsRequest,
    LogitsResult,
    MediaInfo,
    MetricsText,
    ModelInfo,
    ModelNames,
    ModelState,
    ModerateRequest,
    ModerateResult,
    RateHit,
    RateVerdict,
    RerankRequest,
    RerankResult,
    SourceInfo,
    SpeechRequest,
    Stopped,
    StopRequest,
    TokenizeRequest,
    TokenizeResult,
    TranscribeRequest,
    Transcription,
)
from src.errors import EngineUnavailableError, from_payload
from src.ipc import MSGPACK
from src.ipc.codec import (
    Chunk,
    End,
    Failure,
    Result,
    call_envelope,
    decode,
    decode_any,
    encode,
    stream_envelope,
)

log = logging.getLogger(__name__)

CANCEL_TIMEOUT = 2.0
OPS_TIMEOUT = 5.0  # a metrics report or a rate-limit hit, on the path of every request
KEEP_ALIVE = 32  # idle connections kept per worker
_REQUEST = b"POST %s HTTP/1.1\r\nHost: engine\r\nContent-Type: " + MSGPACK.encode() + b"\r\nContent-Length: %d\r\n%s\r\n"
_TRANSPORT_ERRORS = (OSError, EOFError, ValueError, asyncio.LimitOverrunError)  # EOFError: IncompleteReadError

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
T = TypeVar("T")
_UNTYPED = object()  # decode an answer as plain data


class EngineClient:
    """Async client of :class:`src.ipc.server.IpcServer` at the Unix socket ``address``."""

    def __init__(self, address: str, connect_timeout: float = 5.0) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._idle: list[Connection] = []

    # --- the typed contract ------------------------------------------------------------
    async def evaluate(self, request: EvaluateRequest) -> AsyncGenerator[EvalEvent, None]:
        """The events of one answer; leaving early cancels it in the engine."""
        async with contextlib.aclosing(self._stream("evaluate", request, EvalEvent)) as events:
            async for event in events:
                yield event

    async def models(self, timeout: float | None = 10) -> list[ModelInfo]:
        result: list[ModelInfo] = await self._call("models", None, list[ModelInfo], timeout)
        return result

    async def health(self, timeout: float | None = None) -> Health:
        result: Health = await self._call("health", None, Health, timeout)
        return result

    async def tokenize(self, request: TokenizeRequest) -> TokenizeResult:
        result: TokenizeResult = await self._call("tokenize", request, TokenizeResult)
        return result

    async def detokenize(self, request: DetokenizeRequest) -> DetokenizeResult:
        result: DetokenizeResult = await self._call("detokenize", request, DetokenizeResult)
        return result

    async def logits(self, request: LogitsRequest) -> LogitsResult:
        result: LogitsResult = await self._call("logits", request, LogitsResult)
        return result

    async def chat_prompt(self, request: TokenizeRequest) -> ChatPrompt:
        result: ChatPrompt = await self._call("chat_prompt", request, ChatPrompt)
        return result

    async def stop_generation(self, request: StopRequest) -> Stopped:
        result: Stopped = await self._call("stop_generation", request, Stopped, OPS_TIMEOUT)
        return result

    async def transcribe(self, request: TranscribeRequest) -> Transcription:
        result: Transcription = await self._call("transcribe", request, Transcription)
        return result

    async def speech(self, request: SpeechRequest) -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(self._stream("speech", request, bytes)) as pieces:
            async for piece in pieces:
                yield piece

    async def generate_images(self, request: ImagesRequest) -> ImagesResult:
        result: ImagesResult = await self._call("generate_images", request, ImagesResult)
        return result

    async def media_info(self) -> MediaInfo:
        result: MediaInfo = await self._call("media_info", None, MediaInfo, 10)
        return result

    async def metrics(self) -> MetricsText:
        result: MetricsText = await self._call("metrics", None, MetricsText, 10)
        return result

    async def observe_http(self, observation: HttpObservation) -> None:
        await self._call("observe_http", observation, type(None), OPS_TIMEOUT)

    async def rate_hit(self, hit: RateHit) -> RateVerdict:
        result: RateVerdict = await self._call("rate_hit", hit, RateVerdict, OPS_TIMEOUT)
        return result

    # --- document services ---------------------------------------------------------------
    async def embed(self, request: EmbedRequest) -> EmbedResult:
        result: EmbedResult = await self._call("embed", request, EmbedResult)
        return result

    async def rerank(self, request: RerankRequest) -> RerankResult:
        result: RerankResult = await self._call("rerank", request, RerankResult)
        return result

    async def moderate(self, request: ModerateRequest) -> ModerateResult:
        result: ModerateResult = await self._call("moderate", request, ModerateResult)
        return result

    async def add_files(self, request: AddFilesRequest) -> IngestReport:
        result: IngestReport = await self._call("add_files", request, IngestReport)
        return result

    async def add_text(self, request: AddTextRequest) -> IngestReport:
        result: IngestReport = await self._call("add_text", request, IngestReport)
        return result

    async def list_sources(self, request: CollectionRequest) -> list[SourceInfo]:
        result: list[SourceInfo] = await self._call("list_sources", request, list[SourceInfo])
        return result

    async def delete_sources(self, request: DeleteSourcesRequest) -> list[str]:
        result: list[str] = await self._call("delete_sources", request, list[str])
        return result

    async def list_collections(self, request: CollectionsRequest) -> list[CollectionInfo]:
        result: list[CollectionInfo] = await self._call("list_collections", request, list[CollectionInfo])
        return result

    async def create_collection(self, request: CreateCollectionRequest) -> CollectionInfo:
        result: CollectionInfo = await self._call("create_collection", request, CollectionInfo)
        return result

    async def delete_collection(self, request: DeleteCollectionRequest) -> CollectionDeleted:
        result: CollectionDeleted = await self._call("delete_collection", request, CollectionDeleted)
        return result

    # --- the model endpoints (src/ipc/models.py) ------------------------------------------
    async def model_state(self) -> ModelState:
        result: ModelState = await self._call("model_state", None, ModelState, 10)
        return result

    async def loadable_models(self) -> ModelNames:
        result: ModelNames = await self._call("loadable_models", None, ModelNames, 30)
        return result

    async def load_model(self, request: LoadModelRequest) -> ModelState:
        """Returns once the new model serves (a load takes seconds to minutes: no timeout)."""
        result: ModelState = await self._call("load_model", request, ModelState, None)
        return result

    async def unload_model(self) -> ModelState:
        result: ModelState = await self._call("unload_model", None, ModelState, 30)
        return result

    # --- any method by name (plain data): the transport's own tests -------------------
    async def call(self, method: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        """Run a registered call method in the engine and return its result (plain data)."""
        return await self._call(method, args or {}, _UNTYPED, timeout)

    async def stream(
        self, method: str, args: dict[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Iterate the items (plain data) of a registered stream method; leaving early cancels it."""
        async with contextlib.aclosing(self._stream(method, args or {}, _UNTYPED)) as items:
            async for item in items:
                yield item

    # --- one call, one stream ------------------------------------------------------------
    async def _call(self, method: str, args: Any, result_type: Any, timeout: float | None = None) -> Any:
        connection = await self._connect()
        reader, writer = connection
        try:
            async with asyncio.timeout(timeout):
                await _send(writer, f"/call/{method}", args)
                headers = await _head(reader)
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        except TimeoutError:
            writer.close()
            raise EngineUnavailableError(f"the engine did not answer {method!r} in time") from None
        except _TRANSPORT_ERRORS as exc:
            writer.close()
            raise EngineUnavailableError(f"the engine is not reachable ({_describe(exc)})") from None
        except BaseException:  # cancelled: the connection is mid-answer, never reused
            writer.close()
            raise
        self._release(connection)
        if result_type is _UNTYPED:
            reply = decode_any(body)
            if reply.get("op") == "result":
                return reply.get("data")
            raise from_payload(reply.get("error") or {})
        answer = decode(call_envelope(result_type), body)
        if isinstance(answer, Result):
            return answer.data
        raise from_payload(msgspec.structs.asdict(answer.error))

    async def _stream(self, method: str, args: Any, item_type: Any) -> AsyncGenerator[Any, None]:
        stream_id = uuid.uuid4().hex
        connection = await self._connect()
        reader, writer = connection
        finished = False
        last: End | Failure | None = None
        envelope = None if item_type is _UNTYPED else stream_envelope(item_type)
        try:
            await _send(writer, f"/stream/{method}", args, b"X-Stream-Id: %s\r\n" % stream_id.encode())
            await _head(reader)
            async for data in _chunks(reader):  # read to the body's end: keep-alive
                reply = _untyped_item(data) if envelope is None else decode(envelope, data)
                if isinstance(reply, Chunk):
                    yield reply.data
                else:
                    last = reply
            finished = True
            self._release(connection)
        except _TRANSPORT_ERRORS as exc:
            finished = True
            writer.close()
            raise EngineUnavailableError(f"the engine stopped answering ({_describe(exc)})") from None
        finally:
            if not finished:  # the caller left: the dropped connection and this both cancel
                writer.close()
                await self._cancel(stream_id)
        if last is None:
            raise EngineUnavailableError("the engine ended a stream without its last message")
        if isinstance(last, Failure):
            raise from_payload(msgspec.structs.asdict(last.error))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- plumbing --------------------------------------------------------------------
    async def _connect(self) -> Connection:
        """An idle connection the engine has not closed, or a new one. Every open stream
        holds its own: there is no cap, or requests would queue here, out of the engine's
        FIFO and its --max_queue_time."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not (reader.at_eof() or writer.is_closing()):
                return reader, writer
            writer.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.connect_timeout):
                while True:  # a full listen queue answers EAGAIN: wait, then connect again
                    try:
                        sock.connect(self.address)
                        break
                    except BlockingIOError:
                        await _writable(sock)
                return await asyncio.open_unix_connection(sock=sock)
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise EngineUnavailableError(f"the engine is not reachable ({_describe(exc)})") from None

    def _release(self, connection: Connection) -> None:
        if len(self._idle) < KEEP_ALIVE:
            self._idle.append(connection)
        else:
            connection[1].close()

    async def _cancel(self, stream_id: str) -> None:
        """Tell the engine, in case the stream is still queued there (nothing to write to)."""
        with contextlib.suppress(Exception):
            await self._call("cancel", CancelRequest(id=stream_id), type(None), CANCEL_TIMEOUT)


async def _writable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock, wake)
    try:
        await ready
    finally:
        loop.remove_writer(sock)


def _untyped_item(data: bytes) -> Chunk[Any] | End | Failure:
    reply = decode_any(data)
    if reply.get("op") == "chunk":
        return Chunk(reply.get("data"))
    if reply.get("op") == "end":
        return End()
    return decode(Failure, data)


async def _send(writer: asyncio.StreamWriter, path: str, args: Any, extra: bytes = b"") -> None:
    body = encode(args if args is not None else {})
    writer.write(_REQUEST % (path.encode(), len(body), extra) + body)
    await writer.drain()


async def _head(reader: asyncio.StreamReader) -> dict[bytes, bytes]:
    """The answer's headers (lower-case names); anything but a 200 is a broken engine."""
    status, *lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
    if status.split(b" ", 2)[1:2] != [b"200"]:
        raise ValueError(f"the engine answered {status.decode(errors='replace')!r}")
    pairs = (line.split(b":", 1) for line in lines if b":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked body, to its end."""
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
        data = await reader.readexactly(size + 2)
        if not size:
            return
        yield data[:-2]


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
