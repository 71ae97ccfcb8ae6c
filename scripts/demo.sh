#!/usr/bin/env bash
# Set everything up, then run edge-mmer's main job on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edge-mmer "$@"
