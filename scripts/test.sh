#!/usr/bin/env bash
# Quickstart 2: set up, lint, type-check and run the test suite against a
# private server it starts itself (or $DSREG_TEST_URL).
#   bash scripts/test.sh            default suite (about 10 minutes)
#   bash scripts/test.sh -m slow    the long torture/soak/cluster runs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "test.sh: pytest collected no tests for: $*" >&2
fi
exit "$status"
