#!/usr/bin/env bash
# bench/collect/run.sh: footprint of ward's collectors against their peers (issue 4).
# Never part of pass/fail tests. Prints markdown tables.
#
#  1. Host metrics every 1 s for MINUTES minutes, all running side by side on this machine:
#     ward (host collector, samples stored in its tsdb), node_exporter scraped every 1 s by
#     Prometheus (both processes counted, since together they do what ward does), Monit
#     (`set daemon 1`, system/filesystem/network checks) and Netdata (default config, 1 s).
#     RSS (VmRSS at the end, VmHWM peak) and CPU seconds (utime+stime over the window) of
#     each, from /proc, with ratios to ward.
#  2. Scraping TARGETS targets x SERIES series every 15 s from static files served by a local
#     nginx, ward against Prometheus (same targets, same relabeling): CPU seconds per million
#     samples scraped (the sample count is what each one reports in scrape_samples_scraped).
#
# Usage: bench/collect/run.sh [MINUTES]    (default 2: a quick run; the issue's figure is 10)
#   WARD_BIN=...            ward built with --buildtype=release (default build-release/src/cli/ward)
#   NODE_EXPORTER_BIN=...   default: prometheus-node-exporter from PATH
#   MONIT_BIN=... NETDATA_BIN=... PROMETHEUS_BIN=... NGINX_BIN=...
#   TARGETS=200 SERIES=1000 SCRAPE_MINUTES=$MINUTES SKIP_HOST=1 (only part 2)
#   WARD_WAL_FSYNC=1s       ward's tsdb.wal_fsync (default: ward's own default, "always": an
#                           fsync per committed scrape; Prometheus never fsyncs per scrape, its
#                           WAL syncs only when a segment is closed)
# A peer that is not installed is reported as such (scripts/deps.sh --test installs them).
set -euo pipefail

MINUTES=${1:-2}
SCRAPE_MINUTES=${SCRAPE_MINUTES:-$MINUTES}
TARGETS=${TARGETS:-200}
SERIES=${SERIES:-1000}
WARD_BIN=${WARD_BIN:-build-release/src/cli/ward}
NODE_EXPORTER_BIN=${NODE_EXPORTER_BIN:-$(command -v prometheus-node-exporter || true)}
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
MONIT_BIN=${MONIT_BIN:-$(command -v monit || true)}
NETDATA_BIN=${NETDATA_BIN:-$(command -v netdata || true)}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || true)}

[ -x "$WARD_BIN" ] || { echo "ward binary not found: $WARD_BIN (build with --buildtype=release)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/ward-bench-collect.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

start() { # name cmd...: runs in the background, records the pid
	local name=$1; shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}

wait_http() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not answering: $1" >&2; return 1; }

ward_serve() { # name port data extra_yaml
	local name=$1 port=$2 extra=$3
	cat >"$WORK/$name.yaml" <<YAML
server:
  listen: 127.0.0.1:$port
log:
  level: warn
storage:
  data_dir: $WORK/$name-data
tsdb:
  self_scrape_interval: 0${WARD_WAL_FSYNC:+
  wal_fsync: $WARD_WAL_FSYNC}
$extra
YAML
	start "$name" "$WARD_BIN" serve --config "$WORK/$name.yaml"
	wait_http "http://127.0.0.1:$port/ready"
}

# ---------------------------------------------------------------- 1. host footprint
if [ -z "${SKIP_HOST:-}" ]; then
echo "## Host metrics every 1 s for $MINUTES min ($(nproc) CPUs, $(uname -r))"
echo
declare -a NAMES=()
WPORT=$(free_port)
ward_serve ward "$WPORT" "host:
  interval: 1s"
NAMES+=(ward)
if [ -n "$NODE_EXPORTER_BIN" ] && [ -n "$PROMETHEUS_BIN" ]; then
	NPORT=$(free_port); PPORT=$(free_port)
	start node_exporter "$NODE_EXPORTER_BIN" --web.listen-address=127.0.0.1:$NPORT
	cat >"$WORK/prom-host.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:$NPORT"]}]
