"""Alerting and paging (issue 5 items 3-5, 7): ward as Alertmanager with REAL parts on
loopback: a webhook receiver (http.server in this process) gets Alertmanager's version 4
payload; a receiver answering 500 is retried and the failure is visible; silences mute and
are audited (API and CLI); escalation reaches level 2 at a real SMTP server (Python 3.11's
smtpd DebuggingServer) when nobody acknowledges, also across a restart of ward in the middle;
an acknowledgement (CLI, signed link) stops it; and Debian's prometheus-alertmanager receives
ward's forwarded alerts."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import harness
from harness import Ward, check, describe, eq, free_port, metric_value, wait_for


# ---- helpers: components the tests start ----

def _track(p):
    harness._procs.append(p)
    return p


class Sink:
    """A webhook receiver on loopback: records every POST; answers with statuses from
    `fail_first` (then 200), or hangs for `hang` seconds per request."""

    def __init__(self, fail_first=None, hang=0.0):
        self.posts = []
        self.fail = list(fail_first or [])
        self.hang = hang
        self.lock = threading.Lock()
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if sink.hang:
                    time.sleep(sink.hang)
                with sink.lock:
                    status = sink.fail.pop(0) if sink.fail else 200
                    sink.posts.append((status, time.monotonic(), json.loads(body or b"null")))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def ok(self):
        with self.lock:
            return [p for s, _, p in self.posts if s == 200]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _python311():
    for exe in ("python3.11", sys.executable, "python3"):
        path = shutil.which(exe) or (exe if os.path.exists(exe) else None)
        if path and subprocess.run([path, "-W", "ignore", "-c", "import smtpd"],
                                   capture_output=True).returncode == 0:
            return path
    raise harness.TestFailure("no Python with the smtpd module (Debian 12's python3.11 has it)")


class Smtp:
    """A real SMTP server: Python 3.11's smtpd DebuggingServer, printing each message."""

    def __init__(self, tmpdir):
        self.port = free_port()
        self.out = os.path.join(tmpdir, "smtp.out")
        self.f = open(self.out, "wb")
        self.p = _track(subprocess.Popen(
            [_python311(), "-W", "ignore", "-u", "-m", "smtpd", "-n", "-c", "DebuggingServer",
             f"127.0.0.1:{self.port}"], stdout=self.f, stderr=subprocess.STDOUT))

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_for(up, 15, f"smtpd on port {self.port}")

    def text(self):
        with open(self.out, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        self.p.kill()
        self.p.wait(5)
        self.f.close()


def post_alerts(w, alerts, token=None):
    r = w.request("POST", "/api/v2/alerts", token=token or w.admin_token, body=alerts)
    check(r.status == 200, f"POST /api/v2/alerts: {r!r}")


def alert(name, **labels):
    return {"labels": dict(alertname=name, **labels),
            "annotations": {"summary": f"{name} is broken"},
            "generatorURL": "http://prometheus.example/graph"}


# ---- tests ----

def test_webhook_gets_alertmanager_v4_payload_and_resolved_notice():
    sink = Sink()
    try:
        w = Ward("notify", extra_yaml=f"""
notify:
  external_url: http://ward.example
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 200ms
    group_interval: 500ms
  receivers:
    - name: hook
      webhook_configs: [{{url: "{sink.url}"}}]
""").start()
        post_alerts(w, [alert("Down", job="api", instance="a"),
                        alert("Down", job="api", instance="b")])
        wait_for(lambda: sink.ok(), 10, "the webhook")
        p = sink.ok()[0]
        eq(p["version"], "4", "version")
        eq(p["status"], "firing", "status")
        eq(p["receiver"], "hook", "receiver")
        eq(p["groupLabels"], {"alertname": "Down"}, "groupLabels")
        eq(p["commonLabels"], {"alertname": "Down", "job": "api"}, "commonLabels")
        eq(p["commonAnnotations"], {"summary": "Down is broken"}, "commonAnnotations")
        eq(p["externalURL"], "http://ward.example", "externalURL")
        eq(p["truncatedAlerts"], 0, "truncatedAlerts")
        check(p["groupKey"].endswith('{alertname="Down"}'), f"groupKey {p['groupKey']!r}")
        eq(len(p["alerts"]), 2, "alerts in one group")
        for a in p["alerts"]:
            for k in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                      "fingerprint"):
                check(k in a, f"alert lacks {k}: {a}")
            eq(len(a["fingerprint"]), 16, "fingerprint length")
        # Alertmanager's read API
        got = w.get("/api/v2/alerts", token=w.admin_token).json()
        eq(sorted(a["labels"]["instance"] for a in got), ["a", "b"], "GET /api/v2/alerts")
        eq(got[0]["status"]["state"], "active", "state")
        groups = w.get("/api/v2/alerts/groups", token=w.admin_token).json()
        eq(groups[0]["receiver"]["name"], "hook", "group receiver")
        # resolve: one resolved notice
        done = dict(alert("Down", job="api", instance="a"), endsAt="2000-01-01T00:00:00Z")
        done2 = dict(alert("Down", job="api", instance="b"), endsAt="2000-01-01T00:00:00Z")
        post_alerts(w, [done, done2])
        wait_for(lambda: any(x["status"] == "resolved" for x in sink.ok()), 10,
                 "the resolved notification")
        m = w.metrics()
        check((metric_value(m, "ward_notifications_total",
                            {"receiver": "hook", "integration": "webhook",
                             "result": "success"}) or 0) >= 2, "success metric")
        check(metric_value(m, "ward_notification_latency_seconds_count") is not None,
              "latency histogram")
        log = w.api("GET", "/api/v1/notifications")["log"]
        check(log and log[0]["receiver"] == "hook" and log[0]["result"] == "success",
              f"notification log {log[:2]}")
        w.stop()
    finally:
        sink.close()


