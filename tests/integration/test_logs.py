"""Logs (issue 7): a real `ward serve` with syslog on random loopback ports and a tailed
directory. `logger` lines over UDP and TCP appear in queries; appended file lines appear;
logrotate-style rename + create and copytruncate, and a restart, lose and repeat nothing;
Loki's push API and JSON-lines push work; metric queries count right; the CLI works."""

import json
import os
import select
import shutil
import signal
import subprocess
import time
import urllib.parse

from harness import Ward, check, describe, eq, free_port, new_tmpdir, wait_for


def free_udp_port():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def logs_ward(name, files_dir=None, syslog=True, extra=""):
    """A daemon with logs configured; returns (ward, syslog_port)."""
    port = free_port()
    yaml = ["logs:", "  block_age: 500ms"]
    if syslog:
        yaml += ["  syslog:", f"    udp: 127.0.0.1:{port}", f"    tcp: 127.0.0.1:{port}"]
    if files_dir:
        yaml += ["  files:", f"    - path: {files_dir}/*.log", "      labels: {job: app}",
                 "      format: logfmt", "      label_fields: [level]"]
    w = Ward(name, limits={"rate_per_client": 0}, extra_yaml="\n".join(yaml) + "\n" + extra)
    return w, port


def query_range(w, q, since="1h", limit=5000, direction="forward", token=None, **extra):
    params = {"query": q, "since": since, "limit": limit, "direction": direction}
    params.update(extra)
    return w.api("GET", "/api/v1/logs/query_range?" + urllib.parse.urlencode(params),
                 token=token)


def lines_of(data):
    out = []
    for s in data["result"]:
        for ts, line in s["values"]:
            out.append(line)
    return out


def wait_lines(w, q, want, timeout=15):
    """Waits until the query returns at least `want` lines; returns them."""
    def enough():
        ls = lines_of(query_range(w, q))
        return ls if len(ls) >= want else None
    return wait_for(enough, timeout, f"{want} lines for {q}", interval=0.1)


def logger(*args):
    p = subprocess.run(["logger"] + list(args), capture_output=True, text=True, timeout=10)
    check(p.returncode == 0, f"logger {args}: {p.stderr}")


def test_logs_syslog_udp_tcp_and_rfc3164_lines_are_queryable():
    w, port = logs_ward("logs-syslog")
    w.start()
    logger("--server", "127.0.0.1", "--port", str(port), "--udp", "-t", "web", "udp 5424 one")
    logger("--server", "127.0.0.1", "--port", str(port), "--tcp", "-t", "web", "tcp 5424 two")
    logger("--server", "127.0.0.1", "--port", str(port), "--tcp", "--octet-count", "-t", "web",
           "tcp octet three")
    logger("--rfc3164", "--server", "127.0.0.1", "--port", str(port), "--udp", "-t", "db",
           "-p", "auth.err", "udp 3164 four")
    got = wait_lines(w, '{job="syslog"}', 4)
    text = "\n".join(got)
    for s in ("udp 5424 one", "tcp 5424 two", "tcp octet three", "udp 3164 four"):
        check(s in text, f"{s!r} not in {got!r}")
    data = query_range(w, '{job="syslog",app="db",level="err",facility="auth"}')
    eq(lines_of(data), ["udp 3164 four"], "3164 line selected by app, level and facility")
    w.stop()


def write(path, lines, mode="a"):
    with open(path, mode) as f:
        for ln in lines:
            f.write(ln + "\n")


def assert_exactly_once(w, prefix, n):
    got = [ln for ln in lines_of(query_range(w, f'{{job="app"}} |= "{prefix}"'))
           if prefix in ln]
    ids = sorted(int(ln.split("n=")[1].split()[0]) for ln in got)
    missing = sorted(set(range(n)) - set(ids))
    dups = sorted({i for i in ids if ids.count(i) > 1})
    check(not missing and not dups and len(ids) == n,
          f"{prefix}: {len(ids)} lines for {n}; missing {missing[:10]}, repeated {dups[:10]}")


