"""The chat sidebar: new chat, the saved chats (newest first), search, rename, delete with
undo, export (h2oGPT's chat JSON or Markdown) and import; reopening a chat restores its
messages, sources and settings.

Element ids: ``#chat_sidebar``, ``#new_chat``, ``#chat_search``, ``#chat_list`` (a radio of
chat titles; values are chat ids), ``#chat_title``, ``#rename_chat``, ``#delete_chat``,
``#undo_delete``, ``#export_scope``, ``#export_json``, ``#export_markdown``,
``#chat_export`` (the exported file), ``#import_chats``, ``#chat_status``.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from gradio_ui.chat import Turn, render
from gradio_ui.context import UIContext, gradio_errors
from gradio_ui.saved_chats import BROWSER_SECRET, GUEST_TOKEN, SavedChats, turns_of
from src.storage.chats import Chat

log = logging.getLogger(__name__)

SCOPES = ["This chat", "All chats"]
CLOSE_ON_PHONE_JS = """() => {
  const bar = document.querySelector('#chat_sidebar');
  if (bar && bar.classList.contains('open') && window.matchMedia('(max-width: 768px)').matches)
    bar.querySelector('.toggle-button').click();
}"""


@dataclass
class ChatControls:
    """The components the sidebar reads and restores (made by the rest of the page)."""

    turns: gr.State
    chatbot: gr.Chatbot
    chat_id: gr.State
    guest: gr.BrowserState
    langchain_mode: gr.components.Component
    langchain_action: gr.components.Component
    top_k_docs: gr.components.Component
    settings: list[gr.components.Component]  # temperature, top_p, top_k, max_new_tokens, rep. penalty, system
    model: gr.components.Component
    h2ogpt_key: gr.components.Component


SETTING_NAMES = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "system_prompt")


def browser_state(ctx: UIContext) -> gr.BrowserState:
    """The guest token kept in the browser's localStorage (encrypted with the database's secret)."""
    secret = ctx.chats.shared_secret(BROWSER_SECRET) if ctx.chats is not None else None
    return gr.BrowserState("", storage_key="h2ogpt_guest", secret=secret)


class Sidebar:
    """Handlers of the sidebar; components are made by :meth:`build`."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.chats = SavedChats(ctx)
        self.export_dir = Path(tempfile.mkdtemp(prefix="h2ogpt-chats-"))

    # --- handlers ---------------------------------------------------------------------------
    def on_load(self, guest: str) -> str:
        """A guest token for this browser, made on its first visit."""
        return guest if guest and GUEST_TOKEN.match(guest) else secrets.token_hex(16)

    def listing(self, search: str, chat_id: str, guest: str, h2ogpt_key: str, request: gr.Request) -> Any:
        """The chat list (filtered by ``search``), with the open chat selected."""
        if not self.chats.enabled:
            return gr.update(choices=[], value=None)
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            owner = self.chats.owner(request, guest)
            summaries = self.chats.store.list_chats(owner, search or "")
        choices = [(s.title, s.id) for s in summaries]
        return gr.update(choices=choices, value=chat_id if chat_id in {s.id for s in summaries} else None)

    def _restore(self, chat: Chat) -> list[Any]:
        """Outputs of :meth:`restore_outputs` for ``chat``."""
        turns = turns_of(chat)
        last = chat.exchanges[-1] if chat.exchanges else None
        settings = last.settings if last else {}
        keep = gr.update()
        values = [turns, render(turns, name_models=self.ctx.name_models), chat.id, chat.title]
        values.append(gr.update(value=last.collection) if last and last.collection else keep)
        values.append(gr.update(value=last.action) if last and last.action else keep)
        values.append(gr.update(value=settings["top_k_docs"]) if "top_k_docs" in settings else keep)
        values.extend(gr.update(value=settings[name]) if name in settings else keep for name in SETTING_NAMES)
        names = self.ctx.evaluator.registry.names
        values.append(gr.update(value=last.model) if last and last.model in names else keep)
        return values

    def open(self, chat_id: str, guest: str, h2ogpt_key: str, request: gr.Request) -> list[Any]:
        """Reopen a saved chat: its messages, sources and the settings of its last answer."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if not chat_id:
                return [gr.update()] * (4 + 4 + len(SETTING_NAMES))
            return self._restore(self.chats.store.get(self.chats.owner(request, guest), chat_id))

    def new(self) -> tuple[list[Turn], list[dict[str, Any]], str, str, str]:
        """An empty chat (saved when its first answer completes)."""
        return [], [], "", "", ""

    def rename(self, chat_id: str, title: str, guest: str, h2ogpt_key: str, request: gr.Request) -> str:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if not chat_id:
                return "Ask something first: a chat is saved with its first answer."
            summary = self.chats.store.rename(self.chats.owner(request, guest), chat_id, title)
        return f"Renamed to **{summary.title}**."

    def delete(self, chat_id: str, guest: str, h2ogpt_key: str, request: gr.Request) -> list[Any]:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if not chat_id:
                return [gr.update()] * 4 + [chat_id, gr.update(), "No saved chat is open."]
            summary = self.chats.store.delete(self.chats.owner(request, guest), chat_id)
        return [[], [], "", "", chat_id, gr.update(visible=True), f"Deleted **{summary.title}**."]

    def undo_delete(self, deleted_id: str, guest: str, h2ogpt_key: str, request: gr.Request) -> list[Any]:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            owner = self.chats.owner(request, guest)
            self.chats.store.restore(owner, deleted_id)
            restored = self._restore(self.chats.store.get(owner, deleted_id))
        return [*restored, "", gr.update(visible=False), f"Restored **{restored[3]}**."]

    def truncate(self, turns: list[Turn], chat_id: str, guest: str, request: gr.Request) -> None:
        """After Undo: the saved chat keeps only the exchanges left on screen."""
        if chat_id and self.chats.enabled:
            with gradio_errors():
                self.chats.store.truncate(self.chats.owner(request, guest), chat_id, len(turns))

    def export(self, scope: str, fmt: str, chat_id: str, guest: str, h2ogpt_key: str,
               request: gr.Request) -> tuple[str | None, str]:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if scope == SCOPES[0] and not chat_id:
                return None, "No saved chat is open."
            ids = [chat_id] if scope == SCOPES[0] else None
            text = self.chats.export_text(self.chats.owner(request, guest), ids, fmt)
        suffix = "json" if fmt == "json" else "md"
        path = self.export_dir / f"h2ogpt-chats-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}.{suffix}"
        path.write_text(text, encoding="utf-8")
        return str(path), ""

    def export_json(self, scope: str, chat_id: str, guest: str, h2ogpt_key: str,
                    request: gr.Request) -> tuple[str | None, str]:
        return self.export(scope, "json", chat_id, guest, h2ogpt_key, request)

    def export_markdown(self, scope: str, chat_id: str, guest: str, h2ogpt_key: str,
                        request: gr.Request) -> tuple[str | None, str]:
        return self.export(scope, "markdown", chat_id, guest, h2ogpt_key, request)

    def import_file(self, file: str | None, guest: str, h2ogpt_key: str, request: gr.Request) -> str:
        if not file:
            return ""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            text = Path(file).read_text(encoding="utf-8", errors="replace")
            created = self.chats.import_text(self.chats.owner(request, guest), text)
        return f"Imported {len(created)} chat(s)."

    # --- layout -----------------------------------------------------------------------------
    def restore_outputs(self, c: ChatControls, title: gr.Textbox) -> list[gr.components.Component]:
        return [c.turns, c.chatbot, c.chat_id, title, c.langchain_mode, c.langchain_action, c.top_k_docs,
                *c.settings, c.model]

    def build(self, blocks: gr.Blocks, c: ChatControls,
              after_open: Callable[[Any], Any] | None = None) -> tuple[gr.Radio, gr.Textbox]:
        """The sidebar and its events; returns the chat list and the search box (the page
        refreshes the list after each answer). ``after_open`` chains more steps after a chat
        is reopened (the page refreshes what depends on the messages)."""
        then = after_open or (lambda dependency: dependency)
        private: dict[str, Any] = {"api_visibility": "private"}
        with gr.Sidebar(open=True, width=280, elem_id="chat_sidebar", label="Chats"):
            new = gr.Button("New chat", elem_id="new_chat", variant="primary", size="sm")
            search = gr.Textbox(placeholder="Search chats", show_label=False, elem_id="chat_search",
                                max_lines=1, container=False)
            chat_list = gr.Radio([], label="Chats", show_label=False, elem_id="chat_list")
            title = gr.Textbox(label="Title of this chat", elem_id="chat_title", max_lines=1)
            with gr.Row():
                rename = gr.Button("Rename", elem_id="rename_chat", size="sm")
                delete = gr.Button("Delete", elem_id="delete_chat", variant="stop", size="sm")
            undo = gr.Button("Undo delete", elem_id="undo_delete", size="sm", visible=False)
            deleted = gr.State("")
            status = gr.Markdown(elem_id="chat_status")
            with gr.Accordion("Export / import", open=False, elem_id="chat_io"):
                scope = gr.Radio(SCOPES, value=SCOPES[1], show_label=False, elem_id="export_scope")
                with gr.Row():
                    export_json = gr.Button("Export JSON", elem_id="export_json", size="sm")
                    export_md = gr.Button("Export Markdown", elem_id="export_markdown", size="sm")
                exported = gr.File(label="Exported chats", elem_id="chat_export", interactive=False)
                upload = gr.UploadButton("Import JSON", file_types=[".json"], elem_id="import_chats", size="sm",
                                         type="filepath")
        who = [c.guest, c.h2ogpt_key]
        list_inputs = [search, c.chat_id, *who]
        outputs = self.restore_outputs(c, title)

        blocks.load(None, js=CLOSE_ON_PHONE_JS, **private)  # on a phone the chat comes first
        blocks.load(self.on_load, [c.guest], [c.guest], queue=False, **private).then(
            self.listing, list_inputs, [chat_list], queue=False, **private)
        search.change(self.listing, list_inputs, [chat_list], queue=False, **private)
        then(chat_list.input(self.open, [chat_list, *who], outputs, queue=False, **private)).then(
            None, js=CLOSE_ON_PHONE_JS, **private)
        new.click(self.new, None, [c.turns, c.chatbot, c.chat_id, title, status], queue=False, **private).then(
            self.listing, list_inputs, [chat_list], queue=False, **private)
        rename.click(self.rename, [c.chat_id, title, *who], [status], queue=False, **private).then(
            self.listing, list_inputs, [chat_list], queue=False, **private)
        delete.click(self.delete, [c.chat_id, *who], [c.turns, c.chatbot, c.chat_id, title, deleted, undo, status],
                     queue=False, **private).then(self.listing, list_inputs, [chat_list], queue=False, **private)
        then(undo.click(self.undo_delete, [deleted, *who], [*outputs, deleted, undo, status], queue=False,
                        **private)).then(self.listing, list_inputs, [chat_list], queue=False, **private)
        export_json.click(self.export_json, [scope, c.chat_id, *who], [exported, status], queue=False, **private)
        export_md.click(self.export_markdown, [scope, c.chat_id, *who], [exported, status], queue=False, **private)
        upload.upload(self.import_file, [upload, *who], [status], queue=False, **private).then(
            self.listing, list_inputs, [chat_list], queue=False, **private)
        return chat_list, search
