"""Chat state of one browser session, its rendering, and the EvalParams of the next answer.

The session keeps clean turns (question, answer, sources) in a ``gr.State``; the Chatbot
only shows them. So the model's history never contains rendered sources, and undo and
regenerate are list operations.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.params import EvalParams


@dataclass
class Turn:
    """One exchange: the user's question, the answer so far, and the answer's sources."""

    question: str
    answer: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # PNG files drawn for this turn
    attachments: list[str] = field(default_factory=list)  # image files the user sent with it
    model: str = ""  # the model that answered


def conversation(turns: list[Turn]) -> list[list[str]]:
    """Earlier turns as h2oGPT's [human, bot] pairs (every turn but the last)."""
    return [[t.question, t.answer] for t in turns[:-1]]


def source_name(source: dict[str, Any]) -> str:
    """The file a source chunk came from, as short as it stays unambiguous."""
    for key in ("source", "file", "filename", "name"):
        value = source.get(key)
        if value:
            return str(value).rsplit("/", 1)[-1]
    meta = source.get("metadata")
    if isinstance(meta, dict):
        return source_name(meta)
    return "document"


def _field(source: dict[str, Any], *keys: str) -> Any:
    meta = source.get("metadata") if isinstance(source.get("metadata"), dict) else {}
    for key in keys:
        if source.get(key) is not None:
            return source[key]
        if meta and meta.get(key) is not None:
            return meta[key]
    return None


def _clock(seconds: float) -> str:
    """m:ss (h:mm:ss past an hour) of a time span's end in an audio file."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_sources(sources: list[dict[str, Any]]) -> str:
    """Sources as HTML: one expandable entry per chunk with its file, page and score."""
    items = []
    for i, source in enumerate(sources, 1):
        label = [f"{i}. {html.escape(source_name(source))}"]
        page = _field(source, "page")
        if page not in (None, ""):
            label.append(f"page {html.escape(str(page))}")
        start, end = _field(source, "start"), _field(source, "end")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)):
            label.append(f"{_clock(start)}–{_clock(end)}")
        score = _field(source, "score")
        if isinstance(score, (int, float)):
            label.append(f"score {score:.3f}")
        text = _field(source, "content", "text", "page_content") or ""
        items.append(
            f"<details class='h2ogpt-source'><summary>{' · '.join(label)}</summary>"
            f"<pre style='white-space: pre-wrap'>{html.escape(str(text))}</pre></details>"
        )
    return "\n".join(items)


def _mime(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "image/png"


def image_data_uri(path: str) -> str:
    """An image file as a data: URI, the form evaluate() reads images in."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:{_mime(path)};base64,{data}"


def model_tag(model: str) -> str:
    """The line naming the model under an answer (when more than one model is served)."""
    return f"\n\n<span class='h2ogpt-model'>{html.escape(model)}</span>" if model else ""


def render(turns: list[Turn], pending: bool = False, name_models: bool = False) -> list[dict[str, Any]]:
    """Chatbot messages for ``turns``; sources follow their answer as a collapsed block;
    with ``name_models`` each finished answer names the model that wrote it."""
    messages: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        for path in turn.attachments:
            messages.append({"role": "user", "content": {"path": path, "mime_type": _mime(path)}})
        if turn.question:
            messages.append({"role": "user", "content": turn.question})
        last = i == len(turns) - 1
        if turn.answer or not (pending and last or turn.images):
            done = not (pending and last)
            tag = model_tag(turn.model) if name_models and done and turn.answer else ""
            messages.append({"role": "assistant", "content": turn.answer + tag})
        for path in turn.images:
            messages.append({"role": "assistant", "content": {"path": path, "mime_type": "image/png"}})
        if turn.sources:
            messages.append(
                {
                    "role": "assistant",
                    "content": render_sources(turn.sources),
                    "metadata": {"title": f"Sources ({len(turn.sources)})", "status": "done"},
                }
            )
    return messages


@dataclass(frozen=True)
class ChatOptions:
    """The settings panel and the document pickers of the UI, as the user left them."""

    langchain_mode: str
    langchain_action: str
    top_k_docs: int
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    repetition_penalty: float
    system_prompt: str
    document_choice: list[str] = field(default_factory=list)
    model: str = ""  # '' is the first served model
    vision: bool = False  # the model reads images: every turn's images go with the question

    def params(self, turns: list[Turn]) -> EvalParams:
        """EvalParams for answering the last turn (validated; raises ValidationError).

        A vision model gets the images of the whole conversation (it answers follow-up
        questions about them); any other model only the last turn's, which it refuses.
        """
        sent = turns if self.vision else turns[-1:]
        return EvalParams(
            visible_models=self.model or None,
            images=[image_data_uri(path) for turn in sent for path in turn.attachments],
            instruction=turns[-1].question,
            chat_conversation=conversation(turns),
            system_prompt=self.system_prompt,
            langchain_mode=self.langchain_mode,
            langchain_action=self.langchain_action,  # type: ignore[arg-type]
            top_k_docs=int(self.top_k_docs),
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            top_k=int(self.top_k),
            max_new_tokens=int(self.max_new_tokens),
            repetition_penalty=float(self.repetition_penalty),
            document_choice=list(self.document_choice),
            stream_output=True,
        )
