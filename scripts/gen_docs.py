"""Regenerate the tables in docs/ from src/settings.py and src/params.py."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openai_server.docgen import OPENAI_API_DOC, openai_api_markdown  # noqa: E402
from src.docgen import flags_markdown, parameters_markdown  # noqa: E402

GENERATED = {
    ROOT / "docs" / "flags.md": flags_markdown,
    ROOT / "docs" / "parameters.md": parameters_markdown,
    OPENAI_API_DOC: openai_api_markdown,  # only its extra_body table
}


def main() -> None:
    for path, render in GENERATED.items():
        path.write_text(render())
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
