"""harness.py: helpers for ward's integration tests (Python standard library only).

A Ward object is one daemon under test: its own temporary directory, data directory,
generated config file and free loopback port. start() runs `ward serve`, waits until /ready
answers and picks up the first admin token from stdout; stop() sends a signal and waits;
request()/api() make HTTP calls; cli() runs the `ward` client against it. Every process a
test starts is tracked and killed by cleanup(), which run.py calls after each test, so a
failing test never leaves a daemon behind. Servers listen on 127.0.0.1 only.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

WARD = os.environ.get("WARD_BIN", "")  # set by run.py from --ward
TMP_ROOT = None  # set by run.py
START_TIMEOUT = 30.0  # seconds; ASan builds start slower, and CI machines are slow
STOP_TIMEOUT = 30.0
TOKEN_RE = re.compile(r"ward_[0-9a-f]{64}")
FIRST_TOKEN_LINE = "ward: created the first admin token (shown only this once; store it now):"
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|UndefinedBehaviorSanitizer")

_live = []  # every Ward created during the current test
_procs = []  # every Popen started during the current test


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that cannot run here (a missing optional tool or build feature);
    run.py prints SKIP with the reason and counts it apart from passes and failures."""


def check(cond, msg):
    """Fails the test with msg when cond is false."""
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure(f"{what}: got {got!r}, want {want!r}")


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise TestFailure(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def free_port():
    """A port that was free on 127.0.0.1 a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def new_tmpdir(name):
    return tempfile.mkdtemp(prefix=f"{name}-", dir=TMP_ROOT)


def sanitizer_check(text, who):
    m = SANITIZER_RE.search(text or "")
    if m:
        start = max(0, m.start() - 200)
        snippet = text[start:m.start() + 1500]
        raise TestFailure(f"{who}: sanitizer report: {m.group(0)}\n{snippet}")


def cli_env(url=None, token=None, home=None):
    """An environment for the CLI that sees no client file of the person running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARD_")}
    env["HOME"] = home or TMP_ROOT
    env["XDG_CONFIG_HOME"] = os.path.join(home or TMP_ROOT, ".config")
    if url is not None:
        env["WARD_URL"] = url
    if token is not None:
        env["WARD_TOKEN"] = token
    return env


def run_cli(args, env=None, timeout=60, cwd=None, input_text=None):
    """Runs `ward ARGS` and returns the CompletedProcess (text). Fails on a sanitizer report."""
    p = subprocess.run([WARD] + list(args), env=env or cli_env(), cwd=cwd or TMP_ROOT,
                       capture_output=True, text=True, timeout=timeout, input=input_text,
                       errors="replace")
    sanitizer_check(p.stderr, "ward " + " ".join(args))
    return p


def describe(p):
    """One line about a CompletedProcess, for failure messages."""
    out = (p.stdout or "").strip().replace("\n", " | ")[:300]
    err = (p.stderr or "").strip().replace("\n", " | ")[:400]
    return f"exit {p.returncode}; stdout: {out!r}; stderr: {err!r}"


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # an email.message.Message: case-insensitive .get()
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:
            raise TestFailure(f"response is not JSON ({e}): {self.body[:300]!r}")

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:200]!r}>"


