"""Rule evaluation and rule tooling: `ward rules test` gives the same verdict as Debian's
`promtool test rules` on every file of tests/rules (passing and failing cases), `ward rules
check` reports file:line:col, and a real `ward serve` with a rule file evaluates it on
series pushed by remote_write: /api/v1/rules, /api/v1/alerts going pending, firing and
resolved, ALERTS in PromQL, a recording rule's series, `ward alert list`, and a reload with
a broken rule file rejected while the old rules stay."""

import glob
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

from harness import WARD, Ward, check, eq, run_cli, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "compat"))
import promwire  # noqa: E402

RULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rules")


def test_rules_test_verdicts_match_promtool():
    promtool = shutil.which("promtool")
    files = sorted(glob.glob(os.path.join(RULES_DIR, "*_test.yml")))
    check(len(files) >= 8, f"tests/rules holds {len(files)} test files, want at least 8")
    verdicts = {}
    for f in files:
        w = run_cli(["rules", "test", f])
        check(w.returncode in (0, 1), f"ward rules test {f}: exit {w.returncode}: {w.stderr}")
        verdicts[os.path.basename(f)] = w.returncode
        if promtool:
            p = subprocess.run([promtool, "test", "rules", f], capture_output=True, text=True,
                               cwd=RULES_DIR, timeout=60)
            eq(w.returncode, p.returncode,
               f"verdict on {os.path.basename(f)} (ward stdout:\n{w.stdout}\npromtool:\n"
               f"{p.stdout}{p.stderr})")
    check(0 in verdicts.values() and 1 in verdicts.values(),
          f"both passing and failing cases are covered: {verdicts}")
    check(promtool is not None or os.environ.get("WARD_NO_PROMTOOL"),
          "promtool not found (apt install prometheus); set WARD_NO_PROMTOOL=1 to skip the "
          "comparison")


def test_rules_check_reports_file_line_col():
    good = os.path.join(RULES_DIR, "basic.rules.yml")
    bad = os.path.join(RULES_DIR, "broken.rules.yml")
    r = run_cli(["rules", "check", good])
    eq(r.returncode, 0, f"check of a good file: {r.stdout}{r.stderr}")
    check("SUCCESS: 2 rules found" in r.stdout, r.stdout)
    r = run_cli(["rules", "check", good, bad])
    eq(r.returncode, 1, "check with a broken file")
    check(f"{bad}:4:9:" in r.stdout or f"{bad}:4:" in r.stdout,
          f"file:line:col in the message: {r.stdout}")


RULE_FILE = """groups:
  - name: itest
    rules:
      - alert: ServiceDown
        expr: svc_up == 0
        for: 3s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} is down ({{ $value }})"
      - record: svc:up:sum
        expr: sum(svc_up)
"""


def push(w, series):
    body = promwire.snappy_block(promwire.encode_write_request(series))
    r = w.request("POST", "/api/v1/write", token=w.admin_token, body=body,
                  headers={"Content-Encoding": "snappy",
                           "Content-Type": "application/x-protobuf",
                           "X-Prometheus-Remote-Write-Version": "0.1.0"})
    eq(r.status, 204, f"remote_write ({r.body[:200]!r})")


def alerts(w):
    return w.api("GET", "/api/v1/alerts")["alerts"]


def query(w, expr):
    q = urllib.parse.urlencode({"query": expr})
    return w.api("GET", "/api/v1/query?" + q)["result"]


