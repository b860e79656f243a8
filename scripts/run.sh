#!/usr/bin/env bash
# scripts/run.sh: install what is missing, build ward, and run `ward serve`.
# Arguments go to `ward serve` unchanged, e.g.:
#   bash scripts/run.sh --config /etc/ward/ward.yaml
#   bash scripts/run.sh --listen 127.0.0.1:9898 --data /tmp/ward-data
# With no arguments ward runs on its embedded default (127.0.0.1:9797, data in ./ward-data).
# Build directory: build/ (buildtype debugoptimized). Jobs: $WARD_JOBS, default nproc.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh build

jobs="${WARD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
if [ ! -f build/build.ninja ]; then
	rm -rf build
	meson setup build >&2
fi
ninja -C build -j "$jobs" >&2

exec ./build/src/cli/ward serve "$@"
