#!/usr/bin/env bash
# Set everything up, then run the linters and the test suite (this is what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy edge_mmer convert runtime calibration
echo "== pytest"; .venv/bin/python -m pytest -q "$@"