def test_serve_evaluates_rules_alerts_go_pending_firing_resolved():
    w = Ward("rules", extra_yaml="tsdb:\n  out_of_order_window: 1h\n"
             "rules:\n  files: [rules/*.yml]\n  evaluation_interval: 1s\n"
             "  defaults: false\n")
    os.makedirs(os.path.join(w.dir, "rules"))
    rule_path = os.path.join(w.dir, "rules", "svc.yml")
    with open(rule_path, "w") as f:
        f.write(RULE_FILE)
    w.start()

    stop = [False]

    def feed(value):
        now = int(time.time() * 1000)
        push(w, [({"__name__": "svc_up", "instance": "web:80"}, [(now, float(value))])])

    # the service is down: pending first, then firing after `for`
    def state():
        feed(0)
        a = [x for x in alerts(w) if x["labels"].get("alertname") == "ServiceDown"]
        return a[0]["state"] if a else None

    wait_for(lambda: state() == "pending", 15, "alert pending")
    a = alerts(w)[0]
    eq(a["labels"], {"alertname": "ServiceDown", "instance": "web:80", "severity": "critical"},
       "alert labels")
    eq(a["annotations"]["summary"], "web:80 is down (0)", "templated summary")
    wait_for(lambda: state() == "firing", 20, "alert firing after for: 3s")

    rules = w.api("GET", "/api/v1/rules")["groups"]
    eq(len(rules), 1, "one group")
    g = rules[0]
    eq(g["name"], "itest", "group name")
    eq(g["interval"], 1, "group interval from evaluation_interval")
    kinds = [r["type"] for r in g["rules"]]
    eq(kinds, ["alerting", "recording"], "rule types")
    eq(g["rules"][0]["state"], "firing", "rule state")
    eq(g["rules"][0]["duration"], 3, "for in seconds")
    check(g["rules"][0]["health"] == "ok", f"rule health: {g['rules'][0]}")

    # ALERTS and the recording rule's series are in the tsdb
    res = wait_for(lambda: query(w, 'ALERTS{alertname="ServiceDown",alertstate="firing"}'), 10,
                   "ALERTS firing series")
    eq(res[0]["metric"]["instance"], "web:80", "ALERTS labels")
    check(wait_for(lambda: query(w, "ALERTS_FOR_STATE"), 10, "ALERTS_FOR_STATE"), "for state")
    res = wait_for(lambda: query(w, "svc:up:sum"), 10, "recording rule series")
    eq(res[0]["value"][1], "0", "svc:up:sum")

    # `ward alert list`
    r = w.cli("alert", "list")
    eq(r.returncode, 0, f"ward alert list: {r.stderr}")
    check("firing" in r.stdout and "ServiceDown" in r.stdout, r.stdout)
    r = w.cli("alert", "list", "--json")
    eq(r.returncode, 0, "ward alert list --json")

    # the rule set in force is in the audit trail
    check(w.audit(action="rules.load"), "no rules.load entry in the audit")

    # a viewer may read rules and alerts
    viewer = w.create_token("viewer-rules", role="viewer")["token"]
    eq(w.get("/api/v1/alerts", token=viewer).status, 200, "viewer reads alerts")
    eq(w.get("/api/v1/rules").status, 401, "no token")

    # a reload with a broken rule file is rejected, the old rules stay
    with open(os.path.join(w.dir, "rules", "zbroken.yml"), "w") as f:
        f.write("groups:\n  - name: b\n    rules:\n      - alert: X\n        expr: sum(\n")
    r = w.cli("config", "check", w.config_path)
    eq(r.returncode, 2, f"ward config check with a broken rule file: {r.stdout}{r.stderr}")
    check("zbroken.yml:4:" in r.stdout + r.stderr, f"file:line: {r.stdout}{r.stderr}")
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    check(r.status >= 400, f"reload with a broken rule file: {r.status} {r.body[:300]!r}")
    check(b"zbroken.yml:4:" in r.body, f"file:line in the rejection: {r.body[:400]!r}")
    eq([x["name"] for x in w.api("GET", "/api/v1/rules")["groups"]], ["itest"],
       "old rules stay")
    os.unlink(os.path.join(w.dir, "rules", "zbroken.yml"))

    # the service comes back: resolved (no longer in /api/v1/alerts)
    def resolved():
        feed(1)
        return not [x for x in alerts(w) if x["labels"].get("alertname") == "ServiceDown"]

    wait_for(resolved, 20, "alert resolved")
    wait_for(lambda: not query(w, 'ALERTS{alertname="ServiceDown"}'), 10,
             "ALERTS stale after resolution")
    stop[0] = True
    w.stop()


def test_firing_alert_state_survives_restart():
    w = Ward("rules-restart", extra_yaml="tsdb:\n  out_of_order_window: 1h\n"
             "rules:\n  files: [svc.yml]\n  evaluation_interval: 1s\n"
             "  defaults: false\n")
    with open(os.path.join(w.dir, "svc.yml"), "w") as f:
        f.write(RULE_FILE.replace("for: 3s", "for: 1h"))
    w.start()

    def pending():
        now = int(time.time() * 1000)
        push(w, [({"__name__": "svc_up", "instance": "db:5432"}, [(now, 0.0)])])
        a = alerts(w)
        return a[0] if a and a[0]["state"] == "pending" else None

    a1 = wait_for(pending, 15, "pending alert")
    time.sleep(1.5)  # let the state be saved after an evaluation
    w.stop()
    w.start()
    a2 = wait_for(pending, 15, "pending alert after restart")
    eq(a2["activeAt"], a1["activeAt"], "activeAt kept across the restart (for not restarted)")
    w.stop()