def test_logs_file_tailing_follows_create_and_copytruncate_rotation():
    d = new_tmpdir("logs-files")
    path = os.path.join(d, "app.log")
    write(path, [f"level=info msg=first n={i}" for i in range(50)], "w")
    w, _ = logs_ward("logs-tail", files_dir=d, syslog=False)
    w.start()
    wait_lines(w, '{job="app"} |= "first"', 50)
    # logrotate create: the writer still holds the old file when it is renamed, writes a
    # few more lines there, then reopens the path.
    old = open(path, "a")
    write(path, [f"level=warn msg=second n={i}" for i in range(20)])
    os.rename(path, path + ".1")
    for i in range(20, 40):
        old.write(f"level=warn msg=second n={i}\n")
    old.flush()
    write(path, [f"level=warn msg=second n={i}" for i in range(40, 60)], "w")
    old.close()
    wait_lines(w, '{job="app"} |= "second"', 60)
    # copytruncate: copy, then truncate in place, then the writer goes on.
    write(path, [f"level=error msg=third n={i}" for i in range(30)])
    wait_lines(w, '{job="app"} |= "third"', 30)
    shutil.copy(path, path + ".2")
    with open(path, "r+") as f:
        f.truncate(0)
    time.sleep(0.3)
    write(path, [f"level=error msg=third n={i}" for i in range(30, 45)])
    wait_lines(w, '{job="app"} |= "third"', 45)
    time.sleep(1.5)  # a late duplicate would show up by now
    assert_exactly_once(w, "msg=first", 50)
    assert_exactly_once(w, "msg=second", 60)
    assert_exactly_once(w, "msg=third", 45)
    # level was promoted to a label by the pipeline.
    data = query_range(w, '{job="app",level="error"}')
    eq(len(lines_of(data)), 45, "lines with label level=error")
    w.stop()


def test_logs_restart_neither_loses_nor_repeats_file_lines():
    d = new_tmpdir("logs-restart")
    path = os.path.join(d, "svc.log")
    write(path, [f"level=info msg=a n={i}" for i in range(100)], "w")
    w, _ = logs_ward("logs-restart", files_dir=d, syslog=False)
    w.start()
    wait_lines(w, '{job="app"} |= "msg=a"', 100)
    w.stop()
    # Written while the daemon is down, including a rotation.
    write(path, [f"level=info msg=a n={i}" for i in range(100, 130)])
    os.rename(path, path + ".1")
    write(path, [f"level=info msg=a n={i}" for i in range(130, 150)], "w")
    w.start()
    wait_lines(w, '{job="app"} |= "msg=a"', 150)
    write(path, [f"level=info msg=a n={i}" for i in range(150, 170)])
    wait_lines(w, '{job="app"} |= "msg=a"', 170)
    # A crash (SIGKILL) after the lines were taken in: the WAL and offsets bring them back
    # once.
    time.sleep(0.5)
    w.kill9()
    w.start()
    write(path, [f"level=info msg=a n={i}" for i in range(170, 180)])
    wait_lines(w, '{job="app"} |= "msg=a"', 180)
    time.sleep(1.5)
    assert_exactly_once(w, "msg=a", 180)
    w.stop()


