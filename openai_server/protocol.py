"""Wire schemas of the OpenAI-compatible API: requests and responses, nothing else.

Fields follow the order of OpenAI's API reference. The h2oGPT extensions come last, in
one block generated from :class:`src.params.EvalParams` (``H2OGPT_FIELDS``): every
evaluate() parameter whose name OpenAI does not already define can be sent at the top
level of the JSON body (the SDK's ``extra_body``), and so can the samplers that
src/params.py ``EXTRA_SAMPLERS`` knows by name (``typical_p``, ``mirostat``, ...; a backend
without one refuses it) and ``repeat_penalty`` (``repetition_penalty``). Other unknown fields
are ignored and logged.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo

from src.params import EXTRA_SAMPLERS, EvalParams

log = logging.getLogger(__name__)

#: EvalParams fields that OpenAI names itself; the OpenAI field is translated onto them.
OPENAI_NAMED = frozenset({
    "temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice",
    "parallel_tool_calls",
})
#: EvalParams fields the API sets itself (``stream_output`` follows ``stream``).
API_CONTROLLED = frozenset({"stream_output"})


def _h2ogpt_fields() -> dict[str, tuple[Any, FieldInfo]]:
    return {
        name: (info.annotation, copy.copy(info))
        for name, info in EvalParams.model_fields.items()
        if name not in OPENAI_NAMED | API_CONTROLLED
    }


#: The h2oGPT extension fields, generated from EvalParams (name -> (type, FieldInfo)).
H2OGPT_FIELDS = _h2ogpt_fields()


INT64_MAX = 2**63 - 1


def _huge_int_at(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds an integer beyond 64 bits (nothing downstream can carry one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return path or "value" if abs(value) > INT64_MAX else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _huge_int_at(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


class OpenAIBaseModel(BaseModel):
    """Accepts unknown fields so that new OpenAI clients keep working; logs and drops them.
    Integers beyond 64 bits are refused anywhere in a request (a 400, not an overflow)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _no_huge_ints(cls, data: Any) -> Any:
        where = _huge_int_at(data)
        if where is not None:
            raise ValueError(f"{where}: integer out of range (at most 64 bits)")
        return data

    @model_validator(mode="after")
    def _log_unknown(self) -> OpenAIBaseModel:
        if self.model_extra:
            log.warning("ignoring unknown request fields: %s", ", ".join(sorted(self.model_extra)))
        return self


# --- requests ---------------------------------------------------------------------------
class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class ImagePart(OpenAIBaseModel):
    type: Literal["image_url"]
    image_url: dict[str, Any]


class ChatMessage(OpenAIBaseModel):
    """One message; ``content`` is a string or an array of content parts."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | ImagePart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class ResponseFormat(OpenAIBaseModel):
    """``json_object``: any JSON object; ``json_schema``: ``{"name", "schema", "strict"}``, the
    schema enforced by constrained decoding; ``json_code``: h2oGPT's JSON in a ```json fence."""

    type: Literal["text", "json_object", "json_code", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None


Stop = str | list[str] | None


class _SamplingFields(OpenAIBaseModel):
    """Fields shared by chat and text completions; defaults as h2oGPT documents them."""

    model: str | None = Field(None, description="Model id from /v1/models; omitted: the served model.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = Field(
        None, description="Token id (as a string) -> bias from -100 to 100."
    )
    max_tokens: int | None = Field(None, ge=1, description="Most tokens to generate (default 256).")
    min_tokens: int | None = Field(None, ge=0, description="vLLM's name for min_new_tokens: tokens to "
                                   "generate before the end of turn may come.")
    n: int = Field(1, ge=1, le=16, description="Choices to generate.")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(0, ge=0, description="Random seed; 0 picks a random one.")
    stop: Stop = Field(None, description="Up to 4 strings that end the answer.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(0.3, ge=0.0, le=2.0, description="0 decodes greedily.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    user: str | None = Field(None, description="'username:password' when --auth_access=closed.")

    @model_validator(mode="before")
    @classmethod
    def _sampler_names(cls, data: Any) -> Any:
        """``repeat_penalty`` (llama.cpp's and Ollama's name, sent by Open WebUI) is
        ``repetition_penalty``; the other known samplers (src/params.py EXTRA_SAMPLERS) sent at
        the top level go into h2oGPT's ``samplers``, so a backend that lacks one refuses it."""
        if not isinstance(data, dict) or not ({"repeat_penalty", *EXTRA_SAMPLERS} & data.keys()):
            return data
        data = dict(data)
        if "repeat_penalty" in data:
            alias = data.pop("repeat_penalty")
            if data.setdefault("repetition_penalty", alias) != alias:
                raise ValueError("give repetition_penalty or its alias repeat_penalty, not both")
        named = {name: data.pop(name) for name in EXTRA_SAMPLERS if name in data}
        if named:
            given = data.get("samplers")
            data["samplers"] = {**(given if isinstance(given, dict) else {}), **named}
        return data

    @model_validator(mode="after")
    def _check_combinations(self) -> _SamplingFields:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return self


class ChatCompletionFields(_SamplingFields):
    """POST /v1/chat/completions, OpenAI's fields (doc order)."""

    messages: list[ChatMessage] = Field(..., min_length=1)
    logprobs: bool = False
    max_completion_tokens: int | None = Field(None, ge=1, description="Preferred to max_tokens.")
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        None, description="'none', 'auto' (default with tools), 'required', or "
        "{\"type\": \"function\", \"function\": {\"name\": ...}}.")
    tools: list[dict[str, Any]] | None = Field(
        None, description="Function tools; a call's arguments are constrained to the function's schema.")
    top_logprobs: int | None = Field(None, ge=0, le=20)
    # --- h2oGPT extension (not an evaluate() parameter) ---------------------------------
    chat_id: str | None = Field(
        None, description="h2oGPT extension: a saved chat's id (the UI's sidebar, gradio_client's "
        "/new_chat or /list_chats): its exchanges are the earlier turns, and this exchange is appended.")

    @model_validator(mode="after")
    def _check_logprobs(self) -> ChatCompletionFields:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self


class CompletionFields(_SamplingFields):
    """POST /v1/completions, OpenAI's fields (doc order)."""

    prompt: str | list[str] = Field(..., description="A prompt or a list of prompts.")
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20, description="Top logprobs per token.")
    suffix: str | None = None

    @model_validator(mode="after")
    def _check_prompt(self) -> CompletionFields:
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be an empty list")
        return self


