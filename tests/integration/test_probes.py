"""Service probes (issue 4): every probe kind against REAL servers started here on loopback
(nginx with a self-signed TLS server, a TCP port that accepts and never answers, a small
DNS server, PostgreSQL, redis-server, Debian's monitoring-plugins), each success and
failure checked in /api/v1/checks with its human reason, through POST .../run, the CLI,
the audit trail, the state store across a restart, and the tsdb (/api/v1/query)."""

import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

import harness
from harness import TestFailure, Ward, check, describe, eq, free_port, wait_for

PLUGINS = "/usr/lib/nagios/plugins"


# ---- helpers: components the tests start ----

def _track(p):
    """Lets harness.cleanup() kill p if the test fails half-way."""
    harness._procs.append(p)
    return p


def _wait_port(port, what, timeout=20):
    def up():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    wait_for(up, timeout, f"{what} on port {port}")


def _self_signed(d, days=6, name="server", cn="127.0.0.1"):
    cert, key = os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}-key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", str(days), "-subj", f"/CN={cn}",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"openssl req: {describe(p)}")
    return cert, key


class Nginx:
    """nginx in the foreground: /ok 200, /fail 503, /redir 302 -> /ok; TLS on tls_port;
    TLS that requires a client certificate (client_cert) on mtls_port."""

    def __init__(self):
        self.dir = harness.new_tmpdir("nginx")
        self.port, self.tls_port, self.mtls_port = free_port(), free_port(), free_port()
        self.cert, self.key = _self_signed(self.dir)
        self.client_cert, self.client_key = _self_signed(self.dir, 30, "client", "ward-probe")
        d = self.dir
        conf = f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{self.port};
    location = /ok {{ default_type text/plain; return 200 "hello ward\\n"; }}
    location = /fail {{ default_type text/plain; return 503 "down for maintenance\\n"; }}
    location = /redir {{ return 302 /ok; }}
    location = /post {{
      if ($request_method != POST) {{ return 405; }}
      if ($http_x_probe != "ward") {{ return 400; }}
      return 201 "created\\n";
    }}
  }}
  server {{
    listen 127.0.0.1:{self.tls_port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    location / {{ default_type text/plain; return 200 "secure hello\\n"; }}
  }}
  server {{
    listen 127.0.0.1:{self.mtls_port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    ssl_client_certificate {self.client_cert};
    ssl_verify_client on;
    location / {{ default_type text/plain; return 200 "hello $ssl_client_s_dn\\n"; }}
  }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = _track(subprocess.Popen(
            ["nginx", "-p", d, "-c", self.conf, "-e", os.path.join(d, "error.log")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr"), "wb")))
        _wait_port(self.port, "nginx")
        _wait_port(self.tls_port, "nginx (TLS)")
        _wait_port(self.mtls_port, "nginx (TLS with client certificates)")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Blackhole:
    """A TCP port that accepts connections (kernel backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class TinyDNS:
    """A UDP DNS server: A records from a dict, NXDOMAIN for other names."""

    def __init__(self, records):
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                q, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(q), addr)
                self.queries += 1
            except Exception:  # noqa: BLE001 - a bad query gets no answer
                pass

    def _answer(self, q):
        qid = q[:2]
        i, labels = 12, []
        while q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode())
            i += 1 + n
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        ip = self.records.get(name)
        if ip is None or qtype != 1:
            flags = 0x8183 if ip is None else 0x8180
            return qid + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + question
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + rr

    def close(self):
        self.sock.close()


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (run as the postgres user when root)."""

    def __init__(self):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql"))
        check(bins, "no /usr/lib/postgresql/*/bin: install postgresql")
        self.bin = f"/usr/lib/postgresql/{bins[-1]}/bin"
        # Not under the harness's 0700 directory: the postgres user must reach it.
        self.dir = tempfile.mkdtemp(prefix="ward-it-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.user = None
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.user = pw

        def demote():
            if self.user:
                os.setgid(self.user.pw_gid)
                os.setgroups([])
                os.setuid(self.user.pw_uid)

        self.demote = demote
        p = subprocess.run([f"{self.bin}/initdb", "-D", self.data, "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--no-sync"],
                           capture_output=True, text=True, timeout=120, preexec_fn=demote,
                           cwd=self.dir)
        check(p.returncode == 0, f"initdb: {describe(p)}")
        self.proc = _track(subprocess.Popen(
            [f"{self.bin}/postgres", "-D", self.data, "-h", "127.0.0.1", "-p", str(self.port),
             "-k", self.dir, "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "wb"),
            preexec_fn=demote, cwd=self.dir))
        _wait_port(self.port, "postgres", timeout=60)

    def conninfo(self, extra=""):
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres {extra}".strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self, password=None):
        self.dir = harness.new_tmpdir("redis")
        self.port = free_port()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir]
        if password:
            args += ["--requirepass", password]
        self.proc = _track(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        _wait_port(self.port, "redis-server")

    def command(self, *args, password=None):
        def enc(a):
            a = a.encode()
            return b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            if password:
                s.sendall(b"*2\r\n" + enc("AUTH") + enc(password))
                s.recv(100)
            s.sendall(b"*%d\r\n" % len(args) + b"".join(enc(a) for a in args))
            return s.recv(1000)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# ---- helpers: ward side ----

def _yaml_checks(checks, max_concurrency=None):
    """checks: list of dicts -> the probes section (flow mappings; values JSON-quoted)."""
    lines = ["probes:"]
    if max_concurrency:
        lines.append(f"  max_concurrency: {max_concurrency}")
    lines.append("  checks:")
    for c in checks:
        lines.append("    - " + json.dumps(c))
    return "\n".join(lines) + "\n"


def _checks(w):
    data = w.api("GET", "/api/v1/checks")
    return {c["name"]: c for c in data["checks"]}


def _settled(w, names):
    """Waits until every named check has a result; returns the checks by name."""
    def done():
        cs = _checks(w)
        return cs if all(cs[n]["last"] is not None for n in names) else None
    return wait_for(done, 30, f"a first result of {names}", interval=0.2)


def _run(w, name, token=None):
    return w.api("POST", f"/api/v1/checks/{name}/run", token=token)


def _sample(result, name, **labels):
    for s in result["result"]["samples"]:
        if s["name"] == name and all(s["labels"].get(k) == v for k, v in labels.items()):
            return s["value"]
    return None


def _expect(cs, name, state, reason_part):
    c = cs[name]
    eq(c["state"], state, f"state of {name} (reason {c['last'] and c['last']['reason']!r})")
    check(reason_part in c["last"]["reason"],
          f"{name}: reason {c['last']['reason']!r} lacks {reason_part!r}")


# ---- tests ----

def test_http_probes_report_status_redirects_regex_tls_and_timeouts():
    ng, hole = Nginx(), Blackhole()
    try:
        t = ng.tls_port
        checks = [
            {"name": "web-ok", "kind": "http", "target": ng.url("/ok"),
             "fail_if_body_not_matches_regexp": ["hello"], "labels": {"team": "web"}},
            {"name": "web-503", "kind": "http", "target": ng.url("/fail")},
            {"name": "web-redir", "kind": "http", "target": ng.url("/redir")},
            {"name": "web-noredir", "kind": "http", "target": ng.url("/redir"),
             "follow_redirects": False},
            {"name": "web-body-bad", "kind": "http", "target": ng.url("/ok"),
             "fail_if_body_matches_regexp": ["hello w.rd"]},
            {"name": "web-post", "kind": "http", "target": ng.url("/post"), "method": "POST",
             "body": "x=1", "headers": {"X-Probe": "ward"}, "valid_status_codes": ["201"]},
            {"name": "web-get-post", "kind": "http", "target": ng.url("/post")},
            {"name": "tls-ca", "kind": "http", "target": f"https://127.0.0.1:{t}/",
             "ca_file": ng.cert},
            {"name": "tls-untrusted", "kind": "http", "target": f"https://127.0.0.1:{t}/"},
            {"name": "tls-insecure", "kind": "http", "target": f"https://127.0.0.1:{t}/",
             "tls_verify": False},
            {"name": "tls-expiring", "kind": "http", "target": f"https://127.0.0.1:{t}/",
             "ca_file": ng.cert, "cert_min_validity": "30d"},
            {"name": "mtls", "kind": "http", "target": f"https://127.0.0.1:{ng.mtls_port}/",
             "ca_file": ng.cert, "cert_file": ng.client_cert, "key_file": ng.client_key,
             "fail_if_body_not_matches_regexp": ["CN=ward-probe"]},
            {"name": "mtls-nocert", "kind": "http",
             "target": f"https://127.0.0.1:{ng.mtls_port}/", "ca_file": ng.cert},
            {"name": "web-hang", "kind": "http", "target": f"http://127.0.0.1:{hole.port}/",
             "timeout": "1s"},
            {"name": "web-refused", "kind": "http", "target": f"http://127.0.0.1:{free_port()}/"},
        ]
        for c in checks:
            c.setdefault("interval", "2s")
            c.setdefault("timeout", "1500ms")
        w = Ward("probes-http", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "web-ok", "ok", f"HTTP 200 from {ng.url('/ok')}")
        eq(cs["web-ok"]["labels"], {"team": "web"}, "configured labels")
        _expect(cs, "web-503", "failing", f"HTTP 503 from {ng.url('/fail')}")
        _expect(cs, "web-redir", "ok", f"HTTP 200 from {ng.url('/ok')}")
        _expect(cs, "web-noredir", "failing", f"HTTP 302 from {ng.url('/redir')}")
        _expect(cs, "web-body-bad", "failing", 'matches "hello w.rd"')
        _expect(cs, "web-post", "ok", "HTTP 201")
        _expect(cs, "web-get-post", "failing", "HTTP 405")
        _expect(cs, "tls-ca", "ok", "HTTP 200")
        _expect(cs, "tls-untrusted", "failing", "TLS certificate not accepted")
        _expect(cs, "tls-insecure", "ok", "HTTP 200")
        _expect(cs, "tls-expiring", "failing", "expires in 6 days")
        _expect(cs, "mtls", "ok", "HTTP 200")
        _expect(cs, "mtls-nocert", "failing", "HTTP 400")
        _expect(cs, "web-hang", "failing", "timeout after 1s")
        _expect(cs, "web-refused", "failing", "connection refused")
        check(cs["web-hang"]["last"]["duration_seconds"] < 3,
              f"a hanging server is cut at the timeout: {cs['web-hang']['last']}")

        r = _run(w, "web-redir")
        eq(_sample(r, "probe_http_redirects"), 1, "probe_http_redirects after one redirect")
        eq(_sample(r, "probe_http_status_code"), 200, "status code")
        eq(_sample(r, "probe_success"), 1, "probe_success")
        for phase in ("resolve", "connect", "tls", "processing", "transfer"):
            check(_sample(r, "probe_http_duration_seconds", phase=phase) is not None,
                  f"phase {phase} missing: {r['result']['samples']}")
        r = _run(w, "tls-ca")
        exp = _sample(r, "probe_ssl_earliest_cert_expiry")
        check(exp and 5 * 86400 < exp - time.time() < 7 * 86400,
              f"probe_ssl_earliest_cert_expiry {exp} is not ~6 days ahead")
        eq(_sample(r, "probe_http_ssl"), 1, "probe_http_ssl")
        check(any(s["name"] == "probe_tls_version_info" and s["labels"]["version"].startswith("TLS")
                  for s in r["result"]["samples"]), "probe_tls_version_info")
        r = _run(w, "web-body-bad")
        eq(_sample(r, "probe_failed_due_to_regex"), 1, "probe_failed_due_to_regex")
        w.stop()
    finally:
        ng.stop()
        hole.close()


def test_tcp_probes_connect_send_expect_tls_and_time_out():
    ng, hole = Nginx(), Blackhole()
    try:
        checks = [
            {"name": "tcp-ok", "kind": "tcp", "target": f"127.0.0.1:{ng.port}"},
            {"name": "tcp-http", "kind": "tcp", "target": f"localhost:{ng.port}",
             "send": "GET /ok HTTP/1.0\\r\\n\\r\\n", "expect": "^hello ward"},
            {"name": "tcp-mismatch", "kind": "tcp", "target": f"127.0.0.1:{ng.port}",
             "send": "GET /fail HTTP/1.0\\r\\n\\r\\n", "expect": "^HTTP/1.1 200"},
            {"name": "tcp-tls", "kind": "tcp", "target": f"127.0.0.1:{ng.tls_port}",
             "tls": True, "ca_file": ng.cert, "send": "GET / HTTP/1.0\\r\\n\\r\\n",
             "expect": "secure hello"},
            {"name": "tcp-tls-wrongname", "kind": "tcp", "target": f"127.0.0.1:{ng.tls_port}",
             "tls": True, "ca_file": ng.cert, "server_name": "db.example.org"},
            {"name": "tcp-tls-expiring", "kind": "tcp", "target": f"127.0.0.1:{ng.tls_port}",
             "tls": True, "tls_verify": False, "cert_min_validity": "10d"},
            {"name": "tcp-hang", "kind": "tcp", "target": f"127.0.0.1:{hole.port}",
             "send": "PING\\n", "expect": "PONG", "timeout": "1s"},
            {"name": "tcp-refused", "kind": "tcp", "target": f"127.0.0.1:{free_port()}"},
        ]
        for c in checks:
            c.setdefault("interval", "2s")
            c.setdefault("timeout", "1500ms")
        w = Ward("probes-tcp", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "tcp-ok", "ok", f"connected to 127.0.0.1:{ng.port}")
        _expect(cs, "tcp-http", "ok", "answered as expected")
        _expect(cs, "tcp-mismatch", "failing", 'does not match "^HTTP/1.1 200"')
        _expect(cs, "tcp-tls", "ok", "answered as expected")
        _expect(cs, "tcp-tls-wrongname", "failing", "not accepted: hostname mismatch")
        _expect(cs, "tcp-tls-expiring", "failing", "expires in 6 days")
        _expect(cs, "tcp-hang", "failing", "timeout after 1s waiting for an answer")
        _expect(cs, "tcp-refused", "failing", "connection refused")
        r = _run(w, "tcp-tls")
        exp = _sample(r, "probe_ssl_earliest_cert_expiry")
        check(exp and 5 * 86400 < exp - time.time() < 7 * 86400, f"cert expiry {exp}")
        w.stop()
    finally:
        ng.stop()
        hole.close()


def test_dns_probes_resolve_and_match_answers():
    dns = TinyDNS({"app.test": "192.0.2.10"})
    try:
        srv = f"127.0.0.1:{dns.port}"
        checks = [
            {"name": "dns-ok", "kind": "dns", "target": "app.test", "dns_server": srv,
             "expect_answers": ["^192\\.0\\.2\\.10$"]},
            {"name": "dns-wrong", "kind": "dns", "target": "app.test", "dns_server": srv,
             "expect_answers": ["^198\\.51\\.100\\."]},
            {"name": "dns-nx", "kind": "dns", "target": "nope.test", "dns_server": srv},
        ]
        for c in checks:
            c.setdefault("interval", "2s")
            c.setdefault("timeout", "2s")
        w = Ward("probes-dns", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "dns-ok", "ok", "A app.test -> 192.0.2.10")
        _expect(cs, "dns-wrong", "failing", 'matches "^198\\.51\\.100\\." (got 192.0.2.10)')
        _expect(cs, "dns-nx", "failing", "NXDOMAIN for A nope.test")
        r = _run(w, "dns-ok")
        eq(_sample(r, "probe_dns_answer_rrs"), 1, "probe_dns_answer_rrs")
        check(_sample(r, "probe_dns_lookup_time_seconds") is not None, "lookup time")
        check(dns.queries >= 4, f"the DNS server saw {dns.queries} queries")
        w.stop()
    finally:
        dns.close()


def test_postgresql_probe_runs_a_query_and_reads_stats():
    pg = Postgres()
    try:
        checks = [
            {"name": "pg-ok", "kind": "postgresql", "target": pg.conninfo(),
             "query": "SELECT 40 + 2", "expect": "^42$"},
            {"name": "pg-badquery", "kind": "postgresql", "target": pg.conninfo(),
             "query": "SELECT * FROM no_such_table"},
            {"name": "pg-mismatch", "kind": "postgresql", "target": pg.conninfo(),
             "query": "SELECT 'replica'", "expect": "^primary$"},
            {"name": "pg-down", "kind": "postgresql",
             "target": f"host=127.0.0.1 port={free_port()} dbname=postgres user=postgres"},
        ]
        for c in checks:
            c.setdefault("interval", "2s")
            c.setdefault("timeout", "1500ms")
        w = Ward("probes-pg", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "pg-ok", "ok", '"42"')
        eq(cs["pg-ok"]["target"], f"127.0.0.1:{pg.port}/postgres", "instance of a conninfo")
        _expect(cs, "pg-badquery", "failing", 'query failed: ERROR:  relation "no_such_table"')
        _expect(cs, "pg-mismatch", "failing", 'query result "replica" does not match')
        _expect(cs, "pg-down", "failing", "connection refused")
        r = _run(w, "pg-ok")
        conns = _sample(r, "probe_postgresql_connections")
        check(conns is not None and conns >= 1, f"connections from pg_stat_activity: {conns}")
        eq(_sample(r, "probe_postgresql_replication_lag_seconds"), 0, "lag on a primary")
        w.stop()
    finally:
        pg.stop()


def test_redis_probe_pings_and_reads_info():
    rd, rdp = Redis(), Redis(password="s3cret")
    try:
        rd.command("SET", "k1", "v")
        rd.command("SET", "k2", "v")
        checks = [
            {"name": "redis-ok", "kind": "redis", "target": f"127.0.0.1:{rd.port}"},
            {"name": "redis-auth", "kind": "redis", "target": f"127.0.0.1:{rdp.port}",
             "password": "s3cret"},
            {"name": "redis-noauth", "kind": "redis", "target": f"127.0.0.1:{rdp.port}"},
            {"name": "redis-down", "kind": "redis", "target": f"127.0.0.1:{free_port()}"},
        ]
        for c in checks:
            c.setdefault("interval", "2s")
            c.setdefault("timeout", "1500ms")
        w = Ward("probes-redis", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "redis-ok", "ok", "answered PONG")
        _expect(cs, "redis-auth", "ok", "answered PONG")
        _expect(cs, "redis-noauth", "failing", "NOAUTH")
        _expect(cs, "redis-down", "failing", "connection refused")
        r = _run(w, "redis-ok")
        eq(_sample(r, "probe_redis_db_keys", db="db0"), 2, "keys in db0")
        check((_sample(r, "probe_redis_used_memory_bytes") or 0) > 0, "used_memory")
        check((_sample(r, "probe_redis_connected_clients") or 0) >= 1, "connected_clients")
        check("s3cret" not in w.stderr(), "the redis password appears in the log")
        w.stop()
    finally:
        rd.stop()
        rdp.stop()


def test_exec_probes_speak_the_nagios_protocol_and_kill_hung_plugins():
    ng = Nginx()
    try:
        d = harness.new_tmpdir("plugins")
        warn = os.path.join(d, "warn.sh")
        with open(warn, "w") as f:
            f.write("#!/bin/sh\necho 'LOAD WARNING - load is 7 | load1=7;5;10;0 \"x\"=1'\n"
                    "exit 1\n")
        os.chmod(warn, 0o755)
        checks = [
            {"name": "nag-tcp", "kind": "exec",
             "command": [f"{PLUGINS}/check_tcp", "-H", "127.0.0.1", "-p", str(ng.port)]},
            {"name": "nag-tcp-down", "kind": "exec",
             "command": [f"{PLUGINS}/check_tcp", "-H", "127.0.0.1", "-p", str(free_port())]},
            {"name": "nag-http-503", "kind": "exec",
             "command": [f"{PLUGINS}/check_http", "-H", "127.0.0.1", "-p", str(ng.port),
                         "-u", "/fail"]},
            {"name": "nag-warn", "kind": "exec", "command": [warn]},
            {"name": "nag-warn-ok", "kind": "exec", "command": [warn], "warning_ok": True},
            {"name": "nag-hang", "kind": "exec", "command": ["/bin/sleep", "30"],
             "timeout": "1s"},
            {"name": "nag-flood", "kind": "exec", "command": ["/usr/bin/yes", "flood"],
             "timeout": "1s", "max_output": "4KiB"},
            {"name": "nag-missing", "kind": "exec", "command": ["/nonexistent/check_x"]},
        ]
        for c in checks:
            c.setdefault("interval", "3s")
            c.setdefault("timeout", "2s")
        w = Ward("probes-exec", extra_yaml=_yaml_checks(checks)).start()
        cs = _settled(w, [c["name"] for c in checks])
        _expect(cs, "nag-tcp", "ok", "TCP OK")
        _expect(cs, "nag-tcp-down", "failing", "Connection refused")
        _expect(cs, "nag-http-503", "failing", "503")
        _expect(cs, "nag-warn", "failing", "LOAD WARNING - load is 7")
        _expect(cs, "nag-warn-ok", "ok", "LOAD WARNING")
        _expect(cs, "nag-hang", "failing", "timeout after 1s: sleep killed")
        _expect(cs, "nag-flood", "failing", "timeout after 1s: yes killed (output truncated)")
        _expect(cs, "nag-missing", "failing", "cannot run /nonexistent/check_x")
        check(cs["nag-hang"]["last"]["duration_seconds"] < 2.5, "hung plugin cut at 1s")
        r = _run(w, "nag-tcp")
        check(_sample(r, "probe_exec_perfdata", label="time", uom="s") is not None,
              f"perfdata of check_tcp: {r['result']['samples']}")
        eq(_sample(r, "probe_exec_status"), 0, "probe_exec_status")
        r = _run(w, "nag-warn")
        eq(_sample(r, "probe_exec_perfdata", label="load1"), 7, "perfdata value")
        eq(_sample(r, "probe_exec_perfdata_warning", label="load1"), 5, "perfdata warning")
        eq(_sample(r, "probe_exec_perfdata_critical", label="load1"), 10, "perfdata critical")
        eq(_sample(r, "probe_exec_status"), 1, "WARNING status")
        r = _run(w, "nag-flood")
        eq(_sample(r, "probe_exec_output_truncated"), 1, "flood output truncated")
        # no plugin outlives its run: any "sleep 30" alive is the current run (< 1 s + slack)
        ps = subprocess.run(["pgrep", "-f", "^/bin/sleep 30$"], capture_output=True, text=True)
        for pid in ps.stdout.split():
            et = subprocess.run(["ps", "-o", "etimes=", "-p", pid], capture_output=True,
                                text=True).stdout.strip()
            check(not et or int(et) <= 2, f"plugin pid {pid} outlived its timeout: {et}s")
        w.stop()
        ps = subprocess.run(["pgrep", "-f", "^/bin/sleep 30$"], capture_output=True, text=True)
        check(ps.stdout.strip() == "", f"a plugin outlived ward's stop: {ps.stdout!r}")
    finally:
        ng.stop()


def test_check_cli_lists_runs_and_audits_with_roles():
    ng = Nginx()
    try:
        checks = [
            {"name": "web", "kind": "http", "target": ng.url("/ok"), "interval": "5s"},
            {"name": "down", "kind": "http", "target": ng.url("/fail"), "interval": "5s"},
        ]
        w = Ward("probes-cli", extra_yaml=_yaml_checks(checks)).start()
        _settled(w, ["web", "down"])
        p = w.cli("check", "list")
        eq(p.returncode, 0, f"ward check list: {describe(p)}")
        check("web" in p.stdout and "down" in p.stdout and "failing" in p.stdout
              and "HTTP 503 from" in p.stdout, f"check list output: {p.stdout!r}")
        p = w.cli("check", "list", "--json", "--state", "failing")
        eq(p.returncode, 0, describe(p))
        names = [c["name"] for c in json.loads(p.stdout)["checks"]]
        eq(names, ["down"], "--state failing")
        p = w.cli("check", "run", "web")
        eq(p.returncode, 0, f"run of a passing check: {describe(p)}")
        check("web OK: HTTP 200" in p.stdout and "probe_http_status_code 200" in p.stdout,
              f"run output: {p.stdout!r}")
        p = w.cli("check", "run", "down", "--json")
        eq(p.returncode, 1, f"run of a failing check exits 1: {describe(p)}")
        eq(json.loads(p.stdout)["result"]["success"], False, "json result")
        p = w.cli("check", "run", "nosuch")
        eq(p.returncode, 5, f"unknown check: {describe(p)}")
        viewer = w.create_token("v", "viewer")["token"]
        p = w.cli("check", "list", token=viewer)
        eq(p.returncode, 0, f"a viewer lists checks: {describe(p)}")
        p = w.cli("check", "run", "web", token=viewer)
        eq(p.returncode, 4, f"a viewer may not run checks: {describe(p)}")
        op = w.create_token("op", "operator")["token"]
        p = w.cli("check", "run", "web", token=op)
        eq(p.returncode, 0, f"an operator runs checks: {describe(p)}")
        runs = w.audit(action="check.run")
        check(len(runs) >= 3, f"check.run audited each time: {runs}")
        eq(runs[0]["actor_name"], "op", "actor of the last run")
        eq(runs[0]["target"], "web", "target of the audit record")
        w.stop()
    finally:
        ng.stop()


def test_state_changes_are_damped_logged_and_survive_a_restart():
    hole_port = free_port()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", hole_port))
    srv.listen(64)
    try:
        checks = [{"name": "svc", "kind": "tcp", "target": f"127.0.0.1:{hole_port}",
                   "interval": "1s", "jitter": "0s", "timeout": "500ms",
                   "failure_threshold": 3, "success_threshold": 2}]
        w = Ward("probes-state", extra_yaml=_yaml_checks(checks)).start()
        wait_for(lambda: _checks(w)["svc"]["state"] == "ok", 20, "svc ok")
        srv.close()
        # two failures are not enough for failing (threshold 3)
        wait_for(lambda: _checks(w)["svc"]["consecutive_failures"] >= 2, 20, "2 failures")
        c = _checks(w)["svc"]
        if c["consecutive_failures"] == 2:
            eq(c["state"], "ok", "state after 2 of 3 failures")
        wait_for(lambda: _checks(w)["svc"]["state"] == "failing", 20, "svc failing")
        c = _checks(w)["svc"]
        check(c["consecutive_failures"] >= 3, f"failing after 3 failures: {c}")
        check("connection refused" in c["last"]["reason"], c["last"]["reason"])
        since = c["since"]
        recs = [r for r in w.log_records() if r.get("msg") == "check state changed"]
        check(any(r.get("to") == "failing" and r.get("from") == "ok" for r in recs),
              f"ok->failing logged: {recs}")
        w.stop()
        w.start()
        c = _checks(w)["svc"]
        eq(c["state"], "failing", "state after a restart (from the store)")
        eq(c["since"], since, "since survives a restart")
        w.stop()
    finally:
        srv.close()


def test_concurrency_is_bounded_and_lateness_is_measured():
    checks = [{"name": f"slow{i}", "kind": "exec", "command": ["/bin/sleep", "1"],
               "interval": "2s", "timeout": "1500ms", "jitter": "0s"} for i in range(6)]
    w = Ward("probes-conc", extra_yaml=_yaml_checks(checks, max_concurrency=2)).start()
    seen = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        d = w.api("GET", "/api/v1/checks")
        check(d["in_flight"] <= 2, f"in flight {d['in_flight']} > max_concurrency 2")
        seen = max(seen, d["in_flight"])
        time.sleep(0.1)
    eq(seen, 2, "at most and at least 2 in flight when 6 are due")
    h = w.get("/health").json()["components"]["probes"]
    eq(h["checks"], 6, f"/health probes component: {h}")
    check(h["in_flight"] <= 2, f"/health in_flight: {h}")
    m = w.metrics()
    n = harness.metric_value(m, "ward_probe_schedule_lateness_seconds_count")
    check(n and n >= 6, f"lateness observed for each run: {n}")
    # queued runs wait: some lateness is above 0.5 s
    le = harness.metric_value(m, "ward_probe_schedule_lateness_seconds_bucket", {"le": "0.5"})
    check(le is not None and le < n, f"queued runs show lateness (le=0.5: {le}, count {n})")
    w.stop()


def test_probe_samples_reach_the_tsdb():
    ng = Nginx()
    try:
        checks = [{"name": "web", "kind": "http", "target": ng.url("/ok"), "interval": "1s",
                   "labels": {"env": "it"}},
                  {"name": "bad", "kind": "http", "target": ng.url("/fail"), "interval": "1s"}]
        w = Ward("probes-tsdb", extra_yaml=_yaml_checks(checks)).start()

        def q(expr):
            r = w.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                      token=w.admin_token)
            check(r.status == 200, f"/api/v1/query: HTTP {r.status} {r.body[:200]!r} "
                                   "(is promapi registered in src/core/modules.c?)")
            return r.json()["data"]["result"]

        res = wait_for(lambda: q('probe_success{probe="web"}'), 20, "probe_success of web")
        eq(res[0]["metric"], {"__name__": "probe_success", "job": "probe", "probe": "web",
                              "instance": ng.url("/ok"), "env": "it"}, "labels")
        eq(res[0]["value"][1], "1", "probe_success of web")
        res = wait_for(lambda: q('probe_http_status_code{probe="bad"}'), 20, "status of bad")
        eq(res[0]["value"][1], "503", "probe_http_status_code of bad")
        res = wait_for(lambda: q('probe_http_duration_seconds{probe="web"}'), 20, "phases")
        eq(sorted(r["metric"]["phase"] for r in res),
           ["connect", "processing", "resolve", "tls", "transfer"], "phases")
        w.stop()
    finally:
        ng.stop()


def test_reload_adds_and_removes_checks_and_keeps_the_state_of_the_others():
    ng = Nginx()
    try:
        keep = {"name": "keep", "kind": "http", "target": ng.url("/fail"), "interval": "1s"}
        gone = {"name": "gone", "kind": "tcp", "target": f"127.0.0.1:{ng.port}", "interval": "1s"}
        w = Ward("probes-reload", extra_yaml=_yaml_checks([keep, gone])).start()
        wait_for(lambda: _checks(w)["keep"]["state"] == "failing", 20, "keep failing")
        since = _checks(w)["keep"]["since"]
        new = {"name": "new", "kind": "http", "target": ng.url("/ok"), "interval": "1s"}
        w.write_config(extra_yaml=_yaml_checks([keep, new]))
        w.api("POST", "/api/v1/reload")
        cs = _checks(w)
        eq(sorted(cs), ["keep", "new"], "checks after the reload")
        eq(cs["keep"]["state"], "failing", "state of a kept check")
        eq(cs["keep"]["since"], since, "since of a kept check")
        wait_for(lambda: _checks(w)["new"]["state"] == "ok", 20, "the new check runs")
        r = w.request("POST", "/api/v1/checks/gone/run", token=w.admin_token)
        eq(r.status, 404, "a removed check is gone")
        w.stop()
    finally:
        ng.stop()