def http(method, url, token=None, body=None, headers=None, timeout=15):
    """One HTTP request with urllib; 4xx and 5xx are returned, not raised."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        data = e.read() if e.fp else b""
        return Resp(e.code, e.headers, data)


class Ward:
    """One `ward serve` under test."""

    def __init__(self, name="ward", limits=None, log_level="info", data_dir=None, port=None,
                 extra_yaml="", write_config=True):
        self.name = name
        self.dir = new_tmpdir(name)
        self.data = data_dir or os.path.join(self.dir, "data")
        self.port = port or free_port()
        self.config_path = os.path.join(self.dir, "ward.yaml")
        self.proc = None
        self.runs = 0
        self.admin_token = None
        self.first_token_seen = []  # per start: the token printed then, or None
        self.stdout_paths = []
        self.stderr_paths = []
        self.returncodes = []
        if write_config:
            self.write_config(limits=limits, log_level=log_level, extra_yaml=extra_yaml)
        _live.append(self)

    # ---- configuration ----
    def config_text(self, limits=None, log_level="info", extra_yaml="", listen=None):
        lines = [
            "# generated by tests/integration/harness.py",
            "server:",
            f"  listen: {listen or f'127.0.0.1:{self.port}'}",
            "  threads: 4",
        ]
        if limits:
            lines.append("  limits:")
            for k, v in limits.items():
                lines.append(f"    {k}: {v}")
        lines += [
            "log:",
            f"  level: {log_level}",
            "  format: json",
            "storage:",
            f"  data_dir: {self.data}",
        ]
        return "\n".join(lines) + "\n" + extra_yaml

    def write_config(self, text=None, **kw):
        if text is None:
            text = self.config_text(**kw)
        with open(self.config_path, "w") as f:
            f.write(text)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    # ---- process control ----
    def spawn(self, args=None):
        """Starts `ward serve` (with --config unless args given) without waiting."""
        check(WARD and os.path.exists(WARD), f"ward binary not found: {WARD!r}")
        self.runs += 1
        out = os.path.join(self.dir, f"stdout.{self.runs}")
        err = os.path.join(self.dir, f"stderr.{self.runs}")
        self.stdout_paths.append(out)
        self.stderr_paths.append(err)
        argv = [WARD, "serve"] + (args if args is not None else ["--config", self.config_path])
        env = cli_env(home=self.dir)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                         cwd=self.dir, env=env)
        _procs.append(self.proc)
        return self.proc

    def start(self, args=None, expect_token=None, timeout=START_TIMEOUT):
        """Starts the daemon and waits until GET /ready is 200. expect_token: True when this
        start must print the first admin token, False when it must not, None: either."""
        self.spawn(args)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncodes.append(rc)
                raise TestFailure(f"ward serve exited with {rc} during start-up; stderr: "
                                  f"{self.stderr_tail(8)}")
            try:
                r = http("GET", self.url + "/ready", timeout=2)
                if r.status == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() >= deadline:
                raise TestFailure(f"ward serve not ready after {timeout:.0f}s; stderr: "
                                  f"{self.stderr_tail(8)}")
            time.sleep(0.05)
        # The token is printed before the server listens; give a buffered stdout a moment.
        tok = None
        grace = time.monotonic() + (3.0 if expect_token else 0.3)
        while True:
            m = TOKEN_RE.search(self.stdout())
            if m:
                tok = m.group(0)
                break
            if time.monotonic() >= grace:
                break
            time.sleep(0.05)
        self.first_token_seen.append(tok)
        if tok:
            self.admin_token = tok
        if expect_token is True:
            check(tok, f"first start printed no admin token on stdout: {self.stdout()!r}")
        if expect_token is False:
            check(not tok, "a second start printed an admin token again")
        return self

    def send(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise TestFailure(f"ward serve did not exit within {timeout:.0f}s; killed")
        self.returncodes.append(rc)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect_rc=0):
        """Sends sig and waits for the exit; checks the exit code and sanitizer output."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        rc = self.wait(timeout)
        sanitizer_check(self.stderr(), "ward serve")
        if expect_rc is not None:
            check(rc == expect_rc,
                  f"ward serve exited with {rc} after {signal.Signals(sig).name}, want "
                  f"{expect_rc}; stderr: {self.stderr_tail(5)}")
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.returncodes.append(-9)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- output ----
    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self, run=-1):
        return self._read(self.stdout_paths[run]) if self.stdout_paths else ""

    def stderr(self, run=-1):
        return self._read(self.stderr_paths[run]) if self.stderr_paths else ""

    def all_stderr(self):
        return "".join(self._read(p) for p in self.stderr_paths)

    def all_stdout(self):
        return "".join(self._read(p) for p in self.stdout_paths)

    def stderr_tail(self, n=10):
        lines = self.stderr().strip().splitlines()
        return " | ".join(lines[-n:])[:1200]

    def log_records(self, run=-1):
        """The JSON log lines of a run (lines that are not JSON are returned as {'_raw':..})."""
        recs = []
        for line in self.stderr(run).splitlines():
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                recs.append({"_raw": line})
        return recs

    # ---- HTTP ----
    def request(self, method, path, token=None, body=None, headers=None, timeout=15):
        return http(method, self.url + path, token=token, body=body, headers=headers,
                    timeout=timeout)

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)

    def api(self, method, path, body=None, token=None, want=200):
        """An /api/v1 call with the admin token (unless another is given); checks the status
        and the envelope and returns data."""
        r = self.request(method, path, token=token or self.admin_token, body=body)
        check(r.status == want, f"{method} {path}: HTTP {r.status}, want {want}: "
                                f"{r.body[:300]!r}")
        j = r.json()
        if 200 <= want < 300:
            check(j.get("status") == "success", f"{method} {path}: envelope {j!r}")
            return j.get("data")
        check(j.get("status") == "error" and j.get("errorType") and j.get("error"),
              f"{method} {path}: error envelope {j!r}")
        return j

    def create_token(self, name, role="viewer", token=None):
        return self.api("POST", "/api/v1/tokens", {"name": name, "role": role}, token=token,
                        want=201)

    def audit(self, **params):
        q = urllib.parse.urlencode(params)
        data = self.api("GET", "/api/v1/audit" + (f"?{q}" if q else ""))
        check(isinstance(data, dict) and isinstance(data.get("entries"), list),
              f"audit data has no entries list: {data!r}")
        return data["entries"]

    def audit_all(self, **params):
        """Every matching entry, newest first, following next_before page by page."""
        out = []
        before = None
        for _ in range(10000):
            q = dict(params, limit=1000)
            if before is not None:
                q["before"] = before
            data = self.api("GET", "/api/v1/audit?" + urllib.parse.urlencode(q))
            out += data.get("entries") or []
            before = data.get("next_before")
            if before is None or not data.get("entries"):
                return out
        raise TestFailure("audit paging did not end")

    def metrics(self):
        r = self.get("/metrics")
        check(r.status == 200, f"/metrics: HTTP {r.status}")
        return r.text()

    # ---- CLI ----
    def cli(self, *args, token="admin", url=None, timeout=60):
        """Runs `ward ARGS` against this server through WARD_URL/WARD_TOKEN."""
        if token == "admin":
            token = self.admin_token
        env = cli_env(url=url or self.url, token=token, home=self.dir)
        return run_cli(args, env=env, timeout=timeout, cwd=self.dir)

    def audit_file(self, n=1):
        return os.path.join(self.data, "audit", f"{n:06d}.log")



def metric_value(text, name, labels=None):
    """Sum of the samples of name whose labels include the given ones (None: absent)."""
    total = None
    pat = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+(\S+)")
    for line in text.splitlines():
        m = pat.match(line)
        if not m:
            continue
        ls = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if labels and any(ls.get(k) != v for k, v in labels.items()):
            continue
        total = (total or 0.0) + float(m.group(2))
    return total


def cleanup(keep=False):
    """Kills every process the test started; removes its directories unless keep."""
    for p in _procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(10)
            except Exception:  # noqa: BLE001
                pass
    _procs.clear()
    dirs = [w.dir for w in _live]
    _live.clear()
    if not keep:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    return dirs


def live():
    return list(_live)


def post_check():
    """After a test body passed: no daemon it ran may have reported a sanitizer error, even
    one killed with -9 or never stopped."""
    for w in _live:
        for i in range(len(w.stderr_paths)):
            sanitizer_check(w.stderr(i), f"ward serve ({w.name}, run {i + 1})")
