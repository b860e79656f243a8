#!/usr/bin/env bash
# bench/http.sh: how fast ward answers HTTP, and how little memory it holds when idle.
# Starts `ward serve` on a random 127.0.0.1 port with a temporary data directory and a
# config without rate limiting, measures idle RSS (/proc/<pid>/status), then runs
#   wrk -t2 -c32 -d10s  against /health            (public)
#   wrk -t2 -c32 -d10s  against /api/v1/whoami     (bearer token: lookup + hash compare)
# In the same run, the peer: Debian's Prometheus with an empty scrape config on another
# random port, measured the same way on its own health endpoint (/-/healthy) and a small
# JSON API call (/api/v1/status/buildinfo); the table shows both and the ratio.
# Informational only: never part of pass/fail.
# Usage: bash bench/http.sh [path/to/ward]   (default: build/src/cli/ward, built if missing)
# Environment: DURATION (10s), CONNECTIONS (32), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

ward="${1:-build/src/cli/ward}"
duration="${DURATION:-10s}"
conns="${CONNECTIONS:-32}"
threads="${THREADS:-2}"

if [ ! -x "$ward" ]; then
	if [ "$ward" = build/src/cli/ward ]; then
		bash scripts/deps.sh build
		[ -f build/build.ninja ] || meson setup build >&2
		ninja -C build >&2
	else
		echo "bench: $ward is not an executable" >&2
		exit 2
	fi
fi
command -v wrk >/dev/null || bash scripts/deps.sh test
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 2; }

tmp="$(mktemp -d -t ward-bench.XXXXXX)"
pid=""
ppid_=""
stop_pid() {
	local p="$1"
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	fi
}
cleanup() {
	stop_pid "$pid"
	stop_pid "$ppid_"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$tmp/ward.yaml" <<EOF
server:
  listen: 127.0.0.1:$port
  threads: 4
  limits: {rate_per_client: 0, max_connections: 1024, max_connections_per_client: 512}
log: {level: warn, format: json}
storage: {data_dir: $tmp/data}
EOF

"$ward" serve --config "$tmp/ward.yaml" >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 300); do
	if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then break; fi
	kill -0 "$pid" 2>/dev/null || { echo "bench: ward exited:" >&2; cat "$tmp/stderr" >&2; exit 1; }
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/ready" >/dev/null || { echo "bench: ward not ready" >&2; exit 1; }
token="$(grep -Eo 'ward_[0-9a-f]{64}' "$tmp/stdout" | head -n 1 || true)"
[ -n "$token" ] || { echo "bench: no admin token on stdout" >&2; exit 1; }

sleep 1
rss_idle="$(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$pid/status")"

# wrk prints "Requests/sec:  12345.67" and a latency line "Latency  1.23ms ..."
run_wrk() {
	local out
	out="$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "$@" 2>&1)"
	local rps p50 p99 errs
	rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
	p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
	p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
	errs="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
	printf '%s|%s|%s|%s\n' "${rps:-?}" "${p50:-?}" "${p99:-?}" "${errs:-0}"
}

IFS='|' read -r h_rps h_p50 h_p99 h_err < <(run_wrk "http://127.0.0.1:$port/health")
IFS='|' read -r w_rps w_p50 w_p99 w_err < <(run_wrk -H "Authorization: Bearer $token" \
	"http://127.0.0.1:$port/api/v1/whoami")
rss_after="$(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$pid/status")"
stop_pid "$pid"

# ---- the peer: Prometheus on the same machine, same wrk settings ----
command -v prometheus >/dev/null || bash scripts/deps.sh test
pport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' >"$tmp/prometheus.yml"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn >"$tmp/prom.log" 2>&1 &
ppid_=$!
for _ in $(seq 300); do
	curl -fsS "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
sleep 1
p_rss_idle="$(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$ppid_/status")"
IFS='|' read -r ph_rps ph_p50 ph_p99 ph_err < <(run_wrk "http://127.0.0.1:$pport/-/healthy")
IFS='|' read -r pb_rps pb_p50 pb_p99 pb_err < <(run_wrk "http://127.0.0.1:$pport/api/v1/status/buildinfo")
p_rss_after="$(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$ppid_/status")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "?" }'; }
kb() { awk '{print $1}' <<<"$1"; }

echo
echo "ward HTTP benchmark: wrk -t$threads -c$conns -d$duration, $(nproc) cores, $("$ward" version 2>/dev/null | head -n 1)"
echo
echo "| endpoint | ward req/s | Prometheus req/s | ward / Prometheus | ward p50 / p99 | Prometheus p50 / p99 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
echo "| health (ward /health, Prometheus /-/healthy) | $h_rps | $ph_rps | $(ratio "$h_rps" "$ph_rps") | $h_p50 / $h_p99 | $ph_p50 / $ph_p99 |"
echo "| small authenticated API call (ward /api/v1/whoami with a bearer token; Prometheus /api/v1/status/buildinfo, no auth) | $w_rps | $pb_rps | $(ratio "$w_rps" "$pb_rps") | $w_p50 / $w_p99 | $pb_p50 / $pb_p99 |"
echo
echo "| memory (VmRSS) | ward | Prometheus | ward / Prometheus |"
echo "| --- | ---: | ---: | ---: |"
echo "| idle after start | $rss_idle | $p_rss_idle | $(ratio "$(kb "$rss_idle")" "$(kb "$p_rss_idle")") |"
echo "| after the runs | $rss_after | $p_rss_after | $(ratio "$(kb "$rss_after")" "$(kb "$p_rss_after")") |"
echo
echo "non-2xx responses: ward $h_err / $w_err, Prometheus $ph_err / $pb_err"
