"""Authentication for the OpenAI API: API keys (src.apikeys) and --auth users.

With ``--enforce_h2ogpt_api_key=True`` every /v1 route needs a key, sent as
``Authorization: Bearer <key>`` or ``x-api-key: <key>``. Keys are kept as SHA-256
digests and compared with ``secrets.compare_digest``. A keys file (a JSON list, see
h2ogpt_api_keys.json.example) is checked for a new modification time at most every
``reload_seconds``, never read per request. /health and /version stay open.
``--admin_api_key`` is accepted as a key too, and it alone may list, load and unload models
(:meth:`Authenticator.check_admin`).

With ``--auth`` and ``--auth_access=closed``, the request's ``user`` field must be
``username:password`` of a known user (src.users.UserStore).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_server.errors import AuthenticationError, PermissionDeniedAPIError, error_response
from src.apikeys import ApiKeys, key_digest
from src.settings import Settings
from src.users import UserStore

log = logging.getLogger(__name__)


def request_key(headers: Mapping[str, str]) -> str | None:
    """The key of a request: ``Authorization: Bearer <key>`` or ``x-api-key``."""
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key") or None


class Authenticator:
    """What the routes ask: is this key accepted, is this ``user`` allowed."""

    def __init__(self, settings: Settings) -> None:
        self.enforce_key = settings.enforce_h2ogpt_api_key
        self.keys = ApiKeys(settings.h2ogpt_api_keys) if self.enforce_key else None
        self.admin_digest = key_digest(settings.admin_api_key) if settings.admin_api_key else None
        users = UserStore(settings.auth, settings.auth_access)
        self.user_store = users if users.enabled else None  # --auth, open or closed
        self.users = users if users.enabled and settings.auth_access == "closed" else None

    def check_key(self, headers: Mapping[str, str]) -> None:
        """Raise AuthenticationError unless the headers carry an accepted key (when enforced)."""
        if self.keys is None:
            return
        key = request_key(headers)
        if key is None:
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                code="missing_api_key",
            )
        if not (self.keys.check(key) or self.is_admin(key)):
            raise AuthenticationError("invalid API key", code="invalid_api_key")

    def is_admin(self, key: str | None) -> bool:
        return key is not None and self.admin_digest is not None \
            and secrets.compare_digest(key_digest(key), self.admin_digest)

    def check_admin(self, headers: Mapping[str, str]) -> None:
        """With keys enforced, raise unless the headers carry --admin_api_key (401 without a
        valid key, 403 with another one); with keys off, everyone may."""
        if self.keys is None:
            return
        self.check_key(headers)
        if self.is_admin(request_key(headers)):
            return
        how = "the admin key (--admin_api_key)" if self.admin_digest is not None else \
            "the admin key, and this server has none: start it with --admin_api_key"
        raise PermissionDeniedAPIError(f"listing, loading and unloading models needs {how}",
                                       code="admin_key_required")

    def check_user(self, user: str | None) -> None:
        """With --auth_access=closed, raise AuthenticationError unless ``user`` is a known
        ``username:password`` (the request's ``user`` field or the X-H2OGPT-User header)."""
        if self.users is None:
            return
        if not self.users.check_pair(user):
            raise AuthenticationError(
                "this server needs user='username:password' (or the x-h2ogpt-user header) "
                "of a known user",
                param="user", code="invalid_user",
            )


class ApiKeyMiddleware:
    """Checks the API key of every request under /v1 (and ``paths``) before anything else is
    read."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, prefix: str = "/v1",
                 paths: frozenset[str] = frozenset(), open_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.authenticator = authenticator
        self.prefix = prefix
        self.paths = paths  # more protected paths outside the prefix (/tokenize, /metrics)
        self.open_paths = open_paths  # open paths under the prefix (/v1/internal/health)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") == "OPTIONS":  # a CORS preflight carries no key
            await self.app(scope, receive, send)
            return
        if path in self.open_paths:
            await self.app(scope, receive, send)
            return
        if path == self.prefix or path.startswith(self.prefix + "/") or path in self.paths:
            try:
                self.authenticator.check_key(Headers(scope=scope))
            except AuthenticationError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