def test_logs_loki_push_and_json_lines_push_are_queryable():
    w, _ = logs_ward("logs-push", syslog=False)
    w.start()
    now = time.time_ns()
    body = {"streams": [
        {"stream": {"job": "loki", "host": "h1"},
         "values": [[str(now - 2000), "loki first"], [str(now - 1000), "loki second"]]},
        {"stream": {"job": "loki", "host": "h2"}, "values": [[str(now), "loki third"]]}]}
    r = w.request("POST", "/loki/api/v1/push", token=w.admin_token, body=body)
    eq(r.status, 204, f"Loki push status ({r.body[:200]!r})")
    data = query_range(w, '{job="loki"}', direction="backward")
    eq(data["resultType"], "streams", "resultType")
    eq(lines_of(data)[0], "loki third", "newest first")
    check(sorted(lines_of(data)) == ["loki first", "loki second", "loki third"],
          f"loki lines: {lines_of(data)}")
    streams = {s["stream"]["host"]: s for s in data["result"]}
    eq(sorted(v[0] for v in streams["h1"]["values"]), [str(now - 2000), str(now - 1000)],
       "nanosecond timestamps kept exactly, as strings")
    lines = "\n".join(json.dumps({"level": lv, "msg": f"j{i}", "status": st}) for i, (lv, st) in
                      enumerate([("info", 200), ("error", 503), ("error", 500)]))
    r = w.request("POST", "/api/v1/logs/push?labels=job%3Dapi,host%3Da", token=w.admin_token,
                  body=lines + "\nnot json\n")
    eq(r.status, 200, f"JSON push ({r.body[:200]!r})")
    eq(r.json()["data"], {"accepted": 3, "rejected": 1}, "push result")
    data = query_range(w, '{job="api"} | json | status >= 500 | level = "error"')
    eq(len(lines_of(data)), 2, f"5xx error lines: {data}")
    data = query_range(w, '{job="api",level="error",host="a"}')
    eq(len(lines_of(data)), 2, "level promoted to a label")
    bad = w.request("GET", "/api/v1/logs/query_range?query=" +
                    urllib.parse.quote('{job="api"} | status >'), token=w.admin_token)
    eq(bad.status, 400, "a bad query is 400")
    check("col 23" in bad.json().get("error", ""), f"error position: {bad.json()}")
    # a NUL byte inside a line is stored and returned whole (it once overflowed the heap)
    nul = {"streams": [{"stream": {"job": "nul"}, "values": [[str(now), "before\u0000after"]]}]}
    r = w.request("POST", "/loki/api/v1/push", token=w.admin_token, body=nul)
    eq(r.status, 204, f"Loki push of a line with a NUL ({r.body[:200]!r})")
    eq(lines_of(query_range(w, '{job="nul"}')), ["before\u0000after"], "the line with a NUL")
    viewer = w.create_token("v", "viewer")["token"]
    r = w.request("POST", "/loki/api/v1/push", token=viewer, body=body)
    eq(r.status, 403, "a viewer may not push")
    eq(w.request("GET", "/api/v1/logs/query_range?query=" + urllib.parse.quote('{job="api"}'),
                 token=viewer).status, 200, "a viewer may query")
    w.stop()


def test_logs_metric_query_returns_the_right_counts():
    w, _ = logs_ward("logs-metric", syslog=False)
    w.start()
    t0 = (time.time_ns() // 10**9 - 600) * 10**9  # ten minutes ago, whole seconds
    values = {"a": [], "b": []}
    for i in range(120):  # one line per second for two minutes; a: 2 of 3, b: 1 of 3
        job = "b" if i % 3 == 0 else "a"
        values[job].append([str(t0 + i * 10**9), f"line {i} {'error' if i % 4 == 0 else 'ok'}"])
    body = {"streams": [{"stream": {"job": j, "env": "test"}, "values": v}
                        for j, v in values.items()]}
    eq(w.request("POST", "/loki/api/v1/push", token=w.admin_token, body=body).status, 204,
       "push")
    q = 'sum by (job) (count_over_time({env="test"}[1m]))'
    data = w.api("GET", "/api/v1/logs/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": t0 + 59 * 10**9, "end": t0 + 119 * 10**9, "step": "60s"}))
    eq(data["resultType"], "matrix", "resultType")
    got = {s["metric"]["job"]: [v[1] for v in s["values"]] for s in data["result"]}
    eq(got, {"a": ["40", "40"], "b": ["20", "20"]}, "per-minute counts by job")
    data = w.api("GET", "/api/v1/logs/query?" + urllib.parse.urlencode(
        {"query": 'count_over_time({env="test"} |= "error" [2m])', "time": t0 + 119 * 10**9}))
    eq(data["resultType"], "vector", "instant resultType")
    total = sum(float(s["value"][1]) for s in data["result"])
    eq(total, 30.0, "error lines in two minutes")
    w.stop()


