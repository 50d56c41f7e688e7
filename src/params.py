"""EvalParams: the evaluate() parameters, declared once.

The OpenAI API's ``extra_body`` model, the Gradio API and the docs tables are all
derived from this class. A field left at ``None`` takes the server's default: the
flag of the same name in :class:`src.settings.Settings` when there is one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

LangchainAction = Literal["Query", "Summarize", "Extract"]
DocumentSubset = Literal["Relevant", "TopKSources", "RelSources"]
ResponseFormat = Literal["text", "json_object", "json_code"]
#: The constraint fields (vLLM's guided decoding); at most one per request.
GUIDED_FIELDS = ("guided_json", "guided_regex", "guided_choice", "guided_grammar")


MIN_TEMPERATURE = 1e-4
SamplerValue = bool | int | float
#: Samplers known by name beyond EvalParams' own fields (llama.cpp's and vLLM's extra sampling
#: parameters), each with its neutral value (the value that asks for nothing). They are taken
#: in ``samplers`` (the OpenAI API takes them at the top level of the body) and forwarded by a
#: backend that declares them (Capabilities.samplers); on any other backend a value other
#: than the neutral one is a 400 ``unsupported_parameter`` naming it.
EXTRA_SAMPLERS: dict[str, SamplerValue] = {
    "typical_p": 1.0, "mirostat": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "tfs_z": 1.0,
    "top_a": 0.0, "min_keep": 0, "repeat_last_n": 64, "penalize_nl": False, "dynatemp_range": 0.0,
    "dynatemp_exponent": 1.0, "xtc_probability": 0.0, "xtc_threshold": 0.1, "dry_multiplier": 0.0,
    "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": -1, "top_n_sigma": -1.0,
    "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "length_penalty": 1.0, "use_beam_search": False,
    "best_of": 1,
}
#: The roles of chat_conversation's {role, content} messages.
CONVERSATION_ROLES = ("system", "developer", "user", "assistant", "tool")


class EvalParams(BaseModel):
    """Everything one evaluate() call needs. h2oGPT's names, types and meanings."""

    model_config = ConfigDict(extra="forbid")
    #: The fields with_defaults() filled from the server's settings (the caller left them None).
    _defaulted: frozenset[str] = PrivateAttr(default_factory=frozenset)

    # --- What to answer ---------------------------------------------------------------
    instruction: str = Field("", description="The user's message (chat mode).")
    iinput: str = Field("", description="Extra input appended to the instruction.")
    context: str = Field("", description="Text placed before the instruction in the user message.")
    instruction_nochat: str = Field(
        "", description="The user's message in no-chat mode; used when instruction is empty."
    )
    iinput_nochat: str = Field("", description="Extra input appended in no-chat mode.")
    system_prompt: str | None = Field(
        None, description="System prompt; None takes --system_prompt, '' the template's default."
    )
    chat_conversation: list[Any] = Field(
        default_factory=list,
        description="Earlier turns: [human, bot] pairs, or {role, content} messages.",
    )
    images: list[str] = Field(
        default_factory=list,
        description="Images that go with the user's message, for a vision model "
        "(--visible_vision_models): data: URIs (data:image/png;base64,...), or http(s) URLs "
        "when --allow_image_url_fetch is on.",
    )
    text_context_list: list[str] = Field(
        default_factory=list,
        description="Documents given with the request; they are put into the prompt as context.",
    )

    # --- How to generate --------------------------------------------------------------
    visible_models: list[str | int] | str | int | None = Field(
        None,
        description="The model to answer with: a served model's name or index (a list takes "
        "its first); None is the first served model. The OpenAI API's `model` maps here.",
    )
    stream_output: bool | None = Field(
        None, description="Yield the answer token by token; False yields only the final chunk."
    )
    prompt_type: str | None = Field(
        None, description="'' for the model's chat template, 'plain' for none."
    )
    chat_template: str | None = Field(None, description="Jinja chat template for this call.")
    temperature: float | None = Field(
        None, ge=0.0, le=2.0,
        description="Sampling temperature; 0 is greedy (so is anything below 1e-4, which would "
        "overflow the logits).",
    )
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    top_k: int | None = Field(None, ge=0, description="Sample from the k most likely tokens; 0 disables.")
    min_p: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Drop tokens less likely than min_p times the most likely one; 0 disables. "
        "None: the backend's default (llama.cpp's is 0.05; off elsewhere).",
    )
    max_new_tokens: int | None = Field(None, ge=1, description="Most tokens to generate.")
    min_new_tokens: int | None = Field(None, ge=0, description="Fewest tokens to generate.")
    repetition_penalty: float | None = Field(
        None, ge=0.01, le=3.0, description="Penalty on repeated tokens; 1.0 disables."
    )
    presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Subtracted once from every token already generated."
    )
    frequency_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Subtracted per occurrence of a token already generated."
    )
    samplers: dict[str, SamplerValue] = Field(
        default_factory=dict,
        description="Other samplers by name, for a backend that has them: "
        f"{', '.join(EXTRA_SAMPLERS)}. llama.cpp takes most (docs/parameters.md#samplers), a remote "
        "engine gets them as sent; one the model's backend lacks is a 400 unsupported_parameter.",
    )
    logit_bias: dict[int, float] = Field(
        default_factory=dict,
        description="Token id -> bias from -100 to 100 added to its logit before sampling "
        "(-100 bans the token, 100 forces it).",
    )
    logprobs: bool = Field(False, description="Return the log probability of each generated token.")
    top_logprobs: int = Field(
        0, ge=0, le=20, description="With logprobs: also the most likely tokens at each step."
    )
    seed: int | None = Field(None, ge=0, description="Random seed; 0 picks a random one.")
    stop: list[str] = Field(
        default_factory=list, description="Strings that end the answer; they are not returned."
    )
    do_sample: bool | None = Field(
        None, description="Sample (True) or decode greedily (False); None samples when temperature > 0."
    )
    max_time: float | None = Field(None, gt=0, description="Most seconds to spend generating.")
    response_format: ResponseFormat = Field(
        "text",
        description="'text'; 'json_object' constrains the answer to one JSON object (with "
        "guided_json: one valid against that schema); 'json_code' returns it as a ```json "
        "code block.",
    )
    guided_json: dict[str, Any] | str | None = Field(
        None,
        description="A JSON schema the answer must satisfy (enforced by constrained decoding; "
        "OpenAI's response_format json_schema maps here). Keywords the grammar engine cannot "
        "enforce are refused (400).",
    )
    guided_regex: str | None = Field(None, description="A regular expression the answer must match.")
    guided_choice: list[str] | None = Field(
        None, description="The answer is exactly one of these strings."
    )
    guided_grammar: str | None = Field(
        None, description="A context-free grammar (Lark or GBNF) the answer must follow."
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list,
        description="OpenAI function tools the model may call ({type: function, function: "
        "{name, description, parameters}}); a call's arguments are constrained to the schema.",
    )
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        None,
        description="'none', 'auto' (text or a call; the default with tools), 'required' (a "
        "call), or {type: function, function: {name}} (a call to that function).",
    )
    parallel_tool_calls: bool = Field(
        True, description="An answer may hold several tool calls (else exactly one when it calls); "
        "a tool_choice that names a function, and the llama.cpp backend, make one call."
    )

    # --- Documents --------------------------------------------------------------------
    langchain_mode: str | None = Field(
        None, description="Collection to answer from ('LLM' for none); None takes --langchain_mode."
    )
    langchain_action: LangchainAction = Field(
        "Query", description="What to do with the documents: Query, Summarize or Extract."
    )
    top_k_docs: int | None = Field(None, ge=1, description="Chunks to retrieve.")
    hybrid_search: bool | None = Field(
        None, description="Fuse lexical (BM25) with dense retrieval; None takes --hybrid_search."
    )
    rerank: bool | None = Field(
        None, description="Reorder the retrieved chunks with --reranker_model (when one is loaded); "
        "None: yes."
    )
    chunk: bool = Field(True, description="Split added documents into chunks.")
    chunk_size: int | None = Field(None, ge=16, description="Chunk size in tokens.")
    document_subset: DocumentSubset = Field(
        "Relevant",
        description="Relevant answers from the most similar chunks; TopKSources and "
        "RelSources return chunks without calling the LLM.",
    )
    document_choice: list[str] = Field(
        default_factory=list, description="Restrict retrieval to these sources; empty means all."
    )
    use_llm_if_no_docs: bool = Field(
        True,
        description="When no document matches, answer as a plain LLM (True) or say that "
        "nothing was found (False).",
    )

    @field_validator("temperature")
    @classmethod
    def _tiny_temperature_is_greedy(cls, value: float | None) -> float | None:
        return 0.0 if value is not None and value < MIN_TEMPERATURE else value

    @field_validator("chat_conversation")
    @classmethod
    def _turns_are_pairs_or_messages(cls, value: list[Any]) -> list[Any]:
        for i, turn in enumerate(value):
            if isinstance(turn, dict):
                if turn.get("role") not in CONVERSATION_ROLES:
                    raise ValueError(f"turn {i}: a message needs a role, one of {', '.join(CONVERSATION_ROLES)}")
            elif not (isinstance(turn, list | tuple) and len(turn) == 2):
                raise ValueError(f"turn {i}: a turn is a [human, bot] pair or a {{role, content}} message")
        return value

    @field_validator("samplers")
    @classmethod
    def _known_samplers(cls, value: dict[str, SamplerValue]) -> dict[str, SamplerValue]:
        unknown = sorted(set(value) - set(EXTRA_SAMPLERS))
        if unknown:
            raise ValueError(f"unknown samplers {', '.join(unknown)}; known: {', '.join(EXTRA_SAMPLERS)}")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias_in_range(cls, value: dict[int, float]) -> dict[int, float]:
        for token, bias in value.items():
            if token < 0 or not -100.0 <= bias <= 100.0:
                raise ValueError("logit_bias maps token ids >= 0 to biases from -100 to 100")
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return value

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: list[str]) -> list[str]:
        return [s for s in value if s]

    @model_validator(mode="after")
    def _one_guide(self) -> EvalParams:
        guides = [name for name in GUIDED_FIELDS if getattr(self, name) is not None]
        if len(guides) > 1:
            raise ValueError(f"give at most one of {', '.join(GUIDED_FIELDS)} (got {', '.join(guides)})")
        return self

    @model_validator(mode="after")
    def _tools_without_guides(self) -> EvalParams:
        if self.tools and self.tool_choice != "none" and any(getattr(self, n) is not None for n in GUIDED_FIELDS):
            raise ValueError("tools cannot be combined with guided_json/regex/choice/grammar")
        return self

    @model_validator(mode="after")
    def _min_below_max(self) -> EvalParams:
        if (
            self.min_new_tokens is not None
            and self.max_new_tokens is not None
            and self.min_new_tokens > self.max_new_tokens
        ):
            raise ValueError("min_new_tokens must not exceed max_new_tokens")
        return self

    def with_defaults(self, defaults: BaseModel) -> EvalParams:
        """Fill every None field from the same-named field of ``defaults`` (the Settings)."""
        filled = {
            name: getattr(defaults, name)
            for name in type(self).model_fields
            if getattr(self, name) is None and name in type(defaults).model_fields
        }
        copy = self.model_copy(update=filled)
        copy._defaulted = self._defaulted | frozenset(filled)
        return copy

    @property
    def defaulted(self) -> frozenset[str]:
        """The fields with_defaults() filled in: the caller did not set them."""
        return self._defaulted

    def user_message(self) -> str:
        """The user turn as h2oGPT builds it: context, instruction, then input."""
        instruction = self.instruction or self.instruction_nochat
        extra = self.iinput or self.iinput_nochat
        parts = [p for p in (self.context, instruction, extra) if p]
        return "\n".join(parts)
