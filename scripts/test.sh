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
# tests/report's browser test drives Debian's Chromium; it skips, saying why, when none can be installed.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> chromium (for the HTML report's browser test)" >&2
    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
        || echo "    chromium could not be installed: the browser test will skip" >&2
fi
# The `engine` tests run the real Pulumi engine (scripts/pulumi-engine.sh builds it; CI does so first) and skip,
# saying why, where there is none.
echo "==> real Pulumi engine: ${IMM_FACES_PULUMI_ENGINE:-$(scripts/pulumi-engine.sh --check 2>/dev/null || echo 'none: the engine tests skip')}" >&2
echo "==> pytest (${IMM_FACES_TEST_WORKERS:-3} workers)" >&2
# Three workers on two cores: many tests wait on loopback servers, child processes and server shutdowns, so a
# third keeps both cores busy (measured 2026-11-25: 852 tests in 67-72 s with three, 77-95 s with two).
pytest -n "${IMM_FACES_TEST_WORKERS:-3}" "$@"
