"""`ward audit verify`: the hash chain catches a modified byte and a deleted record."""

import json
import os

from harness import Ward, check, describe, eq, run_cli


def trail(name):
    """A daemon that wrote a few records and was stopped cleanly; returns it."""
    w = Ward(name).start()
    for i in range(3):
        w.create_token(f"t{i}", "viewer")
    w.get("/api/v1/whoami")  # auth.fail
    w.stop()
    path = w.audit_file(1)
    check(os.path.exists(path), f"no audit segment {path}")
    return w


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")


def verify(w, *extra):
    return run_cli(["audit", "verify", "--data", w.data] + list(extra))


def test_audit_verify_passes_on_an_untouched_trail_and_while_running():
    w = trail("verify-ok")
    p = verify(w)
    eq(p.returncode, 0, f"ward audit verify ({describe(p)})")
    p = verify(w, "--json")
    eq(p.returncode, 0, f"ward audit verify --json ({describe(p)})")
    json.loads(p.stdout)
    recs = [ln for ln in lines_of(w.audit_file(1)) if ln.strip()]
    actions = [json.loads(ln).get("action") for ln in recs]
    check("system.start" in actions[:2], f"no system.start at the beginning: {actions}")
    eq(actions[-1], "system.stop", "last record after SIGTERM")
    w.start()
    w.create_token("while-running", "viewer")
    p = verify(w)
    eq(p.returncode, 0, f"ward audit verify while the daemon runs ({describe(p)})")
    w.stop()


def test_audit_verify_detects_one_modified_byte_and_names_the_record():
    w = trail("verify-byte")
    path = w.audit_file(1)
    lines = lines_of(path)
    i = 2  # a record in the middle (system.start is line 1)
    key = b'"action":"'
    pos = lines[i].find(key)
    check(pos >= 0, f"no action field in record {i + 1}: {lines[i][:200]!r}")
    pos += len(key)
    old = lines[i][pos:pos + 1]
    new = b"X" if old != b"X" else b"Y"
    lines[i] = lines[i][:pos] + new + lines[i][pos + 1:]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    p = verify(w)
    eq(p.returncode, 1, f"ward audit verify after changing one byte ({describe(p)})")
    out = p.stdout + p.stderr
    check("000001.log" in out, f"the message does not name the segment: {out!r}")
    check(str(i + 1) in out, f"the message does not name line/seq {i + 1}: {out!r}")


def test_audit_verify_detects_a_deleted_middle_record():
    w = trail("verify-del")
    path = w.audit_file(1)
    lines = lines_of(path)
    check(len([ln for ln in lines if ln.strip()]) >= 5, "fewer than 5 records")
    del lines[2]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    p = verify(w)
    eq(p.returncode, 1, f"ward audit verify after deleting line 3 ({describe(p)})")
    check("000001.log" in p.stdout + p.stderr, f"the message does not name the segment: "
                                               f"{describe(p)}")


def test_audit_verify_detects_a_record_cut_from_the_tail():
    w = trail("verify-tail")
    path = w.audit_file(1)
    lines = [ln for ln in lines_of(path) if ln.strip()]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines[:-1]) + b"\n")
    p = verify(w)
    eq(p.returncode, 1, f"ward audit verify after cutting the last record ({describe(p)})")


def test_audit_verify_on_a_missing_data_dir_is_an_error():
    p = run_cli(["audit", "verify", "--data", "/nonexistent/ward-it-data"])
    check(p.returncode in (2, 5, 6), f"verify of a missing dir ({describe(p)})")
    check("/nonexistent/ward-it-data" in p.stderr + p.stdout, "the message does not name it")


def test_audit_api_filters_by_actor_action_and_time_and_pages_with_before():
    w = Ward("audit-query").start()
    v = w.create_token("pager", "viewer")
    for i in range(5):
        w.get("/api/v1/whoami", token="ward_" + "f" * 64)
    entries = w.audit()
    seqs = [e["seq"] for e in entries]
    eq(seqs, sorted(seqs, reverse=True), "audit entries newest first")
    for e in entries:
        check(len(e.get("hash", "")) == 64 and len(e.get("prev_hash", "")) == 64,
              f"entry without hash/prev_hash: {e!r}")
    sys_entries = w.audit(actor="system")
    check(sys_entries and all(e.get("actor_id") == "system" for e in sys_entries),
          f"actor=system filter: {sys_entries!r}")
    admin = w.audit(actor=w.admin_token[5:21])
    check(admin and all(e.get("actor_id") == w.admin_token[5:21] for e in admin),
          "actor=<id> filter")
    check(any(e.get("action") == "token.create" and e.get("target") == v["id"] for e in admin),
          "the admin's token.create is not among its entries")
    fails = w.audit(action="auth.*")
    eq(len(fails), 5, "entries for action=auth.*")
    page1 = w.api("GET", "/api/v1/audit?action=auth.fail&limit=2")
    eq(len(page1["entries"]), 2, "limit=2")
    check(page1.get("next_before"), f"no next_before with more entries: {page1!r}")
    page2 = w.api("GET", f"/api/v1/audit?action=auth.fail&limit=2&before={page1['next_before']}")
    check(all(e["seq"] < page1["entries"][-1]["seq"] for e in page2["entries"]),
          "before= returned entries that are not older")
    future = w.audit(since="2999-01-01T00:00:00Z")
    eq(future, [], "since= in the future")
    past = w.audit(until="1000000000")
    eq(past, [], "until= a unix time in 2001")
    r = w.get("/api/v1/audit?since=yesterday-ish", token=w.admin_token)
    eq(r.status, 400, "a bad since= value")
    w.stop()
