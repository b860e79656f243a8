"""Logs (issue 7), the systemd journal source: real journal files are written with
systemd-journal-remote (journal export format in, *.journal out; no journald needed) into a
directory a `ward serve` reads with logs.journal. Entries are queryable with job, unit, host
and level labels and their own timestamps; entries appended to the file, and a new file in
the directory, arrive while it runs; a restart (and a SIGKILL) loses and repeats nothing;
matches select entries; binary and huge MESSAGE values are stored bounded. Each test is
skipped, with the reason printed, when the ward binary was built without libsystemd or
systemd-journal-remote is not installed; the first test then checks that a configured
journal source fails `ward config check` with a message saying what to install."""

import os
import shutil
import struct
import subprocess
import time
import urllib.parse

import harness
from harness import Ward, check, describe, eq, new_tmpdir, run_cli, wait_for

REMOTE_CANDIDATES = ["/lib/systemd/systemd-journal-remote",
                     "/usr/lib/systemd/systemd-journal-remote"]
NO_LIBSYSTEMD = "built without libsystemd"
_support = None  # (reason to skip or None, text of `ward config check` on a journal config)


def journal_remote():
    for p in REMOTE_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("systemd-journal-remote")


def ward_journal_support():
    """(None, output) when the binary reads journals; (reason, output) when it does not."""
    global _support
    if _support is None:
        d = new_tmpdir("journal-probe")
        path = os.path.join(d, "ward.yaml")
        with open(path, "w") as f:
            f.write(f"storage: {{data_dir: {d}/data}}\n"
                    f"logs:\n  journal: {{enabled: true, path: {d}}}\n")
        p = run_cli(["config", "check", path])
        out = p.stdout + p.stderr
        if p.returncode == 0:
            _support = (None, out)
        elif NO_LIBSYSTEMD in out:
            _support = ("ward was built without libsystemd (install libsystemd-dev and "
                        "rebuild)", out)
        else:
            raise harness.TestFailure(f"config check of a journal config: {describe(p)}")
    return _support


def skip_reason():
    reason, _ = ward_journal_support()
    if reason:
        return reason
    if not journal_remote():
        return ("systemd-journal-remote not found (apt-get install "
                "systemd-journal-remote)")
    return None


def skip(name, reason):
    """Ends the test as skipped (run.py prints SKIP with the reason, not PASS)."""
    raise harness.Skip(reason)


def export(entries):
    """Journal export format for entries (dicts of field -> str or bytes). bytes values
    use the binary form (name, newline, little-endian 64-bit length, data, newline)."""
    out = bytearray()
    for e in entries:
        for k, v in e.items():
            if isinstance(v, bytes):
                out += k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
            else:
                out += f"{k}={v}\n".encode()
        out += b"\n"
    return bytes(out)


def write_journal(path, entries):
    """Appends entries to the journal file at path (created when missing)."""
    p = subprocess.run([journal_remote(), "-o", path, "-"], input=export(entries),
                       capture_output=True, timeout=30)
    check(p.returncode == 0, f"systemd-journal-remote -o {path}: exit {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-400:]}")


T0_US = int(time.time()) * 10**6 - 600 * 10**6  # ten minutes ago: inside any query range
_clock = [0]


def entry(n, prefix, unit="nginx.service", host="web1", prio=6, **extra):
    """One entry, 1 ms after the previous one: sd-journal orders entries across files by
    time, and a real journal only ever grows forward."""
    _clock[0] += 1
    e = {"__REALTIME_TIMESTAMP": str(T0_US + _clock[0] * 1000),
         "__MONOTONIC_TIMESTAMP": str(_clock[0]),
         "_BOOT_ID": "0123456789abcdef0123456789abcdef",
         "MESSAGE": f"{prefix} n={n}", "_SYSTEMD_UNIT": unit, "_HOSTNAME": host,
         "PRIORITY": str(prio)}
    e.update(extra)
    return e


def journal_ward(name, jdir, extra_journal=""):
    yaml = ["logs:", "  block_age: 500ms", "  journal:", "    enabled: true",
            f"    path: {jdir}"]
    if extra_journal:
        yaml += ["    " + ln for ln in extra_journal.strip("\n").split("\n")]
    return Ward(name, limits={"rate_per_client": 0}, extra_yaml="\n".join(yaml) + "\n")


