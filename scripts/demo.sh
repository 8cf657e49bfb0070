#!/usr/bin/env bash
# Quickstart 1: set up, then run the main job on a throwaway local server.
#   bash scripts/demo.sh            (extra arguments go to `dsreg demo`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dsreg demo "$@"