def _with_h2ogpt_fields(base: type[BaseModel], name: str) -> Any:
    return create_model(name, __base__=base, __doc__=base.__doc__, **H2OGPT_FIELDS)  # type: ignore[call-overload]


if TYPE_CHECKING:
    ChatCompletionRequest = ChatCompletionFields
    CompletionRequest = CompletionFields
else:
    # --- h2oGPT extensions: every EvalParams field OpenAI does not name -----------------
    ChatCompletionRequest = _with_h2ogpt_fields(ChatCompletionFields, "ChatCompletionRequest")
    CompletionRequest = _with_h2ogpt_fields(CompletionFields, "CompletionRequest")

#: The extension block alone, for documentation and clients that want to validate.
H2oGPTParams: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "H2oGPTParams", __doc__="evaluate() parameters accepted in extra_body.", **H2OGPT_FIELDS
)


def h2ogpt_values(request: BaseModel) -> dict[str, Any]:
    """The h2oGPT extension fields that the client set explicitly."""
    return request.model_dump(include=set(H2OGPT_FIELDS), exclude_unset=True)


# --- responses ---------------------------------------------------------------------------
def wire(response: BaseModel) -> dict[str, Any]:
    """A response as JSON data in OpenAI's shape: ``usage`` only where it was set, and the
    ``sources`` extension only where there are sources."""
    data = response.model_dump(mode="json")
    if data.get("usage") is None and "usage" not in response.model_fields_set:
        data.pop("usage", None)
    if data.get("system_fingerprint") is None:
        data.pop("system_fingerprint", None)
    for choice in data.get("choices", []):
        if not choice.get("sources"):
            choice.pop("sources", None)
        if isinstance(choice.get("delta"), dict):  # a delta carries only what changed
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
            for call in choice["delta"].get("tool_calls") or []:
                for key in [k for k, v in call.items() if v is None]:
                    del call[key]
                call["function"] = {k: v for k, v in call["function"].items() if v is not None}
    return data


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(0, description="Prompt tokens read from a prefix cache (none here).")


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = Field(0, description="Hidden reasoning tokens (this server has none).")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(default_factory=CompletionTokensDetails)


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class FunctionCall(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None
    sources: list[dict[str, Any]] | None = Field(
        None, description="h2oGPT extension: the documents the answer drew on."
    )
    #: Not on the wire (chat completions say ``stop`` either way): the stop string that ended
    #: the answer, for the Messages API's ``stop_sequence`` (serving_anthropic.py).
    stop_sequence: str | None = Field(None, exclude=True)


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None
    sources: list[dict[str, Any]] | None = None
    #: Not on the wire (chat completions say ``stop`` either way): the stop string that ended
    #: the answer, for the Messages API's ``stop_sequence`` (serving_anthropic.py).
    stop_sequence: str | None = Field(None, exclude=True)


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionLogprobs(BaseModel):
    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None
    sources: list[dict[str, Any]] | None = None


class Completion(BaseModel):
    """A text completion; streamed chunks have the same shape with partial text."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "h2oGPT"
    max_model_len: int | None = None  # the context window in tokens (vLLM's field)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorBody(BaseModel):
    """The fields of an error (openai_server/errors.py fills them)."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The OpenAI error envelope: ``{"error": {message, type, param, code}}``."""

    error: ErrorBody
