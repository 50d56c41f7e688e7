"""Safe archive extraction: traversal, links, size and count limits, corrupt archives."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from src.docqa.archives import extracted
from src.docqa.loaders import LoadError, is_supported, load_file
from tests.docqa.fixtures import write_targz, write_zip


def test_zip_members_are_extracted(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "a.zip", {"docs/one.txt": "one", "two.md": "two"})
    with extracted(archive) as members:
        assert [name for name, _ in members] == ["docs/one.txt", "two.md"]
        assert all(path.read_text() in ("one", "two") for _, path in members)
        folder = members[0][1].parent.parent
    assert not folder.exists()  # removed on exit


def test_path_traversal_is_skipped(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "evil.zip", {"../escape.txt": "x", "/abs.txt": "y", "ok.txt": "z"})
    with extracted(archive) as members:
        assert [name for name, _ in members] == ["ok.txt"]
    assert not (tmp_path / "escape.txt").exists()


def test_tar_links_and_traversal_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        data = b"hello"
        for name in ("../up.txt", "fine.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with extracted(path) as members:
        assert [name for name, _ in members] == ["fine.txt"]


def test_limits(tmp_path: Path) -> None:
    many = write_targz(tmp_path / "many.tar.gz", {f"f{i}.txt": "x" for i in range(5)})
    with pytest.raises(LoadError, match="more than 3 files"), extracted(many, max_files=3):
        pass
    big = tmp_path / "bomb.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.txt", b"0" * 200_000)
    assert big.stat().st_size < 10_000
    with pytest.raises(LoadError, match="more than 100000 bytes"), extracted(big, max_bytes=100_000):
        pass


def test_corrupt_archive_and_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LoadError, match="cannot open archive"), extracted(bad):
        pass
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(LoadError, match="cannot read .pdf"):
        load_file(pdf)
    with pytest.raises(LoadError, match="unsupported file type '.exe'"):
        load_file(tmp_path / "x.exe")
    assert is_supported("a.TAR.GZ") and is_supported("b.docx") and not is_supported("c.exe")
