"""GradioClient: ask a running h2oGPT from a script (docs/gradio_client.md).

    from gradio_ui.client import GradioClient

    client = GradioClient("http://localhost:7860", h2ogpt_key="my-key")
    print(client.question("Who are you?"))
    for piece in client.question_stream("Tell me a story"):
        print(piece, end="", flush=True)
    print(client.query("What does it say about tides?", text=["The tide rises twice a day."]))
    Path("hello.wav").write_bytes(client.speak("Hello there."))
    print(client.transcribe("hello.wav"))
    print(client.question("What is in the picture?", images=["cat.png"], visible_models="my-vlm"))

    chat = client.new_chat()                       # a saved chat, kept in the server's database
    client.question("My name is Ada.", chat_id=chat["chat_id"])
    print(client.question("What is my name?", chat_id=chat["chat_id"]))   # sees the first exchange
    print([c["title"] for c in client.list_chats()])
    Path("chats.json").write_text(client.export_chats())                 # h2oGPT's chat JSON

It wraps the named endpoints (``/submit_nochat_api``, ``/upload_api``, ``/add_file_api`` ...)
of :mod:`gradio_ui.api` with ``gradio_client``. With ``persist=True`` the client keeps the
conversation, so that each question sees the earlier answers; with ``chat_id=`` (from
:meth:`GradioClient.new_chat` or :meth:`GradioClient.list_chats`) the server keeps it, in
a saved chat that the UI's sidebar shows too (for the same user). Errors the server reports
(a bad key, a bad parameter) raise ``gradio_client.exceptions.AppError``.
"""

from __future__ import annotations

import ast
import base64
import json
import mimetypes
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gradio_client import Client, handle_file


