"""The engine contract refuses what it does not declare, at the boundary (src/contract/)."""

from __future__ import annotations

import msgspec
import pytest

from src.contract import EvalEvent, EvaluateRequest, FinishReason, ImagePart, Message, TextPart, ToolCall
from src.errors import InvalidParamsError
from src.ipc.codec import decode, encode, stream_envelope
from src.params import EvalParams


def test_a_request_round_trips_with_its_conversation():
    request = EvaluateRequest(
        params=EvalParams(instruction="q", max_new_tokens=5),
        messages=[Message(role="system", content="a"), Message(role="user", content=[
            TextPart(text="what is this?"), ImagePart(url="data:image/png;base64,AA")]),
            Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="f", arguments='{"x": 1}')]),
            Message(role="tool", content="42", tool_call_id="call_1")])
    back = decode(EvaluateRequest, encode(request))
    assert back.messages == request.messages
    assert back.params.model_fields_set == {"instruction", "max_new_tokens"}  # only what the caller set


@pytest.mark.parametrize("body", [
    {"params": {}, "mesages": []},  # a misspelt field of the request
    {"messages": [{"role": "user", "content": "hi", "colour": "red"}]},  # of a message
    {"messages": [{"role": "narrator", "content": "hi"}]},  # a role nobody declared
    {"messages": [{"role": "user", "content": [{"type": "audio", "data": ""}]}]},  # a part nobody declared
    {"params": {"max_new_tokens": "many"}},  # a mistyped EvalParams field
    {"params": {"instructions": "typo"}},  # an unknown EvalParams field
])
def test_an_unknown_or_mistyped_field_is_refused_at_the_boundary(body):
    with pytest.raises(InvalidParamsError):
        decode(EvaluateRequest, msgspec.msgpack.encode(body))


def test_events_are_checked_on_arrival_too():
    envelope = stream_envelope(EvalEvent)
    good = encode({"op": "chunk", "data": EvalEvent(delta="x", finish_reason=FinishReason.STOP)})
    assert decode(envelope, good).data.finish_reason is FinishReason.STOP
    for bad in ({"op": "chunk", "data": {"delta": "x", "finish_reason": "done"}},
                {"op": "chunk", "data": {"delta": "x", "extra": 1}}):
        with pytest.raises(InvalidParamsError):
            decode(envelope, msgspec.msgpack.encode(bad))
