#!/usr/bin/env python
"""Build a collection's database offline, as h2oGPT's make_db does.

    python src/make_db.py --user_path=my_docs --collection_name=UserData

Ingests every supported file under ``--user_path`` (unchanged files are skipped, files
deleted from the folder are removed) into the same database the app opens: shared
collections in ``<db_root>/db_dir_<name>``. ``--hf_embedding_model``, ``--chunk_size``
``--chunk_overlap``, ``--db_root`` and ``--chroma_server`` mean what they mean for
``generate.py``; ``--rebuild`` deletes the collection first (for a database the server
reports as built with oversized chunks). Files that fail are listed;
the exit code is 2 only when the run itself cannot proceed.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `src` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.offline import apply_offline_environment  # noqa: E402

apply_offline_environment(os.environ)


def make_db(
    user_path: str,
    collection_name: str = "UserData",
    db_root: str = ".",
    hf_embedding_model: str | None = None,
    chunk_size: int = 512,
    verbose: bool = False,
    chroma_server: str = "",
    chunk_overlap: int = 32,
    rebuild: bool = False,
) -> int:
    """Ingest ``user_path`` into the shared collection ``collection_name``; returns the exit code.

    ``rebuild`` deletes the collection first and ingests the folder anew: what to do with a
    collection built with chunks longer than the embedding model's window (the server
    warns at start) or after changing ``chunk_size``."""
    from src.docqa.collections import DocQAError
    from src.docqa.service import DocumentService
    from src.media import MediaServices
    from src.settings import build_settings
    from src.settings_checks import SettingsError
    from src.settings_model import DEFAULT_EMBEDDING_MODEL

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not Path(user_path).is_dir():
        print(f"make_db: error: --user_path {user_path!r} is not a folder", file=sys.stderr)
        return 2
    modes = ["UserData", "MyData", "LLM", "Disabled"]
    if collection_name not in modes:
        modes.insert(0, collection_name)
    try:
        settings = build_settings({
            "db_root": db_root, "langchain_modes": modes, "chunk_size": chunk_size,
            "hf_embedding_model": hf_embedding_model or DEFAULT_EMBEDDING_MODEL,
            "chroma_server": chroma_server, "chunk_overlap": chunk_overlap,
        })
        media = MediaServices.from_settings(settings)  # audio files are transcribed
        docs = DocumentService.from_settings(settings)
        if rebuild:
            docs.delete_collection(collection_name, None)
            print(f"{collection_name}: deleted, rebuilding from {user_path}")
        report = docs.sync_user_path(user_path, collection_name)
    except (SettingsError, DocQAError, ValueError) as exc:
        print(f"make_db: error: {exc}", file=sys.stderr)
        return 2
    media.close()
    for failed in report.failed:
        print(f"failed: {failed.source}: {failed.reason}", file=sys.stderr)
    print(f"{collection_name}: {report.summary()}")
    return 0


def main(argv: list[str] | None = None) -> None:
    import fire

    code = fire.Fire(make_db, command=argv if argv is not None else sys.argv[1:], name="make_db.py",
                     serialize=lambda _: None)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