YAML
	start prometheus "$PROMETHEUS_BIN" --config.file="$WORK/prom-host.yml" \
		--storage.tsdb.path="$WORK/prom-host" --web.listen-address=127.0.0.1:$PPORT
	NAMES+=(node_exporter prometheus)
fi
if [ -n "$MONIT_BIN" ]; then
	cat >"$WORK/monitrc" <<RC
set daemon 1
set logfile $WORK/monit.log
set pidfile $WORK/monit.pid
set idfile $WORK/monit.id
set statefile $WORK/monit.state
check system localhost
check filesystem root with path /
check network lo with interface lo
RC
	chmod 600 "$WORK/monitrc"
	start monit "$MONIT_BIN" -I -c "$WORK/monitrc"
	NAMES+=(monit)
fi
if [ -n "$NETDATA_BIN" ]; then
	start netdata "$NETDATA_BIN" -D -p "$(free_port)"
	NAMES+=(netdata)
fi
sleep 5 # start-up is not what we measure
declare -A C0
for n in "${NAMES[@]}"; do eval "p=\$PID_$n"; C0[$n]=$(cpu_ticks "$p"); done
sleep $((MINUTES * 60))
declare -A CPU RSS HWM
for n in "${NAMES[@]}"; do
	eval "p=\$PID_$n"
	CPU[$n]=$(awk -v a="$(cpu_ticks "$p")" -v b="${C0[$n]}" -v hz="$HZ" 'BEGIN{printf "%.2f",(a-b)/hz}')
	RSS[$n]=$(status_kb "$p" VmRSS)
	HWM[$n]=$(status_kb "$p" VmHWM)
done
echo "| process | CPU s in ${MINUTES} min | RSS MiB (end) | RSS MiB (peak) | CPU / ward | RSS / ward |"
echo "|---|---:|---:|---:|---:|---:|"
row() { # label cpu rss_kb hwm_kb
	awk -v l="$1" -v c="$2" -v r="$3" -v h="$4" -v wc="${CPU[ward]}" -v wr="${RSS[ward]}" 'BEGIN{
		printf "| %s | %.2f | %.1f | %.1f | %.1f× | %.1f× |\n", l, c, r/1024, h/1024,
		(wc > 0 ? c/wc : 0), (wr > 0 ? r/wr : 0) }'
}
for n in "${NAMES[@]}"; do row "$n" "${CPU[$n]}" "${RSS[$n]}" "${HWM[$n]}"; done
if [ -n "${PID_node_exporter:-}" ]; then
	row "node_exporter + prometheus" \
		"$(awk -v a="${CPU[node_exporter]}" -v b="${CPU[prometheus]}" 'BEGIN{print a+b}')" \
		$((RSS[node_exporter] + RSS[prometheus])) $((HWM[node_exporter] + HWM[prometheus]))
fi
[ -n "$MONIT_BIN" ] || echo "| monit | not installed | | | | |"
[ -n "$NETDATA_BIN" ] || echo "| netdata | not installed | | | | |"
echo
for n in "${NAMES[@]}"; do eval "kill \$PID_$n" 2>/dev/null || true; done
sleep 2
fi

# ---------------------------------------------------------------- 2. scraping
echo "## Scraping $TARGETS targets × $SERIES series every 15 s for $SCRAPE_MINUTES min (nginx, static files; ward's wal_fsync: ${WARD_WAL_FSYNC:-default})"
echo
if [ -z "$NGINX_BIN" ]; then echo "nginx not installed: skipped"; exit 0; fi
mkdir -p "$WORK/www" "$WORK/nginx"
chmod 755 "$WORK" "$WORK/www" # nginx workers run as an unprivileged user
python3 - "$WORK/www" "$TARGETS" "$SERIES" <<'PY'
import sys
d, nt, ns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for t in range(nt):
    lines = ["# HELP bench_requests_total Requests.", "# TYPE bench_requests_total counter"]
    for s in range(ns):
        lines.append(f'bench_requests_total{{path="/api/{s % 50}",code="{200 + s // 50}",shard="{t}"}} {s * 7 + t}')
    open(f"{d}/t{t}.prom", "w").write("\n".join(lines) + "\n")
