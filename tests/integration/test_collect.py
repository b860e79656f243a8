"""Host metrics, processes and Prometheus scraping (issue 4, src/collect/).

- Host: Debian's prometheus-node-exporter runs beside ward on loopback (ward configured with
  the same device/filesystem filters the installed node_exporter prints in --help); every
  family both emit must agree: same label sets, static values exactly, gauges within a few
  percent, counters over the same interval within a tolerance. Families only one side has
  are listed with the reason (printed; see UNSHARED).
- Processes: matching by cmdline and pidfile, metrics on /metrics/processes, a restart
  command run at most max times in cycles cycles, each run audited.
- Scraping: real targets on loopback (Python http.server): a good target with relabeling,
  metric relabeling, honor_labels and basic auth; a garbage target (up 0 and a reason); a
  target that accepts and never answers (timed out); staleness of a vanished series;
  /api/v1/targets in Prometheus' shape.
"""

import http.server
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse

import harness
from harness import TestFailure, Ward, check, describe, eq, free_port, wait_for

LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# Families one side has and the other does not, and why. Printed by the comparison test.
UNSHARED = {
    "go_*, process_*, promhttp_*": "node_exporter's own runtime metrics (ward's are on /metrics)",
    "node_scrape_collector_*, node_exporter_build_info, node_textfile_scrape_error":
        "node_exporter's collector bookkeeping",
    "node_arp_*, node_entropy_*, node_nf_conntrack_*, node_softnet_*, node_timex_*, "
    "node_time_clocksource_*, node_time_zone_offset_seconds, node_udp_queues, node_os_*, "
    "node_selinux_*, node_network_{info,up,mtu_bytes,speed_bytes,flags,...} (netclass), "
    "node_disk_info, node_filesystem_device_error labels on errors, node_schedstat_*, "
    "node_hwmon_*, node_thermal_*, node_edac_*, node_ipvs_*, node_rapl_*, node_cooling_*, "
    "node_power_supply_*, node_powersupply_*, node_btrfs_*, node_xfs_*, node_zfs_*, "
    "node_bonding_*, node_infiniband_*, node_mdadm_*, node_nfs_*, node_cpu_info...":
        "node_exporter collectors ward does not have (arp, entropy, conntrack, softnet, timex, "
        "netclass, udev disk info, schedstat, hwmon, thermal, ...)",
    "node_pressure_cpu_stalled_seconds_total, node_netstat_TcpExt_TCPOFOQueue/TCPRcvQDrop":
        "emitted by newer node_exporter releases than Debian's 1.5 (ward follows upstream)",
    "node_tcp_connection_states": "a textfile-collector convention in node_exporter; ward "
                                  "gives node_sockstat_TCP_inuse/tw/orphan/alloc as it does",
}

# Gauges that move on their own between two reads a few ms apart: compared loosely.
VOLATILE = re.compile(r'^node_(procs_running|procs_blocked|load\d+|sockstat_.*|filefd_allocated|'
                      r'memory_.*|filesystem_(free|avail)_bytes|filesystem_files_free|'
                      r'disk_io_now|pressure_.*|netstat_Tcp_CurrEstab)$')
STATIC = re.compile(r'^node_(memory_(MemTotal|SwapTotal|HugePages_Total|Hugepagesize|'
                    r'DirectMap.*|VmallocTotal)(_bytes)?|filesystem_(size_bytes|files|readonly)|'
                    r'boot_time_seconds|filefd_maximum|uname_info)$')


