#!/usr/bin/env python3
"""bench/logs/bench.py: ingest and query benchmark for ward's log store (see run.sh).

Generates N log lines (half nginx access lines, half JSON application lines; 16 streams;
about 5% contain "error"; spread over the 24 h before now) as Loki push API request bodies
in a spool on disk (so the generator's speed is never measured), starts `ward serve`, POSTs
the spool to /loki/api/v1/push with --writers keep-alive connections, and reports:
lines/s (accepted lines / wall time of the POSTs), server CPU seconds (utime+stime from
/proc), peak RSS (VmHWM), stored bytes per line (du of <data>/logs after a clean stop, which
cuts the last blocks), and query latency p50/p95 over --repeat runs for
  A: {job=~".+"} |= "error"                      over all 24 h, limit 100 (log query)
  B: sum(count_over_time({job=~".+"} |= "error" [24h]))   (scans every line)
  C: {job="nginx",host="web1"} |= "error"        over one hour, limit 1000
Prints a Markdown table. Informational only; never part of pass/fail tests.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PATHS = ["/", "/index.html", "/api/v1/users", "/api/v1/orders", "/static/app.js", "/login"]
AGENTS = ["curl/8.4.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "Go-http-client/1.1"]


def nginx_line(r, ts):
    st = r.choice([200] * 15 + [301, 404, 500])
    err = r.random() < 0.05
    path = r.choice(PATHS) + ("?q=error" if err else "")
    t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts / 1e9))
    return (f'10.0.{r.randrange(256)}.{r.randrange(256)} - - [{t}] "GET {path} HTTP/1.1" {st} '
            f'{r.randrange(100, 90000)} "-" "{r.choice(AGENTS)}" rt={r.random():.3f}')


def app_line(r, ts):
    err = r.random() < 0.05
    return json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1e9)) + "Z",
        "level": "error" if err else r.choice(["info", "info", "info", "debug", "warn"]),
        "msg": "request failed: upstream error" if err else r.choice(
            ["request done", "cache hit", "user login", "order created"]),
        "user_id": r.randrange(1, 100000), "duration_ms": r.randrange(1, 900),
        "trace_id": "%016x" % r.getrandbits(64)}, separators=(",", ":"))


def gen_spool(n, batch, spool):
    r = random.Random(42)
    streams = [("nginx", f"web{i}") for i in range(1, 9)] + [("app", f"app{i}") for i in
                                                               range(1, 9)]
    end = time.time_ns() - 60 * 10**9
    start = end - 24 * 3600 * 10**9
    step = (end - start) // max(n, 1)
    files = []
    lines = 0
    raw_bytes = 0
    ts = start
    per = {s: [] for s in streams}
    k = 0

    def flush():
        nonlocal k
        body = {"streams": [{"stream": {"job": j, "host": h}, "values": v}
                            for (j, h), v in per.items() if v]}
        p = os.path.join(spool, f"{k:06d}.json")
        with open(p, "w") as f:
            json.dump(body, f, separators=(",", ":"))
        files.append((p, sum(len(v) for v in per.values())))
        for v in per.values():
            v.clear()
        k += 1

    inbatch = 0
    for i in range(n):
        s = streams[i % len(streams)]
        line = nginx_line(r, ts) if s[0] == "nginx" else app_line(r, ts)
        per[s].append([str(ts), line])
        raw_bytes += len(line.encode())
        ts += step
        inbatch += 1
        lines += 1
        if inbatch >= batch:
            flush()
            inbatch = 0
    if inbatch:
        flush()
    return files, start, end, raw_bytes


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def du_bytes(path):
    total = 0
    for root, _, fs in os.walk(path):
        for fn in fs:
            try:
                total += os.stat(os.path.join(root, fn)).st_blocks * 512
            except OSError:
                pass
    return total


class Ward:
    def __init__(self, binary, tmp, port):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="ward-bench-logs-", dir=tmp)
        self.port = port
        self.cfg = os.path.join(self.dir, "ward.yaml")
        with open(self.cfg, "w") as f:
            f.write(f"""server:
  listen: 127.0.0.1:{port}
  threads: 4
  limits:
    max_body: 64MiB
    rate_per_client: 0
log:
  level: warn
  format: json
storage:
  data_dir: {self.dir}/data
logs:
  retention: 0
