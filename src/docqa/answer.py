"""Document actions for evaluate(): Query, Summarize, Extract, and the no-LLM source listings.

:class:`DocumentAnswerer` turns the request's parameters into a :class:`DocPlan`: either
parameters whose ``text_context_list`` holds the chunks that fit the model's context
window (the evaluator then streams the answer as usual), or a ready stream of chunks
(Extract's per-group results, TopKSources / RelSources listings, "no documents").
Map steps (Summarize over many chunks, Extract) are submitted all at once through
``complete_many``, so the engine runs them as one batch; the plan's ``steps`` then yield
an empty step as soon as the first has started (a server can start its response), and a
cancelled request stops them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from src.docqa.collections import NO_COLLECTION_MODES, DocQAError, Requester
from src.docqa.store import Hit
from src.params import EvalParams

log = logging.getLogger(__name__)

MAX_SUMMARIZE_CHUNKS = 64
ANSWER_RESERVE = 512  # tokens kept for the answer when max_new_tokens is larger
NO_DOCS_NOTE = "No document matched the question; answered by the LLM without documents."
NO_DOCS_ANSWER = "No matching documents were found in {mode}."
SUMMARIZE_MAP = "Write a concise summary of the documents above"
SUMMARIZE_REDUCE = "Combine the summaries above into one concise summary"
EXTRACT_MAP = "Extract the key facts of the documents above as a short list"

# complete_many([params, ...]) -> None once the first has started, then (text, prompt_tokens,
# completion_tokens) of each generation run to its end, in order.
CompleteMany = Callable[[list[EvalParams]], Iterator[tuple[str, int, int] | None]]
CountTokens = Callable[[str], int]


@dataclass
class Step:
    """A ready piece of answer (used when no final LLM stream is needed)."""

    delta: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class DocPlan:
    """What evaluate() does next: yield ``steps`` as they are (if any), then stream ``params``
    through the LLM (if set; a map step may set them as its steps end: ``reduce``)."""

    params: EvalParams | None
    sources: list[dict[str, Any]]
    steps: Iterator[Step] | None = None
    reduce: bool = field(default=False)


def source_dict(hit: Hit) -> dict[str, Any]:
    """The public shape of a source: ``{source, page, content, score}``; score = cosine similarity.
    A chunk of an audio file also has ``start`` and ``end``: the seconds it covers."""
    page = hit.metadata.get("page")
    span = {k: float(hit.metadata[k]) for k in ("start", "end") if isinstance(hit.metadata.get(k), (int, float))}
    return {
        "source": str(hit.metadata.get("source", "")),
        "page": int(page) if isinstance(page, int) and page > 0 else None,
        "content": hit.content,
        "score": round(1.0 - hit.distance, 4),
        **span,
    }


def context_hits(texts: list[str]) -> list[Hit]:
    """``text_context_list`` entries as chunks (they need no database)."""
    return [
        Hit(f"text_context_list-{i}", text, {"source": f"text_context_list[{i}]", "page": 0}, 0.0)
        for i, text in enumerate(texts) if text.strip()
    ]


def groups(hits: list[Hit], count_tokens: CountTokens, budget: int) -> list[list[Hit]]:
    """Consecutive hits packed into groups of at most ``budget`` tokens (oversized ones alone)."""
    packed: list[list[Hit]] = []
    current: list[Hit] = []
    used = 0
    for hit in hits:
        cost = count_tokens(hit.content) + 4
        if current and used + cost > budget:
            packed.append(current)
            current, used = [], 0
        current.append(hit)
        used += cost
    if current:
        packed.append(current)
    return packed


class DocumentAnswerer:
    """Plans evaluate()'s document work; ``docs`` may be None (text_context_list only)."""

    def __init__(self, docs: Any, complete_many: CompleteMany, count_tokens: CountTokens,
                 max_seq_len: int) -> None:
        self.docs = docs
        self.complete_many = complete_many
        self.count_tokens = count_tokens
        self.max_seq_len = max_seq_len

    def wants(self, params: EvalParams) -> bool:
        """True when the call involves documents (a collection, or text_context_list)."""
        mode = params.langchain_mode or "LLM"
        return bool(params.text_context_list) or (mode not in NO_COLLECTION_MODES and self.docs is not None)

    def budget(self, params: EvalParams) -> int:
        """Tokens left for documents once the question and the answer are accounted for."""
        question = self.count_tokens(params.user_message() + (params.system_prompt or ""))
        history = sum(self.count_tokens(str(turn)) for turn in params.chat_conversation)
        answer = min(params.max_new_tokens or ANSWER_RESERVE, ANSWER_RESERVE)
        return max(self.max_seq_len - answer - question - history - 128, 64)

    # --- retrieval ------------------------------------------------------------------------
    def _collection_hits(self, params: EvalParams, user: Requester | None, query: str) -> list[Hit]:
        mode = params.langchain_mode or "LLM"
        if mode in NO_COLLECTION_MODES or self.docs is None:
            return []
        k = params.top_k_docs or 3
        if params.langchain_action != "Query":
            limit = MAX_SUMMARIZE_CHUNKS
            if query and params.document_subset == "Relevant":
                return self.docs.retrieve(mode, query, limit, user, params.document_choice, max_distance=2.0,
                                          hybrid=params.hybrid_search, rerank=params.rerank)
            return list(self.docs.chunks(mode, user, params.document_choice, limit=limit))
        if params.document_subset == "TopKSources" or not query:
            return list(self.docs.chunks(mode, user, params.document_choice, limit=k))
        return list(self.docs.retrieve(mode, query, k, user, params.document_choice,
                                       hybrid=params.hybrid_search, rerank=params.rerank))

    def plan(self, params: EvalParams, user: Requester | None) -> DocPlan:
        """Decide what to answer with; ``params`` already have the server defaults filled in."""
        query = params.instruction or params.instruction_nochat
        hits = context_hits(params.text_context_list) + self._collection_hits(params, user, query)
        mode = params.langchain_mode or "LLM"
        if params.document_subset in ("TopKSources", "RelSources"):
            return self._listing(hits)
        if not hits:
            return self._no_documents(params, mode)
        if params.langchain_action == "Summarize":
            return self._summarize(params, hits)
        if params.langchain_action == "Extract":
            return self._extract(params, hits)
        kept = groups(hits, self.count_tokens, self.budget(params))[0]  # the leading hits that fit
        return DocPlan(self._with_context(params, [h.content for h in kept]),
                       [source_dict(h) for h in kept])

    # --- actions --------------------------------------------------------------------------
    @staticmethod
    def _with_context(params: EvalParams, texts: list[str], instruction: str | None = None) -> EvalParams:
        update: dict[str, Any] = {"text_context_list": texts}
        if instruction is not None:
            update.update(instruction=instruction, instruction_nochat="", iinput="", iinput_nochat="")
        return params.model_copy(update=update)

    def _listing(self, hits: list[Hit]) -> DocPlan:
        sources = [source_dict(h) for h in hits]
        lines = [f"{i}. {s['source']}" + (f" (page {s['page']})" if s["page"] else "")
                 + f" [score {s['score']:.2f}]" for i, s in enumerate(sources, start=1)]
        text = "\n".join(lines) if lines else "No matching documents."
        return DocPlan(None, sources, iter([Step(text)]))

    def _no_documents(self, params: EvalParams, mode: str) -> DocPlan:
        note = {"source": "", "page": None, "content": NO_DOCS_NOTE, "score": 0.0}
        if params.use_llm_if_no_docs:
            return DocPlan(params.model_copy(update={"text_context_list": []}), [note])
        return DocPlan(None, [], iter([Step(NO_DOCS_ANSWER.format(mode=mode))]))

    def _focus(self, params: EvalParams, base: str) -> str:
        instruction = params.instruction or params.instruction_nochat
        return f"{base}, focusing on: {instruction}" if instruction else f"{base}."

    def _summarize(self, params: EvalParams, hits: list[Hit]) -> DocPlan:
        budget = self.budget(params)
        packed = groups(hits, self.count_tokens, budget)
        sources = [source_dict(h) for h in hits]
        if len(packed) == 1:
            return DocPlan(self._with_context(params, [h.content for h in packed[0]],
                                              self._focus(params, SUMMARIZE_MAP)), sources)
        map_params = params.model_copy(update={"stream_output": False, "response_format": "text"})
        plan = DocPlan(None, sources, reduce=True)

        def map_then_reduce() -> Iterator[Step]:
            summaries = []
            for result in self.complete_many([self._with_context(
                    map_params, [h.content for h in group], self._focus(params, SUMMARIZE_MAP))
                    for group in packed]):
                if result is None:
                    yield Step("")  # the map has started
                else:
                    summaries.append(result[0].strip())
            fitted = [s for s in summaries if s]  # reduce (streamed by the evaluator)
            plan.params = self._with_context(params, fitted, self._focus(params, SUMMARIZE_REDUCE))

        plan.steps = map_then_reduce()
        return plan

    def _extract(self, params: EvalParams, hits: list[Hit]) -> DocPlan:
        packed = groups(hits, self.count_tokens, self.budget(params))
        sources = [source_dict(h) for h in hits]
        map_params = params.model_copy(update={"stream_output": False})

        def run() -> Iterator[Step]:
            done = 0
            for result in self.complete_many([self._with_context(
                    map_params, [h.content for h in group], self._focus(params, EXTRACT_MAP))
                    for group in packed]):
                if result is None:
                    yield Step("")  # the map has started
                    continue
                text, prompt_tokens, completion_tokens = result
                yield Step(("\n\n" if done else "") + text.strip(), prompt_tokens, completion_tokens)
                done += 1

        return DocPlan(None, sources, run())


__all__ = ["DocPlan", "DocQAError", "DocumentAnswerer", "Step", "source_dict"]