class GradioClient:
    """A small, typed front to the gradio_client API of this product."""

    def __init__(
        self,
        src: str = "http://localhost:7860",
        *,
        h2ogpt_key: str | None = None,
        auth: tuple[str, str] | None = None,
        persist: bool = False,
        langchain_mode: str = "MyData",
        verbose: bool = False,
    ) -> None:
        self.src = src
        self.h2ogpt_key = h2ogpt_key
        self.persist = persist
        self.langchain_mode = langchain_mode
        self.client = Client(src, auth=auth, verbose=verbose, download_files=False)
        self.chat_conversation: list[list[str]] = []
        self.last_result: dict[str, Any] = {}

    # --- plain questions ----------------------------------------------------------------
    def question(self, instruction: str, **params: Any) -> str:
        """The model's answer to ``instruction`` (no documents); EvalParams as keywords.
        ``images`` may list image files (sent as data: URIs) for a vision model, chosen with
        ``visible_models``."""
        return self._answer({"instruction": instruction, "langchain_mode": "LLM", **params})

    def question_stream(self, instruction: str, **params: Any) -> Iterator[str]:
        """Yield the answer to ``instruction`` piece by piece as it is generated."""
        yield from self._stream({"instruction": instruction, "langchain_mode": "LLM", **params})

    # --- documents --------------------------------------------------------------------
    def query(self, query: str, *, text: Sequence[str] | str | None = None,
              file: Sequence[str | Path] | str | Path | None = None, **params: Any) -> str:
        """Answer ``query`` from documents: ``text`` is given with the question, ``file``
        is added to the collection (``langchain_mode``, default MyData) first."""
        return self._answer(self._doc_params(query, "Query", text, file, params))

    def query_stream(self, query: str, *, text: Sequence[str] | str | None = None,
                     file: Sequence[str | Path] | str | Path | None = None,
                     **params: Any) -> Iterator[str]:
        """:meth:`query`, streamed piece by piece."""
        yield from self._stream(self._doc_params(query, "Query", text, file, params))

    def summarize(self, query: str = "", *, text: Sequence[str] | str | None = None,
                  file: Sequence[str | Path] | str | Path | None = None, **params: Any) -> str:
        """A summary of the documents (``query`` focuses it)."""
        return self._answer(self._doc_params(query, "Summarize", text, file, params))

    def extract(self, query: str = "", *, text: Sequence[str] | str | None = None,
                file: Sequence[str | Path] | str | Path | None = None, **params: Any) -> str:
        """What ``query`` asks to extract from the documents."""
        return self._answer(self._doc_params(query, "Extract", text, file, params))

    def add_file(self, path: str | Path, langchain_mode: str | None = None) -> dict[str, Any]:
        """Upload a file and add it to a collection; returns the server's per-file result."""
        _, server_path = self.client.predict(handle_file(str(path)), api_name="/upload_api")
        result: Any = self.client.predict(
            file=server_path, langchain_mode=langchain_mode or self.langchain_mode,
            h2ogpt_key=self.h2ogpt_key or "", api_name="/add_file_api",
        )
        return dict(result)

    def add_text(self, text: str, langchain_mode: str | None = None, name: str = "") -> dict[str, Any]:
        """Add ``text`` as a document to a collection."""
        result: Any = self.client.predict(
            text=text, langchain_mode=langchain_mode or self.langchain_mode, source=name,
            h2ogpt_key=self.h2ogpt_key or "", api_name="/add_text",
        )
        return dict(result)

    def get_sources(self, langchain_mode: str | None = None) -> list[str]:
        """The sources (file names) in a collection."""
        result: Any = self.client.predict(
            langchain_mode=langchain_mode or self.langchain_mode, h2ogpt_key=self.h2ogpt_key or "",
            api_name="/get_sources_api",
        )
        return list(result)

    def delete_sources(self, sources: Sequence[str], langchain_mode: str | None = None) -> list[str]:
        """Delete sources from a collection; returns the ones that were deleted."""
        result: Any = self.client.predict(
            sources=list(sources), langchain_mode=langchain_mode or self.langchain_mode,
            h2ogpt_key=self.h2ogpt_key or "", api_name="/delete_sources",
        )
        return list(result)

    def get_document(self, source: str, langchain_mode: str | None = None) -> dict[str, Any]:
        """One source's chunks: {source, chunks: [{content, page, chunk_id}]}."""
        result: Any = self.client.predict(
            source=source, langchain_mode=langchain_mode or self.langchain_mode,
            h2ogpt_key=self.h2ogpt_key or "", api_name="/get_document_api",
        )
        return dict(result)

    # --- speech and images ------------------------------------------------------------
    def transcribe(self, audio: str | Path) -> str:
        """The transcript of an audio file (wav, mp3, m4a, ogg/opus, webm, flac)."""
        return str(self.client.predict(handle_file(str(audio)), self.h2ogpt_key or "",
                                       api_name="/transcribe_audio_api"))

    def speak(self, text: str, voice: str = "", speed: float = 1.0, response_format: str = "wav") -> bytes:
        """``text`` spoken by a piper voice, as the bytes of an audio file (wav by default)."""
        payload = {"text": text, "voice": voice, "speed": speed, "response_format": response_format}
        if self.h2ogpt_key:
            payload["h2ogpt_key"] = self.h2ogpt_key
        return base64.b64decode(self.client.predict(json.dumps(payload), api_name="/speak_text_api"))

    def generate_image(self, prompt: str, **params: Any) -> list[bytes]:
        """PNG images of ``prompt`` (``n``, ``size``, ``model``, ``seed``, ``num_inference_steps``)."""
        payload = {"prompt": prompt, **params}
        if self.h2ogpt_key:
            payload["h2ogpt_key"] = self.h2ogpt_key
        images = self.client.predict(json.dumps(payload), api_name="/generate_image_api")
        return [base64.b64decode(b) for b in images]

    # --- models -----------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """Names of the models this server answers with."""
        models = ast.literal_eval(self.client.predict(api_name="/model_names"))
        return [str(m["base_model"]) for m in models]

    def count_tokens(self, text: str) -> int:
        return int(self.client.predict(text=text, h2ogpt_key=self.h2ogpt_key or "", api_name="/count_tokens"))

    # --- saved chats ------------------------------------------------------------------
    def new_chat(self, title: str = "") -> dict[str, Any]:
        """A new saved chat: {chat_id, title, created_at, updated_at, exchanges}. Pass its
        ``chat_id`` to :meth:`question` (or any method here) to append to it."""
        return dict(self._chat_call("/new_chat", title=title))

    def list_chats(self, search: str = "") -> list[dict[str, Any]]:
        """Your saved chats, newest first (``search`` matches titles, questions and answers)."""
        return list(self._chat_call("/list_chats", search=search))

    def get_chat(self, chat_id: str) -> dict[str, Any]:
        """One saved chat with its ``exchanges`` (question, answer, sources, model, collection,
        action, settings)."""
        return dict(self._chat_call("/get_chat", chat_id=chat_id))

    def rename_chat(self, chat_id: str, title: str) -> dict[str, Any]:
        return dict(self._chat_call("/rename_chat", chat_id=chat_id, title=title))

    def delete_chat(self, chat_id: str) -> dict[str, Any]:
        """Delete a saved chat (:meth:`restore_chat` undoes it for 10 minutes)."""
        return dict(self._chat_call("/delete_chat", chat_id=chat_id))

    def restore_chat(self, chat_id: str) -> dict[str, Any]:
        return dict(self._chat_call("/restore_chat", chat_id=chat_id))

    def export_chats(self, chat_ids: Sequence[str] | None = None, fmt: str = "json") -> str:
        """Your chats (all, or ``chat_ids``) as h2oGPT's chat JSON text or (``fmt='markdown'``) Markdown."""
        return str(self._chat_call("/export_chats", chat_ids=list(chat_ids or []), fmt=fmt))

    def import_chats(self, data: str | dict[str, Any]) -> list[dict[str, Any]]:
        """Add chats from h2oGPT's chat JSON (text or the parsed dict); returns the new chats."""
        text = data if isinstance(data, str) else json.dumps(data)
        return list(self._chat_call("/import_chats", data=text))

    def _chat_call(self, api_name: str, **kwargs: Any) -> Any:
        return self.client.predict(**kwargs, h2ogpt_key=self.h2ogpt_key or "", api_name=api_name)

    # --- internals --------------------------------------------------------------------
    def _doc_params(self, query: str, action: str, text: Sequence[str] | str | None,
                    file: Sequence[str | Path] | str | Path | None,
                    params: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"instruction": query, "langchain_action": action, **params}
        if text:
            values["text_context_list"] = [text] if isinstance(text, str) else list(text)
            values.setdefault("langchain_mode", "LLM")
        if file:
            mode = values.setdefault("langchain_mode", self.langchain_mode)
            files = [file] if isinstance(file, (str, Path)) else list(file)
            names = []
            for path in files:
                names.extend(self.add_file(path, mode).get("sources", []))
            values.setdefault("document_choice", names)
        values.setdefault("langchain_mode", self.langchain_mode)
        return values

    @staticmethod
    def image_data_uri(image: str | Path) -> str:
        """An image for the ``images`` parameter: a file path becomes a data: URI; a data: URI
        or an http(s) URL is passed as is."""
        text = str(image)
        if text.startswith(("data:", "http://", "https://")):
            return text
        path = Path(image)
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"

    def _payload(self, values: dict[str, Any]) -> str:
        if values.get("images"):
            values["images"] = [self.image_data_uri(image) for image in values["images"]]
        if self.persist:
            values.setdefault("chat_conversation", list(self.chat_conversation))
        if self.h2ogpt_key:
            values["h2ogpt_key"] = self.h2ogpt_key
        return json.dumps(values)

    def _remember(self, values: dict[str, Any], result: dict[str, Any]) -> None:
        self.last_result = result
        if self.persist:
            self.chat_conversation.append([str(values.get("instruction", "")), result["response"]])

    def _answer(self, values: dict[str, Any]) -> str:
        values = {**values, "stream_output": False}
        text = self.client.predict(self._payload(values), api_name="/submit_nochat_plain_api")
        result = ast.literal_eval(text)
        self._remember(values, result)
        return str(result["response"])

    def _stream(self, values: dict[str, Any]) -> Iterator[str]:
        job = self.client.submit(self._payload(values), api_name="/submit_nochat_api")
        sent = ""
        result: dict[str, Any] = {}
        for text in job:
            result = ast.literal_eval(text)
            response = str(result["response"])
            if response.startswith(sent) and len(response) > len(sent):
                yield response[len(sent):]
                sent = response
        final = ast.literal_eval(job.result()) if not result.get("finish_reason") else result
        if str(final["response"]) != sent and str(final["response"]).startswith(sent):
            yield str(final["response"])[len(sent):]
        self._remember(values, final)
