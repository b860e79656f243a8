"""The time-series service through its Prometheus-compatible HTTP API: remote_write in,
PromQL out, series/labels/values, roles, errors, ward's own metrics, and durability of
acknowledged writes across kill -9."""

import os
import random
import sys
import threading
import time
import urllib.parse

from harness import TestFailure, Ward, check, eq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "compat"))
import promwire  # noqa: E402  (the remote_write encoder the compat test uses too)

TSDB_YAML = "tsdb:\n  self_scrape_interval: 1s\n  out_of_order_window: 1h\n"


def push(w, token, series):
    body = promwire.snappy_block(promwire.encode_write_request(series))
    return w.request("POST", "/api/v1/write", token=token, body=body,
                     headers={"Content-Encoding": "snappy",
                              "Content-Type": "application/x-protobuf",
                              "X-Prometheus-Remote-Write-Version": "0.1.0"})


def query(w, token, expr, **params):
    q = urllib.parse.urlencode(dict(params, query=expr))
    r = w.get("/api/v1/query?" + q, token=token)
    return r, (r.json() if r.body else None)


def test_remote_write_then_promql_series_labels_and_values():
    w = Ward("query", extra_yaml=TSDB_YAML).start()
    now = int(time.time() * 1000)
    series = []
    for i in range(3):
        samples = [(now - 60000 * k, float(100 - k) * (i + 1)) for k in range(30, -1, -1)]
        series.append(({"__name__": "req_total", "job": "api", "i": str(i)}, samples))
    r = push(w, w.admin_token, series)
    eq(r.status, 204, f"remote_write status ({r.body[:200]!r})")

    r, j = query(w, w.admin_token, "sum(rate(req_total[5m]))", time=str(now / 1000))
    eq(r.status, 200, f"query status {j}")
    eq(j["data"]["resultType"], "vector", "resultType")
    res = j["data"]["result"]
    eq(len(res), 1, "one summed series")
    # each series grows 1*(i+1) per minute: (1+2+3)/60 per second
    got = float(res[0]["value"][1])
    check(abs(got - 0.1) < 1e-9, f"sum(rate) = {got}, want 0.1")

    q = urllib.parse.urlencode({"query": "req_total{i=\"1\"}", "start": str((now - 600000) / 1000),
                                "end": str(now / 1000), "step": "120"})
    j = w.get("/api/v1/query_range?" + q, token=w.admin_token).json()
    eq(j["data"]["resultType"], "matrix", "range resultType")
    vals = j["data"]["result"][0]["values"]
    eq(len(vals), 6, f"points over 10m at 2m steps: {vals}")
    eq(vals[-1][1], "200", "last value of req_total{i=1}")

    j = w.get("/api/v1/series?" + urllib.parse.urlencode({"match[]": "req_total"}),
              token=w.admin_token).json()
    eq(sorted(s["i"] for s in j["data"]), ["0", "1", "2"], "series of req_total")
    j = w.get("/api/v1/label/i/values", token=w.admin_token).json()
    eq(j["data"], ["0", "1", "2"], "values of label i")
    j = w.get("/api/v1/labels", token=w.admin_token).json()
    check({"__name__", "i", "job"} <= set(j["data"]), f"labels: {j['data']}")
    j = w.get("/api/v1/status/buildinfo", token=w.admin_token).json()
    eq(j["data"]["version"], "0.1.0", "buildinfo version")
    w.stop()


def test_query_api_errors_use_prometheus_types_and_codes():
    w = Ward("qerr", extra_yaml=TSDB_YAML).start()
    r, j = query(w, w.admin_token, "sum(rate(x[5m])")
    eq(r.status, 400, "parse error status")
    eq(j["errorType"], "bad_data", "parse error type")
    check("parse error" in j["error"], f"message names the parse error: {j['error']}")
    r = w.get("/api/v1/query_range?query=up&start=100&end=10&step=1", token=w.admin_token)
    eq(r.status, 400, "end before start")
    r = w.get("/api/v1/query_range?query=up&start=0&end=100000&step=1", token=w.admin_token)
    eq(r.status, 400, "more than 11000 points")
    check("11,000" in r.json()["error"], "message names the 11,000 points limit")
    r = w.get("/api/v1/series", token=w.admin_token)
    eq(r.status, 400, "series without match[]")
    r = w.request("POST", "/api/v1/write", token=w.admin_token, body=b"not snappy",
                  headers={"Content-Encoding": "snappy"})
    eq(r.status, 400, "garbage remote_write body")
    w.stop()


