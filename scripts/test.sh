#!/usr/bin/env bash
# Install everything the tests need, lint, type-check, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
# The UI tests drive Debian's chromium through Playwright (Playwright's own browser download is never used).
if [[ ! -x /usr/bin/chromium ]]; then
  sudo=""; [[ $EUID -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -q && $sudo apt-get install -y -q chromium
fi
python -m ruff check .
python -m mypy src openai_server gradio_ui
python -m pytest -q "$@"
