#!/usr/bin/env bash
# bench/tsdb/run.sh: ward's time-series store versus Prometheus on node_exporter-like data.
# Informational only: never part of pass/fail. Prints a Markdown table for docs/benchmarks.md.
#
# Usage: bash bench/tsdb/run.sh [path/to/ward] [gen.py options...]
#   quick run (default): 100 hosts x 1000 series x 1 h at 15 s = 24 M samples
#       bash bench/tsdb/run.sh build/src/cli/ward
#   full run: 100 hosts x 1000 series x 24 h = 576 M samples; needs ~20 GB free under --tmp
#   for the request spool (kept on disk so that the generator's speed is never measured), a
#   few GB for each server's data, and an hour or more:
#       bash bench/tsdb/run.sh build/src/cli/ward --duration 24h --tmp /var/tmp
#   other knobs: --hosts --series --writers (4) --window (2m of one host per request)
#   --repeat (20 timed runs per query) --ward-fsync (1s) --targets ward,prometheus --keep
# Use an optimised build (meson setup build --buildtype=release), not a sanitizer build.
#
# What is measured, exactly (see gen.py for the code):
# - ingest: wall time of POSTing every request of the spool to /api/v1/write with N concurrent
#   HTTP/1.1 keep-alive connections, from a Python client on the same machine; samples/s is the
#   number of samples in accepted requests divided by that time. The servers run one after the
#   other, never together. ward runs with tsdb.wal_fsync 1s because Prometheus does not fsync
#   its WAL per request either; pass --ward-fsync always for ward's durable default.
# - disk, blocks: ward: after the server is stopped, `ward tsdb import` of a one-sample file
#   (series ward_bench_cut_marker) runs ward's forced maintenance, which cuts the head into
#   blocks and compacts; reported for raw-resolution blocks and for all blocks including the
#   5m/1h downsampled ones (tsdb.downsample, on by default). Prometheus: the size of a snapshot
#   taken with the admin API (POST /api/v1/admin/tsdb/snapshot, --web.enable-admin-api),
#   which writes the head out as a regular block: the compacted form of the same samples,
#   index included. Prometheus does not downsample, so both of its rows are the same.
# - disk, whole data dir after stop: everything under each data directory after SIGTERM
#   (Prometheus: WAL + m-mapped head chunks + blocks, as it writes no block on shutdown;
#   ward: after the head cut above, its blocks, WAL and state store). Allocated blocks (du).
# - RSS per active series: VmRSS after ingest minus VmRSS 2 s after start (empty), divided by
#   the number of series. Includes allocator slack and whatever the servers cache.
# - queries: p50/p95 over --repeat runs (after one warm-up run) of fixed range queries over the
#   last 1 h at step 15s, and over the last 24 h at step 2m when --duration >= 24h.
set -euo pipefail
cd "$(dirname "$0")/../.."

ward="build/src/cli/ward"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then ward="$1"; shift; fi
if [ ! -x "$ward" ]; then
	echo "bench: $ward is not an executable; build ward first (meson setup build" \
		"--buildtype=release && ninja -C build)" >&2
	exit 2
fi
command -v prometheus >/dev/null || bash scripts/deps.sh test
command -v prometheus >/dev/null || { echo "bench: prometheus is not installed" >&2; exit 2; }
exec python3 bench/tsdb/gen.py --ward-bin "$ward" "$@"