DIST_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "rules")


def test_default_rule_set_loads_evaluates_and_can_be_turned_off():
    # no rules section at all: the embedded defaults (dist/rules) are in force
    w = Ward("rules-defaults", extra_yaml="rules:\n  evaluation_interval: 1s\n")
    w.start()
    groups = w.api("GET", "/api/v1/rules")["groups"]
    by_name = {g["name"]: g for g in groups}
    eq(sorted(by_name), ["ward-backup", "ward-host", "ward-probes"], "default groups")
    eq(by_name["ward-host"]["file"], "ward:defaults/host.yml", "file of a default group")
    names = {r["name"] for g in groups for r in g["rules"]}
    for want in ("HostDiskWillFillIn24Hours", "HostMemoryPressure", "ProbeDown", "BackupTooOld"):
        check(want in names, f"default rule {want} missing: {sorted(names)}")

    # every default rule evaluates without error against what this host's collector writes
    def all_evaluated():
        gs = w.api("GET", "/api/v1/rules")["groups"]
        rules = [r for g in gs for r in g["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None
    rules = wait_for(all_evaluated, 30, "every default rule evaluated")
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    eq(bad, [], "default rules in error")
    # the metric names the host rules read exist here (the rules are not about nothing)
    for metric in ("node_filesystem_avail_bytes", "node_filesystem_size_bytes",
                   "node_filesystem_readonly", "node_memory_MemAvailable_bytes",
                   "node_memory_MemTotal_bytes"):
        check(wait_for(lambda: query(w, metric), 30, metric), f"{metric} not collected")
    if os.path.exists("/proc/pressure/memory"):
        check(wait_for(lambda: query(w, "node_pressure_memory_waiting_seconds_total"), 30,
                       "PSI memory"), "node_pressure_memory_waiting_seconds_total not collected")

    # the defaults fire when they should, by ward's and promtool's verdicts on the same tests
    t = os.path.join(RULES_DIR, "defaults_test.yml")
    r = run_cli(["rules", "test", t])
    eq(r.returncode, 0, f"ward rules test defaults_test.yml: {r.stdout}{r.stderr}")
    promtool = shutil.which("promtool")
    check(promtool or os.environ.get("WARD_NO_PROMTOOL"), "promtool not found (apt install "
          "prometheus); set WARD_NO_PROMTOOL=1 to skip the comparison")
    if promtool:
        p = subprocess.run([promtool, "test", "rules", t], capture_output=True, text=True,
                           cwd=RULES_DIR, timeout=60)
        eq(p.returncode, 0, f"promtool test rules defaults_test.yml: {p.stdout}{p.stderr}")
        p = subprocess.run([promtool, "check", "rules"] + sorted(
            glob.glob(os.path.join(DIST_RULES, "*.yml"))), capture_output=True, text=True,
            timeout=60)
        eq(p.returncode, 0, f"promtool check rules dist/rules: {p.stdout}{p.stderr}")

    # `ward rules defaults` prints exactly the shipped files
    for name in ("host.yml", "probes.yml", "backup.yml"):
        r = w.cli("rules", "defaults", name)
        eq(r.returncode, 0, f"ward rules defaults {name}: {r.stderr}")
        with open(os.path.join(DIST_RULES, name)) as f:
            eq(r.stdout, f.read(), f"ward rules defaults {name} vs dist/rules/{name}")
    r = w.cli("rules", "defaults", "nope.yml")
    eq(r.returncode, 2, "unknown default file")
    check("host.yml" in r.stderr, f"the error names the files there are: {r.stderr}")
    w.stop()

    # defaults: false leaves only the configured files
    w.write_config(extra_yaml="rules:\n  defaults: false\n")
    w.start()
    eq(w.api("GET", "/api/v1/rules")["groups"], [], "no groups with defaults: false")
    w.stop()
