"""Convert a GGUF model to a safetensors copy once, atomically, so later starts are fast.

transformers de-quantizes a GGUF file to fp32 on every load (13-50 s on two cores);
the copy loads in about a second. The copy is written to a temporary folder beside the
cache entry and renamed into place, so a start killed mid-conversion leaves no broken
cache: the next start removes the leftover folder and converts again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from src.engine.model_source import ModelSource

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"


def cache_entry(source: ModelSource, cache_dir: str | Path) -> Path:
    """The cache folder for a GGUF file: named after it, keyed by its path, size and mtime."""
    assert source.gguf_file is not None
    file = Path(source.path) / source.gguf_file
    stat = file.stat()
    key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{file.stem}-{digest}"


def cached_copy(source: ModelSource, cache_dir: str | Path) -> Path | None:
    """The finished safetensors copy of ``source``, if there is one."""
    entry = cache_entry(source, cache_dir)
    return entry if (entry / "config.json").exists() else None


def remove_stale_temporaries(cache_dir: str | Path) -> None:
    """Remove conversion folders left by processes that died mid-conversion."""
    root = Path(cache_dir)
    if not root.is_dir():
        return
    for tmp in root.glob(TMP_PREFIX + "*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        log.info("removing unfinished conversion %s", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def convert_gguf(source: ModelSource, cache_dir: str | Path) -> Path:
    """Write the safetensors copy of a GGUF model and return its folder."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    entry = cache_entry(source, cache_dir)
    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(entry.parent)
    tmp = entry.parent / f"{TMP_PREFIX}{entry.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("converting %s to safetensors in %s (once)", source.gguf_file, entry)
    tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file)
    config = AutoConfig.from_pretrained(source.path, gguf_file=source.gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.rename(tmp, entry)
    except OSError:
        # Another process finished the same conversion first; keep its copy.
        shutil.rmtree(tmp, ignore_errors=True)
        if cached_copy(source, cache_dir) is None:
            raise
    return entry
