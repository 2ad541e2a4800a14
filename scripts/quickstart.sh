#!/usr/bin/env bash
# The quickstart's main job, fully offline once the sample photos are cached: `imm-faces rehearse` (see README).
# Sets itself up on a fresh machine. .venv/bin goes on this script's PATH only: rehearse's last line says how to
# reach `imm-faces` from a new shell (it compares with the PATH the script was started with).
set -euo pipefail
cd "$(dirname "$0")/.."
export IMM_FACES_CALLER_PATH="${IMM_FACES_CALLER_PATH:-$PATH}"
source scripts/bootstrap.sh "emulator,vision,pulumi"
exec imm-faces rehearse "$@"
