"""What the UI and the Gradio API share: the evaluator, the access rules, and error mapping.

Both front-ends of this package are peers over the same services (the evaluator of this
process and, when document Q&A is on, its document service). Domain errors are mapped
here, once, to ``gr.Error`` so that a browser shows a toast and ``gradio_client`` raises
``AppError``; an error never comes back as answer text.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from gradio_ui.access import Access, AccessDenied
from src.errors import DomainError
from src.evaluate import Evaluator
from src.media import MediaServices
from src.settings import Settings
from src.storage.chats import ChatError, ChatStore

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


class BadRequest(ValueError):
    """The caller sent something we cannot use; the message says what to change."""


@dataclass
class UIContext:
    """The services the UI and the API are built over, created once at start-up."""

    settings: Settings
    evaluator: Evaluator
    access: Access
    documents: Any | None = None
    media: MediaServices = field(default_factory=MediaServices)
    chats: ChatStore | None = None  # saved chats (None: --save_chats=False)
    system_hash: str = field(default_factory=lambda: _system_hash())

    @property
    def model_name(self) -> str:
        """The default model's name; '' while none is loaded (after /v1/internal/model/unload)."""
        main = self.evaluator.registry.main
        return main.name if main is not None else ""

    @property
    def name_models(self) -> bool:
        """More than one model is served: answers say which one wrote them."""
        return len(self.evaluator.registry.names) > 1


@contextmanager
def gradio_errors() -> Iterator[None]:
    """Turn our domain errors into gr.Error, so that clients see an error, never an answer.

    A context manager rather than a decorator: Gradio reads a handler's own type hints to
    find its ``gr.Request`` parameter.
    """
    try:
        yield
    except (AccessDenied, BadRequest, ChatError, DomainError) as exc:
        raise gr.Error(str(exc)) from exc
    except ValidationError as exc:
        raise gr.Error(validation_message(exc)) from exc


def validation_message(exc: ValidationError) -> str:
    """One line per problem: ``field: message``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "params"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown parameter"
        parts.append(f"{where}: {message}")
    return "invalid parameters: " + "; ".join(parts)


def parse_param_dict(payload: str | dict[str, Any]) -> dict[str, Any]:
    """A dict of EvalParams from h2oGPT's ``str(dict)`` form, from JSON, or as is."""
    if isinstance(payload, dict):
        return dict(payload)
    if not isinstance(payload, str) or not payload.strip():
        raise BadRequest("expected a dict of parameters (as JSON or Python literal text)")
    try:
        value: Any = json.loads(payload)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(payload)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise BadRequest("parameters are neither JSON nor a Python dict literal") from None
    if not isinstance(value, dict):
        raise BadRequest(f"expected a dict of parameters, got {type(value).__name__}")
    return value


def _system_hash() -> str:
    """The git commit of this checkout, else the package version."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("h2ogpt-offline")
    except PackageNotFoundError:
        return "unknown"