def parse_text(text):
    """{family: type}, {(name, labels tuple): value} from a 0.0.4 body."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        check(m, f"unparsable exposition line: {line!r}")
        labels = tuple(sorted(LABEL_RE.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return types, samples


def find_node_exporter():
    for c in (os.environ.get("NODE_EXPORTER_BIN"), shutil.which("prometheus-node-exporter"),
              "/usr/bin/prometheus-node-exporter", shutil.which("node_exporter")):
        if c and os.access(c, os.X_OK):
            return c
    raise TestFailure("prometheus-node-exporter is not installed: run scripts/deps.sh --test "
                      "(or set NODE_EXPORTER_BIN)")


def ne_default(help_text, flag):
    m = re.search(r'--' + re.escape(flag) + r'="((?:[^"\\]|\\.)*)"', help_text)
    return m.group(1).replace("\\\\", "\\") if m else None


def _track(p):
    harness._procs.append(p)
    return p


def _wait_port(port, what, timeout=20):
    def up():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    wait_for(up, timeout, f"{what} on port {port}")


def _get(url, timeout=10):
    r = harness.http("GET", url, timeout=timeout)
    check(r.status == 200, f"GET {url}: HTTP {r.status}")
    return r.text()


def test_collect_host_matches_node_exporter():
    ne = find_node_exporter()
    helptext = subprocess.run([ne, "--help"], capture_output=True, text=True).stderr
    helptext += subprocess.run([ne, "--help"], capture_output=True, text=True).stdout
    filters = {
        "diskstats_device_exclude": ne_default(helptext, "collector.diskstats.device-exclude")
        or ne_default(helptext, "collector.diskstats.ignored-devices"),
        "filesystem_mount_points_exclude":
            ne_default(helptext, "collector.filesystem.mount-points-exclude"),
        "filesystem_fs_types_exclude": ne_default(helptext, "collector.filesystem.fs-types-exclude"),
        "netdev_device_exclude": ne_default(helptext, "collector.netdev.device-exclude") or "",
    }
    host_yaml = "host:\n  interval: 1s\n  instance: test-host\n"
    for k, v in filters.items():
        if v is not None:
            host_yaml += f"  {k}: {json.dumps(v)}\n"
    w = Ward("host", extra_yaml=host_yaml)
    w.start()
    port = free_port()
    _track(subprocess.Popen([ne, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    _wait_port(port, "node_exporter")
    ne_url = f"http://127.0.0.1:{port}/metrics"

    # /metrics/node is public, in the text format, and promtool reads it
    r = w.get("/metrics/node")
    wait_for(lambda: "node_cpu_seconds_total" in w.get("/metrics/node").text(), 10,
             "the first host collection")
    text = w.get("/metrics/node").text()
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        check("error while linting" not in (p.stdout + p.stderr) and
              "parse" not in (p.stdout + p.stderr).lower(),
              f"promtool cannot read /metrics/node: {describe(p)}")
    check(r.status == 200, f"/metrics/node without a token: HTTP {r.status}")
    check("go_goroutines" not in text and "ward_http" not in text,
          "/metrics/node holds only host metrics")

    def snap():
        t_w, s_w = parse_text(w.get("/metrics/node").text())
        t_n, s_n = parse_text(_get(ne_url))
        return t_w, s_w, t_n, s_n

    tw, w1, tn, n1 = snap()
    t0 = time.monotonic()
    time.sleep(8)
    _, w2, _, n2 = snap()
    dt = time.monotonic() - t0

    fam_w = {k[0] for k in w1}
    fam_n = {k[0] for k in n1}
    common = sorted(fam_w & fam_n)
    check(len(common) >= 60, f"only {len(common)} families in common: {common}")
    for must in ("node_cpu_seconds_total", "node_load1", "node_memory_MemAvailable_bytes",
                 "node_network_receive_bytes_total", "node_context_switches_total",
                 "node_boot_time_seconds", "node_filefd_maximum", "node_sockstat_TCP_inuse",
                 "node_netstat_Tcp_ActiveOpens", "node_uname_info", "node_forks_total",
                 "node_intr_total", "node_procs_running", "node_time_seconds"):
        check(must in common, f"{must} missing from ward or node_exporter")

    problems = []
    ncpu = len({dict(k[1]).get("cpu") for k in n1 if k[0] == "node_cpu_seconds_total"})
    for fam in common:
        lw = {k[1] for k in w1 if k[0] == fam}
        ln = {k[1] for k in n1 if k[0] == fam}
        if lw != ln:
            problems.append(f"{fam}: label sets differ: only ward {sorted(lw - ln)[:3]}, "
                            f"only node_exporter {sorted(ln - lw)[:3]}")
            continue
        typ_w, typ_n = tw.get(fam), tn.get(fam)
        if typ_w != typ_n:
            problems.append(f"{fam}: type {typ_w} vs {typ_n}")
        for ls in lw:
            a1, b1 = w1[(fam, ls)], n1[(fam, ls)]
            a2, b2 = w2.get((fam, ls)), n2.get((fam, ls))
            if a2 is None or b2 is None:
                continue
            if fam == "node_time_seconds":
                ok = abs(a2 - b2) < 3
            elif STATIC.match(fam):
                ok = a1 == b1 or abs(a1 - b1) <= 1e-9 * max(abs(a1), 1)
            elif typ_n == "counter" or (typ_n == "untyped" and not VOLATILE.match(fam)):
                da, db = a2 - a1, b2 - b1
                if fam.endswith("_seconds_total"):
                    tol = max(0.35 * max(abs(da), abs(db)), 1.5 * ncpu if "cpu" in fam else 1.5)
                else:
                    tol = max(0.4 * max(abs(da), abs(db)), 50 + 0.02 * abs(b2))
                ok = abs(da - db) <= tol and (typ_n != "counter" or (da >= 0 and db >= 0))
                if not ok:
                    problems.append(f"{fam}{dict(ls)}: delta over {dt:.1f}s ward {da} vs "
                                    f"node_exporter {db}")
                continue
            elif VOLATILE.match(fam):
                scale = max(abs(a2), abs(b2))
                if fam.startswith("node_memory_"):
                    mt = n1.get(("node_memory_MemTotal_bytes", ()), scale)
                    ok = abs(a2 - b2) <= max(0.05 * scale, 0.02 * mt)
                elif fam.endswith("_mem_bytes") or fam.endswith("_mem"):
                    ok = abs(a2 - b2) <= max(0.5 * scale, 4 << 20 if "bytes" in fam else 1024)
                else:
                    ok = abs(a2 - b2) <= max(0.5 * scale, 50)
            else:
                ok = abs(a2 - b2) <= max(0.05 * max(abs(a2), abs(b2)), 1e-6)
            if not ok:
                problems.append(f"{fam}{dict(ls)}: ward {a2} vs node_exporter {b2}")
    only_n = sorted(f for f in fam_n - fam_w if f.startswith("node_"))
    only_w = sorted(fam_w - fam_n)
    print(f"    host: {len(common)} families compared; node_exporter only: {len(only_n)} "
          f"({', '.join(only_n[:8])}, ...); ward only: {only_w}")
    check(not problems, "ward and node_exporter disagree:\n" + "\n".join(problems[:40]))

    # and the tsdb has them with job/instance
    data = w.api("GET", "/api/v1/query?" + urllib.parse.urlencode(
        {"query": 'node_load1{job="node",instance="test-host"}'}))
    eq(len(data["result"]), 1, "node_load1 in the tsdb with job/instance")


test_collect_host_matches_node_exporter.timeout = 120


def test_collect_host_interval_and_collectors_are_configurable():
    w = Ward("hostcfg", extra_yaml="host:\n  interval: 1s\n  collectors: [loadavg, meminfo]\n")
    w.start()
    wait_for(lambda: "node_load1" in w.get("/metrics/node").text(), 10, "host collection")
    text = w.get("/metrics/node").text()
    check("node_cpu_seconds_total" not in text, "only the chosen collectors run")
    bad = Ward("hostbad", extra_yaml="host:\n  interval: 500ms\n  collectors: [cpu, nope]\n")
    p = bad.cli("config", "check", bad.config_path, token=None)
    check(p.returncode != 0 and "nope" in (p.stdout + p.stderr) and "interval" in
          (p.stdout + p.stderr), f"config check names both problems: {describe(p)}")


# ---- processes ----

def test_collect_processes_up_restart_and_limit():
    d = harness.new_tmpdir("procs")
    pidfile = os.path.join(d, "svc.pid")
    marker = os.path.join(d, "runs")
    tag = f"{os.getpid()}{free_port()}"
    # The restart command starts a detached sleep (its own session) and writes its pid.
    restart = (f"setsid sleep 9{tag} </dev/null >/dev/null 2>&1 & echo $! > {pidfile}; "
               f"echo run >> {marker}")
    yaml = f"""processes:
  interval: 1s
  watch:
    - name: svc
      pidfile: {pidfile}
      restart: {{command: {json.dumps(restart)}, max: 1, cycles: 1000}}
    - name: byline
      cmdline: "sleep 9{tag}"
    - name: never
      comm: no-such-process-here
      restart: {{command: "echo x >> {marker}.never", max: 2, cycles: 1000}}
