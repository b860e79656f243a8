#!/usr/bin/env bash
# bench/backup/run.sh: ward backup versus restic and borg on one generated dataset.
# Informational only: never part of pass/fail. Prints a Markdown table (for
# docs/benchmarks.md) on stdout; progress goes to stderr.
#
# Usage: bash bench/backup/run.sh [path/to/ward]
#   quick run (default): BENCH_SIZE_MB=300 (about 300 MiB), a few minutes
#   the full run of issue 6: BENCH_SIZE_MB=2048 bash bench/backup/run.sh build/src/cli/ward
#     (needs ~10 GiB free under BENCH_TMP: the dataset, three repositories, three restores)
#   BENCH_TMP=/var/tmp  where to work (default /tmp); BENCH_KEEP=1 keeps the directory;
#   BENCH_TOOLS="ward restic borg" to run a subset.
# Use an optimised build (meson setup build --buildtype=release), not a sanitizer build.
#
# What is measured: each tool, encrypted, with its default compression (ward: zstd 3;
# restic >= 0.14 repository v2: zstd "auto"; borg 1.2: lz4), runs one after the other on the
# same data: (1) first backup of the dataset, (2) gen.py changes 1 % of the files, (3) second
# backup (each tool finds its own parent), (4) repository size (du -sb), (5) full restore of
# the latest snapshot into an empty directory. Wall time and peak RSS come from
# /usr/bin/time -v. Throughput = dataset bytes / wall time (the second backup too, so it
# shows how fast a mostly unchanged tree is re-scanned). The page cache is warm for every
# tool alike (the dataset was just written); caches are not dropped.
# Packages: restic borgbackup time (scripts/deps.sh test).
set -euo pipefail

WARD=${1:-build/src/cli/ward}
SIZE_MB=${BENCH_SIZE_MB:-300}
TOOLS=${BENCH_TOOLS:-"ward restic borg"}
HERE=$(cd "$(dirname "$0")" && pwd)
WARD=$(readlink -f "$WARD")
TMPBASE=${BENCH_TMP:-/tmp}
W=$(mktemp -d "$TMPBASE/ward-bench-backup-XXXXXX")
[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
export WARD_BACKUP_PASSWORD=bench-passphrase RESTIC_PASSWORD=bench-passphrase
export BORG_PASSPHRASE=bench-passphrase BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR="$W/borg-home"
export RESTIC_CACHE_DIR="$W/restic-cache"
export WARD_BACKUP_REPO="$W/ward-repo"

for t in $TOOLS; do
  case $t in
    ward) [ -x "$WARD" ] || { echo "no ward binary at $WARD" >&2; exit 2; } ;;
    *) command -v "$t" >/dev/null || { echo "$t is not installed (scripts/deps.sh test)" >&2; exit 2; } ;;
  esac
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing (package time)" >&2; exit 2; }

echo "generating ${SIZE_MB} MiB under $W/data ..." >&2
python3 "$HERE/gen.py" create "$W/data" "$SIZE_MB"
DATA_BYTES=$(du -sb "$W/data" | cut -f1)
NFILES=$(find "$W/data" -type f | wc -l)

# measure NAME CMD...: runs CMD under /usr/bin/time -v; records wall seconds, CPU seconds
# (user + system, which contention from other processes distorts less than wall time) and
# peak KiB.
declare -A SECS CPU RSS
measure() {
  local name=$1; shift
  local log="$W/time-$name.log"
  # The previous step's dirty pages are written out first, so that no tool pays for the
  # one before it (ext4 also slows inode allocation for a while after a mass delete, so
  # restores are removed only at the end).
  sync; sleep 2
  if ! /usr/bin/time -v -o "$log" "$@" > "$W/out-$name.log" 2>&1; then
    echo "FAILED: $name: $*" >&2; tail -n 20 "$W/out-$name.log" >&2; exit 1
  fi
  SECS[$name]=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0;
    for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$log")
  RSS[$name]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  CPU[$name]=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {s += $2}
    END {printf "%.1f", s}' "$log")
  echo "  $name: ${SECS[$name]} s, CPU ${CPU[$name]} s, peak RSS ${RSS[$name]} KiB" >&2
}