def test_logs_cli_query_and_tail_follow():
    w, port = logs_ward("logs-cli")
    w.start()
    logger("--server", "127.0.0.1", "--port", str(port), "--udp", "-t", "cli", "hello from cli")
    wait_lines(w, '{app="cli"}', 1)
    p = w.cli("logs", "query", '{app="cli"}', "--since", "10m")
    eq(p.returncode, 0, f"ward logs query ({describe(p)})")
    check("hello from cli" in p.stdout and 'app="cli"' in p.stdout, describe(p))
    p = w.cli("logs", "query", '{app="cli"} |= ')
    eq(p.returncode, 2, f"bad query is a usage error ({describe(p)})")
    check("col" in p.stderr, f"error names a column: {describe(p)}")
    p = w.cli("logs", "query", 'count_over_time({app="cli"}[10m])')
    eq(p.returncode, 0, f"metric query ({describe(p)})")
    check(p.stdout.strip().endswith(" 1"), describe(p))
    env = dict(os.environ, WARD_URL=w.url, WARD_TOKEN=w.admin_token)
    from harness import WARD
    proc = subprocess.Popen([WARD, "logs", "tail", "-f", '{app="cli"}'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.0)
        logger("--server", "127.0.0.1", "--port", str(port), "--tcp", "-t", "cli",
               "followed line")
        deadline = time.monotonic() + 15
        seen = ""
        fd = proc.stdout.fileno()
        while time.monotonic() < deadline and "followed line" not in seen:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen += chunk.decode("utf-8", "replace")
        check("followed line" in seen, f"tail -f did not print the new line: {seen!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    w.stop()


def test_logs_rotate_cli_dry_run_changes_nothing_and_tailing_survives_rotation():
    d = new_tmpdir("logs-rotate")
    path = os.path.join(d, "svc.log")
    write(path, [f"level=info msg=r n={i}" for i in range(30)], "w")
    extra = "\n".join(["  rotate:", f"    - path: {d}/*.log", "      size: 100",
                       "      keep: 2", "      compress: zstd", "      mode: create",
                       f"      postrotate: touch {d}/rotated.flag", ""])
    w, _ = logs_ward("logs-rotate", files_dir=d, syslog=False, extra="")
    w.write_config(limits={"rate_per_client": 0},
                   extra_yaml="logs:\n  block_age: 500ms\n  files:\n"
                              f"    - path: {d}/*.log\n      labels: {{job: app}}\n"
                              "      format: logfmt\n" + extra)
    w.start()
    wait_lines(w, '{job="app"} |= "msg=r"', 30)
    from harness import run_cli
    p = run_cli(["logs", "rotate", "--dry-run", "--config", w.config_path])
    eq(p.returncode, 0, f"ward logs rotate --dry-run ({describe(p)})")
    check("would rename" in p.stdout and "would compress" in p.stdout, describe(p))
    check(not os.path.exists(path + ".1.zst") and os.path.getsize(path) > 0,
          "a dry run changed files")
    p = run_cli(["logs", "rotate", "--config", w.config_path])
    eq(p.returncode, 0, f"ward logs rotate ({describe(p)})")
    check(os.path.exists(path + ".1.zst"), f"no {path}.1.zst after rotating: {os.listdir(d)}")
    check(os.path.exists(os.path.join(d, "rotated.flag")), "postrotate did not run")
    eq(os.path.getsize(path), 0, "the log was created anew")
    write(path, [f"level=info msg=r n={i}" for i in range(30, 40)])
    wait_lines(w, '{job="app"} |= "msg=r"', 40)
    time.sleep(1.0)
    assert_exactly_once(w, "msg=r", 40)
    w.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_logs_huge_lines_garbage_and_a_syslog_flood_keep_memory_bounded():
    import socket
    d = new_tmpdir("logs-flood")
    w, port = logs_ward("logs-flood", files_dir=d)
    w.start()
    base = rss_kib(w.proc.pid)
    # A 10 MB line in a tailed file and over TCP syslog: truncated with a marker, counted.
    with open(os.path.join(d, "big.log"), "w") as f:
        f.write("level=info msg=big " + "x" * (10 << 20) + "\nlevel=info msg=after-big\n")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"<13>1 - h bigapp - - - " + b"y" * (10 << 20) + b"\n")
    s.sendall(b"<13>1 - h bigapp - - - after the big one\n")
    s.sendall(bytes(range(256)) * 64 + b"\n")  # binary garbage, newline-framed
    s.close()
    # Invalid UTF-8 through Loki's push API is kept, escaped.
    r = w.request("POST", "/loki/api/v1/push", token=w.admin_token,
                  body=b'{"streams":[{"stream":{"job":"utf"},"values":[["'
                       + str(time.time_ns()).encode() + b'","bad \\udcff ok"]]}]}',
                  headers={"Content-Type": "application/json"})
    check(r.status in (204, 400), f"push with a lone surrogate: {r.status}")
    # A flood: 20000 datagrams from 20 senders.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    for i in range(20000):
        socks[i % 20].sendto(b"<14>Nov 26 01:00:00 flood app: flood line %d" % i,
                             ("127.0.0.1", port))
    for so in socks:
        so.close()
    wait_lines(w, '{job="app"} |= "after-big"', 1)
    wait_lines(w, '{app="bigapp"} |= "after the big one"', 1)
    data = query_range(w, '{job="app"} |= "msg=big"', limit=10)
    big = lines_of(data)
    eq(len(big), 1, "the 10 MB file line is one line")
    check(big[0].endswith("...[truncated by ward]") and len(big[0]) < (1 << 20),
          f"file line not truncated with the marker: {len(big[0])} bytes")
    data = query_range(w, '{app="bigapp"}', limit=10)
    sizes = sorted(len(x) for x in lines_of(data))
    check(sizes and sizes[-1] <= 70000, f"syslog line not capped at max_message: {sizes}")
    check(w.alive(), "the daemon died")
    m = w.metrics()
    check('ward_logs_lines_dropped_total{reason="truncated"}' in m, "truncation not counted")
    # UDP may drop part of a flood (that is the kernel bounding memory); a line sent after
    # it must still get through, and the daemon must have taken in a good part.
    def after_flood():
        so = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        so.sendto(b"<14>Nov 26 01:00:00 flood app: after the flood", ("127.0.0.1", port))
        so.close()
        return lines_of(query_range(w, '{job="syslog"} |= "after the flood"', since="400d",
                                    limit=10))
    wait_for(after_flood, 30, "a line after the flood", interval=0.5)
    n = len(lines_of(query_range(w, '{job="syslog"} |= "flood line"', since="400d",
                                 limit=5000)))
    check(n >= 100, f"only {n} of 20000 flood datagrams were stored")
    grown = rss_kib(w.proc.pid) - base
    check(grown < 400 * 1024, f"RSS grew by {grown} KiB")
    w.stop()


def test_logs_file_pipeline_joins_multiline_entries_and_takes_their_time():
    d = new_tmpdir("logs-ml")
    w = Ward("logs-ml", limits={"rate_per_client": 0}, extra_yaml="\n".join([
        "logs:", "  block_age: 500ms", "  files:",
        f"    - path: {d}/java.log", "      labels: {job: java}",
        "      format: regex",
        "      regex: '^(?<time>\\S+) (?<level>[A-Z]+) '",
        "      time_field: time", "      time_format: rfc3339",
        "      label_fields: [level]",
        "      multiline_start: '^\\d{4}-\\d\\d-\\d\\dT'", ""]))
    write(os.path.join(d, "java.log"), [
        "2026-11-20T10:00:00Z ERROR request failed",
        "java.lang.IllegalStateException: boom",
        "\tat com.example.Foo.bar(Foo.java:10)",
        "\tat com.example.Main.main(Main.java:3)",
        "2026-11-20T10:00:01Z INFO recovered",
    ], "w")
    w.start()
    # The last entry is complete only when no continuation follows for a second.
    wait_for(lambda: len(query_range(w, '{job="java"}', start="2026-11-20T09:00:00Z",
                                     end="2026-11-20T11:00:00Z")["result"]) >= 2, 15,
             "both java entries")
    data = query_range(w, '{job="java"}', start="2026-11-20T09:00:00Z",
                       end="2026-11-20T11:00:00Z")
    entries = {s["stream"]["level"]: s["values"] for s in data["result"]}
    check(set(entries) == {"ERROR", "INFO"}, f"levels: {list(entries)}")
    err = entries["ERROR"]
    eq(len(err), 1, "the stack trace joins its first line")
    check(err[0][1].count("\n") == 3 and "Main.java:3" in err[0][1], f"joined: {err[0][1]!r}")
    eq(err[0][0], "1795168800000000000", "time taken from the line")
    eq(entries["INFO"][0][0], "1795168801000000000", "time of the second entry")
    w.stop()


def test_logs_glob_matching_rotated_names_reads_each_line_once():
    d = new_tmpdir("logs-glob")
    path = os.path.join(d, "web.log")
    write(path, [f"level=info msg=g n={i}" for i in range(40)], "w")
    w = Ward("logs-glob", limits={"rate_per_client": 0}, extra_yaml="\n".join([
        "logs:", "  block_age: 500ms", "  files:", f"    - path: {d}/*",
        "      labels: {job: app}", ""]))
    w.start()
    wait_lines(w, '{job="app"} |= "msg=g"', 40)
    os.rename(path, path + ".1")  # now matched by the glob under a new name
    write(path, [f"level=info msg=g n={i}" for i in range(40, 60)], "w")
    wait_lines(w, '{job="app"} |= "msg=g"', 60)
    time.sleep(2.5)  # two full scans: web.log.1 must not be read again
    assert_exactly_once(w, "msg=g", 60)
    w.stop()


def test_logs_reload_refuses_source_changes_and_keeps_the_old_config():
    w, port = logs_ward("logs-reload")
    w.start()
    text = open(w.config_path).read()
    w.write_config(text=text.replace(f"udp: 127.0.0.1:{port}", f"udp: 127.0.0.1:{port + 1}"))
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    eq(r.status, 400, f"reload with a changed syslog address ({r.body[:300]!r})")
    check("next start" in r.json().get("error", ""), f"reason: {r.json()}")
    logger("--server", "127.0.0.1", "--port", str(port), "--udp", "-t", "rl", "still here")
    wait_lines(w, '{app="rl"}', 1)
    w.write_config(text=text)
    eq(w.request("POST", "/api/v1/reload", token=w.admin_token).status, 200,
       "reload of the unchanged config")
    w.stop()


def test_logs_recording_rules_write_log_metrics_into_the_time_series_store():
    """A log-based recording rule turns "error lines per job" into a series that PromQL
    (and so alerting rules) can read; a bad rule is refused with its position."""
    from harness import wait_for
    rules = ("  recording_interval: 1s\n  recording_rules:\n"
             "    - record: job:log_errors:count1m\n"
             "      expr: 'sum by (job) (count_over_time({env=\"rec\"} |= \"error\" [1m]))'\n"
             "      labels: {source: logs}\n")
    w, _ = logs_ward("logs-rec", syslog=False, extra="")
    w.write_config(text=w.config_text(limits={"rate_per_client": 0}) +
                   "logs:\n  block_age: 500ms\n" + rules)
    w.start()
    now = time.time_ns()
    body = {"streams": [{"stream": {"job": "api", "env": "rec"},
                         "values": [[str(now - i * 10**8), f"line {i} {'error' if i < 7 else 'ok'}"]
                                    for i in range(10)]}]}
    eq(w.request("POST", "/loki/api/v1/push", token=w.admin_token, body=body).status, 204, "push")

    def recorded():
        r = w.get("/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'job:log_errors:count1m{source="logs"}'}), token=w.admin_token)
        res = r.json()["data"]["result"] if r.status == 200 else []
        return res if res and res[0]["value"][1] == "7" else None
    res = wait_for(recorded, 20, "the recording rule's series with 7 error lines")
    eq(res[0]["metric"].get("job"), "api", "the rule keeps the by() label")
    bad = w.config_text(limits={"rate_per_client": 0}) + (
        "logs:\n  block_age: 500ms\n  recording_rules:\n    - record: x\n"
        "      expr: '{env=\"rec\"}'\n")
    with open(w.config_path, "w") as f:
        f.write(bad)
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    eq(r.status, 400, "a recording rule that returns lines, not numbers, is refused")
    check("recording_rules[0]" in r.json()["error"], f"the error names the rule: {r.json()}")
    w.stop()


# ---- live tail stream (GET /api/v1/logs/tail?stream=1) ----

def push_lines(w, job, lines):
    body = "\n".join(json.dumps({"msg": ln}) for ln in lines) + "\n"
    r = w.request("POST", "/api/v1/logs/push?labels=job=" + job, token=w.admin_token,
                  body=body, headers={"Content-Type": "application/x-ndjson"})
    eq(r.status, 200, f"push ({r!r})")


def open_tail_stream(w, query, token, timeout=10.0, **params):
    """Opens the NDJSON live tail; returns (connection, response)."""
    import http.client
    qs = urllib.parse.urlencode(dict(query=query, stream=1, **params))
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=timeout)
    conn.request("GET", "/api/v1/logs/tail?" + qs, headers={"Authorization": f"Bearer {token}"})
    return conn, conn.getresponse()


def read_stream_until(resp, pred, timeout, what):
    """Reads NDJSON objects off an open response until pred(obj) holds; returns every object
    read. Each readline is bounded by the socket timeout; the whole wait by timeout."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = resp.readline()
        check(raw, f"the stream ended before {what}; read {got!r}")
        if not raw.strip():
            continue
        obj = json.loads(raw)
        got.append(obj)
        if pred(obj):
            return got
    raise AssertionError(f"no {what} within {timeout}s; read {got!r}")


def test_logs_tail_stream_delivers_pushed_lines_live_and_ends_when_the_daemon_stops():
    w, _ = logs_ward("logs-stream", syslog=False)
    w.start()
    r = w.request("GET", "/api/v1/logs/tail?stream=1&query=" + urllib.parse.quote('{job="live"}'))
    eq(r.status, 401, f"a stream without a token is refused ({r!r})")
    conn, resp = open_tail_stream(w, '{job="live"}', w.admin_token)
    eq(resp.status, 200, "stream status")
    check(resp.getheader("Content-Type", "").startswith("application/x-ndjson"),
          f"content type {resp.getheader('Content-Type')!r}")
    eq(resp.getheader("Transfer-Encoding"), "chunked", "chunked encoding")
    # Lines pushed after the stream opened arrive on it, with no new request.
    push_lines(w, "live", ["live one"])
    got = read_stream_until(resp, lambda o: "live one" in o.get("line", ""), 15, "line one")
    obj = got[-1]
    eq(obj["stream"].get("job"), "live", f"labels of {obj!r}")
    check(obj["ts"].isdigit(), f"ts is nanoseconds as text: {obj!r}")
    push_lines(w, "other", ["not for this tail"])
    push_lines(w, "live", ["live two", "live three"])
    got = read_stream_until(resp, lambda o: "live three" in o.get("line", ""), 15, "line three")
    lines = [o["line"] for o in got if "line" in o]
    check(any("live two" in ln for ln in lines), f"line two missing: {got!r}")
    check(not any("not for this tail" in ln for ln in lines), f"other job leaked: {got!r}")
    check(int(got[-1]["ts"]) >= int(obj["ts"]), "lines come in time order")
    # The long-poll answer is unchanged without stream=1.
    data = w.api("GET", "/api/v1/logs/tail?" + urllib.parse.urlencode(
        {"query": '{job="live"}', "since": obj["ts"], "wait": "1s"}))
    check("next_since" in data and "live three" in "\n".join(lines_of(data)), f"{data!r}")
    # Stopping the daemon ends the open stream at once (no wait for the 10 s grace).
    t0 = time.monotonic()
    w.send(signal.SIGTERM)
    rest = resp.read()  # to the last chunk; raises on a socket timeout
    ended = time.monotonic() - t0
    for raw in rest.splitlines():
        if raw.strip():
            json.loads(raw)  # whole objects only, even at the end
    check(ended < 5, f"the stream ended {ended:.1f}s after SIGTERM")
    conn.close()
    rc = w.wait()
    eq(rc, 0, f"exit code after SIGTERM with an open stream; stderr: {w.stderr_tail(5)}")
    check(time.monotonic() - t0 < 8, "daemon exited promptly with a stream open")
    w.stop()


def test_logs_tail_stream_sends_heartbeats_and_starts_from_since():
    w, _ = logs_ward("logs-stream-hb", syslog=False)
    w.start()
    push_lines(w, "hb", ["before the stream"])
    wait_lines(w, '{job="hb"}', 1)
    hour_ago = str(time.time_ns() - 3600 * 10**9)
    conn, resp = open_tail_stream(w, '{job="hb"}', w.admin_token, since=hour_ago)
    eq(resp.status, 200, "stream status")
    got = read_stream_until(resp, lambda o: "before the stream" in o.get("line", ""), 15,
                            "the line after since")
    got = read_stream_until(resp, lambda o: "heartbeat" in o, 15, "a heartbeat")
    check(got[-1]["heartbeat"].isdigit(), f"heartbeat is a time in ns: {got[-1]!r}")
    conn.close()
    r = w.request("GET", "/api/v1/logs/tail?stream=1&query=" +
                  urllib.parse.quote('count_over_time({job="hb"}[1m])'), token=w.admin_token)
    eq(r.status, 400, f"a metric query cannot be tailed ({r!r})")
    w.stop()


def test_logs_cli_tail_follow_streams_and_reconnects_after_a_restart():
    w, _ = logs_ward("logs-cli-stream", syslog=False)
    w.start()
    from harness import WARD, cli_env
    env = cli_env(url=w.url, token=w.admin_token, home=w.dir)
    proc = subprocess.Popen([WARD, "logs", "tail", "-f", "--json", '{job="follow"}'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen = []
    buf = b""

    def read_until(text, timeout):
        nonlocal buf
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while time.monotonic() < deadline:
            for raw in buf.split(b"\n")[:-1]:
                seen.append(json.loads(raw))
            buf = buf.split(b"\n")[-1]
            if any(text in o.get("line", "") for o in seen):
                return
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    proc.wait(10)
                    raise AssertionError(f"ward logs tail -f exited with {proc.returncode}: "
                                         f"{proc.stderr.read()!r}")
                buf += chunk
            else:
                push_lines(w, "follow", [text])  # until the tail is connected and sees it
        raise AssertionError(f"tail -f did not print {text!r} within {timeout}s: {seen!r}")

    try:
        read_until("first followed", 20)
        w.stop()
        w.start()
        read_until("after restart", 40)
    finally:
        proc.kill()
        proc.wait(10)
    err = proc.stderr.read().decode("utf-8", "replace")
    check("reconnecting" in err, f"no reconnect notice on stderr: {err!r}")
    for o in seen:
        check(set(o) == {"stream", "ts", "line"}, f"--json prints the stream objects: {o!r}")
    w.stop()
