"""Serving of POST /v1/moderations: the wire request -> the contract's ModerateRequest ->
OpenAI's response (one result per text, or one for a multimodal list of parts)."""

from __future__ import annotations

import uuid

from openai_server.errors import InvalidRequestError
from openai_server.protocol_moderation import (
    Moderation,
    ModerationImageInput,
    ModerationRequest,
    ModerationResponse,
    ModerationTextInput,
)
from src import contract
from src.contract import Engine


def texts_of(request: ModerationRequest) -> list[str]:
    """The texts to score: the input as given, or a multimodal input's text parts as one."""
    value = request.input
    if isinstance(value, str):
        return [value]
    if not value:
        raise InvalidRequestError("input must not be empty", param="input")
    if all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    if any(isinstance(v, ModerationImageInput) for v in value):
        raise InvalidRequestError("this server moderates text only; remove the image_url parts",
                                  param="input", code="unsupported_input_type")
    return ["\n".join(v.text for v in value if isinstance(v, ModerationTextInput))]


class ModerationService:
    """POST /v1/moderations over the engine's ``moderate``."""

    def __init__(self, client: Engine) -> None:
        self.client = client

    async def moderate(self, request: ModerationRequest) -> ModerationResponse:
        raw = await self.client.moderate(contract.ModerateRequest(texts=texts_of(request)))
        results = [Moderation(flagged=any(v.flags.values()), categories=v.flags, category_scores=v.scores,
                              category_applied_input_types={c: ["text"] for c in v.scores})
                   for v in raw.results]
        return ModerationResponse(id=f"modr-{uuid.uuid4().hex}", model=raw.model, results=results)