"""
    w = Ward("procs", extra_yaml=yaml)
    w.start()
    try:
        def up():
            _, s = parse_text(w.get("/metrics/processes").text())
            return s.get(("ward_process_up", (("process", "svc"),))) == 1 and \
                s.get(("ward_process_up", (("process", "byline"),))) == 1
        wait_for(up, 15, "svc restarted by its command and up")
        _, s = parse_text(w.get("/metrics/processes").text())
        eq(s[("ward_process_up", (("process", "never"),))], 0, "never is down")
        eq(s[("ward_process_restarts_total", (("process", "svc"),))], 1, "svc restarts")
        check(s[("ward_process_resident_memory_bytes", (("process", "svc"),))] > 0, "rss")
        check(s[("ward_process_threads", (("process", "svc"),))] >= 1, "threads")
        check(s[("ward_process_open_fds", (("process", "svc"),))] >= 1, "fds")
        check(abs(s[("ward_process_start_time_seconds", (("process", "svc"),))] - time.time())
              < 60, "start time")
        # 'never' stays down: its command runs exactly max=2 times, then the limit is audited
        time.sleep(3)
        with open(marker + ".never") as f:
            eq(len(f.read().splitlines()), 2, "restart runs of 'never' (max 2)")
        entries = [e for e in w.audit(limit=1000) if e.get("action") == "process.restart"]
        results = sorted((e.get("target"), e.get("result")) for e in entries)
        check(("never", "limit_reached") in results and
              results.count(("never", "started")) == 2 and ("svc", "started") in results,
              f"audited restarts: {results}")
        data = w.api("GET", "/api/v1/query?query=" + urllib.parse.quote(
            'ward_process_up{process="svc"}'))
        eq(len(data["result"]), 1, "process metrics in the tsdb")
    finally:
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), 9)
        except (OSError, ValueError):
            pass


test_collect_processes_up_restart_and_limit.timeout = 90


# ---- scraping ----

class _Targets(http.server.BaseHTTPRequestHandler):
    hits = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        n = _Targets.hits[self.path] = _Targets.hits.get(self.path, 0) + 1
        if self.path.startswith("/metrics"):
            body = ("# HELP req_total Requests served, by code.\n"
                    "# TYPE req_total counter\n"
                    f"req_total{{code=\"200\"}} {n}\n"
                    "drop_me 1\n"
                    "conflict{job=\"theirs\"} 1\n")
            if n == 1:
                body += "vanishing 1\n"
            self._send(200, body)
        elif self.path == "/auth":
            if self.headers.get("Authorization") != "Basic dXNlcjpwYXNz":  # user:pass
                self._send(401, "no\n")
            else:
                self._send(200, "authed 1\n")
        elif self.path == "/garbage":
            self._send(200, "<html><body>this is not an exposition</body></html>\n")
        elif self.path == "/huge":
            self._send(200, "x 1\n" + "#" * 300000 + "\n")
        else:
            self._send(404, "not found\n")

    def _send(self, code, body):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def test_collect_scrape_real_targets():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Targets)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts (kernel backlog) and never answers
    hport = hang.getsockname()[1]
    yaml = f"""scrape:
  scrape_interval: 1s
  scrape_timeout: 800ms
  line_limit: 100KiB
  scrape_configs:
    - job_name: good
      static_configs:
        - targets: ["127.0.0.1:{port}"]
          labels: {{team: a}}
      relabel_configs:
        - source_labels: [__address__]
          regex: "127\\\\.0\\\\.0\\\\.1:(.*)"
          target_label: port
          replacement: "p$1"
      metric_relabel_configs:
        - source_labels: [__name__]
          regex: drop_me
          action: drop
    - job_name: honor
      honor_labels: true
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
      metrics_path: /metrics2
    - job_name: auth
      metrics_path: /auth
      basic_auth: {{username: user, password: pass}}
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
    - job_name: garbage
      metrics_path: /garbage
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
    - job_name: huge
      metrics_path: /huge
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
    - job_name: hang
      static_configs: [{{targets: ["127.0.0.1:{hport}"]}}]
    - job_name: dropped
      static_configs: [{{targets: ["10.0.0.1:1"]}}]
      relabel_configs: [{{action: drop, source_labels: [job], regex: dropped}}]
