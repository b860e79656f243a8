#!/usr/bin/env bash
# tests/compat/run.sh: runs the PromQL compatibility test (compat.py) of ward against the
# Debian prometheus. Installs prometheus via scripts/deps.sh test when it is missing.
# Usage: tests/compat/run.sh [--ward-bin PATH] [--keep] [--only REGEX] [--against prometheus]
# (default ward binary: build-test/src/cli/ward). Exit 0 when every query agrees, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v prometheus >/dev/null || bash scripts/deps.sh test
command -v prometheus >/dev/null || { echo "compat: prometheus is not installed" >&2; exit 2; }
exec python3 tests/compat/compat.py "$@"
