#!/usr/bin/env bash
# bench/rules/run.sh: rule evaluation cost, ward against Prometheus in the same run.
# Generates RULES alerting rules (groups of GROUP_SIZE, interval 15s) over SERIES series
# (bench_metric{shard, i}: each rule selects its own shard, SERIES/RULES series, and about
# a tenth of them cross the threshold so some alerts are pending), starts `ward serve` and
# Debian's Prometheus (remote-write receiver on) on random 127.0.0.1 ports with the same
# rule file, pushes the same samples to both by remote_write every PUSH_EVERY seconds,
# lets them evaluate for DURATION seconds, then reads
#   ward:        sum and max of ward_rule_group_last_duration_seconds
#   Prometheus:  sum and max of prometheus_rule_group_last_duration_seconds
# and the CPU seconds each process used during the measured window (/proc/<pid>/stat),
# and prints a markdown table with the ratio ward/Prometheus. Informational only.
# Usage: bash bench/rules/run.sh [path/to/ward]     (default: build/src/cli/ward)
# Environment: RULES (200; the issue's size is 10000), SERIES (2000; 100000),
#              GROUP_SIZE (100), DURATION (60), PUSH_EVERY (5), WAL_FSYNC (always, or a
#              duration such as 1s: ward's tsdb.wal_fsync).
set -euo pipefail
cd "$(dirname "$0")/../.."
ward="$(realpath "${1:-build/src/cli/ward}")"
RULES="${RULES:-200}"
SERIES="${SERIES:-2000}"
GROUP_SIZE="${GROUP_SIZE:-100}"
DURATION="${DURATION:-60}"
PUSH_EVERY="${PUSH_EVERY:-5}"
[ -x "$ward" ] || { echo "bench: $ward is not an executable" >&2; exit 2; }
command -v prometheus >/dev/null || { echo "bench: prometheus not installed" >&2; exit 2; }

tmp="$(mktemp -d /tmp/ward-bench-rules.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wport="$(port)"; pport="$(port)"

python3 - "$tmp/rules.yml" "$RULES" "$SERIES" "$GROUP_SIZE" <<'PY'
import sys
path, rules, series, gsize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(path, "w") as f:
    f.write("groups:\n")
    for r in range(rules):
        if r % gsize == 0:
            f.write(f"  - name: g{r // gsize}\n    interval: 15s\n    rules:\n")
        f.write(f"      - alert: BenchAlert{r}\n"
                f"        expr: bench_metric{{shard=\"{r}\"}} > 90\n"
                f"        for: 1m\n"
                f"        labels: {{severity: warning}}\n"
                f"        annotations: {{summary: \"{{{{ $labels.i }}}} at {{{{ $value | humanize }}}}\"}}\n")
PY

cat > "$tmp/ward.yaml" <<YAML
server:
  listen: 127.0.0.1:$wport
  limits: {rate_per_client: 0}
log: {level: warn}
storage: {data_dir: $tmp/ward-data}
tsdb: {self_scrape_interval: 0, out_of_order_window: 1h, wal_fsync: "${WAL_FSYNC:-always}"}
rules:
  files: [$tmp/rules.yml]
  evaluation_interval: 15s
YAML
cat > "$tmp/prom.yml" <<YAML
global: {evaluation_interval: 15s}
rule_files: [$tmp/rules.yml]
YAML

"$ward" serve --config "$tmp/ward.yaml" > "$tmp/ward.out" 2> "$tmp/ward.err" & wpid=$!; pids+=($wpid)
prometheus --config.file="$tmp/prom.yml" --storage.tsdb.path="$tmp/prom-data" \
	--web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
	> "$tmp/prom.out" 2>&1 & ppid=$!; pids+=($ppid)
for i in $(seq 100); do
	curl -fs "http://127.0.0.1:$wport/ready" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1 && break
	sleep 0.2
