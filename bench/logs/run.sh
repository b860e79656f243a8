#!/usr/bin/env bash
# bench/logs/run.sh: ward's log store, ingest and query. Informational only: never part of
# pass/fail. Prints a Markdown table (see bench.py's docstring for what is measured).
#
# Usage: bash bench/logs/run.sh [path/to/ward] [bench.py options...]
#   quick run (default): 1 M lines
#       bash bench/logs/run.sh build/src/cli/ward
#   the issue's run: 10 M lines; needs ~3 GB free under --tmp for the request spool and
#   a few minutes:
#       bash bench/logs/run.sh build/src/cli/ward --lines 10000000 --tmp /var/tmp
#   other knobs: --batch (10000 lines per push) --writers (2) --repeat (5) --keep
# Use an optimised build (meson setup build --buildtype=release), not a sanitizer build.
#
# Loki: the issue asks for Debian's `loki` package as the reference, but that package is an
# unrelated genetics program (MCMC linkage analysis), and Grafana Loki is in none of the
# registries this project can install from, so the Loki column stays "n/a" until a Loki
# binary can be installed; bench.py pushes with Loki's own push API so the same spool can be
# sent to one.
set -euo pipefail
cd "$(dirname "$0")/../.."

ward="build/src/cli/ward"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then ward="$1"; shift; fi
if [ ! -x "$ward" ]; then
	echo "bench: $ward is not an executable; build ward first (meson setup build" \
		"--buildtype=release && ninja -C build)" >&2
	exit 2
fi
exec python3 bench/logs/bench.py --ward-bin "$ward" "$@"
