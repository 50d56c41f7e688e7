"""Wire schemas of the Responses API (POST /v1/responses and the stored-response routes).

Requests follow OpenAI's API reference order; the h2oGPT extensions (``langchain_mode``,
``top_k_docs``, ...) come last, generated from :class:`src.params.EvalParams` as for chat.
Output items, the response object and every streaming event are typed here; the
translation onto chat completions lives in openai_server.serving_responses.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from openai_server.protocol import H2OGPT_FIELDS, OpenAIBaseModel, _with_h2ogpt_fields


def new_item_id(prefix: str) -> str:
    """OpenAI's id shape for Responses objects: ``resp_...``, ``msg_...``, ``fc_...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


# --- request: input items ----------------------------------------------------------------
class InputText(OpenAIBaseModel):
    type: Literal["input_text"]
    text: str


class OutputTextIn(OpenAIBaseModel):
    """An assistant's ``output_text`` sent back as input (a previous turn)."""

    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class RefusalIn(OpenAIBaseModel):
    type: Literal["refusal"]
    refusal: str


class InputImage(OpenAIBaseModel):
    type: Literal["input_image"]
    image_url: str | None = Field(None, description="A data: URI (or an http(s) URL).")
    file_id: str | None = None
    detail: Literal["low", "high", "auto"] | None = "auto"


class InputFile(OpenAIBaseModel):
    """A file as a base64 ``data:`` URI in ``file_data`` (text files are read into the turn)."""

    type: Literal["input_file"]
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None
    filename: str | None = None


InputContent = Annotated[InputText | OutputTextIn | RefusalIn | InputImage | InputFile,
                         Field(discriminator="type")]


class MessageItem(OpenAIBaseModel):
    """A message: ``content`` is a string or a list of content parts."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputContent]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallItem(OpenAIBaseModel):
    """A call the model made in an earlier turn (from ``output``)."""

    type: Literal["function_call"]
    call_id: str = Field(..., min_length=1)
    name: str = Field(..., min_length=1)
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(OpenAIBaseModel):
    """The result of a function call, for the ``call_id`` of the call."""

    type: Literal["function_call_output"]
    call_id: str = Field(..., min_length=1)
    output: str | list[InputContent]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


def _item_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type") or "message")
    return str(getattr(value, "type", "message"))


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_kind),
]


# --- request: tools, text format -----------------------------------------------------------
class FunctionTool(OpenAIBaseModel):
    """A function tool in the Responses (flat) form."""

    type: Literal["function"]
    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedToolChoice(OpenAIBaseModel):
    type: Literal["function"]
    name: str


class TextFormat(OpenAIBaseModel):
    """``text`` (default), ``json_object``, or ``json_schema`` with its ``name`` and ``schema``
    (enforced by constrained decoding, as chat's response_format)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and not isinstance(self.schema_, dict):
            raise ValueError("text.format json_schema needs a schema object")
        return self

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "json_schema":
            out.update(name=self.name or "response", schema=self.schema_, strict=bool(self.strict))
            if self.description:
                out["description"] = self.description
        return out


class TextConfig(OpenAIBaseModel):
    format: TextFormat = Field(default_factory=TextFormat)
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponseCreateFields(OpenAIBaseModel):
    """POST /v1/responses, OpenAI's fields (doc order)."""

    input: str | list[InputItem] = Field(..., description="A user message, or a list of input items.")
    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    include: list[str] | None = None
    instructions: str | None = Field(None, description="A system message for this response only "
                                     "(not carried over by previous_response_id).")
    max_output_tokens: int | None = Field(None, ge=1, description="Most tokens to generate (default 256).")
    metadata: dict[str, str] | None = Field(None, description="Up to 16 key-value pairs, stored with the response.")
    parallel_tool_calls: bool = True
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    previous_response_id: str | None = Field(None, description="A stored response whose conversation "
                                             "this one continues.")
    reasoning: dict[str, Any] | None = None
    store: bool = Field(True, description="Keep the response for GET /v1/responses/{id} and "
                        "previous_response_id.")
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 decodes greedily (default 0.3).")
    text: TextConfig | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[FunctionTool] | None = None
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    truncation: Literal["auto", "disabled"] | None = Field(
        "disabled", description="'auto' drops the oldest turns when the conversation is over the context window.")
    user: str | None = Field(None, description="'username:password' when --auth_access=closed.")

    @model_validator(mode="after")
    def _check(self) -> ResponseCreateFields:
        if isinstance(self.input, list) and not self.input and not self.previous_response_id:
            raise ValueError("input must not be an empty list")
        if self.metadata is not None and len(self.metadata) > 16:
            raise ValueError("metadata takes at most 16 keys")
        return self


if TYPE_CHECKING:
    ResponseCreateRequest = ResponseCreateFields
else:
    ResponseCreateRequest = _with_h2ogpt_fields(ResponseCreateFields, "ResponseCreateRequest")


def h2ogpt_response_values(request: BaseModel) -> dict[str, Any]:
    return request.model_dump(include=set(H2OGPT_FIELDS), exclude_unset=True)


# --- output ------------------------------------------------------------------------------
class FileCitation(BaseModel):
    """A document the answer drew on (h2oGPT's sources as OpenAI annotations)."""

    type: Literal["file_citation"] = "file_citation"
    file_id: str
    filename: str
    index: int


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[FileCitation] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] = Field(default_factory=list)


Status = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    status: Status
    role: Literal["assistant"] = "assistant"
    content: list[OutputText] = Field(default_factory=list)


class OutputFunctionCall(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    status: Status
    call_id: str
    name: str
    arguments: str


OutputItem = OutputMessage | OutputFunctionCall


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class ResponseErrorBody(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseObject(BaseModel):
    """A response (also the ``response`` of the lifecycle events)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=lambda: int(time.time()))
    completed_at: int | None = None
    status: Literal["completed", "failed", "in_progress", "incomplete"] = "in_progress"
    error: ResponseErrorBody | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: dict[str, Any] | None = None
    store: bool = True
    temperature: float = 0.3
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int = 0
    max_tool_calls: int | None = None
    background: bool = False
    service_tier: str = "default"
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    sources: list[dict[str, Any]] | None = Field(
        None, description="h2oGPT extension: the documents the answer drew on.")

    def wire(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if not data.get("sources"):
            data.pop("sources", None)
        return data


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


class InputItemList(BaseModel):
    """GET /v1/responses/{id}/input_items: the request's input items, paginated."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


# --- streaming events -----------------------------------------------------------------------
class StreamEvent(BaseModel):
    """Every event carries its ``type`` and ``sequence_number`` (0, 1, 2, ...)."""

    type: str
    sequence_number: int = 0


class LifecycleEvent(StreamEvent):
    """response.created / .in_progress / .completed / .incomplete / .failed."""

    response: ResponseObject


class OutputItemEvent(StreamEvent):
    """response.output_item.added / .done."""

    output_index: int
    item: OutputItem


class ContentPartEvent(StreamEvent):
    """response.content_part.added / .done."""

    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class TextDeltaEvent(StreamEvent):
    type: str = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[dict[str, Any]] = Field(default_factory=list)


class TextDoneEvent(StreamEvent):
    type: str = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[dict[str, Any]] = Field(default_factory=list)


class ArgumentsDeltaEvent(StreamEvent):
    type: str = "response.function_call_arguments.delta"
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(StreamEvent):
    type: str = "response.function_call_arguments.done"
    item_id: str
    output_index: int
    name: str
    arguments: str


class ErrorEvent(StreamEvent):
    type: str = "error"
    code: str | None = None
    message: str
    param: str | None = None
