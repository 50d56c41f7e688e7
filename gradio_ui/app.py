"""The Blocks UI: chat with streaming, stop/regenerate/undo/clear, document pickers, settings.

``create_ui(ctx)`` builds the Blocks over the services in :class:`UIContext`; the named
API endpoints (``gradio_ui.api``) are registered in the same Blocks. Element ids
(``#prompt``, ``#chatbot``, ``#submit`` ...) are stable: the browser tests use them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from gradio_ui import api, media
from gradio_ui.chat import ChatOptions, Turn, render
from gradio_ui.context import UIContext, gradio_errors
from gradio_ui.doc_panel import DocumentPanel
from gradio_ui.documents import requester
from gradio_ui.saved_chats import SavedChats, exchange_of
from gradio_ui.sidebar import ChatControls, Sidebar, browser_state
from gradio_ui.source_view import SourceViewer

log = logging.getLogger(__name__)

ACTIONS = ["Query", "Summarize", "Extract"]
ChatUpdate = tuple[list[Turn], list[dict[str, Any]]]
AnswerUpdate = tuple[list[Turn], list[dict[str, Any]], str]

CSS = """
/* the model that wrote an answer, when several are served */
.h2ogpt-model { font-size: var(--text-xs); opacity: 0.7; }
/* the source viewer: the cited chunk highlighted in its document */
#source_view mark { background: var(--color-accent-soft); color: inherit; scroll-margin: 40vh; }
#source_view .h2ogpt-chunk { white-space: pre-wrap; margin: 0 0 0.6em 0; }
/* on wide screens the collection/upload panel sits left of the chat; on a phone it follows
   the chat, so the chat and its input are on the first screen */
@media (min-width: 769px) { #doc_column { order: -1; } }
@media (max-width: 768px) {
  #chatbot { height: min(480px, 52vh) !important; }
  #header h2 { font-size: var(--text-lg); margin: 0; overflow-wrap: anywhere; }
  #chat_buttons { gap: 4px; }
  #chat_buttons button { min-width: 0 !important; padding: 0.3em 0.2em; font-size: var(--text-sm); }
}
"""


def add_turn(message: str, image: str | None, turns: list[Turn]) -> tuple[str, None, list[Turn], list[dict[str, Any]]]:
    """Put the user's message, and the image attached to it, into the chat (nothing changes
    when both are empty)."""
    message = (message or "").strip()
    if not message and not image:
        return "", None, turns, render(turns)
    turns = [*turns, Turn(message, attachments=[image] if image else [])]
    return "", None, turns, render(turns, pending=True)


def regenerate(turns: list[Turn]) -> ChatUpdate:
    """Forget the last answer so that it is generated again."""
    if not turns:
        return turns, render(turns)
    turns = [*turns[:-1], Turn(turns[-1].question, attachments=turns[-1].attachments)]
    return turns, render(turns, pending=True)


def undo(turns: list[Turn]) -> tuple[str, list[Turn], list[dict[str, Any]]]:
    """Remove the last exchange and put its question back into the prompt box."""
    if not turns:
        return "", turns, render(turns)
    return turns[-1].question, turns[:-1], render(turns[:-1])


def clear() -> ChatUpdate:
    return [], []


def start_new_chat() -> AnswerUpdate:
    """Clear: the saved chat stays in the sidebar; the next question starts a new one."""
    return [], [], ""


class ChatHandlers:
    """Event handlers that need the services."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.saved = SavedChats(ctx)

    def answer(
        self,
        turns: list[Turn],
        chat_id: str,
        guest: str,
        langchain_mode: str,
        langchain_action: str,
        top_k_docs: float,
        temperature: float,
        top_p: float,
        top_k: float,
        max_new_tokens: float,
        repetition_penalty: float,
        system_prompt: str,
        model: str,
        h2ogpt_key: str,
        request: gr.Request,
    ) -> Iterator[AnswerUpdate]:
        """Stream the answer to the last turn, then show its sources; the exchange is saved
        to the open chat (a new one for the first answer) when it ends, stopped or not."""
        names = self.ctx.name_models
        if not turns or turns[-1].answer or turns[-1].sources:
            yield turns, render(turns, name_models=names), chat_id
            return
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            options = ChatOptions(
                langchain_mode, langchain_action, int(top_k_docs), temperature, top_p, int(top_k),
                int(max_new_tokens), repetition_penalty, system_prompt or "", model=model or "",
                vision=model in vision_models(self.ctx),
            )
            params = options.params(turns)
            user = requester(self.ctx, request)
            turn = turns[-1]
            turn.model = self.saved.model_name(params)
            owner = self.saved.owner(request, guest)
            saving = self.saved.saves(owner)
            if saving and not chat_id:
                chat_id = self.saved.store.new_id()  # made with the answer: nothing is written before it
            try:
                with closing(self.ctx.evaluator.evaluate(params, user=user)) as chunks:
                    for chunk in chunks:
                        turn.answer = chunk.response
                        if chunk.sources:
                            turn.sources = chunk.sources
                        yield turns, render(turns, pending=chunk.finish_reason is None, name_models=names), chat_id
            finally:
                if saving and turn.answer:
                    self.saved.store.save_exchange(owner, chat_id, len(turns) - 1,
                                                   exchange_of(turn, options, params, turn.model, self.ctx.settings),
                                                   create=True)
        yield turns, render(turns, name_models=names), chat_id