PY
GPORT=$(free_port)
cat >"$WORK/nginx/nginx.conf" <<NG
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	default_type text/plain;
	client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
	fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
	server { listen 127.0.0.1:$GPORT; root $WORK/www; }
}
NG
start nginx "$NGINX_BIN" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
wait_http "http://127.0.0.1:$GPORT/t0.prom"
TLIST=""
for t in $(seq 0 $((TARGETS - 1))); do TLIST+="        - {targets: [\"127.0.0.1:$GPORT\"], labels: {t: \"$t\"}}"$'\n'; done
JOB="  - job_name: bench
    scrape_interval: 15s
    scrape_timeout: 10s
    static_configs:
$TLIST    relabel_configs:
      - {source_labels: [t], target_label: __metrics_path__, replacement: '/t\$1.prom'}"
SPORT=$(free_port)
ward_serve wscrape "$SPORT" "host:
  enabled: false
scrape:
  scrape_configs:
$(echo "$JOB" | sed 's/^/  /')"
RPORT=$(free_port)
printf 'scrape_configs:\n%s\n' "$JOB" >"$WORK/prom-scrape.yml"
start pscrape "$PROMETHEUS_BIN" --config.file="$WORK/prom-scrape.yml" \
	--storage.tsdb.path="$WORK/prom-scrape" --web.listen-address=127.0.0.1:$RPORT
sleep 3
C0W=$(cpu_ticks "$PID_wscrape"); C0P=$(cpu_ticks "$PID_pscrape")
T0=$(date +%s)
sleep $((SCRAPE_MINUTES * 60))
T1=$(date +%s)
CW=$(awk -v a="$(cpu_ticks "$PID_wscrape")" -v b="$C0W" -v hz="$HZ" 'BEGIN{printf "%.2f",(a-b)/hz}')
CP=$(awk -v a="$(cpu_ticks "$PID_pscrape")" -v b="$C0P" -v hz="$HZ" 'BEGIN{printf "%.2f",(a-b)/hz}')
RW=$(status_kb "$PID_wscrape" VmRSS); RP=$(status_kb "$PID_pscrape" VmRSS)
samples() { # url: sum of scrape_samples_scraped over the window
	curl -fsS --get "$1/api/v1/query" -H "Authorization: Bearer ${2:-}" \
		--data-urlencode "query=sum(sum_over_time(scrape_samples_scraped{job=\"bench\"}[$((T1 - T0))s]))" \
		--data-urlencode "time=$T1" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)'
}
WTOKEN=$(grep -o 'ward_[0-9a-f]\{64\}' "$WORK/wscrape.log" | head -1)
SW=$(samples "http://127.0.0.1:$SPORT" "$WTOKEN")
SP=$(samples "http://127.0.0.1:$RPORT")
echo "| scraper | CPU s | samples scraped | CPU s per million samples | RSS MiB | CPU/M vs ward |"
echo "|---|---:|---:|---:|---:|---:|"
awk -v c="$CW" -v s="$SW" -v r="$RW" 'BEGIN{w=(s>0?c/(s/1e6):0); printf "| ward | %.2f | %d | %.2f | %.1f | 1.0× |\n", c, s, w, r/1024}'
awk -v c="$CP" -v s="$SP" -v r="$RP" -v cw="$CW" -v sw="$SW" 'BEGIN{p=(s>0?c/(s/1e6):0); w=(sw>0?cw/(sw/1e6):0); printf "| prometheus | %.2f | %d | %.2f | %.1f | %.1f× |\n", c, s, p, r/1024, (w>0?p/w:0)}'
