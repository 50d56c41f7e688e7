"""The next token's probabilities (text-generation-webui's /v1/internal/logits), per backend.

Each backend answers in its own dialect, as it samples:

- transformers: one forward pass of the prompt; raw is the softmax of the last position's
  logits; with samplers, the order of :class:`src.engine.sampling.SequenceSampler`
  (temperature, top-k, top-p) and then min-p, renormalized over what is left;
- llama.cpp: llama-server's ``/completion`` with ``n_probs`` (the softmax of the raw logits)
  or ``post_sampling_probs`` (what its sampler chain left, with the request's samplers);
- remote (vLLM, any OpenAI-compatible server): a one-token ``/completions`` with ``logprobs``
  (at most :data:`REMOTE_TOP`, OpenAI's and vLLM's cap); with samplers, they are applied here
  to those top tokens, which is exact when top-k, top-p or min-p keep fewer tokens than came.

A backend without :class:`NextTokenSource` (the vision one) is refused with a 400.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from src.contract import LogitsRequest
from src.errors import InvalidParamsError, RemoteRejectedError

REMOTE_TOP = 20
LOCAL_POOL = 1000  # tokens kept before top-p/min-p on a local model (the rest hold ~no mass)

Probs = list[tuple[str, float]]
Post = Callable[[str, dict[str, Any]], dict[str, Any]]  # POST a JSON body to a path, its JSON answer


@runtime_checkable
class NextTokenSource(Protocol):
    """A backend that can say its next-token distribution."""

    def next_token_probs(self, request: LogitsRequest) -> Probs: ...


def validate(request: LogitsRequest) -> None:
    """Refuse samplers outside their ranges (400 naming the field)."""
    checks = [("top_logits", request.top_logits >= 1), ("temperature", request.temperature >= 0),
              ("top_p", 0 < request.top_p <= 1), ("top_k", request.top_k >= 0),
              ("min_p", 0 <= request.min_p <= 1)]
    for name, ok in checks:
        if not ok:
            raise InvalidParamsError(f"{name} is out of range", param=name)
    if not request.prompt:
        raise InvalidParamsError("prompt must not be empty", param="prompt")


def apply_samplers(probs: Sequence[tuple[str, float]], request: LogitsRequest, temperature: bool = True) -> Probs:
    """``probs`` (most likely first, a distribution or its head) after temperature (unless
    already applied), top-k, top-p and min-p, renormalized to sum to 1."""
    ranked = [(t, p) for t, p in probs if p > 0]
    if not ranked:
        return []
    if temperature and request.temperature != 1.0:
        if request.temperature <= 0:  # greedy: the most likely token only
            return [(ranked[0][0], 1.0)]
        top = math.log(ranked[0][1])  # relative to the most likely: no overflow at a tiny temperature
        ranked = _normalized([(t, math.exp((math.log(p) - top) / request.temperature)) for t, p in ranked])
    if request.top_k:
        ranked = ranked[:request.top_k]
    if request.top_p < 1.0:
        ranked = _normalized(ranked)
        kept, total = [], 0.0
        for token, p in ranked:  # the smallest set reaching top_p
            kept.append((token, p))
            total += p
            if total >= request.top_p - 1e-9:  # float sums: 0.5 + 0.3 reaches 0.8
                break
        ranked = kept
    if request.min_p > 0:
        floor = ranked[0][1] * request.min_p
        ranked = [(t, p) for t, p in ranked if p >= floor]
    return _normalized(ranked)


def _normalized(probs: Sequence[tuple[str, float]]) -> Probs:
    total = sum(p for _, p in probs)
    return [(t, p / total) for t, p in probs] if total > 0 else list(probs)


# --- transformers ---------------------------------------------------------------------------
def local_probs(model: Any, tokenizer: Any, prompt_ids: Sequence[int], request: LogitsRequest) -> Probs:
    """One forward pass of ``prompt_ids`` on a transformers model (no KV cache kept)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(torch.tensor([list(prompt_ids)], device=device)).logits[0, -1].float()
    if request.use_samplers and request.temperature <= 0:
        return [(tokenizer.decode([int(torch.argmax(logits))]), 1.0)]
    if request.use_samplers:  # shifted so that a tiny temperature cannot overflow to inf - inf
        logits = (logits - logits.max()) / request.temperature
    probs = torch.softmax(logits, dim=-1)
    pool = request.top_logits if not request.use_samplers else max(request.top_logits, LOCAL_POOL)
    values, ids = torch.topk(probs, min(pool, probs.numel()))
    ranked = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]
    if request.use_samplers:
        ranked = apply_samplers(ranked, request, temperature=False)
    return ranked[:request.top_logits]


# --- llama.cpp ------------------------------------------------------------------------------
def llamacpp_probs(post: Post, request: LogitsRequest) -> Probs:
    """llama-server's own next-token probabilities (``post`` to its root): raw, or after its
    sampler chain."""
    body: dict[str, Any] = {"prompt": request.prompt, "n_predict": 1, "n_probs": request.top_logits,
                            "cache_prompt": False, "stream": False}
    if request.use_samplers:  # every sampler said, or llama.cpp's defaults (top_k 40, ...) apply
        body.update(post_sampling_probs=True, temperature=request.temperature, top_k=request.top_k,
                    top_p=request.top_p, min_p=request.min_p, typical_p=1.0, repeat_penalty=1.0)
    else:
        body.update(temperature=0.0)
    answer = post("/completion", body)
    try:
        step = answer["completion_probabilities"][0]
        if request.use_samplers:  # already normalized over what the chain kept
            return [(str(c["token"]), float(c["prob"])) for c in step.get("top_probs") or []]
        return [(str(c["token"]), math.exp(float(c["logprob"]))) for c in step.get("top_logprobs") or []]
    except (KeyError, IndexError, TypeError, ValueError):
        raise RemoteRejectedError("llama-server returned no probabilities for the next token") from None


# --- remote ---------------------------------------------------------------------------------
def remote_probs(post: Post, model: str, request: LogitsRequest) -> Probs:
    """A remote engine's top log probs of one generated token (``post`` to its /v1 path
    ``/completions``; a server without one is a 400 saying so)."""
    top = min(request.top_logits, REMOTE_TOP)
    body = {"model": model, "prompt": request.prompt, "max_tokens": 1, "logprobs": top, "temperature": 0.0}
    answer = post("/completions", body)
    try:
        alternatives = answer["choices"][0]["logprobs"]["top_logprobs"][0]
    except (KeyError, IndexError, TypeError):
        raise RemoteRejectedError("the inference server returned no log probs for the next token") from None
    ranked = sorted(((str(t), math.exp(float(lp))) for t, lp in dict(alternatives).items()),
                    key=lambda pair: -pair[1])
    if request.use_samplers:
        ranked = apply_samplers(ranked, request)
    return ranked[:request.top_logits]