def vision_models(ctx: UIContext) -> list[str]:
    """The served models that read images (--visible_vision_models)."""
    return [b.name for b in ctx.evaluator.registry if b.capabilities.vision]


def _model_picker(ctx: UIContext) -> tuple[gr.components.Component, gr.components.Component]:
    """The model dropdown (when more than one is served) and, when a vision model is served,
    the image to send with the next message; attaching one picks a vision model."""
    names = ctx.evaluator.registry.names
    vision = vision_models(ctx)
    with gr.Row(visible=len(names) > 1 or bool(vision)):
        model = gr.Dropdown(names, value=names[0], label="Model", elem_id="visible_models",
                            visible=len(names) > 1, allow_custom_value=False)
        image = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Image for a vision model",
                         elem_id="chat_image", height=160, visible=bool(vision))
    if vision:
        image.upload(lambda chosen: chosen if chosen in vision else vision[0], [model], [model],
                     queue=False, api_visibility="private")
    return model, image


def _collections(ctx: UIContext) -> list[str]:
    if ctx.documents is None:
        return [m for m in ctx.settings.langchain_modes if m in ("LLM", "Disabled")] or ["LLM"]
    return list(ctx.settings.langchain_modes)


def _settings_panel(ctx: UIContext) -> list[gr.components.Component]:
    s = ctx.settings
    with gr.Accordion("Settings", open=False, elem_id="settings_panel"):
        system_prompt = gr.Textbox(
            s.system_prompt, label="System prompt", lines=2, elem_id="system_prompt",
            placeholder="Empty: the chat template's default system prompt",
        )
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, s.temperature, step=0.01, label="Temperature",
                                    elem_id="temperature")
            top_p = gr.Slider(0.01, 1.0, s.top_p, step=0.01, label="top_p", elem_id="top_p")
            top_k = gr.Slider(0, 100, s.top_k, step=1, label="top_k", elem_id="top_k")
        with gr.Row():
            max_new_tokens = gr.Slider(1, max(4096, s.max_new_tokens), s.max_new_tokens, step=1,
                                       label="Max new tokens", elem_id="max_new_tokens")
            repetition_penalty = gr.Slider(0.01, 3.0, s.repetition_penalty, step=0.01,
                                           label="Repetition penalty", elem_id="repetition_penalty")
    return [temperature, top_p, top_k, max_new_tokens, repetition_penalty, system_prompt]


def _doc_column(ctx: UIContext, blocks: gr.Blocks, h2ogpt_key: gr.Textbox, collections: list[str],
                default_mode: str) -> tuple[gr.components.Component, ...]:
    """Collection, action, sources to retrieve and uploads, in a panel that folds away."""
    s = ctx.settings
    with gr.Column(scale=1, min_width=240, elem_id="doc_column"):
        h2ogpt_key.render()
        with gr.Accordion("Collection and documents", open=True, elem_id="doc_panel"):
            langchain_mode = gr.Dropdown(collections, value=default_mode, label="Collection",
                                         elem_id="langchain_mode", allow_custom_value=False)
            langchain_action = gr.Radio(ACTIONS, value="Query", label="Action", elem_id="langchain_action")
            top_k_docs = gr.Slider(1, 20, s.top_k_docs, step=1, label="Sources to retrieve", elem_id="top_k_docs")
            if ctx.documents is not None:
                DocumentPanel(ctx).build(langchain_mode, h2ogpt_key, blocks)
    return langchain_mode, langchain_action, top_k_docs


