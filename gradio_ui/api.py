"""The named endpoints of the gradio_client API (stable names; docs/gradio_client.md).

Every endpoint is a typed function registered with ``gr.api`` in the UI's Blocks. Calls
that use the engine or the documents need the API key when ``--enforce_h2ogpt_ui_key``
is on: inside the parameter dict (``h2ogpt_key``) for the submit endpoints, as the last
argument elsewhere. Bad input and bad keys raise ``gr.Error``: ``gradio_client`` raises
``AppError`` with the message. Results that h2oGPT clients parse with
``ast.literal_eval`` (submit, model_names) are ``str(dict)`` / ``str(list)``, as in h2oGPT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from gradio_ui.context import BadRequest, UIContext, gradio_errors, parse_param_dict
from gradio_ui.documents import Documents, requester
from gradio_ui.saved_chats import SavedChats
from gradio_ui.saved_chats import exchange_from_params as saved_exchange
from gradio_ui.saved_chats import register_api as register_chat_api
from src.evaluate import EvalChunk
from src.ipc.ops import count_tokens
from src.params import EvalParams

log = logging.getLogger(__name__)

KEY_FIELD = "h2ogpt_key"
CHAT_FIELD = "chat_id"


def result_dict(chunk: EvalChunk | None) -> dict[str, Any]:
    """What the submit endpoints return for one step of an answer."""
    if chunk is None:
        return {"response": "", "sources": [], "prompt_tokens": 0, "completion_tokens": 0,
                "finish_reason": None}
    return {
        "response": chunk.response,
        "sources": chunk.sources,
        "prompt_tokens": chunk.prompt_tokens,
        "completion_tokens": chunk.completion_tokens,
        "finish_reason": chunk.finish_reason,
    }


class Endpoints:
    """The endpoint functions, bound to the services of this process."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.docs = Documents(ctx)
        self.chats = SavedChats(ctx)

    def _params(self, payload: str, request: gr.Request | None = None) -> tuple[EvalParams, str]:
        """The EvalParams of a submit call and the saved chat it continues ('' for none).

        With a ``chat_id``, the chat's exchanges are the conversation (unless the call
        gives its own ``chat_conversation``) and the answer is saved to the chat."""
        values = parse_param_dict(payload)
        self.ctx.access.check_key(values.pop(KEY_FIELD, None))
        chat_id = values.pop(CHAT_FIELD, None) or ""
        if not isinstance(chat_id, str):
            raise BadRequest("chat_id must be a string (an id from /new_chat or /list_chats)")
        if chat_id and not values.get("chat_conversation"):
            values["chat_conversation"] = self.chats.store.history(self.chats.owner(request), chat_id)
        return EvalParams.model_validate(values), chat_id

    def _save(self, chat_id: str, params: EvalParams, last: EvalChunk | None, request: gr.Request | None) -> None:
        if chat_id and last is not None:
            result = result_dict(last)
            self.chats.store.append(self.chats.owner(request), chat_id,
                                    saved_exchange(params, result, self.chats.model_name(params), self.ctx.settings))

    def submit_nochat_api(self, params: str, request: gr.Request) -> Iterator[str]:
        """Answer a dict of EvalParams (JSON or h2oGPT's str(dict) text, with h2ogpt_key
        when keys are enforced). Streams str(dict) results with the answer so far; the last
        one has the full `response`, its `sources`, token counts and `finish_reason`."""
        with gradio_errors():
            eval_params, chat_id = self._params(params, request)
            last: EvalChunk | None = None
            user = requester(self.ctx, request)
            extra = {CHAT_FIELD: chat_id} if chat_id else {}
            with closing(self.ctx.evaluator.evaluate(eval_params, user=user)) as chunks:
                for chunk in chunks:
                    last = chunk
                    if chunk.finish_reason is not None:
                        self._save(chat_id, eval_params, chunk, request)
                    yield str({**result_dict(chunk), **extra})
            if last is None:
                yield str({**result_dict(None), **extra})

    def submit_nochat_plain_api(self, params: str, request: gr.Request) -> str:
        """Like /submit_nochat_api, without streaming: one str(dict) with `response` and `sources`."""
        with gradio_errors():
            eval_params, chat_id = self._params(params, request)
            eval_params = eval_params.model_copy(update={"stream_output": False})
            last: EvalChunk | None = None
            user = requester(self.ctx, request)
            with closing(self.ctx.evaluator.evaluate(eval_params, user=user)) as chunks:
                for chunk in chunks:
                    last = chunk
            self._save(chat_id, eval_params, last, request)
            return str({**result_dict(last), **({CHAT_FIELD: chat_id} if chat_id else {})})

    def model_names(self) -> str:
        """The served models as str(list of dicts) with `base_model`, `prompt_type`,
        `max_seq_len`, `inference_server` and `vision` (it reads images)."""
        s = self.ctx.settings
        return str([{
            "base_model": backend.name,
            "prompt_type": s.prompt_type,
            "max_seq_len": backend.context_window,
            "inference_server": s.inference_server,
            "vision": backend.capabilities.vision,
        } for backend in self.ctx.evaluator.registry])

    def system_hash(self) -> str:
        """The git commit (or version) of the running code."""
        return self.ctx.system_hash

    def count_tokens(self, text: str, h2ogpt_key: str = "") -> int:
        """Tokens `text` takes in the served model's tokenizer (no special tokens): the code
        of the API's /tokenize."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if not isinstance(text, str):
                raise BadRequest("text must be a string")
            return count_tokens(self.ctx.evaluator, text)


    # --- documents ------------------------------------------------------------------------
    def upload_api(self, file: str | None) -> tuple[str, str]:
        """Upload one file (gradio_client: handle_file(path)); returns (file name, server path)
        to pass to /add_file_api."""
        if not file:
            raise gr.Error("no file uploaded")
        path = str(file)
        return path.rsplit("/", 1)[-1], path

    def add_file_api(self, file: str, langchain_mode: str = "MyData", chunk: bool = True,
                     chunk_size: int = 0, h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """Add a file uploaded with /upload_api to a collection. Returns {files: [{source,
        status, chunks, reason}], sources, summary}; a file that cannot be read is reported
        with status 'failed' and its reason."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.docs.add_file(file, "", langchain_mode, requester(self.ctx, request),
                                      chunk, chunk_size)

    def add_text(self, text: str, langchain_mode: str = "MyData", source: str = "", chunk: bool = True,
                 chunk_size: int = 0, h2ogpt_key: str = "", request: gr.Request | None = None) -> dict:
        """Add text as a document named `source` to a collection (same result as /add_file_api)."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.docs.add_text(text, source, langchain_mode, requester(self.ctx, request),
                                      chunk, chunk_size)

    def get_sources_api(self, langchain_mode: str = "MyData", h2ogpt_key: str = "",
                        request: gr.Request | None = None) -> list[str]:
        """The sources (file names) of a collection, sorted."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.docs.sources(langchain_mode, requester(self.ctx, request))

    def delete_sources(self, sources: list[str], langchain_mode: str = "MyData", h2ogpt_key: str = "",
                       request: gr.Request | None = None) -> list[str]:
        """Delete sources from a collection; returns the ones that were found and deleted."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            if isinstance(sources, str):
                sources = [sources]
            return self.docs.delete_sources(list(sources), langchain_mode, requester(self.ctx, request))

    def get_document_api(self, source: str, langchain_mode: str = "MyData", h2ogpt_key: str = "",
                         request: gr.Request | None = None) -> dict:
        """One source's text: {source, chunks: [{content, page, chunk_id}]} in document order."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.docs.document(source, langchain_mode, requester(self.ctx, request))

    def rerank(self, query: str, documents: list[str], top_n: int = 0, h2ogpt_key: str = "") -> dict:
        """Score `documents` against `query`, best first (the same as POST /v1/rerank):
        {model, results: [{index, relevance_score, document: {text}}], usage}."""
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            return self.docs.rerank(query, documents, int(top_n or 0))


def register(ctx: UIContext) -> Endpoints:
    """Register the named endpoints in the current Blocks context."""
    endpoints = Endpoints(ctx)
    gr.api(endpoints.submit_nochat_api, api_name="submit_nochat_api", concurrency_limit=None)
    gr.api(endpoints.submit_nochat_plain_api, api_name="submit_nochat_plain_api", concurrency_limit=None)
    gr.api(endpoints.model_names, api_name="model_names", queue=False)
    gr.api(endpoints.system_hash, api_name="system_hash", queue=False)
    gr.api(endpoints.count_tokens, api_name="count_tokens", queue=False)
    with gr.Row(visible=False):
        upload_file = gr.File(label="file", type="filepath")
        upload_name, upload_path = gr.Textbox(label="name"), gr.Textbox(label="path")
        upload_button = gr.Button("upload_api")
    upload_button.click(endpoints.upload_api, [upload_file], [upload_name, upload_path],
                        api_name="upload_api", queue=False)
    for fn in (endpoints.add_file_api, endpoints.add_text, endpoints.get_sources_api,
               endpoints.delete_sources, endpoints.get_document_api, endpoints.rerank):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=4)
    register_chat_api(endpoints.chats)
    return endpoints
