"""The base of every contract message, and who asks (src/contract/__init__.py says what the
contract is)."""

from __future__ import annotations

import msgspec


class Contract(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every contract message: unknown fields are refused, defaults are not sent."""


class Requester(Contract, kw_only=False):
    """Who asks: their personal collections (MyData) are theirs. ``scratch``: a throwaway
    identity (an anonymous request) whose collections go away with it."""

    name: str
    scratch: bool = False
