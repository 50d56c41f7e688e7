#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
python -m ruff check .
python -m mypy src openai_server gradio_ui
python -m pytest -q "$@"
