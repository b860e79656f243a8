"""Config reload through SIGHUP, POST /api/v1/reload and `ward config reload`: a good config
takes effect (observed through the rate limit), a bad one is rejected whole and audited."""

import re
import signal
import socket
import time

from harness import Ward, check, describe, eq, free_port, metric_value, wait_for

STRICT = {"rate_per_client": 1, "burst": 2}


def loaded_at(w):
    r = w.get("/health")
    if r.status != 200:
        return None
    return r.json()["components"]["config"].get("loaded_at")


def is_limited(w, n=12):
    """True when n requests in a row meet a 429."""
    for _ in range(n):
        if w.get("/api/v1/whoami", token=w.admin_token).status == 429:
            return True
    return False


def reload_entries(w, result=None):
    entries = []
    for _ in range(50):  # the audit API itself may be rate limited right after a reload
        r = w.get("/api/v1/audit?action=config.reload", token=w.admin_token)
        if r.status == 200:
            entries = r.json()["data"]["entries"]
            break
        time.sleep(0.2)
    return [e for e in entries if result is None or e.get("result") == result]


def test_sighup_reload_applies_new_limits_and_is_audited():
    w = Ward("hup").start()
    check(not is_limited(w), "default limits already rate-limit 12 requests")
    before = loaded_at(w)
    w.write_config(limits=STRICT)
    time.sleep(0.01)
    w.send(signal.SIGHUP)
    wait_for(lambda: loaded_at(w) not in (None, before), 10, "loaded_at to change after SIGHUP",
             interval=0.3)
    time.sleep(2.5)  # refill the new, small bucket
    check(is_limited(w), "after SIGHUP with rate_per_client 1, burst 2: never a 429")
    time.sleep(2.5)
    ok = reload_entries(w, "ok")
    check(ok, "no config.reload entry with result ok in the audit after SIGHUP")
    eq(ok[0].get("actor_id"), "system", "actor of a SIGHUP reload")
    check(w.alive(), "ward serve died on SIGHUP")
    w.stop()


def test_api_reload_applies_a_good_config_and_is_audited():
    w = Ward("api-reload").start()
    check(not is_limited(w), "default limits already rate-limit 12 requests")
    before = loaded_at(w)
    w.write_config(limits=STRICT)
    d = w.api("POST", "/api/v1/reload")
    eq(d.get("source"), w.config_path, "reload answer source")
    check(d.get("loaded_at") and d.get("loaded_at") != before,
          f"reload answer loaded_at {d.get('loaded_at')!r} (before {before!r})")
    time.sleep(2.5)
    check(is_limited(w), "after POST /api/v1/reload with rate_per_client 1, burst 2: no 429")
    time.sleep(2.5)
    ok = reload_entries(w, "ok")
    check(ok, "no config.reload ok entry in the audit")
    eq(ok[0].get("actor_id"), w.admin_token[5:21], "actor of an API reload")
    w.stop()


def test_reload_with_a_bad_config_is_rejected_and_the_old_one_stays():
    w = Ward("bad-reload").start()
    before = loaded_at(w)
    good = open(w.config_path).read()
    w.write_config(good.replace("  threads: 4\n", "  threads: lots\n"))
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    eq(r.status, 400, "POST /api/v1/reload with threads: lots")
    j = r.json()
    eq(j.get("errorType"), "bad_data", "errorType of a rejected reload")
    check(re.search(r"ward\.yaml:\d+:\d+", j.get("error", "")),
          f"rejected reload message has no file:line:col: {j.get('error')!r}")
    eq(loaded_at(w), before, "loaded_at after a rejected reload")
    rej = reload_entries(w, "rejected")
    check(rej, "no config.reload entry with result rejected in the audit")
    val = metric_value(w.metrics(), "ward_config_last_reload_successful")
    eq(val, 0.0, "ward_config_last_reload_successful after a rejected reload")
    # SIGHUP with a config that is not even YAML: logged, audited, the daemon keeps going.
    w.write_config("server: [unclosed\n")
    w.send(signal.SIGHUP)
    wait_for(lambda: len(reload_entries(w, "rejected")) >= 2, 10,
             "a second config.reload rejected entry after SIGHUP", interval=0.3)
    check(w.alive(), "ward serve died on SIGHUP with a broken config")
    eq(w.get("/ready").status, 200, "/ready after rejected reloads")
    # The old limits are still in force (defaults: no 429 for 12 requests).
    check(not is_limited(w), "a rejected reload changed the limits")
    w.write_config(good)
    w.api("POST", "/api/v1/reload")
    eq(metric_value(w.metrics(), "ward_config_last_reload_successful"), 1.0,
       "ward_config_last_reload_successful after a good reload")
    w.stop()


def test_reload_changing_listen_keeps_the_old_port_and_records_restart_required():
    # src/core/daemon.c accepts such a reload, applies what it can and records the settings
    # that need a restart (audit details.restart_required, a warning in the log).
    w = Ward("listen-reload").start()
    other = free_port()
    w.write_config(w.config_text(listen=f"127.0.0.1:{other}"))
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    if r.status == 200:
        ok = reload_entries(w, "ok")
        check(ok, "no config.reload ok entry")
        req = (ok[0].get("details") or {}).get("restart_required")
        check(req and "server.listen" in req,
              f"config.reload details do not say server.listen needs a restart: {ok[0]!r}")
    else:
        eq(r.status, 400, "reload changing server.listen: neither accepted nor rejected")
    eq(w.get("/ready").status, 200, "old address after the reload")
    s = socket.socket()
    s.settimeout(1)
    check(s.connect_ex(("127.0.0.1", other)) != 0, "ward also listens on the new address")
    s.close()
    w.stop()


def test_ward_config_reload_cli_reports_success_and_rejection():
    w = Ward("cli-reload").start()
    p = w.cli("config", "reload")
    eq(p.returncode, 0, f"ward config reload with a good config ({describe(p)})")
    check(w.config_path in p.stdout, f"ward config reload does not name the source: {p.stdout!r}")
    good = open(w.config_path).read()
    w.write_config(good + "bogus_section_key: [\n")
    p = w.cli("config", "reload")
    check(p.returncode != 0, f"ward config reload with a broken config exit 0 ({describe(p)})")
    check("ward.yaml" in p.stderr, f"the rejection does not name the file: {p.stderr!r}")
    w.stop()