done
token="$(grep -oE 'ward_[0-9a-f]{64}' "$tmp/ward.out" | head -1)"
[ -n "$token" ] || { echo "bench: no admin token from ward" >&2; cat "$tmp/ward.err" >&2; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk="$(getconf CLK_TCK)"

# pusher: the same WriteRequest to both, every PUSH_EVERY seconds, for DURATION seconds
python3 - "$wport" "$pport" "$token" "$RULES" "$SERIES" "$DURATION" "$PUSH_EVERY" <<'PY' &
import sys, time, urllib.request, random
sys.path.insert(0, "tests/compat")
import promwire
wport, pport, token, rules, series, dur, every = sys.argv[1:8]
rules, series, dur, every = int(rules), int(series), float(dur), float(every)
per = max(1, series // rules)
rnd = random.Random(1)
hot = {i for i in range(series) if rnd.random() < 0.1}
BATCH = 2000
end = time.time() + dur + 20
while time.time() < end:
    now = int(time.time() * 1000)
    s = []
    for i in range(series):
        v = 95.0 if i in hot else 50.0
        s.append(({"__name__": "bench_metric", "shard": str(i // per), "i": str(i)}, [(now, v)]))
    h = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
         "X-Prometheus-Remote-Write-Version": "0.1.0"}
    for k in range(0, len(s), BATCH):  # as Prometheus' max_samples_per_send batches
        body = promwire.snappy_block(promwire.encode_write_request(s[k:k + BATCH]))
        for url, tok in ((f"http://127.0.0.1:{wport}/api/v1/write", token),
                         (f"http://127.0.0.1:{pport}/api/v1/write", None)):
            auth = {"Authorization": "Bearer " + tok} if tok else {}
            req = urllib.request.Request(url, data=body, headers=dict(h, **auth), method="POST")
            try:
                urllib.request.urlopen(req, timeout=30).read()
            except Exception as e:
                print("push failed:", url, e, file=sys.stderr)
    time.sleep(every)
PY
pids+=($!)

half=$((DURATION / 2))
sleep "$half"
w0="$(cpu $wpid)"; p0="$(cpu $ppid)"; t0="$(date +%s.%N)"
sleep "$((DURATION - half))"
w1="$(cpu $wpid)"; p1="$(cpu $ppid)"; t1="$(date +%s.%N)"

metric() { # url name -> "sum max count"
	curl -fs "$1" | awk -v n="$2" '$1 ~ "^"n"[{ ]" { s += $NF; if ($NF > m) m = $NF; c++ } END { printf "%.6f %.6f %d\n", s, m, c }'
}
read -r wsum wmax wn < <(metric "http://127.0.0.1:$wport/metrics" ward_rule_group_last_duration_seconds)
read -r psum pmax pn < <(metric "http://127.0.0.1:$pport/metrics" prometheus_rule_group_last_duration_seconds)
walerts="$(curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$wport/api/v1/alerts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["alerts"]))')"
palerts="$(curl -fs "http://127.0.0.1:$pport/api/v1/alerts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["alerts"]))')"
win="$(echo "$t1 - $t0" | bc -l)"
wcpu="$(echo "($w1 - $w0) / $clk" | bc -l)"; pcpu="$(echo "($p1 - $p0) / $clk" | bc -l)"
ratio() { if [ "$(echo "$2 > 0" | bc -l)" = 1 ]; then printf "%.2f" "$(echo "$1 / $2" | bc -l)"; else echo "-"; fi; }

echo
echo "Rule evaluation: $RULES alerting rules in $wn groups over $SERIES series, interval 15s,"
echo "measured over ${win%.*}s after ${half}s of warm-up (same rule file and samples for both)."
echo
echo "| measure | ward | Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') | ward / Prometheus |"
echo "|---|---|---|---|"
printf "| evaluation time per cycle, sum over groups (s) | %.4f | %.4f | %s |\n" "$wsum" "$psum" "$(ratio "$wsum" "$psum")"
printf "| slowest group, last evaluation (s) | %.4f | %.4f | %s |\n" "$wmax" "$pmax" "$(ratio "$wmax" "$pmax")"
printf "| CPU seconds in the window (ingest + rules) | %.2f | %.2f | %s |\n" "$wcpu" "$pcpu" "$(ratio "$wcpu" "$pcpu")"
printf "| alerts pending or firing | %s | %s | |\n" "$walerts" "$palerts"
