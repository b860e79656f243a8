"""promwire.py: the pieces the PromQL compatibility test and the tsdb benchmark share
(Python standard library only).

- encode_write_request(): a Prometheus remote-write WriteRequest encoded by hand
  (protobuf: WriteRequest{1: TimeSeries{1: Label{1 name, 2 value}, 2: Sample{1 double, 2 int64}}}).
- snappy_block(): a valid snappy block made only of literal elements (no compression at all:
  the format allows it, and every decoder must accept it).
- Server / Prometheus / Ward: one server process on a free 127.0.0.1 port in its own temporary
  directory, started, waited for, written to (remote_write) and queried over HTTP, and stopped.
Used by tests/compat/compat.py and bench/tsdb/gen.py. Labels are always sent sorted by name.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

STALE_BITS = 0x7FF0000000000002  # Prometheus' staleness marker: a NaN with this exact payload
STALE = object()  # a sample value meaning "send the staleness marker"
TOKEN_RE = re.compile(r"ward_[0-9a-f]{64}")


# ---- protobuf + snappy ----

def _varint(n):
    out = bytearray()
    if n < 0:
        n += 1 << 64  # int64 as two's complement, 10 bytes
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field, payload):
    """A length-delimited field (wire type 2)."""
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


_LABEL_CACHE = {}


def _label(name, value):
    key = (name, value)
    b = _LABEL_CACHE.get(key)
    if b is None:
        b = _ld(1, _ld(1, name.encode()) + _ld(2, value.encode()))
        if len(_LABEL_CACHE) < 200000:
            _LABEL_CACHE[key] = b
    return b


_SAMPLE_TAG_V = bytes([(1 << 3) | 1])  # field 1, fixed64
_SAMPLE_TAG_T = bytes([(2 << 3) | 0])  # field 2, varint
_STALE_RAW = struct.pack("<Q", STALE_BITS)


def _sample(v, t_ms):
    raw = _STALE_RAW if v is STALE else struct.pack("<d", v)
    body = _SAMPLE_TAG_V + raw + _SAMPLE_TAG_T + _varint(t_ms)
    return b"\x12" + _varint(len(body)) + body  # TimeSeries field 2


def encode_series(labels, samples):
    """One TimeSeries (already wrapped as WriteRequest field 1). labels: dict or list of
    pairs; samples: [(t_ms, value)] with value a float or STALE."""
    items = sorted(labels.items() if isinstance(labels, dict) else labels)
    body = b"".join(_label(n, v) for n, v in items)
    body += b"".join(_sample(v, t) for t, v in samples)
    return _ld(1, body)


def encode_write_request(series):
    """series: [(labels, [(t_ms, value)])] -> the protobuf bytes of a WriteRequest."""
    return b"".join(encode_series(ls, ss) for ls, ss in series)


def snappy_block(data):
    """A snappy block of literal elements only: varint(uncompressed length), then literals."""
    out = [_varint(len(data))]
    pos = 0
    n = len(data)
    while pos < n:
        chunk = min(65536, n - pos)
        m = chunk - 1
        if m < 60:
            out.append(bytes([m << 2]))
        elif m < 256:
            out.append(bytes([60 << 2, m]))
        else:
            out.append(bytes([61 << 2]) + struct.pack("<H", m))
        out.append(data[pos:pos + chunk])
        pos += chunk
    return b"".join(out)


# ---- processes ----

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HTTPResult:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None


def http(method, url, body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HTTPResult(r.status, r.read())
    except urllib.error.HTTPError as e:
        return HTTPResult(e.code, e.read() if e.fp else b"")


class Server:
    """A server process under test. Subclasses set self.argv and self.ready_path."""

    name = "server"

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=root)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        self.token = None
        self.runs = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.dir, f"stderr.{self.runs}"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def spawn(self, argv):
        self.runs += 1
        out = open(os.path.join(self.dir, f"stdout.{self.runs}"), "wb")
        err = open(os.path.join(self.dir, f"stderr.{self.runs}"), "wb")
        env = dict(os.environ)
        env["HOME"] = self.dir
        self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                         cwd=self.dir, env=env)
        out.close()
        err.close()

    def wait_ready(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during "
                           f"start-up:\n{self.log_tail()}")
            try:
                if http("GET", self.url + path, timeout=2).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kib(self, field="VmRSS"):
        """A memory field of /proc/PID/status in KiB: VmRSS, or its parts RssAnon (heap) and
        RssFile (mapped files: libraries, and the blocks and chunks a store mmaps)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def write(self, body_proto, timeout=120):
        """POSTs one remote-write request; returns the HTTPResult."""
        h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
             "X-Prometheus-Remote-Write-Version": "0.1.0"}
        h.update(self.auth())
        return http("POST", self.url + "/api/v1/write", snappy_block(body_proto), h, timeout)

    def get(self, path, params=None, timeout=120):
        q = ("?" + urllib.parse.urlencode(params, doseq=True)) if params else ""
        return http("GET", self.url + path + q, None, self.auth(), timeout)

    def post_form(self, path, params, timeout=120):
        """POST with an application/x-www-form-urlencoded body, as Grafana sends queries."""
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(self.auth())
        body = urllib.parse.urlencode(params, doseq=True).encode()
        return http("POST", self.url + path, body, h, timeout)

    def du_bytes(self, path=None):
        total = 0
        for dp, _, fns in os.walk(path or self.data):
            for fn in fns:
                try:
                    total += os.lstat(os.path.join(dp, fn)).st_blocks * 512
                except OSError:
                    pass
        return total

    def apparent_bytes(self, path=None):
        total = 0
        for dp, _, fns in os.walk(path or self.data):
            for fn in fns:
                try:
                    total += os.lstat(os.path.join(dp, fn)).st_size
                except OSError:
                    pass
        return total


class Prometheus(Server):
    name = "prometheus"

    def __init__(self, root, binary="prometheus", extra_args=()):
        super().__init__(root)
        self.binary = binary
        self.extra_args = list(extra_args)
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            # Prometheus' defaults otherwise (evaluation_interval 1m is the default step
            # of a subquery without one, e.g. x[10m:])
            f.write("# no scrape targets: data arrives only through remote write\n"
                    "global: {}\n")

    def start(self):
        self.spawn([self.binary, f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-remote-write-receiver", "--log.level=warn"] + self.extra_args)
        self.wait_ready("/-/ready")


class Ward(Server):
    name = "ward"

    def __init__(self, root, binary, tsdb_yaml=None):
        super().__init__(root)
        self.binary = binary
        self.config = os.path.join(self.dir, "ward.yaml")
        tsdb = tsdb_yaml or "{self_scrape_interval: 0s, out_of_order_window: 1h}"
        with open(self.config, "w") as f:
            f.write(f"server: {{listen: 127.0.0.1:{self.port}, "
                "limits: {rate_per_client: 0, max_body: 64MiB}}\n"
                f"tsdb: {tsdb}\n"
                "log: {level: warn}\n")

    def start(self):
        self.spawn([self.binary, "serve", "--config", self.config, "--data", self.data,
                "--listen", f"127.0.0.1:{self.port}"])
        self.wait_ready("/ready")
        if self.token is None:
            deadline = time.monotonic() + 10
            while self.token is None:
                with open(os.path.join(self.dir, f"stdout.{self.runs}"), errors="replace") as f:
                    m = TOKEN_RE.search(f.read())
                if m:
                    self.token = m.group(0)
                elif time.monotonic() > deadline:
                    raise RuntimeError("ward printed no admin token on its first start")
                else:
                    time.sleep(0.05)
