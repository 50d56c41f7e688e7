"""Checks of flag values that need more than a type: model entries, TLS files, the rate-limit
store, and how a flag written as text is read. :class:`SettingsError` names the flag at fault."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A flag has a bad value; ``flag`` names it as the user wrote it."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag
        self.message = message


MODEL_LOCK_KEYS = {"base_model", "inference_server", "prompt_type", "max_seq_len", "api_key", "llamacpp_dict",
                   "chat_template", "vision"}
LLAMACPP_KEYS = {"n_threads", "n_ctx", "n_batch", "n_gpu_layers", "n_parallel", "server_path", "flash_attn",
                 "cache_type"}


def check_model_entry(flag: str, entry: dict[str, Any]) -> None:
    """A model_lock entry (or --inference_server) names a model, known keys, a valid server."""
    from src.engine.remote_spec import parse_inference_server

    if not (entry.get("inference_server") or entry.get("base_model")):
        raise SettingsError(flag, "each entry needs base_model or inference_server")
    unknown = set(entry) - MODEL_LOCK_KEYS
    if unknown:
        raise SettingsError(flag, f"unknown key(s) {sorted(unknown)}; known: {sorted(MODEL_LOCK_KEYS)}")
    if "vision" in entry:  # fire hands JSON's false over as the word
        vision = {"true": True, "false": False}.get(str(entry["vision"]).lower())
        if vision is None:
            raise SettingsError(flag, f"vision must be true or false, not {entry['vision']!r}")
        entry["vision"] = vision
    if entry.get("inference_server"):
        try:
            parse_inference_server(str(entry["inference_server"]))
        except ValueError as exc:
            raise SettingsError(flag, str(exc)) from None


def check_tls(certfile: str, keyfile: str, password: str) -> None:
    """The TLS flags name a certificate and key that load (checked before any model loads)."""
    if not certfile:
        for flag, value in (("--ssl_keyfile", keyfile), ("--ssl_keyfile_password", password)):
            if value:
                raise SettingsError(flag, "needs --ssl_certfile (the certificate to serve)")
        return
    for flag, path in (("--ssl_certfile", certfile), ("--ssl_keyfile", keyfile)):
        if path and not Path(path).expanduser().is_file():
            raise SettingsError(flag, f"no such file: {path}")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(Path(certfile).expanduser(), Path(keyfile).expanduser() if keyfile else None,
                                password or None)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError("--ssl_certfile", f"the certificate and key do not load ({exc}); "
                            "give a PEM certificate, its key (--ssl_keyfile) and the key's password") from None


def check_rate_limit_storage(uri: str) -> None:
    from limits.storage import storage_from_string

    try:
        storage_from_string(uri)  # parses and checks the driver; connects lazily
    except Exception as exc:  # limits raises ConfigurationError or ValueError, by scheme
        raise SettingsError("--rate_limit_storage", f"{uri!r} is not a usable storage URI ({exc}); "
                            "write memory:// or redis://HOST:PORT") from None


def looks_like_path(value: str) -> bool:
    """A --base_model value that names a file or folder rather than a hub id."""
    if value.startswith(("/", ".", "~")) or value.lower().endswith(".gguf"):
        return True
    return value.count("/") != 1 or Path(value).exists()


def parse_flag_text(text: str) -> Any:
    """Parse a flag value written as text the way fire does: a Python literal, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
