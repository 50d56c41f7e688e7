"""Contract messages of text-generation-webui's internal API (/v1/internal/*): the next
token's probabilities, the prompt a chat renders to, and stopping a caller's answers."""

from __future__ import annotations

from src.contract.base import Contract, Requester


class LogitsRequest(Contract):
    """The most likely next tokens of ``prompt``: the softmax of the model's logits, or (with
    ``use_samplers``) the distribution left after the request's samplers, renormalized."""

    prompt: str
    model: str | None = None
    use_samplers: bool = False
    top_logits: int = 50
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0


class LogitsResult(Contract):
    """``(token text, probability)`` pairs, most likely first."""

    probs: list[tuple[str, float]] = []


class ChatPrompt(Contract):
    """The prompt text a chat renders to with the model's chat template."""

    prompt: str


class StopRequest(Contract):
    """Stop every running answer of ``requester``."""

    requester: Requester


class Stopped(Contract):
    """How many running answers were told to stop."""

    stopped: int
