"""End to end, with real parts (issue 5): nginx is probed; it stops; the probe fails; the
rule goes pending, then firing after `for`; a webhook receiver on loopback gets the
Alertmanager payload; nobody acknowledges, so escalation reaches level 2 at a real SMTP
server on loopback; an incident is open with its timeline; nginx returns; the alert
resolves, the resolved notification goes out, and the incident reaches recovered with its
time to recover."""

import json
import os
import subprocess

import harness
from harness import Ward, check, eq, wait_for
from test_notify import Sink, Smtp
from test_probes import Nginx

RULES = """groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: WebDown
        expr: probe_success{probe="web"} == 0
        for: 2s
        labels: {severity: critical, service: web}
        annotations:
          summary: "{{ $labels.instance }} is down"
"""


def test_probe_to_alert_to_webhook_escalation_email_incident_and_recovery():
    ng = Nginx()
    sink = Sink()
    w = Ward("e2e", write_config=False)
    smtp = Smtp(w.dir)
    try:
        with open(os.path.join(w.dir, "rules.yml"), "w") as f:
            f.write(RULES)
        checks = [{"name": "web", "kind": "http", "target": ng.url("/ok"), "interval": "1s",
                   "jitter": "0s", "timeout": "500ms", "failure_threshold": 1,
                   "success_threshold": 1}]
        w.write_config(extra_yaml=f"""probes:
  checks:
    - {json.dumps(checks[0])}
rules:
  files: [rules.yml]
  evaluation_interval: 1s
notify:
  external_url: {w.url}
  smtp: {{smarthost: "127.0.0.1:{smtp.port}", from: ward@example.org, tls: none}}
  route: {{receiver: automation, group_by: [alertname, service], group_wait: 0s,
          group_interval: 1s, repeat_interval: 1h}}
  receivers:
    - {{name: automation, webhook_configs: [{{url: "{sink.url}", send_resolved: true}}]}}
  oncall_schedules:
    - name: primary
      rotation: weekly
      handoff: "09:00"
      time_zone: UTC
      participants:
        - {{name: erin, email: erin@example.org}}
  escalation_policies:
    - name: critical
      matchers: [severity=critical]
      levels:
        - {{receivers: [automation]}}
        - {{after: 3s, receivers: ["oncall:primary"]}}
incidents:
  open_on: ["severity=critical"]
  group_by: [service]
""")
        w.start()
        wait_for(lambda: any(c["name"] == "web" and c["state"] == "ok"
                             for c in w.api("GET", "/api/v1/checks")["checks"]), 20, "web ok")
        ng.stop()  # the service goes away

        def alert_state():
            for a in w.api("GET", "/api/v1/alerts")["alerts"]:
                if a["labels"].get("alertname") == "WebDown":
                    return a["state"]
            return None
        wait_for(lambda: alert_state() == "pending", 20, "WebDown pending")
        wait_for(lambda: alert_state() == "firing", 20, "WebDown firing after for: 2s")

        def firing_payload():
            for p in sink.ok():
                if p.get("status") == "firing" and any(
                        a["labels"].get("alertname") == "WebDown" for a in p["alerts"]):
                    return p
            return None
        p = wait_for(firing_payload, 20, "the Alertmanager payload at the webhook")
        eq(p.get("version"), "4", "payload version")
        check(p["alerts"][0]["annotations"].get("summary", "").endswith("is down"),
              f"annotation rendered: {p['alerts'][0]['annotations']}")

        wait_for(lambda: "erin@example.org" in smtp.text(), 30,
                 "escalation level 2 by email to the on-call person")
        check("WebDown" in smtp.text(), "the email names the alert")

        incs = w.api("GET", "/api/v1/incidents")
        incs = incs.get("incidents", incs) if isinstance(incs, dict) else incs
        check(incs, "an incident was opened")
        inc_id = incs[0]["id"]
        inc = w.api("GET", f"/api/v1/incidents/{inc_id}")
        eq(inc.get("severity"), "SEV1", "incident severity from severity=critical")
        kinds = json.dumps(inc.get("timeline"))
        check("WebDown" in kinds, f"the timeline has the alert: {kinds[:600]}")

        # the service returns, same config, same port
        ng.proc = subprocess.Popen(
            ["nginx", "-p", ng.dir, "-c", ng.conf, "-e", os.path.join(ng.dir, "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness._procs.append(ng.proc)
        wait_for(lambda: alert_state() in (None, "inactive"), 30, "WebDown resolved")

        def resolved_payload():
            return any(p.get("status") == "resolved" and any(
                a["labels"].get("alertname") == "WebDown" for a in p["alerts"])
                for p in sink.ok())
        wait_for(resolved_payload, 30, "the resolved notification at the webhook")

        def recovered():
            i = w.api("GET", f"/api/v1/incidents/{inc_id}")
            return i if i.get("status") == "recovered" else None
        inc = wait_for(recovered, 30, "the incident reaches recovered")
        ttr = inc.get("time_to_recover_seconds") or inc.get("ttr_seconds")
        check(ttr is not None and ttr > 0, f"time to recover recorded: {inc}")
        w.stop()
        ng.stop()
    finally:
        sink.close()
        smtp.close()
