#!/usr/bin/env bash
# Regenerate the committed demo: the synthetic dataset (not committed), the demo clip and the demo
# bundle trained on it. Everything here is SYNTHETIC; see the README.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/edge-mmer synth --out data/synthetic --seed 0 --overwrite --demo-clip demo/demo_clip.mp4
.venv/bin/edge-mmer train --dataset synthetic:data/synthetic --config demo --seed 0 --out demo/bundle --overwrite
.venv/bin/edge-mmer convert --bundle demo/bundle --precision fp32,fp16,int8-cpu,int8-trt
.venv/bin/edge-mmer bundle verify demo/bundle
