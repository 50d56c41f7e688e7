"""The llama.cpp backend: GGUF models on llama.cpp's own server, supervised by the engine.

Design (as Ollama does it): the engine starts ``llama-server`` (built once by
scripts/install_llamacpp.sh) as a child process on a free loopback port and reaches it
through the remote backend (src/engine/remote_backend.py). Why not in-process bindings
(``llama-cpp-python``) with a step loop of our own:

- llama-server already decodes many sequences in one context (parallel slots, continuous
  batching, a unified KV cache), with per-request sampling (temperature, top_p, top_k,
  seed, penalties, logit_bias, stop, token log probs), GBNF grammars and JSON schemas, tool
  calls through the model's chat template, and it stops a generation when its client
  leaves. A Python step loop would re-implement all of it and cross ctypes and copy a
  49,152-float logits row per sequence per step, at 90 tokens/s;
- it is the very server we are measured against (bench/throughput.py), so the
  gap is the cost of our own layers, nothing else;
- a crash in native code takes down the child, not the engine: the supervisor restarts it
  (src/engine/llamacpp_process.py, which also sees that the child never outlives the engine).

The model id stays the same as with transformers; evaluate() and everything above it see a
Backend. What differs is documented in docs/llamacpp.md: guided_regex is written as a GBNF
grammar of the same language (src/engine/regex_gbnf.py; what a grammar cannot say, such as
back references or lookarounds, is a 400 naming it) and guided_grammar is read as GBNF.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from src import tools
from src.contract import LogitsRequest, ModelInfo
from src.engine.backend import model_info
from src.engine.context_fit import fitted, prompt_tokens_at_most
from src.engine.handle import RequestHandle
from src.engine.kv_budget import budget_tokens, cache_type_bytes, kv_bytes_per_token
from src.engine.llamacpp_process import LlamaServer
from src.engine.llamacpp_slots import SlotPool
from src.engine.loopback_http import post_stream
from src.engine.model_source import ModelSource
from src.engine.next_token import llamacpp_probs
from src.engine.regex_gbnf import regex_to_gbnf
from src.engine.remote_backend import Progress, RemoteBackend, StreamedResponse
from src.engine.remote_spec import RemoteSpec
from src.engine.remote_wire import WireDialect, ends_with_assistant, plain_text
from src.engine.types import (
    Capabilities,
    GenerationRequest,
    JsonSchemaFormat,
    Message,
    OutputConstraint,
    SamplingOptions,
    TokenEvent,
)
from src.errors import UnsupportedFeatureError
from src.settings_model import DEFAULT_KV_CACHE_GB

log = logging.getLogger(__name__)

LLAMACPP_VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp is built
#: The samplers of src/params.py EXTRA_SAMPLERS that llama-server reads (its /completion options).
LLAMACPP_SAMPLERS = frozenset({
    "typical_p", "mirostat", "mirostat_tau", "mirostat_eta", "min_keep", "repeat_last_n",
    "dynatemp_range", "dynatemp_exponent", "xtc_probability", "xtc_threshold", "dry_multiplier",
    "dry_base", "dry_allowed_length", "dry_penalty_last_n", "top_n_sigma",
})


def server_path(llamacpp_dict: dict[str, Any] | None = None) -> str | None:
    """The llama-server binary: llamacpp_dict's server_path, $H2OGPT_LLAMA_SERVER, the one
    scripts/install_llamacpp.sh built, or one on PATH; None when there is none."""
    options = llamacpp_dict or {}
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for candidate in (options.get("server_path"), os.environ.get("H2OGPT_LLAMA_SERVER"),
                      str(cache / "h2ogpt" / "llama.cpp" / LLAMACPP_VERSION / "bin" / "llama-server"),
                      shutil.which("llama-server")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def gguf_shape(path: str) -> dict[str, int]:
    """Context length and KV bytes per token (f16 cache) of a GGUF model, from its metadata
    (read directly: transformers' GGUF config loader takes seconds)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def value(key: str, default: int = 0) -> int:
        field = reader.fields.get(key)
        return int(field.contents()) if field is not None else default

    arch = str(reader.fields["general.architecture"].contents())
    heads = value(f"{arch}.attention.head_count", 1)
    config = SimpleNamespace(num_hidden_layers=value(f"{arch}.block_count"), num_attention_heads=heads,
                             num_key_value_heads=value(f"{arch}.attention.head_count_kv", heads),
                             head_dim=value(f"{arch}.attention.key_length"),
                             hidden_size=value(f"{arch}.embedding_length"))
    return {"context_length": value(f"{arch}.context_length", 4096),
            "kv_bytes_per_token": kv_bytes_per_token(config, dtype_bytes=2)}


def cache_sizes(shape: dict[str, int], options: dict[str, Any], parallel: int, kv_cache_gb: float,
                max_seq_len: int | None) -> tuple[int, int]:
    """(context window of one answer, tokens the KV cache may hold; kv_cache_args lays them out
    per slot or shared). The window is n_ctx, else --max_seq_len, else the model's own, at most
    the model's trained context; the cache holds ``parallel`` windows with n_ctx (h2oGPT's
    meaning: per sequence), else the --kv_cache_gb budget (at least one whole window), counted
    in tokens of the cache's type (``cache_type``: a q8_0 cache holds 1.88x the f16 tokens)."""
    per_sequence = int(options.get("n_ctx") or max_seq_len or shape["context_length"])
    trained = int(shape["context_length"])
    if per_sequence > trained:  # llama.cpp would take it, but the model cannot use it
        log.warning("a context of %d per sequence is above the model's trained context; serving %d",
                    per_sequence, trained)
        per_sequence = trained
    if options.get("n_ctx"):
        return per_sequence, per_sequence * parallel
    per_token = cache_type_bytes(shape["kv_bytes_per_token"], options.get("cache_type"))
    budget = budget_tokens(kv_cache_gb, per_token) // 256 * 256
    return per_sequence, max(budget, per_sequence)


def kv_cache_args(per_sequence: int, total: int, parallel: int) -> list[str]:
    """llama-server's KV cache flags: a cache per slot when ``total`` tokens hold every slot's
    whole window, else one cache of ``total`` tokens that all slots share."""
    if total >= parallel * per_sequence:
        return ["-c", str(parallel * per_sequence)]
    return ["-c", str(total), "--kv-unified", "--kv-unified-per-slot", str(per_sequence)]


class LlamaCppDialect(WireDialect):
    """llama-server's reading of OpenAI's wire format: its option names (``repeat_penalty``, no
    minimum length), at least one alternative per log prob, GBNF grammars for choices, regexes
    and grammars, a required tool call as its JSON schema, and a final assistant message
    continued as a text completion (its chat endpoint would start a new turn)."""

    def uses_chat(self, request: GenerationRequest) -> bool:
        return not ends_with_assistant(request.messages) and super().uses_chat(request)

    def sampling_fields(self, options: SamplingOptions, explicit: frozenset[str] | None) -> dict[str, Any]:
        body = super().sampling_fields(options, explicit)
        if "repetition_penalty" in body:
            body["repeat_penalty"] = body.pop("repetition_penalty")
        body.pop("min_tokens", None)  # the backend ignores the end of turn instead (_at_least)
        body.pop("stop", None)  # the backend cuts at stop strings itself, to know which matched
        return body

    def logprob_fields(self, options: SamplingOptions, chat: bool) -> dict[str, Any]:
        fields = super().logprob_fields(options, chat)
        if chat and fields:  # no log probs at all for top_logprobs 0: ask for 1, ChunkReader drops it
            fields["top_logprobs"] = max(int(fields["top_logprobs"]), 1)
        return fields

    def constraint_fields(self, constraint: OutputConstraint | None,
                          as_sent: JsonSchemaFormat | None = None) -> dict[str, Any]:
        if constraint is None:
            return {}
        kind, value = constraint.kind, constraint.value
        if kind == "tool_call":
            if not value["required"]:  # llama.cpp has no grammar for "text or a call": unconstrained
                return {}
            schema = {k: v for k, v in tools.call_schema(value["functions"]).items() if k != "x-guidance"}
            return {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
        if kind == "choice":
            return {"grammar": "root ::= " + " | ".join(json.dumps(str(v)) for v in value)}
        if kind == "grammar":  # llama.cpp reads GBNF
            return {"grammar": value}
        if kind == "regex":
            return {"grammar": regex_to_gbnf(str(value))}
        if kind in ("json_object", "json_schema"):
            return super().constraint_fields(constraint, None)
        raise UnsupportedFeatureError(f"the llama.cpp backend cannot enforce guided_{kind}",
                                      param=f"guided_{kind}")


class LlamaCppBackend(RemoteBackend):
    """A local GGUF model on a supervised llama-server, listed under ``name``. Its
    OpenAI-style stream does not say which stop string ended an answer (only the native
    /completion's ``stopping_word`` does), so stop strings are cut here (``scans_stop``)."""

    scans_stop = True

    def __init__(self, source: ModelSource, name: str, binary: str, options: dict[str, Any],
                 concurrency: int = 16, kv_cache_gb: float = DEFAULT_KV_CACHE_GB, max_seq_len: int | None = None,
                 threads: int = 1, read_timeout: float = 600.0) -> None:
        assert source.gguf_file is not None
        self.gguf = str(Path(source.path) / source.gguf_file)
        shape = gguf_shape(self.gguf)
        parallel = int(options.get("n_parallel") or concurrency)
        per_sequence, total = cache_sizes(shape, options, parallel, kv_cache_gb, max_seq_len)
        self.n_ctx = per_sequence
        # A KV cache per slot when the budget holds every slot's whole window (the default model's
        # 16 x 8,192 tokens fit the default 3 GiB); else one cache all slots share, so one answer
        # may still take the whole window. Measured at 8 streams (bench/llamacpp.py, docs/
        # performance.md): per slot 0.93x a bare 8-slot llama-server, the shared cache 0.82x with
        # a 3x slower first token (llama.cpp saves and clears idle slots at every new request).
        args = ["-m", self.gguf, "--alias", name, *kv_cache_args(per_sequence, total, parallel),
                "-np", str(parallel),
                "-t", str(int(options.get("n_threads") or threads)),
                "-ngl", str(int(options.get("n_gpu_layers") or 0)), "--jinja", "--no-webui", "--log-disable"]
        if options.get("n_batch"):
            args += ["-b", str(int(options["n_batch"]))]
        if options.get("flash_attn") is not None:
            args += ["-fa", "on" if options["flash_attn"] else "off"]
        if options.get("cache_type"):
            args += ["-ctk", str(options["cache_type"]), "-ctv", str(options["cache_type"])]
        self.server = LlamaServer(binary, args)
        self.server.start()
        super().__init__(RemoteSpec("llamacpp", self.server.url + "/v1"), name=name, remote_model=name,
                         context_window=per_sequence, concurrency=parallel, read_timeout=read_timeout)
        self.parallel = parallel
        self.slots = SlotPool(parallel)

    def wire_dialect(self, spec: RemoteSpec) -> WireDialect:
        return LlamaCppDialect(spec)

    def submit(self, request: GenerationRequest, cancel: threading.Event | None = None) -> RequestHandle:
        """The remote backend's submit, after the prompt plus answer is fitted to the window
        (src/engine/context_fit.py): llama.cpp's shared cache would let an answer run past it."""
        return super().submit(self.fit(request), cancel)

    def fit(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` with max_new_tokens fitted to the window; the prompt is tokenized (by
        llama.cpp) only when a bound on its length says that it may not fit."""
        window = self.context_window
        if prompt_tokens_at_most(request) + request.options.max_new_tokens <= window:
            return request
        return fitted(request, self.prompt_tokens(request), window)

    def prompt_tokens(self, request: GenerationRequest) -> int:
        """The prompt's tokens as llama.cpp counts them (its chat template, special tokens added)."""
        if request.prompt_ids:
            return len(request.prompt_ids)
        if request.messages and request.prompt_type != "plain":
            text = self._chat_prompt(request.messages)
        else:
            text = plain_text(request.messages) if request.messages else request.prompt or ""
        return len(self.tokenize(text, add_special_tokens=True))

    @property
    def capabilities(self) -> Capabilities:
        # tools come as a constraint: llama.cpp ignores the tools a model's template lacks
        return Capabilities(logprobs=True, logit_bias=True, constrained_decoding=True, tools=True,
                            samplers=LLAMACPP_SAMPLERS)

    # --- prompts: llama.cpp's own template and tokenizer -------------------------------------
    def _renders_chat(self, request: GenerationRequest) -> bool:
        """A final assistant message to continue: its chat endpoint would start a new turn."""
        return bool(request.messages) and request.prompt_type != "plain" and not self.dialect.uses_chat(request)

    def _chat_prompt(self, messages: Sequence[Message]) -> str:
        """llama.cpp's prompt text of a chat (its /apply-template, with the model's own chat
        template); a final assistant message is continued: the turns before, then its text."""
        if ends_with_assistant(messages):
            return self._template(messages[:-1]) + str(messages[-1].get("content") or "")
        return self._template(messages)

    def _template(self, messages: Sequence[Message]) -> str:
        return str(self._post_root("/apply-template", {"messages": [dict(m) for m in messages]})["prompt"])

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[int]:
        body = {"content": text, "add_special": add_special_tokens}
        return [int(i) for i in self._post_root("/tokenize", body)["tokens"]]

    def detokenize(self, ids: Sequence[int]) -> str:
        return str(self._post_root("/detokenize", {"tokens": list(ids)}).get("content", ""))

    def chat_prompt_ids(self, messages: Sequence[Message], prompt_type: str = "",
                        chat_template: str = "") -> list[int]:
        if prompt_type == "plain":
            return super().chat_prompt_ids(messages, prompt_type)
        if chat_template:
            raise UnsupportedFeatureError("the llama.cpp backend uses the model's own chat template",
                                          param="chat_template")
        return self.tokenize(self._chat_prompt(messages), add_special_tokens=False)

    def next_token_probs(self, request: LogitsRequest) -> list[tuple[str, float]]:
        """llama-server's own probabilities: ``n_probs``, or ``post_sampling_probs``."""
        return llamacpp_probs(self._post_root, request)

    # --- min_new_tokens: llama.cpp has no minimum length ----------------------------------------
    def _post_stream(self, path: str, body: dict[str, Any]) -> contextlib.AbstractContextManager[StreamedResponse]:
        """The child's stream, read with http.client (src/engine/loopback_http.py says why)."""
        return post_stream(self.spec.base_url, path, body, self.read_timeout)

    def _generate(self, handle: RequestHandle, path: str, body: dict[str, Any]) -> Iterator[TokenEvent]:
        """The answer, decoded in the lowest free slot (src/engine/llamacpp_slots.py says why)."""
        slot = self.slots.acquire()
        try:
            if slot is not None:
                body = {**body, "id_slot": slot}
            minimum = handle.request.options.min_new_tokens
            if not minimum:
                yield from super()._generate(handle, path, body)
            else:
                yield from self._at_least(handle, path, body, minimum)
        finally:
            if slot is not None:
                self.slots.release(slot)

    def _at_least(self, handle: RequestHandle, path: str, body: dict[str, Any], minimum: int
                  ) -> Iterator[TokenEvent]:
        """``minimum`` tokens with the end of turn ignored, then (when max_new_tokens allows
        more) a continuation of that text that may end."""
        request = handle.request
        if request.constraint is not None or request.prompt_ids:
            raise UnsupportedFeatureError("min_new_tokens cannot be combined with constrained output or "
                                          "token-id prompts on the llama.cpp backend", param="min_new_tokens")
        total = request.options.max_new_tokens
        more = total > minimum
        progress = Progress(final=not more)
        first = {**body, "ignore_eos": True, "max_tokens": min(minimum, total)}
        yield from self._stream(handle, path, first, path == "/chat/completions", progress)
        if not more or progress.finish != "length" or handle.is_cancelled():
            if more:  # ended early (a stop string, cancelled): say so
                yield TokenEvent("", progress.prompt_tokens, progress.completion_tokens, progress.finish or "stop",
                                 stop_sequence=progress.stop_sequence)
            return
        prompt = (self._chat_prompt(request.messages) if request.messages and request.prompt_type != "plain"
                  else plain_text(request.messages) if request.messages else request.prompt or "")
        rest = dataclasses.replace(request, messages=(), prompt_ids=(), prompt=prompt + progress.text,
                                   options=dataclasses.replace(request.options, min_new_tokens=0,
                                                               max_new_tokens=total - minimum))
        path, second = self.dialect.request_body(rest, self.remote_model)
        if "id_slot" in body:  # the same slot: its cache holds the prompt and the text so far
            second["id_slot"] = body["id_slot"]
        yield from self._stream(handle, path, second, False, Progress(started=True, prompt_tokens=progress.prompt_tokens,
                                                                    offset=progress.completion_tokens))

    def describe(self) -> ModelInfo:
        return model_info(self, "llama.cpp", vocab_size=self._vocab)

    def shutdown(self) -> None:
        try:
            super().shutdown()
        finally:  # the child is stopped (and waited for) whatever the client did
            self.server.stop()
