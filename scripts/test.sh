#!/usr/bin/env bash
# Set everything up, then run the linters and the test suite (this is what CI runs).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy (strict, on the package as installed)"; bash scripts/typecheck.sh
echo "== pytest"; .venv/bin/python -m pytest -q "$@"

# The device side must work on Python 3.10 (JetPack 6) and without torch installed at all: run the
# torch-free tests in a second environment holding only the core package and the test tools.
PY310=""
for candidate in "$(command -v python3.10 || true)" /root/.pyenv/versions/3.10*/bin/python /usr/bin/python3.10; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "import sys; assert sys.version_info[:2] == (3, 10)" 2>/dev/null; then
    PY310=$candidate
    break
  fi
done
if [ -n "$PY310" ] && [ $# -eq 0 ]; then
  echo "== pytest, torch-free core on $("$PY310" --version)"
  [ -x .venv-core/bin/python ] || "$PY310" -m venv .venv-core
  # onnxruntime (+ onnx, which its quantization module imports) too: a device carries ORT, and the
  # calibration reader subclasses its CalibrationDataReader
  if ! .venv-core/bin/python -m pip install -q -e ".[onnx,mqtt,capture]" pytest hypothesis scipy librosa jsonschema >.venv-core/install.log 2>&1; then
    grep -v "WARNING: Location" .venv-core/install.log >&2 || true
    echo "test: installing the core into .venv-core failed" >&2
    exit 1
  fi
  .venv-core/bin/python -m pytest -q -p no:cacheprovider tests/test_config.py tests/test_audio_features.py \
    tests/test_face_features.py tests/test_selection.py tests/test_fuzzy.py tests/test_svm.py tests/test_bundle.py \
    tests/test_lean_imports.py tests/test_demo_assets.py
elif [ $# -eq 0 ]; then
  echo "== no python3.10 here: the torch-free core on Python 3.10 was not checked"
fi
