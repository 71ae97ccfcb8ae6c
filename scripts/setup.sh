#!/usr/bin/env bash
# Set up edge-mmer on a fresh Debian/Ubuntu machine: system packages (as root or through sudo), a
# virtual environment in .venv, and the package. Safe to run again: it skips what is already there.
#
#   scripts/setup.sh            everything: torch for this machine, the package with its training,
#                               conversion, dataset and development extras (what the tests need)
#   scripts/setup.sh --device   the device install only: the runtime loop (ONNX Runtime, OpenCV, PyAV,
#                               PyAudio, webrtcvad, paho-mqtt, LIBSVM), no torch, no development tools
#
# On a Jetson (/etc/nv_tegra_release) the venv is made with --system-site-packages, so that JetPack's
# TensorRT and OpenCV (and NVIDIA's torch / onnxruntime-gpu wheels, where installed) are the ones used.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
case "${1:-}" in
  "") ;;
  --device) MODE=device ;;
  *) echo "usage: scripts/setup.sh [--device]" >&2; exit 2 ;;
esac

if [ "$MODE" = device ]; then
  APT_PACKAGES=(libportaudio2 portaudio19-dev libasound2-plugins)
else
  APT_PACKAGES=(espeak-ng libportaudio2 portaudio19-dev libasound2-plugins mosquitto)
  # the service tests check the printed systemd unit with systemd-analyze (in the 'systemd' package)
  command -v systemd-analyze >/dev/null 2>&1 || APT_PACKAGES+=(systemd)
fi
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
JETSON=""
[ -f /etc/nv_tegra_release ] && JETSON=1

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
  if [ -n "$JETSON" ]; then
    echo "setup: creating $VENV with $($PY --version) (a Jetson: with the system's site-packages)"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    echo "setup: creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
  fi
fi

if [ "$MODE" = device ]; then
  echo "setup: installing edge-mmer (the device install: the runtime loop, no torch)"
  pip_install -e .
  if ! "$VENV/bin/python" -c "import onnxruntime, cv2" 2>/dev/null; then
    if [ -n "$JETSON" ]; then
      echo "setup: on a Jetson, ONNX Runtime and OpenCV come from NVIDIA: install the onnxruntime-gpu wheel for" \
           "this JetPack and JetPack's OpenCV (docs/device.md, 'On a Jetson')" >&2
    fi
    "$VENV/bin/python" -c "import onnxruntime, cv2"  # says which one is missing
  fi
  # libsvm-official requires scipy (for sparse inputs edge-mmer never passes; it imports scipy only when
  # present): 140 MB the device does not need. Removed when nothing else installed needs it.
  if [ "$("$VENV/bin/python" -m pip show scipy 2>/dev/null | sed -n 's/^Required-by: //p')" = "libsvm-official" ] &&
     "$VENV/bin/python" -c "import sys, scipy; sys.exit(not scipy.__file__.startswith(sys.prefix))" 2>/dev/null; then
    echo "setup: removing scipy (only libsvm-official asks for it, and the runtime does not use it)"
    "$VENV/bin/python" -m pip uninstall -q -y scipy
  fi
  "$VENV/bin/python" -c "import edge_mmer, edge_mmer.runtime, onnxruntime, cv2; print('setup: ok (edge-mmer', edge_mmer.__version__, '| onnxruntime', onnxruntime.__version__, '| opencv', cv2.__version__ + ')')"
  exit 0
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

echo "setup: installing edge-mmer with extras train, convert, datasets, profile, dev"
pip_install -e ".[train,convert,datasets,profile,dev]"
"$VENV/bin/python" -c "import edge_mmer, torch, libsvm, cv2; print('setup: ok (edge-mmer', edge_mmer.__version__, '| torch', torch.__version__, '| opencv', cv2.__version__ + ')')"