cd "$W"
for t in $TOOLS; do
  echo "$t: init + first backup" >&2
  case $t in
    ward)   "$WARD" backup init >/dev/null 2>&1
            measure ward-first "$WARD" backup run data ;;
    restic) restic init -r "$W/restic-repo" >/dev/null 2>&1
            measure restic-first restic -r "$W/restic-repo" backup data ;;
    borg)   borg init -e repokey "$W/borg-repo" >/dev/null 2>&1
            measure borg-first borg create "$W/borg-repo::first" data ;;
  esac
done
echo "changing 1 % of the files ..." >&2
CHANGED=$(python3 "$HERE/gen.py" change "$W/data" 1)
for t in $TOOLS; do
  echo "$t: second backup" >&2
  case $t in
    ward)   measure ward-second "$WARD" backup run data ;;
    restic) measure restic-second restic -r "$W/restic-repo" backup data ;;
    borg)   measure borg-second borg create "$W/borg-repo::second" data ;;
  esac
done
declare -A SIZE
for t in $TOOLS; do
  SIZE[$t]=$(du -sb "$W/$t-repo" | cut -f1)
  echo "$t: restore" >&2
  mkdir -p "$W/restore-$t"
  case $t in
    ward)   measure ward-restore "$WARD" backup restore latest --target "$W/restore-ward" ;;
    restic) measure restic-restore restic -r "$W/restic-repo" restore latest \
              --target "$W/restore-restic" ;;
    borg)   cd "$W/restore-borg"; measure borg-restore borg extract "$W/borg-repo::second"
            cd "$W" ;;
  esac
  # every restore must equal the changed dataset
  case $t in
    ward)   R="$W/restore-ward/data" ;;
    restic) R="$W/restore-restic/data" ;;
    borg)   R="$W/restore-borg/data" ;;
  esac
  [ "$t" = borg ] && R=$(find "$W/restore-borg" -type d -name data | head -n 1)
  diff -r "$W/data" "$R" >/dev/null || { echo "$t: restore differs from the data" >&2; exit 1; }
done
for t in $TOOLS; do rm -rf "$W/restore-$t"; done

# ---- the table ----
mbps() { awk -v b="$DATA_BYTES" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / 1048576 / s; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
peak() { local m=0; for k in "$1-first" "$1-second" "$1-restore"; do
  [ "${RSS[$k]:-0}" -gt "$m" ] && m=${RSS[$k]}; done; awk -v k="$m" 'BEGIN { printf "%.0f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "### Backup: ward vs restic vs borg ($(mib "$DATA_BYTES") MiB, $NFILES files, $CHANGED changed)"
echo
echo "| tool | first backup MiB/s | second backup MiB/s | repo MiB | restore MiB/s | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
for t in $TOOLS; do
  case $t in
    ward) ver="" ;;
    restic) ver=$(restic version | awk '{print $2}') ;;
    borg) ver=$(borg --version | awk '{print $2}') ;;
  esac
  echo "| $t $ver | $(mbps "${SECS[$t-first]}") (${SECS[$t-first]} s) | $(mbps "${SECS[$t-second]}") (${SECS[$t-second]} s) | $(mib "${SIZE[$t]}") | $(mbps "${SECS[$t-restore]}") (${SECS[$t-restore]} s) | $(peak "$t") |"
done
if [[ " $TOOLS " == *" ward "* ]]; then
  for o in restic borg; do
    [[ " $TOOLS " == *" $o "* ]] || continue
    echo "| ward / $o | $(ratio "${SECS[$o-first]}" "${SECS[ward-first]}")x | $(ratio "${SECS[$o-second]}" "${SECS[ward-second]}")x | $(ratio "${SIZE[ward]}" "${SIZE[$o]}")x | $(ratio "${SECS[$o-restore]}" "${SECS[ward-restore]}")x | $(ratio "$(peak ward)" "$(peak "$o")")x |"
  done
fi
echo
echo "| tool | first backup CPU s | second backup CPU s | restore CPU s |"
echo "|---|---:|---:|---:|"
for t in $TOOLS; do
  echo "| $t | ${CPU[$t-first]} | ${CPU[$t-second]} | ${CPU[$t-restore]} |"
done
echo
echo "Throughput ratios are ward's speed over the other's (> 1: ward faster); repo and RSS"
echo "ratios are ward's size over the other's (< 1: ward smaller). CPU seconds are user +"
echo "system time of the process and its threads. $(nproc) CPUs, $(uname -r)."