def query_range(w, q, limit=5000):
    params = {"query": q, "since": "2h", "limit": limit, "direction": "forward"}
    return w.api("GET", "/api/v1/logs/query_range?" + urllib.parse.urlencode(params))


def lines_of(data):
    return [line for s in data["result"] for _, line in s["values"]]


def wait_lines(w, q, want, timeout=20):
    def enough():
        ls = lines_of(query_range(w, q))
        return ls if len(ls) >= want else None
    return wait_for(enough, timeout, f"{want} lines for {q}", interval=0.1)


def assert_exactly_once(w, prefix, n):
    got = [ln for ln in lines_of(query_range(w, f'{{job="journal"}} |= "{prefix} "'))
           if ln.startswith(prefix + " ")]
    ids = sorted(int(ln.split("n=")[1].split()[0]) for ln in got)
    missing = sorted(set(range(n)) - set(ids))
    dups = sorted({i for i in ids if ids.count(i) > 1})
    check(not missing and not dups and len(ids) == n,
          f"{prefix}: {len(ids)} lines for {n}; missing {missing[:10]}, repeated {dups[:10]}")


def test_logs_journal_entries_are_queryable_with_labels_and_appends_arrive():
    reason = skip_reason()
    if reason:
        # Without journal support, a configured journal source must be refused at config
        # time with a message that says what to install.
        _, out = ward_journal_support()
        if NO_LIBSYSTEMD in out:
            check("libsystemd-dev" in out and "logs.journal" in out,
                  f"the error says what to install: {out!r}")
        return skip("logs_journal_entries_are_queryable_with_labels_and_appends_arrive",
                    reason)
    d = new_tmpdir("journal-dir")
    first = os.path.join(d, "first.journal")
    e0 = entry(0, "alpha", prio=3)
    write_journal(first, [e0, entry(1, "alpha", unit="sshd.service", host="db1", prio=6),
                          entry(2, "alpha", prio=7)])
    w = journal_ward("journal-labels", d)
    w.start()
    wait_lines(w, '{job="journal"}', 3)
    # Labels from the entry: unit, host, and level mapped from PRIORITY.
    data = query_range(w, '{job="journal",unit="nginx.service",host="web1",level="err"}')
    eq(lines_of(data), ["alpha n=0"], "the PRIORITY=3 nginx entry by unit, host and level")
    eq(data["result"][0]["values"][0][0], str(int(e0["__REALTIME_TIMESTAMP"]) * 1000),
       "timestamp from __REALTIME_TIMESTAMP in ns")
    eq(lines_of(query_range(w, '{job="journal",unit="sshd.service",level="info"}')),
       ["alpha n=1"], "the sshd entry")
    eq(lines_of(query_range(w, '{job="journal",level="debug"}')), ["alpha n=2"],
       "PRIORITY=7 is level debug")
    # The instant query endpoint sees them too, with the labels on the stream.
    inst = w.api("GET", "/api/v1/logs/query?" + urllib.parse.urlencode(
        {"query": '{job="journal",host="db1"}', "limit": 10}))
    eq(inst["resultType"], "streams", "instant log query result type")
    eq([s["stream"] for s in inst["result"]],
       [{"job": "journal", "unit": "sshd.service", "host": "db1", "level": "info"}],
       "labels of the sshd stream")
    # Appended to the same file while ward runs, then a new file in the directory.
    write_journal(first, [entry(n, "alpha") for n in range(3, 10)])
    wait_lines(w, '{job="journal"} |= "alpha"', 10)
    write_journal(os.path.join(d, "second.journal"), [entry(n, "beta") for n in range(5)])
    wait_lines(w, '{job="journal"} |= "beta"', 5)
    time.sleep(1.0)  # a late duplicate would show up by now
    assert_exactly_once(w, "alpha", 10)
    assert_exactly_once(w, "beta", 5)
    w.stop()


