"""Safe extraction of zip and tar archives for ingestion.

Members are read into a temporary folder, never written outside it: absolute paths,
``..`` components, links and device files are skipped, and extraction stops with an
error past ``max_files`` members or ``max_bytes`` of uncompressed data (zip bombs).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from src.docqa.loaders import LoadError

MAX_ARCHIVE_FILES = 1000
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
_COPY_BLOCK = 1 << 20


def _safe_name(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it would escape the target folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or not path.parts or any(part in ("..", "") for part in path.parts):
        return None
    if ":" in path.parts[0]:  # C:foo on Windows
        return None
    return path


class _Budget:
    def __init__(self, max_files: int, max_bytes: int) -> None:
        self.files_left = max_files
        self.bytes_left = max_bytes
        self.max_files = max_files
        self.max_bytes = max_bytes

    def take_file(self) -> None:
        self.files_left -= 1
        if self.files_left < 0:
            raise LoadError(f"archive has more than {self.max_files} files")

    def copy(self, source: IO[bytes], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while block := source.read(_COPY_BLOCK):
                self.bytes_left -= len(block)
                if self.bytes_left < 0:
                    raise LoadError(f"archive expands to more than {self.max_bytes} bytes")
                out.write(block)


def _extract_zip(path: Path, target: Path, budget: _Budget) -> list[str]:
    names: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            relative = _safe_name(info.filename)
            if info.is_dir() or relative is None:
                continue
            budget.take_file()
            with archive.open(info) as source:
                budget.copy(source, target / relative)
            names.append(relative.as_posix())
    return names


def _extract_tar(path: Path, target: Path, budget: _Budget) -> list[str]:
    names: list[str] = []
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            relative = _safe_name(member.name)
            if not member.isfile() or relative is None:  # links, devices, folders
                continue
            budget.take_file()
            source = archive.extractfile(member)
            if source is None:
                continue
            with source:
                budget.copy(source, target / relative)
            names.append(relative.as_posix())
    return names


@contextmanager
def extracted(
    path: str | Path,
    name: str | None = None,
    max_files: int = MAX_ARCHIVE_FILES,
    max_bytes: int = MAX_ARCHIVE_BYTES,
) -> Iterator[list[tuple[str, Path]]]:
    """Extract an archive to a temporary folder; yields ``[(member name, extracted path)]``.

    The folder is removed on exit. Raises :class:`LoadError` for a corrupt archive or one
    over the limits.
    """
    label = (name or str(path)).lower()
    folder = Path(tempfile.mkdtemp(prefix="h2ogpt-archive-"))
    try:
        budget = _Budget(max_files, max_bytes)
        try:
            if label.endswith(".zip"):
                names = _extract_zip(Path(path), folder, budget)
            else:
                names = _extract_tar(Path(path), folder, budget)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise LoadError(f"cannot open archive: {type(exc).__name__}: {exc}"[:300]) from exc
        yield [(member, folder / member) for member in sorted(names)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
