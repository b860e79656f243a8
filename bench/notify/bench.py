"""bench.py: the driver of bench/notify/run.sh (standard library only): a webhook receiver
that stamps arrivals, ward and (when installed) Alertmanager under the same routing, and the
latency from POST /api/v2/alerts to the webhook for N single-alert groups."""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Receiver:
    def __init__(self):
        self.arrived = {}
        self.cv = threading.Condition()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                t = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with rec.cv:
                    for a in body.get("alerts", []):
                        rec.arrived.setdefault(a["labels"].get("i"), t)
                    rec.cv.notify_all()

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def post(url, token, alerts):
    req = urllib.request.Request(url, data=json.dumps(alerts).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    urllib.request.urlopen(req, timeout=10).read()


def wait_ready(url, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: {url} not ready")


def measure(rec, url, token, n, tag):
    lat = []
    for k in range(n):
        key = f"{tag}-{k}"
        t0 = time.monotonic()
        post(url, token, [{"labels": {"alertname": "Bench", "i": key}}])
        with rec.cv:
            rec.cv.wait_for(lambda: key in rec.arrived, timeout=10)
            if key in rec.arrived:
                lat.append(rec.arrived[key] - t0)
    lat.sort()
    if not lat:
        return None
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    return len(lat), q(0.5), q(0.99), lat[-1] * 1000


def run_ward(ward, rec, n, tmp):
    port = free_port()
    cfg = os.path.join(tmp, "ward.yaml")
    with open(cfg, "w") as f:
        f.write(f"""server: {{listen: 127.0.0.1:{port}, limits: {{rate_per_client: 0}}}}
log: {{level: warn}}
storage: {{data_dir: {tmp}/data}}
notify:
  route: {{receiver: r, group_by: ['...'], group_wait: 0s, group_interval: 1m}}
  receivers: [{{name: r, webhook_configs: [{{url: "{rec.url}"}}]}}]
""")
    out = open(os.path.join(tmp, "ward.out"), "w+")
    p = subprocess.Popen([ward, "serve", "--config", cfg], stdout=out,
                         stderr=open(os.path.join(tmp, "ward.err"), "w"))
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready")
        time.sleep(0.3)
        out.seek(0)
        tok = re.search(r"ward_[0-9a-f]{64}", out.read()).group(0)
        return measure(rec, f"http://127.0.0.1:{port}/api/v2/alerts", tok, n, "ward")
    finally:
        p.terminate()
        p.wait(30)


def run_am(rec, n, tmp):
    am = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not am:
        return None
    port = free_port()
    cfg = os.path.join(tmp, "am.yml")
    with open(cfg, "w") as f:
        f.write(f"""route: {{receiver: r, group_by: ['...'], group_wait: 0s, group_interval: 1m}}
receivers: [{{name: r, webhook_configs: [{{url: "{rec.url}"}}]}}]
""")
    p = subprocess.Popen([am, f"--config.file={cfg}", f"--storage.path={tmp}/am",
                          f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready")
        return measure(rec, f"http://127.0.0.1:{port}/api/v2/alerts", None, n, "am")
    finally:
        p.terminate()
        p.wait(30)


def main():
    ward, n = sys.argv[1], int(sys.argv[2])
    rec = Receiver()
    with tempfile.TemporaryDirectory(prefix="ward-bench-notify-") as tmp:
        rows = [("ward", run_ward(ward, rec, n, tmp))]
        am = run_am(rec, n, tmp)
        rows.append(("Alertmanager", am if am else "not installed"))
    print(f"POST /api/v2/alerts -> webhook received, {n} alerts one at a time, "
          "group_wait 0s\n")
    print("| system | delivered | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in rows:
        if isinstance(r, tuple):
            print(f"| {name} | {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} |")
        else:
            print(f"| {name} | {r} | | | |")


if __name__ == "__main__":
    main()
