"""Process environment that keeps the libraries offline; applied before they are imported."""

from __future__ import annotations

from collections.abc import MutableMapping

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_environment(environ: MutableMapping[str, str]) -> None:
    """Set the offline variables; a value the user set explicitly is kept."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        environ.setdefault(key, value)