""")
        self.proc = None
        self.token = None

    def start(self):
        out = open(os.path.join(self.dir, "stdout"), "ab")
        err = open(os.path.join(self.dir, "stderr"), "ab")
        self.proc = subprocess.Popen([self.bin, "serve", "--config", self.cfg], stdout=out,
                                     stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if self.token is None:
            time.sleep(0.3)
            with open(os.path.join(self.dir, "stdout")) as f:
                for word in f.read().split():
                    if word.startswith("ward_") and len(word) == 69:
                        self.token = word
        if not self.token:
            sys.exit("bench: no admin token on ward's stdout")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def push_all(port, token, files, writers):
    todo = list(files)
    lock = threading.Lock()
    accepted = [0]
    errors = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if not todo:
                    return
                p, n = todo.pop(0)
            with open(p, "rb") as f:
                body = f.read()
            c.request("POST", "/loki/api/v1/push", body=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            with lock:
                if 200 <= r.status < 300:
                    accepted[0] += n
                else:
                    errors.append(r.status)

    ts = [threading.Thread(target=worker) for _ in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return accepted[0], errors


def timed_query(port, token, path, params, repeat):
    q = urllib.parse.urlencode(params)
    times = []
    for i in range(repeat + 1):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        t0 = time.perf_counter()
        c.request("GET", f"{path}?{q}", headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            sys.exit(f"bench: query {params} failed: {r.status} {body[:300]!r}")
        if i:
            times.append(dt)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ward-bin", required=True)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10000, help="lines per push request")
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    spool = tempfile.mkdtemp(prefix="ward-bench-logs-spool-", dir=a.tmp)
    t0 = time.time()
    files, start, end, line_bytes = gen_spool(a.lines, a.batch, spool)
    raw = 0
    for p, _ in files:
        raw += os.path.getsize(p)
    print(f"bench: generated {a.lines} lines in {len(files)} requests "
          f"({raw / 1e6:.0f} MB of JSON) in {time.time() - t0:.1f}s", file=sys.stderr)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    w = Ward(a.ward_bin, a.tmp, port)
    w.start()
    cpu0 = proc_cpu(w.proc.pid)
    t0 = time.perf_counter()
    accepted, errors = push_all(port, w.token, files, a.writers)
    wall = time.perf_counter() - t0
    cpu = proc_cpu(w.proc.pid) - cpu0
    hwm = proc_hwm_kib(w.proc.pid)
    if errors:
        print(f"bench: {len(errors)} push requests failed: {errors[:5]}", file=sys.stderr)
    w.stop()
    stored = du_bytes(os.path.join(w.dir, "data", "logs"))
    w.start()
    hour_end = end - 6 * 3600 * 10**9
    qa = timed_query(port, w.token, "/api/v1/logs/query_range",
                     {"query": '{job=~".+"} |= "error"', "start": start, "end": end,
                      "limit": 100}, a.repeat)
    qb = timed_query(port, w.token, "/api/v1/logs/query",
                     {"query": 'sum(count_over_time({job=~".+"} |= "error" [25h]))',
                      "time": end}, a.repeat)
    qc = timed_query(port, w.token, "/api/v1/logs/query_range",
                     {"query": '{job="nginx",host="web1"} |= "error"',
                      "start": hour_end - 3600 * 10**9, "end": hour_end, "limit": 1000},
                     a.repeat)
    w.stop()
    print(f"\n### ward logs: {accepted:,} lines ({a.lines:,} generated), {a.writers} writers, "
          f"{a.batch} lines per push\n")
    print("| measure | ward | Loki |")
    print("| --- | --- | --- |")
    print(f"| ingest, lines/s | {accepted / wall:,.0f} | n/a |")
    print(f"| ingest wall time, s | {wall:.1f} | n/a |")
    print(f"| lines per server CPU-second | {accepted / max(cpu, 0.01):,.0f} | n/a |")
    print(f"| server CPU during ingest, s | {cpu:.1f} | n/a |")
    print(f"| peak RSS, MiB | {hwm / 1024:.0f} | n/a |")
    print(f"| stored bytes per line | {stored / max(accepted, 1):.1f} | n/a |")
    print(f"| raw bytes per line (input) | {line_bytes / max(accepted, 1):.1f} | n/a |")
    print(f"| push JSON bytes per line (wire) | {raw / max(accepted, 1):.1f} | n/a |")
    print(f"| query A p50 / p95, ms | {qa[0] * 1e3:.1f} / {qa[1] * 1e3:.1f} | n/a |")
    print(f"| query B p50 / p95, ms | {qb[0] * 1e3:.1f} / {qb[1] * 1e3:.1f} | n/a |")
    print(f"| query C p50 / p95, ms | {qc[0] * 1e3:.1f} / {qc[1] * 1e3:.1f} | n/a |")
    if not a.keep:
        shutil.rmtree(spool, ignore_errors=True)
        shutil.rmtree(w.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
