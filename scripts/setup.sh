#!/usr/bin/env bash
# Set up everything edge-mmer needs on a fresh Debian/Ubuntu machine: system packages (as root or
# through sudo), a virtual environment in .venv, torch for this machine, and the package with its
# training, ONNX and development extras. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng libportaudio2 portaudio19-dev libasound2-plugins mosquitto)
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pip quietly; on failure show what it said (less this machine's notes about local wheel folders)
pip_install() {
  local log
  log=$(mktemp)
  if ! "$VENV/bin/python" -m pip install -q "$@" >"$log" 2>&1; then
    grep -v "WARNING: Location" "$log" >&2 || true
    rm -f "$log"
    echo "setup: 'pip install $*' failed" >&2
    exit 1
  fi
  rm -f "$log"
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi

# torch is pinned here, not in the package (Jetson users bring NVIDIA's wheel). timm, used by the
# tests to prove the face encoder loads its weights, needs a torchvision built for the same torch.
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  case "$(uname -m)" in
    aarch64) TORCH=(torch==2.9.1 torchvision==0.24.1) ;;
    *) TORCH=(torch==2.14.1 torchvision==0.29.1) ;;
  esac
  echo "setup: installing ${TORCH[*]}"
  pip_install "${TORCH[@]}"
fi

echo "setup: installing edge-mmer with extras train, onnx, mqtt, capture, datasets, dev"
pip_install -e ".[train,onnx,mqtt,capture,datasets,dev]"
"$VENV/bin/python" -c "import edge_mmer, torch, libsvm, cv2; print('setup: ok (edge-mmer', edge_mmer.__version__, '| torch', torch.__version__, '| opencv', cv2.__version__ + ')')"
