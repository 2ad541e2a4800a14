#!/usr/bin/env bash
# The quickstart's main job, fully offline: `imm-faces rehearse` (see README). Sets itself up on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh "emulator,vision,pulumi"
exec imm-faces rehearse "$@"
