"""Incidents (issue 5 item 6): a critical alert posted to /api/v2/alerts opens an incident
with a timeline (grouped alerts attach to it; a warning opens none); acknowledging it with
the CLI records the time to acknowledge and stops the escalation; notes and phase changes
are timestamped and attributed; resolving the alerts moves it to recovered with its time
to recover; closing is final; the Markdown report carries the timeline; every change is in
the audit trail and everything survives a restart."""

import http.server
import json
import threading

from harness import Ward, check, eq, metric_value, wait_for


class Sink:
    """A webhook receiver on loopback that answers 200 to every POST."""

    def __init__(self):
        self.posts = []
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                sink.posts.append(json.loads(self.rfile.read(n) or b"null"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def alert(name, ended=False, **labels):
    a = {"labels": dict(alertname=name, **labels),
         "annotations": {"summary": f"{name} is broken"}}
    if ended:
        a["endsAt"] = "2000-01-01T00:00:00Z"
    return a


def post(w, alerts):
    r = w.request("POST", "/api/v2/alerts", token=w.admin_token, body=alerts)
    check(r.status == 200, f"POST /api/v2/alerts: {r!r}")


def kinds(inc):
    return [e["kind"] for e in inc["timeline"]]


def test_incident_lifecycle_from_alert_to_report_survives_restart():
    sink = Sink()
    try:
        w = Ward("incident", extra_yaml=f"""
notify:
  route:
    receiver: hook
    group_by: [alertname, service]
    group_wait: 100ms
    group_interval: 300ms
  receivers:
    - name: hook
      webhook_configs: [{{url: "{sink.url}"}}]
incidents:
  open_on: ["severity=critical"]
  group_by: [service]
""").start()
        op = w.create_token("oncall-op", role="operator")["token"]
        viewer = w.create_token("watcher", role="viewer")["token"]

        # a warning opens nothing; a critical alert opens INC-1; its sibling attaches
        post(w, [alert("DiskSlow", severity="warning", service="db")])
        post(w, [alert("ApiDown", severity="critical", service="api", instance="a")])
        post(w, [alert("ApiDown", severity="critical", service="api", instance="b")])
        incs = w.api("GET", "/api/v1/incidents", token=viewer)
        eq([i["id"] for i in incs], ["INC-1"], "incidents after three alerts")
        inc = incs[0]
        eq((inc["severity"], inc["category"], inc["status"], inc["opened_by"]),
           ("SEV1", "availability", "detected", "system"), "auto-opened incident")
        eq(len(inc["alerts"]), 2, "alerts attached to INC-1")
        check(metric_value(w.metrics(), "ward_incidents_open", {"severity": "SEV1"}) == 1,
              "ward_incidents_open{severity=SEV1} is not 1")
        check(metric_value(w.metrics(), "ward_incidents_total",
                           {"severity": "SEV1", "category": "availability"}) == 1,
              "ward_incidents_total not counted")
        # the notification of the group reaches the timeline
        wait_for(lambda: "notification" in kinds(w.api("GET", "/api/v1/incidents/INC-1")),
                 15, "a notification entry on INC-1's timeline")
        inc = w.api("GET", "/api/v1/incidents/INC-1")
        eq(kinds(inc)[:2], ["opened", "alert_firing"], "timeline starts")
        eq(kinds(inc).count("alert_firing"), 2, "both alerts on the timeline")

        # viewers may not act
        r = w.request("POST", "/api/v1/incidents/INC-1/ack", token=viewer)
        eq(r.status, 403, "viewer ack")

        # ack via the CLI: time to acknowledge
        p = w.cli("incident", "ack", "INC-1", token=op)
        eq(p.returncode, 0, f"ward incident ack: {p.stderr}")
        check("acknowledged by oncall-op" in p.stdout, f"ack output: {p.stdout!r}")
        inc = w.api("GET", "/api/v1/incidents/INC-1")
        check(inc["acked_by"].startswith("oncall-op") and
              inc["time_to_acknowledge_seconds"] is not None, f"ack not recorded: {inc!r}")
        check(metric_value(w.metrics(), "ward_incident_time_to_acknowledge_seconds_count") == 1,
              "time to acknowledge not observed")

        p = w.cli("incident", "note", "INC-1", "rolled back deploy 42", token=op)
        eq(p.returncode, 0, f"ward incident note: {p.stderr}")
        p = w.cli("incident", "commander", "INC-1", "alice", token=op)
        eq(p.returncode, 0, f"ward incident commander: {p.stderr}")
        w.api("POST", "/api/v1/incidents/INC-1/status", {"status": "contained"}, token=op)
        p = w.cli("incident", "status", "INC-1", "investigating", token=op)
        eq(p.returncode, 0, f"ward incident status: {p.stderr}")
        # phases only move forward
        w.api("POST", "/api/v1/incidents/INC-1/status", {"status": "detected"}, token=op,
              want=409)
        w.api("POST", "/api/v1/incidents/INC-1/status", {"status": "sideways"}, token=op,
              want=400)

        # one alert resolves: still investigating; the second: recovered by the system
        post(w, [alert("ApiDown", ended=True, severity="critical", service="api",
                       instance="a")])
        eq(w.api("GET", "/api/v1/incidents/INC-1")["status"], "investigating",
           "status with one alert still firing")
        post(w, [alert("ApiDown", ended=True, severity="critical", service="api",
                       instance="b")])
        inc = w.api("GET", "/api/v1/incidents/INC-1")
        eq(inc["status"], "recovered", "status after every alert resolved")
        check(inc["time_to_recover_seconds"] is not None and inc["recovered_at"],
              f"time to recover missing: {inc!r}")
        eq([p["by"] for p in inc["phases"] if p["status"] == "recovered"], ["system"],
           "recovered by")
        check(metric_value(w.metrics(), "ward_incident_time_to_recover_seconds_count") == 1,
              "time to recover not observed")

        p = w.cli("incident", "close", "INC-1", token=op)
        eq(p.returncode, 0, f"ward incident close: {p.stderr}")
        w.api("POST", "/api/v1/incidents/INC-1/status", {"status": "recovered"}, token=op,
              want=409)
        check(metric_value(w.metrics(), "ward_incidents_open", {"severity": "SEV1"}) == 0,
              "closed incident still counted open")

        # by hand, with filters
        made = w.api("POST", "/api/v1/incidents", {"title": "Leaked key", "severity": "SEV2",
                                                    "category": "security"}, token=op,
                     want=201)
        eq(made["id"], "INC-2", "incident opened by hand")
        eq([i["id"] for i in w.api("GET", "/api/v1/incidents?status=closed")], ["INC-1"],
           "status filter")
        eq([i["id"] for i in w.api("GET", "/api/v1/incidents?severity=SEV2")], ["INC-2"],
           "severity filter")

        def check_everything(w):
            inc = w.api("GET", "/api/v1/incidents/INC-1", token=viewer)
            eq(inc["status"], "closed", "INC-1 status")
            eq([p["status"] for p in inc["phases"]],
               ["detected", "contained", "investigating", "recovered", "closed"], "phases")
            for k in ("opened", "alert_firing", "notification", "ack", "note", "commander",
                      "status", "alert_resolved"):
                check(k in kinds(inc), f"timeline has no {k!r}: {kinds(inc)}")
            eq(inc["commander"], "alice", "commander")
            p = w.cli("incident", "show", "INC-1", "--json", token=viewer)
            eq(p.returncode, 0, f"ward incident show: {p.stderr}")
            eq(json.loads(p.stdout)["id"], "INC-1", "show --json")
            p = w.cli("incident", "list", token=viewer)
            check(p.returncode == 0 and "INC-1" in p.stdout and "INC-2" in p.stdout,
                  f"ward incident list: {p.stdout!r} {p.stderr!r}")
            p = w.cli("incident", "report", "INC-1", token=viewer)
            eq(p.returncode, 0, f"ward incident report: {p.stderr}")
            md = p.stdout
            for s in ("# Post-incident report: INC-1", "## Summary", "## Impact", "## Timeline",
                      "## Alerts", "## Notes", "## Action items", "rolled back deploy 42",
                      "time to recover", "investigating -> recovered", "ApiDown"):
                check(s in md, f"report lacks {s!r}:\n{md}")
            r = w.get("/api/v1/incidents/INC-1/report", token=viewer)
            check(r.status == 200 and "markdown" in r.headers.get("Content-Type", ""),
                  f"report over HTTP: {r!r}")
            acts = {e["action"] for e in w.audit(action="incident.")}
            for a in ("incident.open", "incident.ack", "incident.note", "incident.status",
                      "incident.close"):
                check(a in acts, f"no audit record {a}: {sorted(acts)}")
            sys_moves = [e for e in w.audit(action="incident.status")
                         if e["target"] == "INC-1" and "system" in json.dumps(e)]
            check(sys_moves, "the system's move to recovered is not audited")
            p = w.cli("incident", "show", "INC-99", token=viewer)
            eq(p.returncode, 5, "show of a missing incident")

        check_everything(w)
        w.stop()
        w.start()
        check_everything(w)
        check(metric_value(w.metrics(), "ward_incidents_open", {"severity": "SEV2"}) == 1,
              "open gauge after restart")
        # a new critical alert of the closed group opens a new incident
        post(w, [alert("ApiDown", severity="critical", service="api", instance="a")])
        eq([i["id"] for i in w.api("GET", "/api/v1/incidents?status=detected")],
           ["INC-3", "INC-2"], "new incident after the old one closed")
    finally:
        sink.close()


def test_bad_open_on_matcher_is_rejected_with_its_position():
    import os
    import harness
    from harness import new_tmpdir, run_cli, describe
    path = os.path.join(new_tmpdir("incconf"), "ward.yaml")
    with open(path, "w") as f:
        f.write("incidents:\n  open_on: [\"severity=critical\", \"sev>x\"]\n")
    p = run_cli(["config", "check", path])
    eq(p.returncode, 2, f"ward config check with a bad matcher ({describe(p)})")
    out = p.stdout + p.stderr
    check("ward.yaml:" in out and "open_on[1]" in out, f"no position or key: {out!r}")
    with open(path, "w") as f:
        f.write("incidents:\n  open_on: ['job=~\"api.*\"']\n  default_category: data\n")
    p = run_cli(["config", "check", path])
    eq(p.returncode, 0, f"ward config check with good matchers ({describe(p)})")


def test_escalations_reach_the_timeline_and_incident_ack_stops_them():
    sink = Sink()
    try:
        w = Ward("incident", extra_yaml=f"""
notify:
  route: {{receiver: auto, group_wait: 0s}}
  receivers:
    - {{name: auto, webhook_configs: [{{url: "{sink.url}"}}]}}
    - {{name: expert, webhook_configs: [{{url: "{sink.url}"}}]}}
  escalation_policies:
    - name: critical
      matchers: [severity=critical]
      levels:
        - {{receivers: [auto]}}
        - {{after: 1s, receivers: [expert]}}
        - {{after: 60s, receivers: [expert]}}
incidents:
  open_on: ["severity=critical"]
""").start()
        post(w, [alert("DiskFull", severity="critical")])
        wait_for(lambda: any("level 2" in e["text"] for e in
                             w.api("GET", "/api/v1/incidents/INC-1")["timeline"]
                             if e["kind"] == "escalated"),
                 15, "escalation level 2 on INC-1's timeline")
        inc = w.api("POST", "/api/v1/incidents/INC-1/ack")
        check(inc["acked_at"], f"not acknowledged: {inc!r}")
        esc = w.api("GET", "/api/v1/escalations")
        eq([e["state"] for e in esc], ["acknowledged"], "escalation after the incident ack")
        inc = w.api("GET", "/api/v1/incidents/INC-1")
        check("alert_acked" in kinds(inc), f"no alert_acked entry: {kinds(inc)}")
        eq(kinds(inc).count("ack"), 1, "one ack entry")
    finally:
        sink.close()


def test_alert_firing_again_reopens_the_recovered_incident_instead_of_a_new_one():
    w = Ward("incident", extra_yaml='incidents:\n  open_on: ["severity=~\\"critical|page\\""]\n')
    w.start()
    post(w, [alert("Flappy", severity="page")])
    post(w, [alert("Flappy", ended=True, severity="page")])
    eq(w.api("GET", "/api/v1/incidents/INC-1")["status"], "recovered", "after resolve")
    post(w, [alert("Flappy", severity="page")])
    incs = w.api("GET", "/api/v1/incidents")
    eq([(i["id"], i["status"], i["recovered_at"]) for i in incs],
       [("INC-1", "investigating", None)], "after firing again")
    r = w.request("GET", "/api/v1/incidents/INC-1")
    eq(r.status, 401, "reading without a token")
    w.api("GET", "/api/v1/incidents/nope", want=400)
    w.api("POST", "/api/v1/incidents/INC-1/explode", want=404)
    w.api("POST", "/api/v1/incidents/INC-1/note", {"text": ""}, want=400)
    w.api("POST", "/api/v1/incidents", {"title": "x", "severity": "SEV9"}, want=400)
