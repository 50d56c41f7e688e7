"""The source viewer: open a source of the last answer in its document, at its page or chunk.

Under the chat, **Open a source** (``#source_viewer``) lists the sources of the chat's answers,
the last answer's first (``#source_pick``); choosing one shows its whole document as text (``#source_view``), page by
page for paged files (PDF, DOCX ...), with the cited chunk highlighted (``<mark>``) and
scrolled into view. A source given as ``text_context_list`` (no document) shows its text.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from gradio_ui.chat import Turn, source_name
from gradio_ui.context import BadRequest, UIContext, gradio_errors
from gradio_ui.documents import Documents, requester
from src.errors import DomainError

log = logging.getLogger(__name__)

SCROLL_JS = """() => { setTimeout(() => {
  const mark = document.querySelector('#source_view mark');
  if (mark) mark.scrollIntoView({block: 'center'});
}, 50); }"""


def source_label(i: int, source: dict[str, Any]) -> str:
    page = source.get("page")
    return f"{i + 1}. {source_name(source)}" + (f" · page {page}" if page else "")


def document_html(name: str, chunks: list[dict[str, Any]], cited: str, page: Any) -> str:
    """The document's chunks in order, a page heading where the page changes, the cited
    chunk (same text, else the first on its page) in a <mark>."""
    index = next((i for i, c in enumerate(chunks) if (c.get("content") or "").strip() == cited.strip()), None)
    if index is None and page:
        index = next((i for i, c in enumerate(chunks) if c.get("page") == page), None)
    parts = [f"<h4>{html.escape(name)}</h4>"]
    last_page = None
    for i, chunk in enumerate(chunks):
        if chunk.get("page") and chunk.get("page") != last_page:
            last_page = chunk.get("page")
            parts.append(f"<h5 class='h2ogpt-page'>page {html.escape(str(last_page))}</h5>")
        text = html.escape(str(chunk.get("content") or ""))
        body = f"<mark id='cited_chunk'>{text}</mark>" if i == index else text
        parts.append(f"<div class='h2ogpt-chunk' data-chunk='{i}'>{body}</div>")
    return "\n".join(parts)


class SourceViewer:
    """Handlers of the source viewer; components are made by :meth:`build`."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.docs = Documents(ctx)
        self.pick: gr.Dropdown | None = None
        self.view: gr.HTML | None = None
        self.turns: gr.State | None = None

    def choices(self, turns: list[Turn]) -> Any:
        """The sources of the chat's answers to choose from, the last answer's first."""
        cited = [(t, i, src) for t, turn in enumerate(turns or []) for i, src in enumerate(turn.sources)
                 if src.get("source")]
        answers = {t for t, _, _ in cited}
        choices = [(source_label(i, src) + (f" (answer {t + 1})" if len(answers) > 1 else ""), f"{t}:{i}")
                   for t, i, src in sorted(cited, key=lambda c: (-c[0], c[1]))]
        return gr.update(choices=choices, value=None)

    def show(self, choice: str | None, turns: list[Turn], langchain_mode: str, h2ogpt_key: str,
             request: gr.Request) -> str:
        """The chosen source's document with the chunk highlighted."""
        try:
            t, i = (int(x) for x in str(choice or "").split(":"))
            source = turns[t].sources[i]
        except (ValueError, IndexError):
            return ""
        name, cited, page = source_name(source), str(source.get("content") or ""), source.get("page")
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            try:
                document = self.docs.document(name, langchain_mode, requester(self.ctx, request))
                chunks = list(document["chunks"])
            except (BadRequest, DomainError):  # given as text, or no longer in the collection
                chunks = [{"content": cited, "page": page}]
        return document_html(name, chunks, cited, page)

    def build(self, turns: gr.State) -> None:
        with gr.Accordion("Open a source", open=False, elem_id="source_viewer", visible=self.ctx.documents is not None):
            self.pick = gr.Dropdown([], label="Source", elem_id="source_pick",
                                    allow_custom_value=False, type="value")
            self.view = gr.HTML(elem_id="source_view", max_height=420)
        self.turns = turns

    def bind(self, langchain_mode: gr.components.Component, h2ogpt_key: gr.components.Component) -> None:
        assert self.pick is not None and self.view is not None and self.turns is not None
        self.pick.input(self.show, [self.pick, self.turns, langchain_mode, h2ogpt_key], [self.view],
                        api_visibility="private").then(None, js=SCROLL_JS, api_visibility="private")
