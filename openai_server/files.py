"""Storage of /v1/files: one folder per API key under ``--openai_files_dir``.

``<root>/<owner>/<file id>.json`` holds the file object, ``<file id>.bin`` the bytes. The
content is written before the object, each by an atomic rename, so a file is listed only
once it is complete, and any worker process of the pool can serve any file (the folder is
the only state). Ids are checked against their pattern before any path is built.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import time
from pathlib import Path

from openai_server.protocol_documents import FileObject

log = logging.getLogger(__name__)

_ID = re.compile(r"file-[0-9a-f]{24}")
_OWNER = re.compile(r"k-[0-9a-f]{32}")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileStore:
    """Files by owner (see openai_server.identity.file_owner); blocking, call off the event loop."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _folder(self, owner: str) -> Path:
        if not _OWNER.fullmatch(owner):
            raise ValueError("invalid owner")
        return self.root / owner

    def _paths(self, owner: str, file_id: str) -> tuple[Path, Path] | None:
        if not _ID.fullmatch(file_id):
            return None
        folder = self._folder(owner)
        return folder / f"{file_id}.json", folder / f"{file_id}.bin"

    def create(self, owner: str, filename: str, purpose: str, data: bytes) -> FileObject:
        folder = self._folder(owner)
        folder.mkdir(parents=True, exist_ok=True)
        obj = FileObject(id=f"file-{secrets.token_hex(12)}", bytes=len(data), created_at=int(time.time()),
                         filename=filename, purpose=purpose)
        meta, content = folder / f"{obj.id}.json", folder / f"{obj.id}.bin"
        _atomic_write(content, data)
        _atomic_write(meta, obj.model_dump_json().encode())
        log.info("stored %s (%d bytes)", obj.id, obj.bytes)
        return obj

    def get(self, owner: str, file_id: str) -> FileObject | None:
        paths = self._paths(owner, file_id)
        if paths is None:
            return None
        try:
            return FileObject.model_validate_json(paths[0].read_bytes())
        except FileNotFoundError:
            return None

    def content(self, owner: str, file_id: str) -> bytes | None:
        paths = self._paths(owner, file_id)
        if paths is None or not paths[0].exists():
            return None
        try:
            return paths[1].read_bytes()
        except FileNotFoundError:
            return None

    def list_files(self, owner: str, purpose: str | None = None) -> list[FileObject]:
        """The owner's files, newest first."""
        folder = self._folder(owner)
        found = []
        for meta in folder.glob("file-*.json") if folder.is_dir() else []:
            try:
                obj = FileObject.model_validate(json.loads(meta.read_bytes()))
            except (FileNotFoundError, ValueError):  # deleted meanwhile, or a torn file
                continue
            if purpose is None or obj.purpose == purpose:
                found.append(obj)
        return sorted(found, key=lambda f: (f.created_at, f.id), reverse=True)

    def delete(self, owner: str, file_id: str) -> bool:
        paths = self._paths(owner, file_id)
        if paths is None:
            return False
        try:
            paths[0].unlink()
        except FileNotFoundError:
            return False
        paths[1].unlink(missing_ok=True)
        return True
