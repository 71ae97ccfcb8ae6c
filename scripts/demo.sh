#!/usr/bin/env bash
# Set up the device install (the runtime loop only: no torch, no development tools), then run
# edge-mmer's main job on its embedded default. Arguments go to edge-mmer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --device
exec .venv/bin/edge-mmer "$@"