"""
    w = Ward("scrape", extra_yaml=yaml)
    try:
        w.start()

        def targets():
            return w.api("GET", "/api/v1/targets")["activeTargets"]

        def settled():
            ts = targets()
            return ts if all(t["health"] != "unknown" for t in ts) and len(ts) == 6 else None
        ts = {t["scrapePool"]: t for t in wait_for(settled, 20, "every target scraped once")}
        eq(sorted(ts), ["auth", "garbage", "good", "hang", "honor", "huge"], "active targets")
        good = ts["good"]
        eq(good["health"], "up", f"good target: {good['lastError']}")
        eq(good["labels"], {"instance": f"127.0.0.1:{port}", "job": "good", "team": "a",
                            "port": f"p{port}"}, "target labels after relabeling")
        eq(good["discoveredLabels"]["__address__"], f"127.0.0.1:{port}", "discoveredLabels")
        eq(good["scrapeUrl"], f"http://127.0.0.1:{port}/metrics", "scrapeUrl")
        check(good["lastScrape"].startswith("20") and good["lastScrapeDuration"] > 0,
              f"lastScrape fields: {good}")
        eq(ts["auth"]["health"], "up", f"basic auth target: {ts['auth']['lastError']}")
        eq(ts["garbage"]["health"], "down", "garbage target")
        check("line 1" in ts["garbage"]["lastError"], f"garbage reason: {ts['garbage']}")
        eq(ts["huge"]["health"], "down", "a line over line_limit")
        check(ts["huge"]["lastError"], "huge target has a reason")
        wait_for(lambda: {t["scrapePool"]: t for t in targets()}["hang"]["lastError"], 10,
                 "the hanging target to time out")
        hang_t = {t["scrapePool"]: t for t in targets()}["hang"]
        eq(hang_t["health"], "down", "hanging target")
        check("deadline" in hang_t["lastError"] or "timed out" in hang_t["lastError"].lower(),
              f"hang reason: {hang_t['lastError']}")
        check(hang_t["lastScrapeDuration"] < 2.0, f"timed out at the timeout: {hang_t}")

        def q(expr):
            return w.api("GET", "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]

        def val(expr):
            r = q(expr)
            return float(r[0]["value"][1]) if len(r) == 1 else None
        wait_for(lambda: val('up{job="good"}') == 1, 10, "up{job=good} 1")
        eq(val('up{job="garbage"}'), 0.0, "up of garbage")
        eq(val('up{job="hang"}'), 0.0, "up of hang")
        check(val('scrape_duration_seconds{job="good"}') is not None, "scrape_duration_seconds")
        # from the second scrape on, the body has 3 samples ("vanishing" was in the first)
        wait_for(lambda: val('scrape_samples_scraped{job="good"}') == 3.0, 10,
                 "scrape_samples_scraped 3")
        eq(val('scrape_samples_post_metric_relabeling{job="good"}'), 2.0, "post relabeling")
        check(val('scrape_series_added{job="good"}') is not None, "scrape_series_added")
        eq(q('drop_me{job="good"}'), [], "metric_relabel_configs drop")
        r = q('req_total{job="good"}')
        eq(r[0]["metric"], {"__name__": "req_total", "code": "200", "instance": f"127.0.0.1:{port}",
                            "job": "good", "team": "a", "port": f"p{port}"}, "sample labels")
        eq(len(q('conflict{job="good",exported_job="theirs"}')), 1, "conflicts become exported_*")
        eq(len(q('conflict{job="theirs"}')), 1, "honor_labels keeps the target's job")
        eq(val('authed{job="auth"}'), 1.0, "basic auth target's sample")
        # "vanishing" was only in the first scrape: a staleness marker ends it at once
        check(_Targets.hits.get("/metrics", 0) >= 2, "good target scraped twice")
        eq(q('vanishing{job="good"}'), [], "a vanished series is stale")
        r = w.api("GET", "/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": 'vanishing{job="good"}', "start": time.time() - 60, "end": time.time(),
             "step": "1s"}))["result"]
        check(r and len(r[0]["values"]) < 5, f"vanishing ends at the next scrape: {r}")
        # the target's HELP and TYPE, in Prometheus' /api/v1/metadata shape
        md = w.api("GET", "/api/v1/metadata")
        eq(md.get("req_total"), [{"type": "counter", "help": "Requests served, by code.",
                                  "unit": ""}], f"metadata of req_total: {md}")
        md = w.api("GET", "/api/v1/metadata?metric=req_total")
        eq(list(md), ["req_total"], "metadata?metric=")
        eq(w.api("GET", "/api/v1/metadata?metric=nosuch"), {}, "metadata of an unknown metric")
        eq(len(w.api("GET", "/api/v1/metadata?limit=1")), 1, "metadata?limit=1")
        eq(w.request("GET", "/api/v1/metadata?limit=x", token=w.admin_token).status, 400,
           "a bad limit")
        check(w.alive(), "ward survived garbage, huge and hanging targets")
    finally:
        srv.shutdown()
        hang.close()


test_collect_scrape_real_targets.timeout = 90


def test_collect_reload_replaces_targets_and_ends_removed_series():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Targets)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]

    def cfg(job):
        return (f"scrape:\n  scrape_interval: 1s\n  scrape_configs:\n"
                f"    - job_name: {job}\n      static_configs: "
                f"[{{targets: [\"127.0.0.1:{port}\"]}}]\n")
    w = Ward("reload", extra_yaml=cfg("first"))
    try:
        w.start()

        def q(expr):
            return w.api("GET", "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]
        wait_for(lambda: q('req_total{job="first"}'), 10, "first job scraped")
        w.write_config(extra_yaml=cfg("second"))
        w.api("POST", "/api/v1/reload")
        ts = w.api("GET", "/api/v1/targets")["activeTargets"]
        eq([t["scrapePool"] for t in ts], ["second"], "targets after reload")
        wait_for(lambda: q('req_total{job="second"}'), 10, "second job scraped")
        eq(q('req_total{job="first"}'), [], "a removed target's series end at once (stale)")
        eq(q('up{job="first"}'), [], "and its up series too")
        # a bad relabel regex is refused, the running config stays
        w.write_config(extra_yaml=cfg("second") + "      relabel_configs: [{regex: \"(\"}]\n")
        r = w.request("POST", "/api/v1/reload", token=w.admin_token)
        check(r.status >= 400 and "regex" in r.text(), f"bad regex refused: {r!r}")
        eq([t["scrapePool"] for t in w.api("GET", "/api/v1/targets")["activeTargets"]],
           ["second"], "targets unchanged after a refused reload")
    finally:
        srv.shutdown()


def test_collect_cli_target_list():
    """`ward target list` (src/cli/cmd_target.c) shows each target's job, URL and health."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Targets)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    yaml = (f"scrape:\n  scrape_interval: 1s\n  scrape_configs:\n"
            f"    - job_name: good\n      static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n"
            f"    - job_name: garbage\n      metrics_path: /garbage\n"
            f"      static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n")
    w = Ward("cli", extra_yaml=yaml)
    try:
        w.start()
        wait_for(lambda: all(t["health"] != "unknown"
                             for t in w.api("GET", "/api/v1/targets")["activeTargets"]),
                 10, "both targets scraped")
        p = w.cli("target", "list")
        check(p.returncode == 0, f"ward target list: {describe(p)}")
        lines = p.stdout.splitlines()
        check(lines[0].split()[:3] == ["JOB", "URL", "HEALTH"], f"header: {lines[:1]}")
        good = [ln for ln in lines if ln.startswith("good")]
        bad = [ln for ln in lines if ln.startswith("garbage")]
        check(good and " up " in good[0] and f"127.0.0.1:{port}/metrics" in good[0],
              f"good row: {p.stdout}")
        check(bad and " down " in bad[0] and "line 1" in bad[0], f"garbage row: {p.stdout}")
        p = w.cli("target", "list", "--health", "down", "--json")
        check(p.returncode == 0 and json.loads(p.stdout)["activeTargets"], describe(p))
        p = w.cli("target", "list", "--health", "sideways")
        eq(p.returncode, 2, "a bad --health is a usage error")
    finally:
        srv.shutdown()