def test_failing_receiver_is_retried_and_a_hanging_one_delays_nothing():
    bad = Sink(fail_first=[500, 500])
    hang = Sink(hang=8)
    good = Sink()
    try:
        w = Ward("notify", extra_yaml=f"""
notify:
  retry_initial: 200ms
  retry_max: 1s
  delivery_timeout: 5s
  route:
    receiver: bad
    group_wait: 0s
    routes:
      - {{matchers: [team=hang], receiver: hang}}
      - {{matchers: [team=good], receiver: good}}
  receivers:
    - {{name: bad, webhook_configs: [{{url: "{bad.url}"}}]}}
    - {{name: hang, webhook_configs: [{{url: "{hang.url}"}}]}}
    - {{name: good, webhook_configs: [{{url: "{good.url}"}}]}}
""").start()
        post_alerts(w, [alert("Hang", team="hang")])
        time.sleep(0.3)
        t0 = time.monotonic()
        post_alerts(w, [alert("Flaky", team="bad"), alert("Fine", team="good")])
        wait_for(lambda: good.ok(), 5, "the good receiver")
        check(time.monotonic() - t0 < 3, "a hanging receiver delayed another")
        wait_for(lambda: bad.ok(), 15, "the failing receiver to succeed after retries")
        eq([s for s, _, _ in bad.posts], [500, 500, 200], "attempts of the failing receiver")
        m = w.metrics()
        check((metric_value(m, "ward_notifications_failed_total", {"receiver": "bad"}) or 0)
              >= 2, "failed metric")
        log = w.api("GET", "/api/v1/notifications?limit=50")["log"]
        fails = [x for x in log if x["receiver"] == "bad" and x["result"] == "failure"]
        check(len(fails) == 2 and "HTTP 500" in (fails[0]["error"] or ""),
              f"failures in the log: {fails}")
        w.stop()
    finally:
        for s in (bad, hang, good):
            s.close()


def test_undelivered_notification_stays_queued_across_restart():
    port = free_port()  # nothing listens yet
    url = f"http://127.0.0.1:{port}/hook"
    w = Ward("notify", extra_yaml=f"""
notify:
  retry_initial: 300ms
  retry_max: 500ms
  route: {{receiver: late, group_wait: 0s}}
  receivers: [{{name: late, webhook_configs: [{{url: "{url}"}}]}}]
""").start()
    post_alerts(w, [alert("Queued")])
    wait_for(lambda: w.api("GET", "/api/v1/notifications")["queued"], 10, "a queued job")
    w.stop()
    w.start()
    q = w.api("GET", "/api/v1/notifications")["queued"]
    check(q and q[0]["receiver"] == "late" and q[0]["attempts"] >= 1, f"queue after restart {q}")
    # now the receiver comes up on that port: the job is delivered
    sink = Sink()
    sink.close()

    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: got, 10, "the queued notification after the restart")
        eq(got[0]["alerts"][0]["labels"]["alertname"], "Queued", "delivered alert")
        wait_for(lambda: not w.api("GET", "/api/v1/notifications")["queued"], 5, "empty queue")
        w.stop()
    finally:
        srv.shutdown()
        srv.server_close()