def test_viewers_query_but_only_operators_write():
    w = Ward("qroles", extra_yaml=TSDB_YAML).start()
    viewer = w.create_token("grafana", "viewer")["token"]
    operator = w.create_token("prom", "operator")["token"]
    s = [({"__name__": "m", "job": "x"}, [(int(time.time() * 1000), 1.0)])]
    eq(push(w, viewer, s).status, 403, "viewer remote_write")
    eq(push(w, operator, s).status, 204, "operator remote_write")
    eq(push(w, None, s).status, 401, "remote_write without a token")
    r, j = query(w, viewer, "m")
    eq(r.status, 200, "viewer query")
    eq(len(j["data"]["result"]), 1, "the operator's sample is visible")
    eq(w.get("/api/v1/query?query=m").status, 401, "query without a token")
    w.stop()


def test_ward_writes_its_own_metrics_into_the_store():
    w = Ward("selfscrape", extra_yaml=TSDB_YAML).start()

    def seen():
        r, j = query(w, w.admin_token, 'up{job="ward"}')
        res = j["data"]["result"] if r.status == 200 else []
        return res and res[0]["value"][1] == "1"
    from harness import wait_for
    wait_for(seen, 20, "up{job=\"ward\"} == 1 from the self-scrape")
    r, j = query(w, w.admin_token, 'process_resident_memory_bytes{job="ward"}')
    check(j["data"]["result"] and float(j["data"]["result"][0]["value"][1]) > 1e6,
          f"ward's RSS in the store: {j}")
    p = w.cli("query", 'count(up{job="ward"})')
    eq(p.returncode, 0, f"ward query: {p.stderr}")
    check("=> 1" in p.stdout, f"ward query prints the vector: {p.stdout!r}")
    w.stop()


def test_acknowledged_samples_survive_kill_9_in_a_loop():
    """20 rounds: writers push batches, the daemon is killed at a random moment, and after
    a restart every sample whose write returned 204 is there (wal_fsync: always)."""
    w = Ward("tsdbkill", extra_yaml="tsdb:\n  self_scrape_interval: 0s\n  "
                                     "out_of_order_window: 1h\n  wal_fsync: always\n").start()
    acked = {}  # series id -> highest acknowledged timestamp
    base = int(time.time() * 1000) - 3600 * 1000
    rnd = random.Random(7)
    lock = threading.Lock()
    t_next = [base]

    def writer(wid, stop):
        while not stop.is_set():
            with lock:
                t = t_next[0]
                t_next[0] += 1000
            ser = [({"__name__": "kill_test", "w": str(wid), "k": str(k)}, [(t, float(t))])
                   for k in range(5)]
            try:
                r = push(w, w.admin_token, ser)
            except OSError:
                return
            if r.status == 204:
                with lock:
                    for k in range(5):
                        key = (wid, k)
                        acked[key] = max(acked.get(key, 0), t)

    for rnd_i in range(20):
        stop = threading.Event()
        ths = [threading.Thread(target=writer, args=(i, stop)) for i in range(2)]
        for th in ths:
            th.start()
        time.sleep(rnd.uniform(0.05, 0.4))
        w.kill9()
        stop.set()
        for th in ths:
            th.join(10)
        w.start(expect_token=False)
    # every acknowledged (series, timestamp) must be readable
    for (wid, k), t in sorted(acked.items()):
        r, j = query(w, w.admin_token, f'kill_test{{w="{wid}",k="{k}"}}', time=str(t / 1000))
        res = j["data"]["result"]
        check(res and res[0]["value"][0] == t / 1000,
              f"acknowledged sample w={wid} k={k} t={t} missing after kill -9: {res}")
    check(len(acked) > 0, "no write was acknowledged at all")
    # and the count of samples per series covers every acknowledged timestamp
    w.stop()


