"""Authentication, roles and tokens: over HTTP, through the CLI, in /metrics and the audit."""

import json
import re

from harness import (FIRST_TOKEN_LINE, TOKEN_RE, Ward, check, describe, eq, free_port,
                     metric_value)

UNKNOWN_TOKEN = "ward_" + "0123456789abcdef" + "ab" * 24  # well-formed, never issued


def _error(r, status, etype, what):
    eq(r.status, status, f"{what}: status")
    j = r.json()
    eq(j.get("status"), "error", f"{what}: envelope status")
    eq(j.get("errorType"), etype, f"{what}: errorType")
    check(j.get("error"), f"{what}: empty error message")
    check(r.headers.get("X-Request-Id"), f"{what}: no X-Request-Id")


def test_missing_token_gets_401_with_www_authenticate():
    w = Ward("auth-missing").start()
    r = w.get("/api/v1/whoami")
    _error(r, 401, "unauthorized", "GET /api/v1/whoami without a token")
    wa = r.headers.get("WWW-Authenticate") or ""
    check(wa.startswith("Bearer"), f"401 without WWW-Authenticate: Bearer (got {wa!r})")
    w.stop()


def test_bad_token_gets_401():
    w = Ward("auth-bad").start()
    _error(w.get("/api/v1/whoami", token=UNKNOWN_TOKEN), 401, "unauthorized",
           "unknown well-formed token")
    _error(w.get("/api/v1/whoami", token="not-a-token"), 401, "unauthorized", "garbage token")
    r = w.get("/api/v1/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    _error(r, 401, "unauthorized", "Basic instead of Bearer")
    w.stop()


def test_viewer_on_admin_route_gets_403_and_whoami_shows_its_role():
    w = Ward("auth-role").start()
    v = w.create_token("viewer-1", "viewer")
    me = w.api("GET", "/api/v1/whoami", token=v["token"])
    eq((me.get("name"), me.get("role"), me.get("id")), ("viewer-1", "viewer", v["id"]),
       "whoami of the viewer")
    _error(w.get("/api/v1/tokens", token=v["token"]), 403, "forbidden",
           "viewer on GET /api/v1/tokens")
    _error(w.request("POST", "/api/v1/reload", token=v["token"]), 403, "forbidden",
           "viewer on POST /api/v1/reload")
    op = w.create_token("operator-1", "operator")
    _error(w.get("/api/v1/audit", token=op["token"]), 403, "forbidden",
           "operator on GET /api/v1/audit")
    w.stop()


def test_auth_failures_are_counted_in_metrics_and_audited_as_auth_fail():
    w = Ward("auth-count").start()
    v = w.create_token("viewer-2", "viewer")
    w.get("/api/v1/whoami")                              # missing_token
    w.get("/api/v1/whoami", token=UNKNOWN_TOKEN)          # invalid_token
    w.get("/api/v1/tokens", token=v["token"])             # forbidden
    w.api("DELETE", f"/api/v1/tokens/{v['id']}")
    w.get("/api/v1/whoami", token=v["token"])             # revoked_token
    m = w.metrics()
    for reason in ("missing_token", "invalid_token", "forbidden", "revoked_token"):
        val = metric_value(m, "ward_http_auth_failures_total", {"reason": reason})
        check(val is not None and val >= 1,
              f"ward_http_auth_failures_total{{reason={reason!r}}} is {val!r}, want >= 1")
    entries = w.audit(action="auth.fail")
    reasons = {(e.get("details") or {}).get("reason") for e in entries}
    for reason in ("missing_token", "invalid_token", "forbidden", "revoked_token"):
        check(reason in reasons, f"no auth.fail audit entry with reason {reason}: {entries!r}")
    for e in entries:
        eq(e.get("result"), "denied", "auth.fail result")
        check((e.get("details") or {}).get("path"), f"auth.fail without details.path: {e!r}")
    w.stop()


def test_token_create_list_revoke_via_api_then_revoked_token_gets_401():
    w = Ward("tok-api").start()
    t = w.create_token("ci", "viewer")
    check(TOKEN_RE.fullmatch(t.get("token", "")), f"created token format: {t!r}")
    check(t["token"][5:21] == t["id"], "the token does not start with its id")
    eq((t.get("name"), t.get("role")), ("ci", "viewer"), "created token name/role")
    eq(w.api("GET", "/api/v1/whoami", token=t["token"]).get("name"), "ci", "whoami name")
    lst = w.api("GET", "/api/v1/tokens")
    check(isinstance(lst, list) and lst, f"token list: {lst!r}")
    mine = [x for x in lst if x.get("id") == t["id"]]
    check(mine, f"created token {t['id']} not listed")
    check("token" not in mine[0], "the token list shows a secret")
    eq(mine[0].get("revoked"), None, "revoked of an active token")
    check(mine[0].get("last_used"), "last_used not set after whoami")
    eq(lst[0].get("id"), t["id"], "newest token first in the list")
    # Conflicts and bad input.
    _error(w.request("POST", "/api/v1/tokens", token=w.admin_token,
                     body={"name": "ci", "role": "viewer"}), 409, "conflict", "duplicate name")
    _error(w.request("POST", "/api/v1/tokens", token=w.admin_token,
                     body={"name": "x", "role": "root"}), 400, "bad_data", "bad role")
    _error(w.request("POST", "/api/v1/tokens", token=w.admin_token,
                     body={"name": "", "role": "viewer"}), 400, "bad_data", "empty name")
    _error(w.request("POST", "/api/v1/tokens", token=w.admin_token, body="{not json"),
           400, "bad_data", "body not JSON")
    # Revoke.
    d = w.api("DELETE", f"/api/v1/tokens/{t['id']}")
    eq(d.get("id"), t["id"], "revoke answer id")
    check(d.get("revoked"), f"revoke answer without time: {d!r}")
    _error(w.get("/api/v1/whoami", token=t["token"]), 401, "unauthorized", "revoked token")
    _error(w.request("DELETE", f"/api/v1/tokens/{t['id']}", token=w.admin_token), 404,
           "not_found", "revoking twice")
    lst = w.api("GET", "/api/v1/tokens")
    check([x for x in lst if x.get("id") == t["id"] and x.get("revoked")],
          "revoked token not shown as revoked")
    # The name is free again once revoked.
    w.create_token("ci", "viewer")
    acts = [(e.get("action"), e.get("target")) for e in w.audit(action="token.")]
    check(("token.create", t["id"]) in acts, f"no token.create of {t['id']} in the audit: {acts!r}")
    check(("token.revoke", t["id"]) in acts, f"no token.revoke of {t['id']} in the audit: {acts!r}")
    w.stop()


def test_token_create_list_revoke_via_cli_then_revoked_token_gets_401():
    w = Ward("tok-cli").start()
    p = w.cli("token", "create", "--role", "operator", "--name", "cli-op")
    eq(p.returncode, 0, f"ward token create ({describe(p)})")
    tok = p.stdout.strip()
    check(TOKEN_RE.fullmatch(tok), f"ward token create stdout is not just the token: {p.stdout!r}")
    p = w.cli("token", "create", "--role", "viewer", "--name", "cli-view", "--json")
    eq(p.returncode, 0, f"ward token create --json ({describe(p)})")
    created = json.loads(p.stdout)
    check(TOKEN_RE.fullmatch(created.get("token", "")), f"--json output: {created!r}")
    p = w.cli("token", "list", "--json")
    eq(p.returncode, 0, f"ward token list --json ({describe(p)})")
    lst = json.loads(p.stdout)
    names = {x.get("name") for x in lst}
    check({"cli-op", "cli-view"} <= names, f"token list --json names: {names!r}")
    p = w.cli("token", "list")
    eq(p.returncode, 0, f"ward token list ({describe(p)})")
    check("cli-op" in p.stdout and "cli-view" in p.stdout, f"table: {p.stdout!r}")
    check(not TOKEN_RE.search(p.stdout + p.stderr), "ward token list printed a secret")
    # The operator token works, then is revoked by id and refused.
    eq(w.api("GET", "/api/v1/whoami", token=tok).get("role"), "operator", "operator whoami")
    p = w.cli("token", "revoke", tok[5:21])
    eq(p.returncode, 0, f"ward token revoke ({describe(p)})")
    eq(w.get("/api/v1/whoami", token=tok).status, 401, "whoami with the revoked token")
    p = w.cli("token", "revoke", tok[5:21])
    eq(p.returncode, 5, f"revoking twice: exit code ({describe(p)})")
    p = w.cli("token", "create", "--role", "root", "--name", "x")
    eq(p.returncode, 2, f"ward token create --role root ({describe(p)})")
    p = w.cli("token", "frobnicate")
    eq(p.returncode, 2, f"unknown verb ({describe(p)})")
    w.stop()


def test_first_admin_token_is_printed_on_first_start_and_not_on_the_second():
    w = Ward("first").start(expect_token=True)
    out = w.stdout()
    check(FIRST_TOKEN_LINE in out, f"first start stdout lacks the announcement line: {out!r}")
    lines = out.splitlines()
    i = lines.index(FIRST_TOKEN_LINE)
    check(i + 1 < len(lines) and TOKEN_RE.fullmatch(lines[i + 1].strip()),
          f"the line after the announcement is not the token: {lines[i:i + 2]!r}")
    tok = w.admin_token
    eq(w.api("GET", "/api/v1/whoami").get("role"), "admin", "role of the first token")
    w.stop()
    w.start(expect_token=False)
    check(FIRST_TOKEN_LINE not in w.stdout(), "second start announced a first token again")
    eq(w.api("GET", "/api/v1/whoami", token=tok).get("role"), "admin",
       "the first token after a restart")
    w.stop()


def test_cli_exits_3_when_server_unreachable_and_4_on_bad_token():
    w = Ward("cli-codes").start()
    closed = f"http://127.0.0.1:{free_port()}"
    p = w.cli("token", "list", url=closed)
    eq(p.returncode, 3, f"unreachable server ({describe(p)})")
    check(p.stderr.strip(), "no message for an unreachable server")
    p = w.cli("token", "list", token=UNKNOWN_TOKEN)
    eq(p.returncode, 4, f"bad token ({describe(p)})")
    check(UNKNOWN_TOKEN not in p.stdout + p.stderr, "the CLI echoed the token")
    p = w.cli("token", "list", token=None)
    eq(p.returncode, 4, f"no token at all ({describe(p)})")
    v = w.create_token("viewer-cli", "viewer")
    p = w.cli("token", "list", token=v["token"])
    eq(p.returncode, 4, f"viewer token on an admin command ({describe(p)})")
    # Flags instead of the environment.
    p = w.cli("--url", w.url, "--token", w.admin_token, "token", "list", "--json", token=None,
              url="http://127.0.0.1:1")
    eq(p.returncode, 0, f"--url/--token flags ({describe(p)})")
    w.stop()


def test_json_output_of_token_list_and_audit_list_is_valid():
    w = Ward("cli-json").start()
    w.create_token("a", "viewer")
    w.get("/api/v1/whoami", token=UNKNOWN_TOKEN)
    p = w.cli("token", "list", "--json")
    eq(p.returncode, 0, f"ward token list --json ({describe(p)})")
    check(isinstance(json.loads(p.stdout), list), "token list --json is not an array")
    p = w.cli("audit", "list", "--json")
    eq(p.returncode, 0, f"ward audit list --json ({describe(p)})")
    data = json.loads(p.stdout)
    entries = data.get("entries") if isinstance(data, dict) else data
    check(isinstance(entries, list) and entries, f"audit list --json: {data!r}")
    actions = {e.get("action") for e in entries}
    check({"system.start", "token.create", "auth.fail"} <= actions, f"actions: {actions!r}")
    p = w.cli("audit", "list", "--action", "token.", "--limit", "5", "--json")
    eq(p.returncode, 0, f"ward audit list --action token. ({describe(p)})")
    data = json.loads(p.stdout)
    entries = data.get("entries") if isinstance(data, dict) else data
    check(entries and all(e.get("action", "").startswith("token.") for e in entries),
          f"--action token. filter: {entries!r}")
    p = w.cli("audit", "list")
    eq(p.returncode, 0, f"ward audit list ({describe(p)})")
    check("token.create" in p.stdout, f"audit list table: {p.stdout[:300]!r}")
    w.stop()


def test_no_token_appears_in_the_server_log():
    w = Ward("nolog", log_level="debug").start(expect_token=True)
    secrets = [w.admin_token]
    for i in range(3):
        t = w.create_token(f"secret-{i}", "operator")
        secrets.append(t["token"])
        w.get("/api/v1/whoami", token=t["token"])
    w.get("/api/v1/whoami", token=UNKNOWN_TOKEN)
    w.api("DELETE", f"/api/v1/tokens/{secrets[1][5:21]}")
    w.get("/api/v1/whoami", token=secrets[1])
    w.cli("token", "list")
    w.stop()
    w.start()
    w.get("/api/v1/whoami", token=secrets[2])
    w.stop()
    log = w.all_stderr()
    check(log.strip(), "empty server log")
    found = TOKEN_RE.findall(log)
    check(not found, f"a token appears in the server log: {found[:1]!r}")
    for s in secrets + [UNKNOWN_TOKEN]:
        check(s[21:] not in log, f"the secret part of token {s[5:21]} appears in the log")
    # The admin token appears on stdout exactly once, on the first start.
    eq(len(re.findall(re.escape(secrets[0]), w.all_stdout())), 1, "admin token on stdout")
