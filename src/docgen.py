"""Flag and parameter tables, rendered from Settings and EvalParams for --help and docs/."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from src.params import EvalParams
from src.settings import Settings

FLAGS_DOC_HEADER = """# Flags

Every flag of `python generate.py`. Set one as `--name=value` on the command line or as the
environment variable `H2OGPT_<NAME>` (upper case; the command line wins). List and dict
flags accept Python literals, for example `--langchain_modes="['UserData','LLM']"`.

This page is generated from `src/settings.py` (its model flags in `src/settings_model.py`) by `python scripts/gen_docs.py`; a test fails
when it is stale.

"""


def _default_text(name: str, info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "default_doc" in extra:
        return str(extra["default_doc"])
    default: Any = info.get_default(call_default_factory=True)
    if isinstance(default, str):
        return repr(default)
    return json.dumps(default) if isinstance(default, (list, dict)) else str(default)


def _type_text(info: FieldInfo) -> str:
    text = str(info.annotation).replace("typing.", "")
    return text.removeprefix("<class '").removesuffix("'>")


def _rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    return [
        (name, _type_text(info), _default_text(name, info), info.description or "")
        for name, info in model.model_fields.items()
    ]


def markdown_table(model: type[BaseModel], prefix: str = "") -> str:
    lines = ["| name | type | default | description |", "|---|---|---|---|"]
    for name, kind, default, description in _rows(model):
        cell = description.replace("|", "\\|")
        kind = kind.replace("|", "\\|")
        default = default.replace("|", "\\|")
        lines.append(f"| `{prefix}{name}` | `{kind}` | `{default}` | {cell} |")
    return "\n".join(lines) + "\n"


def flags_markdown() -> str:
    return FLAGS_DOC_HEADER + markdown_table(Settings, "--")


def params_markdown() -> str:
    return markdown_table(EvalParams)


PARAMETERS_DOC_HEADER = """# evaluate() parameters

Every answer, from the UI, `gradio_client`, the OpenAI API or the terminal chat, goes
through `evaluate(EvalParams)`. These are its parameters. The OpenAI API accepts each of
them at the top level of the request body (`extra_body` in the openai SDK); the Gradio
API takes them as a dict. A parameter left unset (`None`) takes the server's default: the
flag of the same name (see [flags.md](flags.md)).

This page is generated from `src/params.py` by `python scripts/gen_docs.py`; a test fails
when it is stale.

"""


def samplers_markdown() -> str:
    """The known samplers beyond EvalParams' fields, and which local backend takes each."""
    from src.engine.llamacpp_backend import LLAMACPP_SAMPLERS
    from src.params import EXTRA_SAMPLERS

    rows = [f"| `{name}` | `{neutral!r}` | {'yes' if name in LLAMACPP_SAMPLERS else 'no'} |"
            for name, neutral in EXTRA_SAMPLERS.items()]
    return "\n".join([
        "", "## Samplers", "",
        "Samplers known by name beyond the fields above (`samplers`; the OpenAI API takes them at the",
        "top level of the body). A remote engine gets them as sent; llama.cpp takes those marked; the",
        "transformers and vision backends take none of them: a value other than the neutral one is a",
        "400 `unsupported_parameter` naming it and the backend. `min_p`, `top_k` and",
        "`repetition_penalty` (also sent as `repeat_penalty`) are fields of their own, on every backend.",
        "", "| name | neutral value | llama.cpp |", "|---|---|---|", *rows, ""])


def parameters_markdown() -> str:
    return PARAMETERS_DOC_HEADER + params_markdown() + samplers_markdown()


def help_text() -> str:
    """What `python generate.py --help` prints."""
    lines = [
        "usage: python generate.py [--flag=value ...]",
        "",
        "Private, offline chat and document Q&A: a Gradio UI, a gradio_client API and an",
        "OpenAI-compatible API over one local model. Every flag can also be set as",
        "H2OGPT_<FLAG> in the environment; the command line wins.",
        "",
        "flags:",
    ]
    for name, kind, default, description in _rows(Settings):
        lines.append(f"  --{name}  ({kind}, default {default})")
        lines.append(f"      {description}")
    return "\n".join(lines)
