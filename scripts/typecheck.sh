#!/usr/bin/env bash
# mypy (strict, see pyproject.toml) on the package as it is installed: `edge_mmer.runtime`,
# `edge_mmer.convert` and `edge_mmer.calibration` live in runtime/, convert/ and calibration/, which
# an editable install maps through an import hook that mypy cannot follow. So build a tree of
# symlinks named like the installed package (.typecheck/edge_mmer/...) and check that, together
# with the benchmarks, the scripts' Python and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
MYPY=${MYPY:-.venv/bin/python -m mypy}
tree=.typecheck/edge_mmer
rm -rf .typecheck
mkdir -p "$tree"
for entry in edge_mmer/*; do
  name=$(basename "$entry")
  [ "$name" = "__pycache__" ] && continue
  ln -s "../../$entry" "$tree/$name"
done
for room in runtime convert calibration; do
  ln -s "../../$room" "$tree/$room"
done
MYPYPATH=.typecheck:tests $MYPY -p edge_mmer -p benchmarks "$@"
# the tests: not a package, so each test module is checked by its basename (which is why basenames are
# unique across tests/**) and tests/support as the package `support`, as pytest imports them
MYPYPATH=.typecheck:tests $MYPY tests "$@"
