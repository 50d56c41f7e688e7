"""The IPC's codec: msgspec's msgpack, with the contract's types checked on arrival.

Every body on the socket is one msgpack map; what a method's request and its answer are is
declared by the typed methods (``src/ipc/server.py`` ``register_typed``, the client's typed
calls), and decoding refuses a field of the wrong type or one nobody declared
(:class:`src.contract.Contract`). An answer is an envelope tagged by ``op``: ``result``
(a call's answer), ``chunk`` (one item of a stream), ``end`` (the stream is whole) or
``error`` (``{code, message, param}``: the stable codes of src/errors.py).

``EvalParams`` (pydantic) rides inside :class:`src.contract.EvaluateRequest`: it is sent as
the fields its caller set and validated by pydantic on arrival (the hooks below).
"""

from __future__ import annotations

import functools
from typing import Any, Generic, TypeVar

import msgspec

from src.errors import InvalidParamsError
from src.params import EvalParams

T = TypeVar("T")


class ErrorPayload(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    message: str
    param: str | None = None


class Result(msgspec.Struct, Generic[T], tag="result", tag_field="op"):
    data: T


class Chunk(msgspec.Struct, Generic[T], tag="chunk", tag_field="op"):
    data: T


class End(msgspec.Struct, tag="end", tag_field="op"):
    pass


class Failure(msgspec.Struct, tag="error", tag_field="op"):
    error: ErrorPayload


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, EvalParams):
        return obj.model_dump(exclude_unset=True)
    raise NotImplementedError(f"cannot send a {type(obj).__name__} to the engine")


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is EvalParams:
        return EvalParams.model_validate(obj)
    raise NotImplementedError(f"no decoder for {kind!r}")


ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
encode = ENCODER.encode
_ANY = msgspec.msgpack.Decoder(dec_hook=_dec_hook)


def decode_any(data: bytes) -> Any:
    """An untyped body (the methods not yet declared in the contract)."""
    return _ANY.decode(data) if data else {}


@functools.cache
def decoder(kind: Any) -> msgspec.msgpack.Decoder[Any]:
    """A (cached) decoder of ``kind``: a contract type, or an envelope of one."""
    return msgspec.msgpack.Decoder(kind, dec_hook=_dec_hook)


def decode(kind: Any, data: bytes) -> Any:
    """``data`` as ``kind``; a body that does not match is the caller's error (400)."""
    try:
        return decoder(kind).decode(data or b"\x80")  # an empty body is an empty map
    except msgspec.ValidationError as exc:
        raise InvalidParamsError(f"the engine refused a malformed message: {exc}") from None


def error_body(payload: dict[str, Any]) -> bytes:
    return encode(Failure(ErrorPayload(str(payload.get("code") or "internal_error"),
                                       str(payload.get("message") or ""), payload.get("param"))))


def stream_envelope(item_type: Any) -> Any:
    return Chunk[item_type] | End | Failure  # type: ignore[valid-type]


def call_envelope(result_type: Any) -> Any:
    return Result[result_type] | Failure  # type: ignore[valid-type]
