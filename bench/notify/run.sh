#!/usr/bin/env bash
# bench/notify/run.sh: alert-to-webhook latency (issue 5, "Performance").
# Starts `ward serve` (group_wait 0s, group_by ['...'] so each alert is its own group) and a
# local webhook receiver, posts N alerts one at a time to POST /api/v2/alerts and measures
# the time from the POST to the receiver getting the notification: p50/p99/max. When
# Debian's prometheus-alertmanager is installed, the same run is made against it in the
# same way. Prints a markdown table. Informational only: never part of pass/fail tests.
# Use a release build (no sanitizers) for numbers worth comparing.
# Usage: bash bench/notify/run.sh [path/to/ward]   (default: build/src/cli/ward)
# Environment: N (500 alerts).
set -euo pipefail
cd "$(dirname "$0")/../.."
ward="${1:-build/src/cli/ward}"
[ -x "$ward" ] || { echo "bench: $ward is not an executable (build ward first)" >&2; exit 2; }
exec python3 bench/notify/bench.py "$ward" "${N:-500}"
