#!/usr/bin/env bash
# Set everything up, then run the linters and the test suite (this is what CI runs).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy (strict, on the package as installed, and on the tests)"; bash scripts/typecheck.sh

# The device side must work on Python 3.10 (JetPack 6) and without torch installed at all. Every test
# runs once, in the most constrained environment it can run in: the tests that need no torch (marker
# torchfree, given by tests/conftest.py) run on Python 3.10 in a second environment that holds what a
# device carries -- the device install, `pip install -e .` -- plus the test tools (the 'test' extra,
# with tqdm for the synthetic generator); the rest run here. Without a Python 3.10, or when pytest
# arguments are given, everything runs here.
PY310=""
for candidate in "$(command -v python3.10 || true)" /root/.pyenv/versions/3.10*/bin/python /usr/bin/python3.10; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "import sys; assert sys.version_info[:2] == (3, 10)" 2>/dev/null; then
    PY310=$candidate
    break
  fi
done
if [ -z "$PY310" ] || [ $# -gt 0 ]; then
  [ $# -gt 0 ] || echo "== no python3.10 here: every test runs in .venv (Python $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'))"
  echo "== pytest"; exec .venv/bin/python -m pytest -q "$@"
fi

# The two sessions share nothing (their own venvs, temporary dirs and broker ports) and the torch-free
# one mostly waits (real-time clips, brokers, watchdog timeouts), so they run side by side; the
# torch-free session's output follows the other's.
core_session() {
  [ -x .venv-core/bin/python ] || "$PY310" -m venv .venv-core
  # the device install (the runtime loop: no torch, no conversion tools) plus the test tools
  if ! .venv-core/bin/python -m pip install -q -e ".[test]" >.venv-core/install.log 2>&1; then
    grep -v "WARNING: Location" .venv-core/install.log || true
    echo "test: installing the core into .venv-core failed"
    return 1
  fi
  if .venv-core/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    echo "test: torch is installed in .venv-core: the torch-free run would prove nothing"
    return 1
  fi
  .venv-core/bin/python -m pytest -q -p no:cacheprovider -m torchfree
}
core_log=$(mktemp)
trap 'rm -f "$core_log"' EXIT
core_session >"$core_log" 2>&1 &
core_pid=$!

echo "== pytest -m 'not torchfree' in .venv (the torch-free tests run on $("$PY310" --version) beside it)"
main_rc=0
.venv/bin/python -m pytest -q -m "not torchfree" || main_rc=$?
core_rc=0
wait "$core_pid" || core_rc=$?
echo "== pytest -m torchfree on $("$PY310" --version), without torch"
cat "$core_log"
[ "$main_rc" -eq 0 ] && [ "$core_rc" -eq 0 ]
