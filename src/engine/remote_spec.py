"""Where a remote engine is and how to talk to it: h2oGPT's ``--inference_server`` strings.

Accepted forms (docs/scaling.md)::

    vllm:HOST:PORT[:API_KEY]            vLLM, text completions (http://HOST:PORT/v1)
    vllm_chat:URL[:API_KEY]             vLLM, chat completions (URL ends in /v1)
    openai:URL[:API_KEY]                any OpenAI-compatible server, text completions
    openai_chat:URL[:API_KEY]           any OpenAI-compatible server, chat completions

A bare ``URL`` (``http://HOST:PORT/v1``) is ``openai_chat``. The API key, when the string has
none, comes from --inference_server_api_key (``H2OGPT_INFERENCE_SERVER_API_KEY``), then
``OPENAI_API_KEY`` for the openai forms, else ``EMPTY``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from src.errors import InvalidParamsError

Kind = Literal["vllm", "vllm_chat", "openai", "openai_chat", "llamacpp"]
KINDS: tuple[Kind, ...] = ("vllm", "vllm_chat", "openai", "openai_chat")
_URL = re.compile(r"^(?P<url>https?://[^/:]+(?::\d+)?(?:/[^:]*)?)(?::(?P<key>.+))?$")


@dataclass(frozen=True)
class RemoteSpec:
    """One remote engine: its dialect, its /v1 base URL and the key it wants."""

    kind: Kind
    base_url: str  # ends in /v1, no trailing slash
    api_key: str = "EMPTY"

    @property
    def chat(self) -> bool:
        """Chat completions (the remote applies its chat template), else text completions."""
        return self.kind in ("vllm_chat", "openai_chat", "llamacpp")

    @property
    def vllm(self) -> bool:
        """vLLM's dialect: structured_outputs, /tokenize with a model, max_model_len."""
        return self.kind in ("vllm", "vllm_chat")

    @property
    def root(self) -> str:
        """The server root (where /tokenize and /health live)."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def __str__(self) -> str:  # never shows the key
        return f"{self.kind}:{self.base_url}"


def parse_inference_server(value: str, api_key: str = "") -> RemoteSpec:
    """The spec of an --inference_server (or model_lock ``inference_server``) string."""
    text = value.strip()
    kind: Kind = "openai_chat"
    for prefix in KINDS:
        if text.startswith(prefix + ":") and not text.startswith(prefix + "://"):
            kind, text = prefix, text[len(prefix) + 1:]
            break
    key = ""
    match = _URL.match(text)
    if match:
        url, key = match["url"].rstrip("/"), match["key"] or ""
    else:  # HOST:PORT[:KEY]
        parts = text.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
            raise InvalidParamsError(
                f"{value!r} is not an inference server: write vllm:HOST:PORT, vllm_chat:URL, "
                "openai:URL or openai_chat:URL (URL like http://HOST:PORT/v1)", param="inference_server")
        url, key = f"http://{parts[0]}:{parts[1]}", ":".join(parts[2:])
    if not url.endswith("/v1"):
        url += "/v1"
    if not key or key == "None":
        key = api_key or (os.environ.get("OPENAI_API_KEY", "") if kind.startswith("openai") else "")
    return RemoteSpec(kind, url, key or "EMPTY")