def test_damaged_wal_is_quarantined_reported_in_health_and_the_rest_served():
    w = Ward("walflip", extra_yaml="tsdb:\n  self_scrape_interval: 0s\nhost:\n  enabled: false\n").start()
    now = int(time.time() * 1000)
    for b in range(3):
        s = [({"__name__": "flip_test", "b": str(b)}, [(now - 1000 * k, float(k)) for k in range(50)])]
        eq(push(w, w.admin_token, s).status, 204, "remote_write")
    w.stop()
    wal = os.path.join(w.data, "tsdb", "wal")
    segs = sorted(f for f in os.listdir(wal) if not f.startswith("."))
    check(segs, f"no WAL segment in {wal}")
    path = os.path.join(wal, segs[-1])
    size = os.path.getsize(path)
    check(size > 200, f"WAL segment too small to damage: {size}")
    with open(path, "r+b") as f:  # flip a byte in the last third: the last batch's record
        f.seek(size - size // 6)
        c = f.read(1)
        f.seek(size - size // 6)
        f.write(bytes([c[0] ^ 0xFF]))
    w.start(expect_token=False)
    h = w.get("/health").json()
    t = h["components"].get("tsdb") or {}
    eq(t.get("status"), "degraded", f"/health tsdb component after a flipped WAL byte: {h}")
    check(t.get("quarantined", 0) >= 1, f"quarantined count: {t}")
    check("damaged" in w.stderr().lower(), "the log says the WAL was damaged")
    r, j = query(w, w.admin_token, 'count(flip_test)', time=str(now / 1000))
    eq(r.status, 200, "query after quarantine")
    check(j["data"]["result"] and float(j["data"]["result"][0]["value"][1]) >= 2,
          f"the undamaged batches are still served: {j}")
    w.stop()


def test_a_real_prometheus_remote_writes_into_ward():
    """Debian's Prometheus scrapes itself and remote_writes to ward with an operator token;
    its series then answer in ward's query API."""
    import shutil
    import subprocess
    from harness import free_port, new_tmpdir, wait_for, _procs
    prom = shutil.which("prometheus")
    check(prom, "prometheus not installed (bash scripts/deps.sh test)")
    w = Ward("promrw", extra_yaml="tsdb:\n  self_scrape_interval: 0s\n").start()
    token = w.create_token("prometheus", "operator")["token"]
    d = new_tmpdir("prometheus")
    pport = free_port()
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ['127.0.0.1:{pport}']}}]
remote_write:
  - url: {w.url}/api/v1/write
    authorization: {{credentials: {token}}}
    queue_config: {{batch_send_deadline: 1s, max_shards: 1}}
    metadata_config: {{send: true, send_interval: 1s}}
""")
    log = open(os.path.join(d, "prometheus.log"), "wb")
    p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
                          f"--web.listen-address=127.0.0.1:{pport}", "--log.level=warn"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    _procs.append(p)

    def arrived():
        r, j = query(w, w.admin_token, 'up{job="prometheus"}')
        return r.status == 200 and j["data"]["result"]
    wait_for(arrived, 60, "up{job=\"prometheus\"} written by Prometheus' remote_write")
    r, j = query(w, w.admin_token, 'count({job="prometheus"}) > 100')
    check(j["data"]["result"], f"Prometheus' own series arrived in bulk: {j}")
    # and its metric metadata (remote_write's MetricMetadata) answers /api/v1/metadata
    md = wait_for(lambda: w.api("GET", "/api/v1/metadata?metric=prometheus_http_requests_total"),
                  30, "metadata sent by Prometheus' remote_write")
    m = md["prometheus_http_requests_total"][0]
    eq(m["type"], "counter", f"type of prometheus_http_requests_total: {md}")
    check("HTTP requests" in m["help"], f"help of prometheus_http_requests_total: {md}")
    p.terminate()
    p.wait(30)
    w.stop()