def test_logs_journal_restart_and_crash_neither_lose_nor_repeat_entries():
    reason = skip_reason()
    if reason:
        return skip("logs_journal_restart_and_crash_neither_lose_nor_repeat_entries", reason)
    d = new_tmpdir("journal-restart")
    path = os.path.join(d, "app.journal")
    write_journal(path, [entry(n, "gamma") for n in range(50)])
    w = journal_ward("journal-restart", d)
    w.start()
    wait_lines(w, '{job="journal"} |= "gamma"', 50)
    w.stop()
    # Written while ward is down, to the old file and to a new one.
    write_journal(path, [entry(n, "gamma") for n in range(50, 70)])
    write_journal(os.path.join(d, "later.journal"), [entry(n, "gamma") for n in range(70, 80)])
    w.start()
    wait_lines(w, '{job="journal"} |= "gamma"', 80)
    write_journal(path, [entry(n, "gamma") for n in range(80, 90)])
    wait_lines(w, '{job="journal"} |= "gamma"', 90)
    # A crash after the entries were stored: the WAL and the cursor bring them back once.
    time.sleep(0.5)
    w.kill9()
    w.start()
    write_journal(path, [entry(n, "gamma") for n in range(90, 100)])
    wait_lines(w, '{job="journal"} |= "gamma"', 100)
    time.sleep(1.5)
    assert_exactly_once(w, "gamma", 100)
    cursor = os.path.join(w.data, "logs", "journal.cursor")
    check(os.path.exists(cursor), f"cursor file {cursor} exists")
    w.stop()


def test_logs_journal_matches_pipeline_and_bounded_binary_messages():
    reason = skip_reason()
    if reason:
        return skip("logs_journal_matches_pipeline_and_bounded_binary_messages", reason)
    d = new_tmpdir("journal-match")
    huge = "x" * (300 * 1024)
    write_journal(os.path.join(d, "m.journal"), [
        entry(0, "delta", MESSAGE="status=200 delta n=0"),
        entry(1, "delta", unit="cron.service", MESSAGE="status=500 delta n=1"),
        entry(2, "delta", MESSAGE="status=500 delta n=2"),
        entry(3, "delta", MESSAGE=b"delta n=3 bin\x00\xff\xfe end"),
        entry(4, "delta", MESSAGE="delta n=4 " + huge),
        entry(5, "delta", _HOSTNAME=b"bad\nhost\xff"),
        {k: v for k, v in entry(6, "delta").items() if k != "MESSAGE"},
        entry(7, "delta", PRIORITY="junk"),
    ])
    w = journal_ward("journal-match", d, extra_journal="""
matches: ["_SYSTEMD_UNIT=nginx.service"]
labels: {job: sys, env: test}
format: logfmt
label_fields: [status]
""")
    w.start()
    got = wait_lines(w, '{job="sys"}', 6)
    time.sleep(1.0)
    got = lines_of(query_range(w, '{job="sys"}'))
    eq(len(got), 6, f"entries matching the unit (not cron, not the one without MESSAGE): "
                    f"{[g[:40] for g in got]}")
    check(not any("n=1" in g for g in got), "the cron.service entry is filtered out")
    eq(lines_of(query_range(w, '{job="sys",env="test",status="500"}')),
       ["status=500 delta n=2"], "logfmt field promoted to a label")
    binline = [g for g in got if "n=3" in g]
    eq(binline, ["delta n=3 bin\\x00\\xFF\\xFE end"],
       "binary MESSAGE: NUL and invalid UTF-8 bytes stored as \\xNN text")
    hugeline = [g for g in got if "n=4" in g]
    check(len(hugeline) == 1 and hugeline[0].endswith("...[truncated by ward]")
          and len(hugeline[0]) <= 256 * 1024 + 64,
          f"a 300 KiB MESSAGE is truncated with the marker: {len(hugeline[0]) if hugeline else 0}")
    bad_host = query_range(w, '{job="sys"} |= "delta n=5"')
    eq([s["stream"].get("host") for s in bad_host["result"]], [None],
       "a host with a newline and invalid UTF-8 is not made a label")
    junk = query_range(w, '{job="sys"} |= "delta n=7"')
    eq([s["stream"].get("level") for s in junk["result"]], [None],
       "PRIORITY=junk gives no level label")
    w.stop()


def test_logs_journal_bad_match_fails_config_check_with_its_line():
    reason, _ = ward_journal_support()
    if reason:
        return skip("logs_journal_bad_match_fails_config_check_with_its_line", reason)
    d = new_tmpdir("journal-conf")
    path = os.path.join(d, "ward.yaml")
    with open(path, "w") as f:
        f.write(f"storage: {{data_dir: {d}/data}}\nlogs:\n  journal:\n    enabled: true\n"
                f"    matches: [nginx.service]\n")
    p = run_cli(["config", "check", path])
    eq(p.returncode, 2, f"config check of a bad match ({describe(p)})")
    out = p.stdout + p.stderr
    check("logs.journal.matches[0]" in out and "FIELD=value" in out,
          f"the error names the key and the expected form: {out!r}")