def test_exec_and_slack_notifiers_get_the_alert():
    slack = Sink()
    try:
        w = Ward("notify", write_config=False)
        out = os.path.join(w.dir, "exec.out")
        script = os.path.join(w.dir, "hook.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ncat > \"$1.json\"\nenv | grep '^WARD_' | sort > \"$1.env\"\n")
        os.chmod(script, 0o755)
        w.write_config(extra_yaml=f"""
notify:
  route: {{receiver: both, group_wait: 0s}}
  receivers:
    - name: both
      exec_configs: [{{command: ["{script}", "{out}"], timeout: 5s}}]
      slack_configs: [{{api_url: "{slack.url}", channel: "#ops"}}]
""")
        w.start()
        post_alerts(w, [alert("Exec", job="batch")])
        wait_for(lambda: os.path.exists(out + ".env") and os.path.getsize(out + ".env") > 0,
                 10, "the exec notifier")
        env = open(out + ".env").read()
        for want in ("WARD_LABEL_ALERTNAME=Exec", "WARD_LABEL_JOB=batch", "WARD_STATUS=firing",
                     "WARD_ANNOTATION_SUMMARY=Exec is broken", "WARD_RECEIVER=both"):
            check(want in env, f"exec env lacks {want}: {env}")
        payload = json.load(open(out + ".json"))
        eq(payload["version"], "4", "exec stdin payload")
        wait_for(lambda: slack.ok(), 10, "the slack webhook")
        msg = slack.ok()[0]
        check(msg["text"].startswith("[FIRING:1]") and msg["channel"] == "#ops", f"slack {msg}")
        eq(msg["attachments"][0]["color"], "danger", "slack attachment color")
        w.stop()
    finally:
        slack.close()


def test_silences_mute_alerts_and_are_audited_via_api_and_cli():
    sink = Sink()
    try:
        w = Ward("notify", extra_yaml=f"""
notify:
  route: {{receiver: hook, group_wait: 0s, group_interval: 300ms}}
  receivers: [{{name: hook, webhook_configs: [{{url: "{sink.url}"}}]}}]
  maintenance_windows:
    - {{name: nightly, matchers: [env=staging], schedule: "daily 00:00-23:59 UTC"}}
""").start()
        op = w.create_token("oncall", role="operator")["token"]
        viewer = w.create_token("look", role="viewer")["token"]
        sil = {"matchers": [{"name": "job", "value": "db.*", "isRegex": True}],
               "endsAt": "2999-01-01T00:00:00Z", "createdBy": "alice", "comment": "upgrade"}
        r = w.request("POST", "/api/v2/silences", token=viewer, body=sil)
        eq(r.status, 403, "a viewer cannot silence")
        r = w.request("POST", "/api/v2/silences", token=op, body=sil)
        eq(r.status, 200, f"POST /api/v2/silences {r!r}")
        sid = r.json()["silenceID"]
        post_alerts(w, [alert("DbDown", job="db-1"), alert("Stage", env="staging"),
                        alert("ApiDown", job="api")])
        wait_for(lambda: sink.ok(), 10, "a notification")
        time.sleep(1.0)
        names = {a["labels"]["alertname"] for p in sink.ok() for a in p["alerts"]}
        eq(names, {"ApiDown"}, "only the unmuted alert is notified")
        got = {a["labels"]["alertname"]: a for a in
               w.get("/api/v2/alerts", token=viewer).json()}
        eq(got["DbDown"]["status"]["state"], "suppressed", "silenced state")
        eq(got["DbDown"]["status"]["silencedBy"], [sid], "silencedBy")
        eq(got["Stage"]["status"]["mutedBy"], ["nightly"], "maintenance window marks")
        check(got["Stage"]["inMaintenance"], "inMaintenance")
        # expire through the CLI; the alert is notified afterwards
        p = w.cli("silence", "expire", sid, token=op)
        eq(p.returncode, 0, describe(p))
        wait_for(lambda: "DbDown" in {a["labels"]["alertname"] for x in sink.ok()
                                      for a in x["alerts"]}, 10, "the unsilenced alert")
        lst = w.get("/api/v2/silences", token=viewer).json()
        eq([s["status"]["state"] for s in lst if s["id"] == sid], ["expired"], "kept as history")
        # CLI add and list
        p = w.cli("silence", "add", "alertname=Foo", "job=~\"x.*\"", "--duration", "1h",
                  "--comment", "cli test", token=op)
        eq(p.returncode, 0, describe(p))
        sid2 = p.stdout.strip()
        p = w.cli("silence", "list", token=viewer)
        check(sid2 in p.stdout and "cli test" in p.stdout, describe(p))
        p = w.cli("silence", "list", "--all", token=viewer)
        check(sid in p.stdout, describe(p))
        acts = [(e["action"], e["target"]) for e in w.audit(action="silence.")]
        for want in [("silence.create", sid), ("silence.expire", sid),
                     ("silence.create", sid2)]:
            check(want in acts, f"audit lacks {want}: {acts}")
        w.stop()
    finally:
        sink.close()