def create_ui(ctx: UIContext) -> gr.Blocks:
    """The whole app: UI plus the named API endpoints, over the services in ``ctx``."""
    collections = _collections(ctx)
    default_mode = ctx.settings.langchain_mode if ctx.settings.langchain_mode in collections else collections[0]
    handlers = ChatHandlers(ctx)
    sidebar = Sidebar(ctx)
    with gr.Blocks(title="h2oGPT", analytics_enabled=False) as blocks:
        title = "## h2oGPT" if ctx.name_models else f"## h2oGPT · {ctx.model_name}"
        gr.Markdown(title, elem_id="header")
        turns = gr.State([])
        chat_id = gr.State("")
        guest = browser_state(ctx)
        h2ogpt_key = gr.Textbox("", label="API key", type="password", elem_id="h2ogpt_key",
                                visible=ctx.access.enforce_key, render=False)
        with gr.Row(elem_id="main_row"):
            with gr.Column(scale=4, elem_id="chat_column"):
                model, image = _model_picker(ctx)
                chatbot = gr.Chatbot(label="Chat", elem_id="chatbot", height=480, buttons=["copy"])
                prompt = gr.Textbox(placeholder="Ask anything (Enter to send)", show_label=False,
                                    elem_id="prompt", lines=1, max_lines=8, autofocus=True)
                with gr.Row(elem_id="chat_buttons"):
                    submit = gr.Button("Submit", variant="primary", elem_id="submit", min_width=60)
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", min_width=50)
                    regen = gr.Button("Regenerate", elem_id="regenerate", min_width=60)
                    undo_btn = gr.Button("Undo", elem_id="undo", min_width=50)
                    clear_btn = gr.Button("Clear", elem_id="clear", min_width=50)
                media_endpoints = media.MediaEndpoints(ctx)
                media.build_controls(media_endpoints, prompt, turns, chatbot, h2ogpt_key)
                source_viewer = SourceViewer(ctx)
                source_viewer.build(turns)
            langchain_mode, langchain_action, top_k_docs = _doc_column(
                ctx, blocks, h2ogpt_key, collections, default_mode)
        settings_inputs = _settings_panel(ctx)
        controls = ChatControls(turns, chatbot, chat_id, guest, langchain_mode, langchain_action, top_k_docs,
                                settings_inputs, model, h2ogpt_key)
        chat_list, search = sidebar.build(blocks, controls, after_open=lambda opened: opened.then(
            source_viewer.choices, [turns], [source_viewer.pick], queue=False, api_visibility="private"))
        source_viewer.bind(langchain_mode, h2ogpt_key)

        answer_inputs = [turns, chat_id, guest, langchain_mode, langchain_action, top_k_docs, *settings_inputs,
                         model, h2ogpt_key]
        answer_outputs = [turns, chatbot, chat_id]
        list_inputs = [search, chat_id, guest, h2ogpt_key]
        private: dict[str, Any] = {"api_visibility": "private"}
        events = []
        for trigger in (prompt.submit, submit.click):
            answering = (
                trigger(add_turn, [prompt, image, turns], [prompt, image, turns, chatbot], queue=False, **private)
                .then(handlers.answer, answer_inputs, answer_outputs, **private)
            )
            events.append(answering)
            answering.then(sidebar.listing, list_inputs, [chat_list], queue=False, **private).then(
                source_viewer.choices, [turns], [source_viewer.pick], queue=False, **private)
        events.append(
            regen.click(regenerate, [turns], [turns, chatbot], queue=False, **private)
            .then(handlers.answer, answer_inputs, answer_outputs, **private)
        )
        stop.click(None, cancels=events, **private).then(
            sidebar.listing, list_inputs, [chat_list], queue=False, **private)
        undo_btn.click(undo, [turns], [prompt, turns, chatbot], cancels=events, queue=False, **private).then(
            sidebar.truncate, [turns, chat_id, guest], None, queue=False, **private)
        for clearing in (clear_btn.click, chatbot.clear):
            clearing(start_new_chat, None, [turns, chatbot, chat_id], cancels=events, queue=False, **private).then(
                sidebar.listing, list_inputs, [chat_list], queue=False, **private)

        api.register(ctx)
        media.register_api(media_endpoints)
    return blocks
