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

log = logging.getLogger(__name__)

ACTIONS = ["Query", "Summarize", "Extract"]
ChatUpdate = tuple[list[Turn], list[dict[str, Any]]]


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


class ChatHandlers:
    """Event handlers that need the services."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    def answer(
        self,
        turns: list[Turn],
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
    ) -> Iterator[ChatUpdate]:
        """Stream the answer to the last turn, then show its sources."""
        if not turns or turns[-1].answer or turns[-1].sources:
            yield turns, render(turns)
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
            with closing(self.ctx.evaluator.evaluate(params, user=user)) as chunks:
                for chunk in chunks:
                    turn.answer = chunk.response
                    if chunk.sources:
                        turn.sources = chunk.sources
                    yield turns, render(turns, pending=chunk.finish_reason is None)
        yield turns, render(turns)


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


def create_ui(ctx: UIContext) -> gr.Blocks:
    """The whole app: UI plus the named API endpoints, over the services in ``ctx``."""
    s = ctx.settings
    collections = _collections(ctx)
    default_mode = s.langchain_mode if s.langchain_mode in collections else collections[0]
    handlers = ChatHandlers(ctx)
    with gr.Blocks(title="h2oGPT", analytics_enabled=False) as blocks:
        gr.Markdown(f"## h2oGPT · {ctx.model_name}", elem_id="header")
        turns = gr.State([])
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                h2ogpt_key = gr.Textbox(
                    "", label="API key", type="password", elem_id="h2ogpt_key",
                    visible=ctx.access.enforce_key,
                )
                langchain_mode = gr.Dropdown(
                    collections, value=default_mode, label="Collection", elem_id="langchain_mode",
                    allow_custom_value=False,
                )
                langchain_action = gr.Radio(ACTIONS, value="Query", label="Action",
                                            elem_id="langchain_action")
                top_k_docs = gr.Slider(1, 20, s.top_k_docs, step=1, label="Sources to retrieve",
                                       elem_id="top_k_docs")
                if ctx.documents is not None:
                    DocumentPanel(ctx).build(langchain_mode, h2ogpt_key, blocks)
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(label="Chat", elem_id="chatbot", height=480, buttons=["copy"])
                prompt = gr.Textbox(placeholder="Ask anything (Enter to send)", show_label=False,
                                    elem_id="prompt", lines=1, max_lines=8, autofocus=True)
                model, image = _model_picker(ctx)
                with gr.Row():
                    submit = gr.Button("Submit", variant="primary", elem_id="submit")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    regen = gr.Button("Regenerate", elem_id="regenerate")
                    undo_btn = gr.Button("Undo", elem_id="undo")
                    clear_btn = gr.Button("Clear", elem_id="clear")
                media_endpoints = media.MediaEndpoints(ctx)
                media.build_controls(media_endpoints, prompt, turns, chatbot, h2ogpt_key)
        settings_inputs = _settings_panel(ctx)

        answer_inputs = [turns, langchain_mode, langchain_action, top_k_docs, *settings_inputs, model,
                         h2ogpt_key]
        events = []
        for trigger in (prompt.submit, submit.click):
            events.append(
                trigger(add_turn, [prompt, image, turns], [prompt, image, turns, chatbot], queue=False,
                    api_visibility="private")
                .then(handlers.answer, answer_inputs, [turns, chatbot], api_visibility="private")
            )
        events.append(
            regen.click(regenerate, [turns], [turns, chatbot], queue=False, api_visibility="private")
            .then(handlers.answer, answer_inputs, [turns, chatbot], api_visibility="private")
        )
        stop.click(None, cancels=events, api_visibility="private")
        undo_btn.click(undo, [turns], [prompt, turns, chatbot], cancels=events, queue=False, api_visibility="private")
        clear_btn.click(clear, None, [turns, chatbot], cancels=events, queue=False, api_visibility="private")
        chatbot.clear(clear, None, [turns, chatbot], cancels=events, queue=False, api_visibility="private")

        api.register(ctx)
        media.register_api(media_endpoints)
    return blocks
