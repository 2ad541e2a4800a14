#!/usr/bin/env bash
# The quickstart's main job, offline: emulator, provisioning, clustering task, imm-faces verify.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh emulator
exec python scripts/quickstart.py "$@"
