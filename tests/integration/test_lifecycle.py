"""The daemon's life: crash recovery (kill -9), graceful SIGTERM, and start-up failures."""

import json
import os
import random
import signal
import socket
import threading
import time

from harness import TOKEN_RE, Ward, check, describe, eq, free_port, http, run_cli

ROUNDS = int(os.environ.get("WARD_IT_KILL_ROUNDS", "10"))


def _creator(w, prefix, acked, stop):
    i = 0
    while not stop.is_set():
        name = f"{prefix}-{i}"
        i += 1
        try:
            r = http("POST", w.url + "/api/v1/tokens", token=w.admin_token,
                     body={"name": name, "role": "viewer"}, timeout=5)
        except Exception:  # noqa: BLE001 - the server was killed under us
            return
        if r.status == 201:
            acked.append((r.json()["data"]["id"], name))
        elif r.status >= 500:
            return


def test_kill9_in_a_loop_loses_no_acknowledged_token_and_audit_verifies():
    rng = random.Random(int(os.environ.get("WARD_IT_SEED", "0")) or None)
    w = Ward("kill9").start(expect_token=True)
    acked = []
    for rnd in range(ROUNDS):
        if rnd:
            w.start(expect_token=False)
        stop = threading.Event()
        threads = [threading.Thread(target=_creator, args=(w, f"r{rnd}t{t}", acked, stop))
                   for t in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        w.kill9()
        stop.set()
        for t in threads:
            t.join(15)
            check(not t.is_alive(), "a client thread hung after the kill")
    w.start(expect_token=False)
    check(acked, "no token create was ever acknowledged")
    listed = {t["id"]: t["name"] for t in w.api("GET", "/api/v1/tokens")}
    lost = [(i, n) for i, n in acked if listed.get(i) != n]
    check(not lost, f"{len(lost)} of {len(acked)} acknowledged tokens lost after kill -9: "
                    f"{lost[:5]}")
    created = {e.get("target") for e in w.audit_all(action="token.create")}
    unaudited = [(i, n) for i, n in acked if i not in created]
    check(not unaudited, f"{len(unaudited)} acknowledged tokens have no token.create record: "
                         f"{unaudited[:5]}")
    w.stop()
    p = run_cli(["audit", "verify", "--data", w.data])
    eq(p.returncode, 0, f"ward audit verify after {ROUNDS} kill -9 rounds ({describe(p)})")


test_kill9_in_a_loop_loses_no_acknowledged_token_and_audit_verifies.timeout = 300


def test_sigterm_exits_0_after_completing_an_inflight_request_and_audits_system_stop():
    w = Ward("sigterm").start()
    body = json.dumps({"name": "slow-upload", "role": "viewer"}).encode()
    head = (f"POST /api/v1/tokens HTTP/1.1\r\nHost: {w.addr}\r\n"
            f"Authorization: Bearer {w.admin_token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", w.port), timeout=15)
    s.sendall(head + body[:10])
    time.sleep(0.5)
    w.send(signal.SIGTERM)
    time.sleep(0.5)
    s.sendall(body[10:20])
    time.sleep(0.3)
    s.sendall(body[20:])
    resp = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    except OSError as e:
        check(resp, f"the in-flight request got no response after SIGTERM ({e})")
    s.close()
    status = resp.split(b"\r\n", 1)[0]
    check(status.startswith(b"HTTP/1.1 201"),
          f"in-flight request during SIGTERM: {status!r} (want 201)")
    rc = w.wait(30)
    eq(rc, 0, f"exit code after SIGTERM (stderr: {w.stderr_tail(4)})")
    # New connections are refused once stopped, and the stop is on the audit trail.
    w.start(expect_token=False)
    names = {t["name"] for t in w.api("GET", "/api/v1/tokens")}
    check("slow-upload" in names, "the token created during shutdown is not there")
    stops = w.audit(action="system.stop")
    check(stops, "no system.stop record after SIGTERM")
    w.stop()


def test_sigint_also_stops_gracefully():
    w = Ward("sigint").start()
    w.stop(signal.SIGINT)


def test_port_in_use_exits_2_with_one_line_naming_the_address():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        w = Ward("port-busy", port=port)
        w.spawn()
        rc = w.wait(30)
        eq(rc, 2, f"exit code with {w.addr} in use (stderr: {w.stderr_tail(4)})")
        lines = [ln for ln in w.stderr().splitlines() if w.addr in ln]
        eq(len(lines), 1, f"lines naming {w.addr} on stderr ({w.stderr_tail(6)})")
        check("in use" in lines[0], f"the line does not say the address is in use: {lines!r}")
        check(not TOKEN_RE.search(w.stdout()),
              "the first admin token was printed although the server could not start")
    finally:
        blocker.close()
    # Once the address is free, the first successful start prints the first admin token.
    w.start(expect_token=True)
    w.stop()


def test_unusable_data_dir_exits_2():
    w = Ward("datadir")
    afile = os.path.join(w.dir, "a-file")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    for bad in (os.path.join(afile, "data"), afile):
        w.spawn(["--config", w.config_path, "--data", bad])
        rc = w.wait(30)
        eq(rc, 2, f"exit code with data dir {bad} (stderr: {w.stderr_tail(4)})")
        check(afile in w.stderr(), f"the message does not name {afile}: {w.stderr_tail(4)}")


def test_invalid_config_file_makes_serve_exit_2_naming_file_line_col():
    w = Ward("serve-badconf")
    w.write_config("server:\n  listen: 127.0.0.1:1\n  threads: lots\n")
    w.spawn()
    rc = w.wait(30)
    eq(rc, 2, f"ward serve with an invalid config (stderr: {w.stderr_tail(4)})")
    check("ward.yaml:3:" in w.stderr(), f"no file:line:col in {w.stderr_tail(4)}")
    w2 = Ward("serve-noconf")
    w2.spawn(["--config", os.path.join(w2.dir, "missing.yaml")])
    eq(w2.wait(30), 2, "ward serve with a missing config file")


def test_serve_flags_override_listen_and_data_dir():
    w = Ward("flags")
    w.write_config(w.config_text(listen=f"127.0.0.1:{free_port()}"))
    data = os.path.join(w.dir, "other-data")
    w.start(["--config", w.config_path, "--data", data, "--listen", w.addr], expect_token=True)
    check(os.path.isdir(os.path.join(data, "audit")), f"--data {data} not used")
    check(not os.path.exists(w.data), "the config's data_dir was used despite --data")
    w.stop()