ESC_YAML = """
notify:
  external_url: {url}
  smtp: {{smarthost: "127.0.0.1:{smtp}", from: ward@example.org, tls: none}}
  route: {{receiver: auto, group_wait: 0s}}
  receivers:
    - {{name: auto, webhook_configs: [{{url: "{hook}"}}]}}
    - {{name: expert, webhook_configs: [{{url: "{hook}"}}]}}
  oncall_schedules:
    - name: primary
      rotation: daily
      handoff: "00:00"
      time_zone: Europe/Berlin
      participants:
        - {{name: erin, email: erin@example.org}}
  escalation_policies:
    - name: critical
      matchers: [severity=critical]
      levels:
        - {{receivers: [auto]}}
        - {{after: {l2}, receivers: ["oncall:primary"]}}
        - {{after: 60s, receivers: [expert]}}
"""


def test_escalation_reaches_oncall_email_resumes_after_restart_and_stops_on_ack():
    sink = Sink()
    w = Ward("notify", write_config=False)
    smtp = Smtp(w.dir)
    try:
        w.write_config(extra_yaml=ESC_YAML.format(url=w.url, smtp=smtp.port, hook=sink.url,
                                                  l2="4s"))
        w.start()
        post_alerts(w, [dict(alert("DiskFull", severity="critical"))])
        wait_for(lambda: any(a.get("escalationLevel") == 1 for p in sink.ok()
                             for a in p["alerts"]), 10, "escalation level 1 at the webhook")
        esc = w.api("GET", "/api/v1/escalations")
        eq([(e["policy"], e["level"], e["state"]) for e in esc], [("critical", 1, "escalating")],
           "escalation state")
        fp = esc[0]["fingerprint"]
        # restart in the middle: level 2 still comes, on time
        w.stop()
        w.start()
        wait_for(lambda: "erin@example.org" in smtp.text(), 15, "the level 2 email")
        text = smtp.text()
        check("DiskFull" in text and "[escalation level 2]" in text, text[-800:])
        esc = w.api("GET", "/api/v1/escalations")
        eq(esc[0]["level"], 2, "level after the restart")
        log = w.api("GET", "/api/v1/notifications?limit=50")["log"]
        check(any(x["integration"] == "email" and x["result"] == "success" and
                  x["receiver"] == "oncall:primary" for x in log), f"email in the log: {log}")
        p = w.cli("escalation", "oncall")
        check("erin" in p.stdout, describe(p))
        # ack by the CLI stops it
        p = w.cli("escalation", "ack", fp)
        eq(p.returncode, 0, describe(p))
        esc = w.api("GET", "/api/v1/escalations")
        eq(esc[0]["state"], "acknowledged", "state after ack")
        p = w.cli("escalation", "ack", fp)
        eq(p.returncode, harness.WARD_EXIT_NOTFOUND if hasattr(harness, "WARD_EXIT_NOTFOUND")
           else 5, "a second ack")
        acts = [(e["action"], e["target"]) for e in w.audit(action="alert.ack")]
        check(("alert.ack", fp) in acts, f"ack audited: {acts}")
        w.stop()
    finally:
        sink.close()
        smtp.close()


