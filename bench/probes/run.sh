#!/usr/bin/env bash
# bench/probes/run.sh: the probe scheduler under load (issue 4, "Performance").
# Starts a local nginx (one worker, 127.0.0.1, random port) and `ward serve` with N HTTP
# checks (default 2000) at a 10 s interval against it, lets it run for DURATION seconds
# (default 120), and prints a markdown table: ward's CPU seconds and CPU share
# (/proc/<pid>/stat utime+stime), RSS at the end and its peak (VmRSS/VmHWM from
# /proc/<pid>/status), probe runs completed, and the p50/p99 scheduling lateness computed
# from the histogram ward_probe_schedule_lateness_seconds on /metrics (bucket upper bounds,
# as Prometheus' histogram_quantile would place them). Goal: p99 <= 100 ms.
# Use a release build (no sanitizers). Informational only: never part of pass/fail.
# Usage: bash bench/probes/run.sh [path/to/ward]   (default: build/src/cli/ward)
# Environment: CHECKS (2000), INTERVAL (10s), DURATION (120), CONCURRENCY (256),
# SELF_SCRAPE (unset: the tsdb section's default; "0" turns ward's self-scrape off).
set -euo pipefail
cd "$(dirname "$0")/../.."

ward="${1:-build/src/cli/ward}"
checks="${CHECKS:-2000}"
interval="${INTERVAL:-10s}"
duration="${DURATION:-120}"
conc="${CONCURRENCY:-256}"

[ -x "$ward" ] || { echo "bench: $ward is not an executable (build ward first)" >&2; exit 2; }
if ! command -v nginx >/dev/null; then
	echo "bench: nginx is not installed (scripts/deps.sh test)" >&2
	exit 2
fi

tmp="$(mktemp -d -t ward-bench-probes.XXXXXX)"
ward_pid=""
nginx_pid=""
cleanup() {
	for p in "$ward_pid" "$nginx_pid"; do
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nport="$(free_port)"
wport="$(free_port)"
cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
EOF
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" >/dev/null 2>&1 &
nginx_pid=$!

{
	echo "server:"
	echo "  listen: 127.0.0.1:$wport"
	echo "log:"
	echo "  level: warn"
	echo "storage:"
	echo "  data_dir: $tmp/data"
	if [ -n "${SELF_SCRAPE:-}" ]; then
		echo "tsdb:"
		echo "  self_scrape_interval: $SELF_SCRAPE"
	fi
	echo "probes:"
	echo "  max_concurrency: $conc"
	echo "  checks:"
	for i in $(seq 1 "$checks"); do
		echo "    - {name: c$i, kind: http, target: 'http://127.0.0.1:$nport/c/$i'," \
			"interval: $interval, timeout: 5s}"
	done
} >"$tmp/ward.yaml"

"$ward" serve --config "$tmp/ward.yaml" >"$tmp/ward.out" 2>"$tmp/ward.err" &
ward_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$wport/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
if ! curl -fsS "http://127.0.0.1:$wport/ready" >/dev/null; then
	echo "bench: ward did not start:" >&2
	tail -5 "$tmp/ward.err" >&2
	exit 1
fi

clk="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0="$(date +%s.%N)"
c0="$(cpu_ticks "$ward_pid")"
sleep "$duration"
c1="$(cpu_ticks "$ward_pid")"
t1="$(date +%s.%N)"
rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$ward_pid/status")"
hwm_kb="$(awk '/^VmHWM/ {print $2}' "/proc/$ward_pid/status")"
curl -fsS "http://127.0.0.1:$wport/metrics" >"$tmp/metrics.txt"

python3 - "$tmp/metrics.txt" "$c0" "$c1" "$clk" "$t0" "$t1" "$rss_kb" "$hwm_kb" "$checks" \
	"$interval" "$conc" <<'PY'
import re, sys
path, c0, c1, clk, t0, t1, rss, hwm, checks, interval, conc = sys.argv[1:]
text = open(path).read()
buckets, count, runs = [], 0.0, {}
for line in text.splitlines():
    m = re.match(r'ward_probe_schedule_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m:
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)),
                        float(m.group(2))))
    m = re.match(r'ward_probe_schedule_lateness_seconds_count (\S+)', line)
    if m:
        count = float(m.group(1))
    m = re.match(r'ward_probe_runs_total\{kind="(\w+)",result="(\w+)"\} (\S+)', line)
    if m:
        runs[m.group(2)] = runs.get(m.group(2), 0) + float(m.group(3))
buckets.sort()

def q(p):
    for le, c in buckets:
        if count and c >= p * count:
            return le
    return float("nan")

def fmt_s(v):
    return "> 10 s" if v == float("inf") else f"<= {v * 1000:g} ms"

cpu = (float(c1) - float(c0)) / float(clk)
wall = float(t1) - float(t0)
print(f"| probes ({checks} HTTP checks every {interval}, max_concurrency {conc}, "
      f"{wall:.0f} s) | value |")
print("|---|---|")
print(f"| ward CPU seconds | {cpu:.2f} ({100 * cpu / wall:.1f} % of one core) |")
print(f"| ward RSS at the end | {int(rss) / 1024:.1f} MiB |")
print(f"| ward peak RSS (VmHWM) | {int(hwm) / 1024:.1f} MiB |")
print(f"| probe runs (since start) | {runs.get('success', 0):.0f} ok, "
      f"{runs.get('failure', 0):.0f} failed |")
print(f"| scheduling lateness p50 | {fmt_s(q(0.5))} |")
print(f"| scheduling lateness p99 | {fmt_s(q(0.99))} (goal <= 100 ms) |")
print(f"| runs measured for lateness | {count:.0f} |")
PY
