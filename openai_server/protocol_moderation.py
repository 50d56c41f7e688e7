"""Wire schemas of POST /v1/moderations, in OpenAI's shape.

Request ``{input: str | [str] | [{type: "text", text} | {type: "image_url", image_url}], model?}``:
a string or a list of strings gets one result each; a list of content parts is one
multimodal input, and gets one result. Response ``{id: "modr-...", model, results: [{flagged,
categories, category_scores, category_applied_input_types}]}`` with OpenAI's category keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from openai_server.protocol import OpenAIBaseModel


class ModerationImageUrl(BaseModel):
    url: str


class ModerationTextInput(BaseModel):
    type: Literal["text"]
    text: str


class ModerationImageInput(BaseModel):
    type: Literal["image_url"]
    image_url: ModerationImageUrl


ModerationPart = ModerationTextInput | ModerationImageInput


class ModerationRequest(OpenAIBaseModel):
    """POST /v1/moderations. ``model`` is accepted and ignored: the server's
    ``--moderation_model`` scores, else its embedding-similarity heuristic."""

    input: str | list[str] | list[ModerationPart] = Field(
        ..., description="A text, a list of texts (one result each), or a list of content parts "
        "(one multimodal input: its text parts are scored; images are refused)."
    )
    model: str | None = Field(None, description="Accepted for compatibility; ignored.")


class Moderation(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[Literal["text", "image"]]]


class ModerationResponse(BaseModel):
    id: str
    model: str = Field(..., description="What scored: the --moderation_model folder's name, or the "
                       "embedding model's (the heuristic).")
    results: list[Moderation]
