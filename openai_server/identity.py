"""Who an API request acts for: the owner of its files and its personal collections (MyData).

- With ``--auth``, a ``user`` of ``username:password`` (the request's ``user`` field, or the
  ``X-H2OGPT-User`` header on endpoints without one) that checks out is that user: the same
  MyData as in the UI. A wrong password is a 401; with ``--auth_access=closed`` a user is
  required. In open mode a ``user`` without a colon (OpenAI's free-form end-user id) is
  not a login and is ignored.
- Else, with ``--enforce_h2ogpt_api_key``, the API key is the user: a persistent identity
  named after the key's SHA-256 digest (the key itself is never stored or logged).
- Else (keys not enforced), each distinct key (the SDK's "EMPTY" included) is an anonymous
  user whose personal collections are temporary (removed when the server stops).

Files of /v1/files belong to the API key in every case (:func:`file_owner`).
"""

from __future__ import annotations

from collections.abc import Mapping

from openai_server.auth import Authenticator, request_key
from openai_server.errors import AuthenticationError
from src.apikeys import key_digest
from src.contract import Requester

USER_HEADER = "x-h2ogpt-user"


Identity = Requester  # who a request acts for, as the engine contract carries it


def key_name(headers: Mapping[str, str]) -> str:
    """A stable, non-reversible name for the request's API key (no key: the empty one)."""
    return key_digest(request_key(headers) or "").hex()[:32]


def file_owner(headers: Mapping[str, str]) -> str:
    """The folder name that scopes /v1/files to the request's API key."""
    return "k-" + key_name(headers)


def identify(auth: Authenticator, headers: Mapping[str, str], user: str | None = None) -> Identity:
    """The identity a request acts for (see the module docstring); raises AuthenticationError."""
    given = user or headers.get(USER_HEADER) or None
    if auth.users is not None:  # --auth_access=closed: a known login is required
        auth.check_user(given)
        assert given is not None
        return Identity(given.split(":", 1)[0])
    store = auth.user_store
    if store is not None and given and ":" in given:  # open access: a login checks or registers
        if not store.check_pair(given):
            raise AuthenticationError("user must be 'username:password' of a known user",
                                      param="user", code="invalid_user")
        return Identity(given.split(":", 1)[0])
    if auth.keys is not None:
        return Identity("apikey:" + key_name(headers))
    return Identity("api-" + key_name(headers)[:16], scratch=True)
