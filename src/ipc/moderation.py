"""The engine's ``moderate`` method (call): :class:`ModerateRequest` -> :class:`ModerateResult`,
answered by src/moderation (a classifier, or the embedding-similarity heuristic)."""

from __future__ import annotations

from src.contract import ModerateRequest
from src.ipc.server import IpcServer
from src.moderation import Moderator


def register_moderation_methods(server: IpcServer, moderator: Moderator) -> None:
    server.register_typed("moderate", ModerateRequest, moderator.moderate)
