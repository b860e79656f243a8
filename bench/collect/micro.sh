#!/usr/bin/env bash
# bench/collect/micro.sh: builds and runs scrape_micro.c (scrape_process alone, no HTTP)
# against a meson build dir. Usage: bench/collect/micro.sh BUILD_DIR [TARGETS SERIES ROUNDS FSYNC]
set -euo pipefail
B=$(cd "$1" && pwd); shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/ward-scrape-micro.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# link what the unit test collect_scrape links (same dependencies, from the build dir)
LIBS=$(cd "$B" && ninja -t commands tests/unit/collect_scrape | tail -1 | tr ' ' '\n' |
	grep -E '^-l|\.a$|\.so' | grep -v cmocka | sed "s|^src/|$B/src/|" | tr '\n' ' ')
cc -O2 -g -std=gnu11 -D_GNU_SOURCE -I"$SRC/src" -I"$B/src" -I"$B" "$SRC/bench/collect/scrape_micro.c" \
	-Wl,--start-group $LIBS -Wl,--end-group -lpthread -o "$WORK/scrape_micro"
${MICRO_WRAP:-} "$WORK/scrape_micro" "$WORK/tsdb" "$@"
