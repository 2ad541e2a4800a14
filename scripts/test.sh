#!/usr/bin/env bash
# The whole test suite, linters and type checks included. Sets itself up on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
echo "==> ruff" >&2
ruff check .
ruff format --check .
echo "==> mypy (strict)" >&2
mypy imm_faces
echo "==> pytest" >&2
pytest "$@"
