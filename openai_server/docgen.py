"""The generated part of docs/openai_api.md: the extra_body table, from src/params.py.

docs/openai_api.md is written by hand except between its GENERATED markers, which
``python scripts/gen_docs.py`` refills from :data:`openai_server.protocol.H2OGPT_FIELDS`
(EvalParams minus the fields OpenAI names itself).
"""

from __future__ import annotations

from pathlib import Path

from openai_server.protocol import H2oGPTParams
from src.docgen import markdown_table

OPENAI_API_DOC = Path(__file__).resolve().parent.parent / "docs" / "openai_api.md"
BEGIN = "<!-- BEGIN GENERATED extra_body: python scripts/gen_docs.py -->"
END = "<!-- END GENERATED extra_body -->"


def extra_body_table() -> str:
    return markdown_table(H2oGPTParams)


def openai_api_markdown() -> str:
    """docs/openai_api.md with its extra_body table regenerated."""
    text = OPENAI_API_DOC.read_text()
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"{OPENAI_API_DOC} lacks the {BEGIN!r} ... {END!r} markers")
    return f"{head}{BEGIN}\n{extra_body_table()}{END}{tail}"