def test_signed_ack_link_stops_escalation_and_forged_links_fail():
    sink = Sink()
    w = Ward("notify", write_config=False)
    try:
        w.write_config(extra_yaml=ESC_YAML.format(url=w.url, smtp=free_port(), hook=sink.url,
                                                  l2="30s"))
        w.start()
        post_alerts(w, [alert("CpuHot", severity="critical")])
        wait_for(lambda: any(a.get("ackURL") for p in sink.ok() for a in p["alerts"]), 10,
                 "a notification with an ack link")
        link = next(a["ackURL"] for p in sink.ok() for a in p["alerts"] if a.get("ackURL"))
        # a group ack by matchers that select nothing acknowledges nothing
        eq(w.api("POST", "/api/v1/escalations/ack", {"matchers": ["alertname=Other"]}),
           {"acknowledged": []}, "group ack of nothing")
        path = urllib.parse.urlparse(link).path
        check(path.startswith("/ack/"), link)
        forged = path[:-1] + ("0" if path[-1] != "0" else "1")
        eq(w.get(forged).status, 403, "a forged link")
        r = w.get(path)
        eq(r.status, 200, f"the ack link: {r!r}")
        esc = w.api("GET", "/api/v1/escalations")
        eq((esc[0]["state"], esc[0]["acked_by"]), ("acknowledged", "ack link"), "acked by link")
        check(any(e["target"] == esc[0]["fingerprint"] for e in w.audit(action="alert.ack")),
              "link ack audited")
        # per group: every escalating alert the matchers select
        post_alerts(w, [alert("Fan", severity="critical", rack="1"),
                        alert("Fan", severity="critical", rack="2")])
        wait_for(lambda: len(w.api("GET", "/api/v1/escalations")) == 3, 10, "two escalations")
        got = w.api("POST", "/api/v1/escalations/ack", {"matchers": ["alertname=Fan"]})
        eq(len(got["acknowledged"]), 2, "group ack")
        states = {e["alert"]["labels"]["alertname"] + e["alert"]["labels"].get("rack", ""):
                  e["state"] for e in w.api("GET", "/api/v1/escalations")}
        eq(states, {"CpuHot": "acknowledged", "Fan1": "acknowledged", "Fan2": "acknowledged"},
           "states after the group ack")
        w.stop()
    finally:
        sink.close()


def test_forwarding_reaches_a_real_alertmanager():
    am = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    check(am, "prometheus-alertmanager is not installed (scripts/deps.sh --test installs it)")
    w = Ward("notify", write_config=False)
    port = free_port()
    cfg = os.path.join(w.dir, "am.yml")
    with open(cfg, "w") as f:
        f.write("route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n")
    _track(subprocess.Popen(
        [am, f"--config.file={cfg}", f"--storage.path={w.dir}/am",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(w.dir, "am.err"), "wb")))
    wait_for(lambda: harness.http("GET", f"http://127.0.0.1:{port}/-/ready").status == 200, 30,
             "alertmanager ready")
    w.write_config(extra_yaml=f"""
notify:
  route: {{receiver: am, group_wait: 0s}}
  receivers: [{{name: am, alertmanager_configs: [{{url: "http://127.0.0.1:{port}"}}]}}]
""")
    w.start()
    post_alerts(w, [alert("Forwarded", job="x")])

    def seen():
        got = harness.http("GET", f"http://127.0.0.1:{port}/api/v2/alerts").json()
        return [a for a in got if a["labels"].get("alertname") == "Forwarded"]
    a = wait_for(seen, 15, "the forwarded alert in Alertmanager")[0]
    eq(a["labels"]["job"], "x", "labels in Alertmanager")
    eq(a["annotations"]["summary"], "Forwarded is broken", "annotations in Alertmanager")
    w.stop()
