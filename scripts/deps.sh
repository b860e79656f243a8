#!/usr/bin/env bash
# scripts/deps.sh: install the Debian packages ward needs, and only those missing.
# Idempotent: a second run installs nothing and does not touch the network.
# Usage: scripts/deps.sh [build|test]   (test adds the servers and peers the suite runs)
set -euo pipefail

# libcmocka-dev and libsnappy-dev are for the unit tests only (libsnappy is the reference the
# Snappy decoder is checked against); ward itself links neither.
want_build=(
  build-essential pkg-config meson ninja-build clang
  libuv1-dev libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev libyaml-dev
  libjansson-dev libsodium-dev libssl-dev libcmocka-dev libpcre2-dev libsnappy-dev libzstd-dev
  libpq-dev libsystemd-dev
)
want_test=(
  curl python3 prometheus wrk procps psmisc restic borgbackup time
  nginx postgresql redis-server monitoring-plugins-basic openssl prometheus-alertmanager
  prometheus-node-exporter monit netdata systemd-journal-remote exim4-daemon-light
)

pkgs=("${want_build[@]}")
if [ "${1:-build}" = test ]; then
  pkgs+=("${want_test[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# prometheus pulls a service; never start it on install (policy-rc.d-free way: no systemd here anyway)
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
