"""Public endpoints (/health, /ready, /metrics), the log format, and `ward version`."""

import json
import shutil
import subprocess

from harness import TOKEN_RE, Ward, check, describe, eq, run_cli


def test_health_and_ready_are_public_without_a_token():
    w = Ward("health").start()
    r = w.get("/health")
    eq(r.status, 200, "GET /health status")
    check(r.headers.get("X-Request-Id"), "GET /health has no X-Request-Id header")
    h = r.json()
    check(h.get("status") in ("ok", "degraded"), f"/health status field: {h!r}")
    eq(h.get("version"), "0.1.0", "/health version")
    comps = h.get("components") or {}
    for c in ("config", "store", "audit", "http"):
        check(c in comps, f"/health has no component {c!r}: {h!r}")
    eq(comps["config"].get("source"), w.config_path, "/health components.config.source")
    r = w.get("/ready")
    eq(r.status, 200, "GET /ready status")
    eq(r.json(), {"status": "ready"}, "GET /ready body")
    w.stop()


def test_metrics_are_public_and_pass_promtool_check_metrics():
    w = Ward("metrics").start()
    # Make a few requests first so request counters and histograms have series.
    w.get("/health")
    w.get("/api/v1/whoami")
    w.get("/api/v1/whoami", token=w.admin_token)
    r = w.get("/metrics")
    eq(r.status, 200, "GET /metrics status")
    ctype = r.headers.get("Content-Type", "")
    check(ctype.startswith("text/plain"), f"/metrics Content-Type {ctype!r}")
    text = r.text()
    check("# TYPE " in text and "# HELP " in text, "/metrics has no TYPE/HELP lines")
    promtool = shutil.which("promtool")
    check(promtool, "promtool not found (Debian package prometheus; bash scripts/deps.sh test)")
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, f"promtool check metrics: {describe(p)}")
    w.stop()


def test_unknown_route_is_404_and_wrong_method_is_405_in_the_envelope():
    w = Ward("routes").start()
    r = w.get("/api/v1/no-such-thing", token=w.admin_token)
    eq(r.status, 404, "GET unknown route")
    j = r.json()
    eq((j.get("status"), j.get("errorType")), ("error", "not_found"), "404 envelope")
    r = w.request("DELETE", "/api/v1/whoami", token=w.admin_token)
    eq(r.status, 405, "DELETE /api/v1/whoami")
    eq(r.json().get("errorType"), "method_not_allowed", "405 errorType")
    w.stop()


def test_server_log_is_json_lines_with_listening_addr():
    w = Ward("logfmt").start()
    w.stop()
    recs = w.log_records()
    check(recs, "ward serve wrote no log lines on stderr")
    raw = [r["_raw"] for r in recs if "_raw" in r]
    check(not raw, f"stderr (not a tty) has lines that are not JSON: {raw[:3]!r}")
    listening = [r for r in recs if r.get("msg") == "listening"]
    check(listening, f"no log line with msg=listening: {recs[:5]!r}")
    eq(listening[0].get("addr"), w.addr, "listening addr")


def test_ward_version_json_is_valid():
    p = run_cli(["version", "--json"])
    eq(p.returncode, 0, "ward version --json exit code")
    try:
        v = json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError(f"ward version --json is not JSON ({e}): {p.stdout!r}")
    eq(v.get("version"), "0.1.0", "version field")
    p = run_cli(["version"])
    eq(p.returncode, 0, "ward version exit code")
    check("0.1.0" in p.stdout, f"ward version does not print 0.1.0: {p.stdout!r}")
    check(not TOKEN_RE.search(p.stdout), "ward version printed a token?")
