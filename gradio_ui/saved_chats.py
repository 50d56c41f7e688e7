"""Saved chats for the UI and the gradio_client API, over the process's :class:`ChatStore`.

Who owns a chat: the logged-in user (``--auth``), else a guest. A guest in the browser is
the random token the page keeps in ``localStorage`` (``gr.BrowserState``, encrypted with a
secret kept in the database, so it survives reloads and restarts, and every instance on
one ``--database_url`` reads it); a guest through gradio_client is that client's session.

Endpoints (each takes ``h2ogpt_key`` last when ``--enforce_h2ogpt_ui_key`` is on):

- ``/new_chat(title)`` -> chat dict; ``/list_chats(search)`` -> [chat dicts], newest first;
- ``/get_chat(chat_id)`` -> chat dict with ``exchanges`` (question, answer, sources, model,
  collection, action, settings); ``/rename_chat(chat_id, title)``; ``/delete_chat(chat_id)``
  and ``/restore_chat(chat_id)`` (undo, within 10 minutes);
- ``/export_chats(chat_ids, fmt)`` -> text: h2oGPT's chat JSON (``fmt='json'``) or Markdown;
  ``chat_ids`` empty exports all; ``/import_chats(data)`` -> the new chats;
- ``/submit_nochat_api`` and ``/submit_nochat_plain_api`` take ``chat_id`` in their dict:
  the chat's exchanges become the conversation and the answer is saved to it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from typing import Any

import gradio as gr

from gradio_ui.chat import ChatOptions, Turn
from gradio_ui.context import BadRequest, UIContext, gradio_errors
from src.params import EvalParams
from src.settings import Settings
from src.storage.chats import Chat, ChatOwner, ChatStore, ChatSummary, Exchange

log = logging.getLogger(__name__)

GUEST_TOKEN = re.compile(r"^[0-9a-f]{32}$")
BROWSER_SECRET = "ui_browser_state"
SETTINGS_FIELDS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "system_prompt",
                   "top_k_docs", "document_choice")


class ChatsDisabledError(BadRequest):
    """Saving chats is off on this server (--save_chats=False)."""

    def __init__(self) -> None:
        super().__init__("saving chats is off on this server (--save_chats=False)")


def owner_of(request: gr.Request | None, guest_token: str = "") -> ChatOwner | None:
    """The logged-in user; else the browser's guest token; else the client session (API).
    None when nobody can be told apart (no request)."""
    username = getattr(request, "username", None) if request is not None else None
    if username:
        return ChatOwner("user", str(username))
    if guest_token and GUEST_TOKEN.match(guest_token):
        return ChatOwner("guest", guest_token)
    session = getattr(request, "session_hash", None) if request is not None else None
    return ChatOwner("guest", f"session-{session}") if session else None


def summary_dict(summary: ChatSummary) -> dict[str, Any]:
    return {"chat_id": summary.id, "title": summary.title, "created_at": summary.created_at,
            "updated_at": summary.updated_at, "exchanges": summary.exchanges}


def chat_dict(chat: Chat) -> dict[str, Any]:
    return {**summary_dict(chat.summary), "exchanges": [asdict(e) for e in chat.exchanges]}


def used_settings(params: EvalParams, defaults: Settings) -> dict[str, Any]:
    """The settings an answer was made with: the call's, else the server's flag defaults."""
    used = {}
    for name in SETTINGS_FIELDS:
        value = getattr(params, name, None)
        used[name] = value if value is not None else getattr(defaults, name, None)
    return used


def exchange_of(turn: Turn, options: ChatOptions, params: EvalParams, model: str, defaults: Settings) -> Exchange:
    """What is saved of one answered turn."""
    return Exchange(turn.question, turn.answer, list(turn.sources), model, options.langchain_mode,
                    options.langchain_action, used_settings(params, defaults))


def exchange_from_params(params: EvalParams, result: dict[str, Any], model: str, defaults: Settings) -> Exchange:
    return Exchange(params.instruction, str(result.get("response") or ""), list(result.get("sources") or []),
                    model, params.langchain_mode or defaults.langchain_mode,
                    params.langchain_action or "Query", used_settings(params, defaults))


def turns_of(chat: Chat) -> list[Turn]:
    return [Turn(e.question, e.answer, sources=list(e.sources), model=e.model) for e in chat.exchanges]


class SavedChats:
    """The store with the checks both front-ends need."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    @property
    def enabled(self) -> bool:
        return self.ctx.chats is not None

    @property
    def store(self) -> ChatStore:
        if self.ctx.chats is None:
            raise ChatsDisabledError()
        return self.ctx.chats

    def owner(self, request: gr.Request | None, guest_token: str = "") -> ChatOwner:
        owner = owner_of(request, guest_token)
        if owner is None:
            raise BadRequest("cannot tell whose chats these are (no session)")
        return owner

    def saves(self, owner: ChatOwner) -> bool:
        """Whether this owner's exchanges are saved (visitors not when --guest_chat_ttl_hours=0)."""
        return self.ctx.chats is not None and (not owner.is_guest or self.ctx.chats.saves_guests)

    def model_name(self, params: EvalParams) -> str:
        chosen = params.visible_models
        names = self.ctx.evaluator.registry.names
        if isinstance(chosen, list):
            chosen = chosen[0] if chosen else None
        if isinstance(chosen, int) and 0 <= chosen < len(names):
            return str(names[chosen])
        return chosen if isinstance(chosen, str) and chosen else self.ctx.model_name

    # --- gradio_client endpoints -------------------------------------------------------------
    def new_chat(self, title: str = "", h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """Start an empty saved chat; pass its `chat_id` to /submit_nochat_api to fill it."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return summary_dict(self.store.create(self.owner(request), title or ""))

    def list_chats(self, search: str = "", h2ogpt_key: str = "", request: gr.Request | None = None) -> list[dict]:
        """Your saved chats, newest first: {chat_id, title, created_at, updated_at, exchanges};
        `search` matches titles, questions and answers."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return [summary_dict(s) for s in self.store.list_chats(self.owner(request), search or "")]

    def get_chat(self, chat_id: str, h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """One of your chats with its exchanges (question, answer, sources, model, collection,
        action, settings)."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return chat_dict(self.store.get(self.owner(request), chat_id))

    def rename_chat(self, chat_id: str, title: str, h2ogpt_key: str = "",
                    request: gr.Request | None = None) -> dict:
        """Give one of your chats a new title."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return summary_dict(self.store.rename(self.owner(request), chat_id, title))

    def delete_chat(self, chat_id: str, h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """Delete one of your chats (/restore_chat undoes it for 10 minutes)."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return summary_dict(self.store.delete(self.owner(request), chat_id))

    def restore_chat(self, chat_id: str, h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """Bring back a chat deleted in the last 10 minutes."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return summary_dict(self.store.restore(self.owner(request), chat_id))

    def export_chats(self, chat_ids: list[str] | None = None, fmt: str = "json", h2ogpt_key: str = "",
                     request: gr.Request | None = None) -> str:
        """Your chats (all when `chat_ids` is empty) as h2oGPT's chat JSON text (`fmt='json'`:
        {title: [[question, answer], ...]}) or as Markdown (`fmt='markdown'`)."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.export_text(self.owner(request), chat_ids, fmt)

    def import_chats(self, data: str, h2ogpt_key: str = "", request: gr.Request | None = None) -> list[dict]:
        """Add chats from h2oGPT's chat JSON text; returns the new chats."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return [summary_dict(s) for s in self.import_text(self.owner(request), data)]

    # --- shared by the sidebar ---------------------------------------------------------------
    def export_text(self, owner: ChatOwner, chat_ids: list[str] | None, fmt: str) -> str:
        if isinstance(chat_ids, str):
            chat_ids = [chat_ids]
        ids = [str(c) for c in chat_ids] if chat_ids else None
        if fmt == "json":
            return json.dumps(self.store.export_json(owner, ids), indent=2, ensure_ascii=False)
        if fmt in ("markdown", "md"):
            return self.store.export_markdown(owner, ids)
        raise BadRequest("fmt must be 'json' or 'markdown'")

    def import_text(self, owner: ChatOwner, data: str) -> list[ChatSummary]:
        try:
            parsed = json.loads(data)
        except (TypeError, json.JSONDecodeError):
            raise BadRequest("the chats are not JSON (expected h2oGPT's exported chats)") from None
        return self.store.import_json(owner, parsed)


def register_api(chats: SavedChats) -> None:
    """The chat endpoints, in the current Blocks context."""
    for fn in (chats.new_chat, chats.list_chats, chats.get_chat, chats.rename_chat, chats.delete_chat,
               chats.restore_chat, chats.export_chats, chats.import_chats):
        gr.api(fn, api_name=fn.__name__, queue=False)
