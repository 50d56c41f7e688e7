"""What the app writes under the default --db_root (the working folder, as in h2oGPT) never
shows up as untracked files in a checkout: every default location is git-ignored."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from openai_server.app import files_dir
from src.docqa.collections import CollectionLayout, Requester
from src.settings import build_settings
from src.storage.database import default_url

ROOT = Path(__file__).resolve().parents[2]


def default_locations(scratch: Path) -> list[Path]:
    """Files the app creates with no flags, relative to the working folder."""
    settings = build_settings({})
    assert settings.db_root == "." and not settings.openai_files_dir and not settings.database_url
    layout = CollectionLayout(Path(settings.db_root), scratch, list(settings.langchain_modes))
    sqlite = Path(default_url(settings.db_root).removeprefix("sqlite:///")).relative_to(Path.cwd())
    return [
        layout.location("UserData", "shared", None) / "chroma.sqlite3",
        layout.location("MyData", "personal", Requester("alice")) / "chroma.sqlite3",
        files_dir(settings) / "owner" / "file-abc.json",
        sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm"),
    ]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_every_default_location_under_db_root_is_git_ignored(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the folder generate.py is started in
    paths = [str(p) for p in default_locations(tmp_path)]
    assert all(not Path(p).is_absolute() and not p.startswith("..") for p in paths), paths
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                             capture_output=True, text=True, timeout=60).stdout.split()
    assert sorted(ignored) == sorted(paths)
