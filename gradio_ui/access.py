"""Who may use the UI and the Gradio API: --auth users and --h2ogpt_api_keys keys.

Users come from :class:`src.users.UserStore` (a list or h2oGPT's JSON auth file, open or
closed access). API keys come from ``--h2ogpt_api_keys``: a list, or the path of a JSON
file holding a list; the file is re-read when its modification time changes. Keys are
kept as SHA-256 digests and compared in constant time. With
``--enforce_h2ogpt_ui_key=True`` every UI action and every Gradio API call needs a key;
this is independent of ``--enforce_h2ogpt_api_key``, which guards the OpenAI API.
"""

from __future__ import annotations

import logging

from src.apikeys import ApiKeys
from src.settings import Settings
from src.users import UserStore

log = logging.getLogger(__name__)


class AccessDenied(PermissionError):
    """The request lacks a valid API key or user; the message is safe to show."""


class Access:
    """The access rules of the UI and the Gradio API, built once from the Settings."""

    def __init__(self, settings: Settings) -> None:
        self.users = UserStore(settings.auth, settings.auth_access)
        self.keys = ApiKeys(settings.h2ogpt_api_keys)
        self.enforce_key = settings.enforce_h2ogpt_ui_key
        self.guest_name = settings.guest_name

    @property
    def login_required(self) -> bool:
        return self.users.enabled

    def login(self, user: str, password: str) -> bool:
        """Gradio's login callback: a known pair, or a new user when access is open."""
        return self.users.check(user, password)

    def check_key(self, key: str | None) -> None:
        """Raise AccessDenied unless keys are not enforced or ``key`` is valid."""
        if not self.enforce_key:
            return
        if not key:
            raise AccessDenied("an API key is required (h2ogpt_key)")
        if not self.keys.check(key):
            raise AccessDenied("invalid API key (h2ogpt_key)")
