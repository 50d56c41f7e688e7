"""Wire schemas of the Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens).

Requests in the order of Anthropic's API reference, the h2oGPT extensions last (generated
from :class:`src.params.EvalParams`, as for chat); the message, its content blocks and
every streaming event are typed here. The translation onto chat completions is in
openai_server.serving_anthropic.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from openai_server.protocol import OpenAIBaseModel, _with_h2ogpt_fields


def new_anthropic_id(prefix: str) -> str:
    """``msg_...`` for messages, ``toolu_...`` for tool uses."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


# --- request -------------------------------------------------------------------------------
class TextBlock(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class Base64Source(OpenAIBaseModel):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(..., min_length=1)


class UrlSource(OpenAIBaseModel):
    type: Literal["url"]
    url: str = Field(..., min_length=1)


class ImageBlock(OpenAIBaseModel):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]


class ToolUseBlock(OpenAIBaseModel):
    """A call the assistant made (in an earlier assistant turn)."""

    type: Literal["tool_use"]
    id: str = Field(..., min_length=1)
    name: str = Field(..., min_length=1)
    input: dict[str, Any]


class ToolResultBlock(OpenAIBaseModel):
    """The result of the tool use ``tool_use_id`` (in a user turn)."""

    type: Literal["tool_result"]
    tool_use_id: str = Field(..., min_length=1)
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] = ""
    is_error: bool = False


ContentBlockIn = Annotated[TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class MessageParam(OpenAIBaseModel):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockIn]


class Tool(OpenAIBaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None


class ToolChoice(OpenAIBaseModel):
    """``auto``, ``any`` (some tool), ``tool`` (the one named) or ``none``."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice of type 'tool' needs a name")
        return self


class Metadata(OpenAIBaseModel):
    user_id: str | None = None


class _MessagesBase(OpenAIBaseModel):
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    messages: list[MessageParam] = Field(..., min_length=1)
    system: str | list[TextBlock] | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None

    @model_validator(mode="after")
    def _tools_for_choice(self) -> _MessagesBase:
        if self.tool_choice is not None and self.tool_choice.type in ("any", "tool") and not self.tools:
            raise ValueError("tool_choice needs tools")
        return self


class MessagesFields(_MessagesBase):
    """POST /v1/messages, Anthropic's fields (doc order)."""

    max_tokens: int = Field(..., ge=1, description="Most tokens to generate (required).")
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = Field(None, max_length=4, description="Up to 4 strings that end the answer.")
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=1.0, description="0 decodes greedily (default 0.3).")
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)


class CountTokensFields(_MessagesBase):
    """POST /v1/messages/count_tokens: the prompt of a request, counted without generating."""


if TYPE_CHECKING:
    MessagesRequest = MessagesFields
else:
    MessagesRequest = _with_h2ogpt_fields(MessagesFields, "MessagesRequest")


# --- response ------------------------------------------------------------------------------
class TextOut(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolUseOut(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


ContentBlockOut = TextOut | ToolUseOut

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class Message(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: list[ContentBlockOut] = Field(default_factory=list)
    model: str
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = Field(default_factory=Usage)


class TokenCount(BaseModel):
    input_tokens: int


# --- streaming events --------------------------------------------------------------------------
class MessageStart(BaseModel):
    type: Literal["message_start"] = "message_start"
    message: Message


class Ping(BaseModel):
    type: Literal["ping"] = "ping"


class TextStart(BaseModel):
    type: Literal["text"] = "text"
    text: str = ""


class ToolUseStart(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ContentBlockStart(BaseModel):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: TextStart | ToolUseStart


class TextDelta(BaseModel):
    type: Literal["text_delta"] = "text_delta"
    text: str


class InputJsonDelta(BaseModel):
    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


class ContentBlockDelta(BaseModel):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: TextDelta | InputJsonDelta


class ContentBlockStop(BaseModel):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDeltaBody(BaseModel):
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None


class MessageDeltaUsage(BaseModel):
    input_tokens: int | None = None
    output_tokens: int = 0


class MessageDelta(BaseModel):
    type: Literal["message_delta"] = "message_delta"
    delta: MessageDeltaBody
    usage: MessageDeltaUsage


class MessageStop(BaseModel):
    type: Literal["message_stop"] = "message_stop"


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorEvent(BaseModel):
    """An error after the stream started (and the body of every error response)."""

    type: Literal["error"] = "error"
    error: ErrorDetail


AnthropicEvent = (MessageStart | Ping | ContentBlockStart | ContentBlockDelta | ContentBlockStop
                  | MessageDelta | MessageStop | ErrorEvent)
