#!/usr/bin/env python3
"""bench/tsdb/gen.py: the tsdb benchmark: ward versus Prometheus on node_exporter-like data.

Generates HOSTS x SERIES node_exporter-like series (node_cpu_seconds_total, node_memory_*,
node_network_*, node_disk_*, node_filesystem_*, node_netstat_*, node_interrupts_total, ...)
at a 15 s interval over DURATION, ending now, deterministic (seeded), into a spool of ready
remote-write request bodies (protobuf + literal-only snappy block; one request = one host x one
WINDOW of samples), then for each target (ward, then Prometheus: one after the other, never at
the same time, on the same spool) measures:
  ingest   wall time of pushing the whole spool with WRITERS concurrent HTTP connections
           (writer w owns hosts h with h % WRITERS == w, so each series arrives in time order;
           the writers stay within LEAD windows of each other so no series falls behind the
           head's accepted time range); samples/s = samples / wall time.
  memory   VmRSS (/proc/<pid>/status) after ingest minus VmRSS of the freshly started, empty
           process, divided by the number of active series.
  queries  p50/p95 latency over REPEAT runs of a fixed set of range queries over the last 1 h
           (step 15s) and, when DURATION >= 24h, the last 24 h (step 2m).
  disk     bytes per sample (allocated blocks, as du counts them). ward: stopped, then
           `ward tsdb import` of a one-sample file, which ends with a forced maintenance that
           cuts the head into blocks; raw-resolution blocks and all blocks (with the 5m/1h
           downsampled ones) are reported. Prometheus: a snapshot through the admin API, which
           writes the head out as a regular block (the compacted form). Both: the whole data
           directory after the stop (Prometheus: WAL + m-mapped head chunks + blocks, as it
           writes no block on shutdown; ward: blocks + WAL + its state store).
Prints a Markdown table (ward, Prometheus, ward/Prometheus). Informational only: never part of
pass/fail. Python standard library only.
"""

import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "compat"))
import promwire  # noqa: E402


def parse_dur(s):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", s)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {s!r} (use e.g. 15s, 1h, 24h)")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000,
                              "d": 86400000}[m.group(2)]


# ---- the series of one host ----

MEM = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active",
       "Inactive", "Active_anon", "Inactive_anon", "Active_file", "Inactive_file",
       "Unevictable", "Mlocked", "SwapTotal", "SwapFree", "Dirty", "Writeback", "AnonPages",
       "Mapped", "Shmem", "KReclaimable", "Slab", "SReclaimable", "SUnreclaim",
       "KernelStack", "PageTables", "NFS_Unstable", "Bounce", "WritebackTmp", "CommitLimit",
       "Committed_AS", "VmallocTotal", "VmallocUsed", "VmallocChunk", "Percpu",
       "HardwareCorrupted", "AnonHugePages", "ShmemHugePages", "HugePages_Total"]
NET = ["receive_bytes", "receive_packets", "receive_errs", "receive_drop", "receive_fifo",
       "receive_frame", "receive_compressed", "receive_multicast", "transmit_bytes",
       "transmit_packets", "transmit_errs", "transmit_drop", "transmit_fifo",
       "transmit_colls", "transmit_carrier", "transmit_compressed"]
DISK = ["reads_completed", "reads_merged", "read_bytes", "read_time_seconds",
        "writes_completed", "writes_merged", "written_bytes", "write_time_seconds",
        "io_time_seconds", "io_time_weighted_seconds", "discards_completed",
        "flush_requests"]
FS = [("avail_bytes", "g"), ("free_bytes", "g"), ("size_bytes", "c"), ("files", "c"),
      ("files_free", "g"), ("readonly", "c"), ("device_error", "c")]
MOUNTS = [("/dev/sda1", "ext4", "/"), ("/dev/sda2", "ext4", "/var"), ("/dev/sdb1", "xfs",
          "/data"), ("tmpfs", "tmpfs", "/run"), ("tmpfs", "tmpfs", "/dev/shm")]
MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]


def host_series(h, nseries, rnd):
    """[(labels dict, kind tuple)] for host h: exactly nseries series."""
    inst = {"job": "node", "instance": f"host-{h:03d}:9100"}
    out = []

    def add(name, kind, **labels):
        d = dict(inst, __name__=name)
        d.update(labels)
        out.append((d, kind))

    for cpu in range(8):
        for mode in MODES:
            r = {"idle": 0.8, "user": 0.1, "system": 0.05, "iowait": 0.02}.get(mode, 0.002)
            add("node_cpu_seconds_total", ("counter", r * rnd.uniform(0.5, 1.5), 0.01),
                cpu=str(cpu), mode=mode)
    for n in ("node_load1", "node_load5", "node_load15"):
        add(n, ("gauge", rnd.uniform(0, 4), 0.1, 0.01, 0, 64))
    total = rnd.choice([8, 16, 32, 64]) * 1024 ** 3
    for m in MEM:
        if m in ("MemTotal", "SwapTotal", "VmallocTotal", "CommitLimit", "HugePages_Total",
                 "HardwareCorrupted", "Bounce", "NFS_Unstable"):
            add(f"node_memory_{m}_bytes", ("const", float(total if m == "MemTotal" else 0)))
        else:
            add(f"node_memory_{m}_bytes", ("gauge", rnd.uniform(0.01, 0.5) * total,
                                          total * 1e-4, 4096, 0, total))
    for dev in ("eth0", "eth1", "eth2", "eth3", "lo"):
        for m in NET:
            r = 1e5 if m.endswith("bytes") else (100 if m.endswith("packets") else 0.001)
            add(f"node_network_{m}_total", ("counter", r * rnd.uniform(0.1, 3), 1),
                device=dev)
    for dev in ("sda", "sdb", "sdc", "sdd"):
        for m in DISK:
            r = 1e5 if m.endswith("bytes") else (0.01 if m.endswith("seconds") else 10)
            q = 0.001 if m.endswith("seconds") else 1
            add(f"node_disk_{m}_total", ("counter", r * rnd.uniform(0.1, 3), q), device=dev)
    for dev, fstype, mp in MOUNTS:
        size = float(rnd.choice([20, 100, 500]) * 1024 ** 3)
        for m, k in FS:
            kind = ("const", size if m.endswith("bytes") else 0.0) if k == "c" else \
                ("gauge", size * rnd.uniform(0.2, 0.9), size * 1e-5, 4096, 0, size)
            add(f"node_filesystem_{m}", kind, device=dev, fstype=fstype, mountpoint=mp)
    for i in range(100):
        add(f"node_netstat_stat_{i:02d}_total", ("counter", rnd.choice([0, 0.01, 1, 50]), 1))
    i = 0
    while len(out) < nseries:
        add("node_interrupts_total", ("counter", rnd.choice([0, 0.1, 5, 200]), 1),
            cpu=str(i % 8), type=f"irq-{i // 8}", devices=f"dev{i // 8 % 17}")
        i += 1
    return out[:nseries]


def gen_host(job):
    """Writes host h's requests (one per window) to spool/host-h; returns [(off, len, n)]."""
    h, nseries, t0, nsteps, interval, win_steps, spool, seed = job
    rnd = random.Random(seed * 1000003 + h)
    series = host_series(h, nseries, rnd)
    labels = [b"".join(promwire._label(k, v) for k, v in sorted(ls.items()))
              for ls, _ in series]
    state = []
    for _, kind in series:
        if kind[0] == "const":
            state.append(kind[1])
        elif kind[0] == "counter":
            state.append(float(rnd.randint(0, 10 ** 6)) * kind[2])
        else:
            state.append(kind[1])
    # per timestamp: prefix/suffix of the encoded Sample (constant-length varint timestamps)
    pack = struct.Struct("<d").pack
    index = []
    path = os.path.join(spool, f"host-{h:03d}")
    with open(path, "wb") as f:
        for w0 in range(0, nsteps, win_steps):
            steps = range(w0, min(nsteps, w0 + win_steps))
            posts = []
            for s in steps:
                tv = promwire._varint(t0 + s * interval)
                body_len = 1 + 8 + 1 + len(tv)
                posts.append((b"\x12" + bytes([body_len]) + b"\x09", b"\x10" + tv))
            parts = []
            for j, (_, kind) in enumerate(series):
                v = state[j]
                enc = []
                k0 = kind[0]
                for pre, post in posts:
                    if k0 == "counter":
                        rate, q = kind[1], kind[2]
                        inc = rnd.expovariate(1.0) * rate * interval / 1000 if rate else 0
                        v = round(v + round(inc / q) * q, 6)
                    elif k0 == "gauge":
                        _, _, sigma, q, lo, hi = kind
                        v = min(hi, max(lo, round((v + rnd.gauss(0, sigma)) / q) * q))
                    enc.append(pre + pack(v) + post)
                state[j] = v
                body = labels[j] + b"".join(enc)
                parts.append(b"\x0a" + promwire._varint(len(body)) + body)
            blob = promwire.snappy_block(b"".join(parts))
            index.append((f.tell(), len(blob), len(series) * len(steps)))
            f.write(blob)
    return h, index


def build_spool(args, t0, nsteps, spool):
    win_steps = max(1, args.window // args.interval)
    jobs = [(h, args.series, t0, nsteps, args.interval, win_steps, spool, args.seed)
            for h in range(args.hosts)]
    with multiprocessing.Pool(max(1, min(args.gen_procs, os.cpu_count() or 1))) as pool:
        res = dict(pool.imap_unordered(gen_host, jobs))
    return [res[h] for h in range(args.hosts)]


# ---- ingest ----

def push(srv, spool, index, writers, lead):
    """Pushes every request; returns (wall seconds, samples sent, failed requests, first error)."""
    nwin = len(index[0])
    done = [0] * writers  # windows completed per writer
    cond = threading.Condition()
    stats = {"samples": 0, "failed": 0, "error": None}
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    headers.update(srv.auth())

    def writer(w):
        hosts = [h for h in range(len(index)) if h % writers == w]
        files = {h: open(os.path.join(spool, f"host-{h:03d}"), "rb") for h in hosts}
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
        sent = failed = 0
        try:
            for k in range(nwin):
                with cond:
                    cond.wait_for(lambda: k - min(done) <= lead)
                for h in hosts:
                    off, ln, n = index[h][k]
                    f = files[h]
                    f.seek(off)
                    body = f.read(ln)
                    for attempt in range(2):
                        try:
                            conn.request("POST", "/api/v1/write", body, headers)
                            r = conn.getresponse()
                            data = r.read()
                            break
                        except (OSError, http.client.HTTPException):
                            conn.close()
                            conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                              timeout=300)
                            if attempt:
                                raise
                    if r.status // 100 == 2:
                        sent += n
                    else:
                        failed += 1
                        if stats["error"] is None:
                            stats["error"] = f"HTTP {r.status}: {data[:200]!r}"
                with cond:
                    done[w] = k + 1
                    cond.notify_all()
        except Exception as e:  # noqa: BLE001 - reported in the table's notes
            stats["error"] = stats["error"] or f"writer {w}: {e}"
            with cond:
                done[w] = nwin + lead + 1
                cond.notify_all()
        finally:
            conn.close()
            for f in files.values():
                f.close()
            with cond:
                stats["samples"] += sent
                stats["failed"] += failed

    ths = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    t = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return time.monotonic() - t, stats["samples"], stats["failed"], stats["error"]


# ---- queries ----

QUERIES = [
    'rate(node_cpu_seconds_total{mode="idle"}[5m])',
    'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
    '1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes',
    'topk(5, sum by (instance) (rate(node_network_receive_bytes_total[5m])))',
    'avg_over_time(node_load1[5m])',
    'node_filesystem_avail_bytes{instance="host-007:9100",mountpoint="/"}',
    'sum(rate(node_disk_written_bytes_total[5m]))',
    'max by (instance) (rate(node_interrupts_total[5m]))',
]


def time_queries(srv, end_s, span_s, step, repeat):
    """{query: (p50 ms, p95 ms, series returned, error)}."""
    out = {}
    for q in QUERIES:
        params = {"query": q, "start": str(end_s - span_s), "end": str(end_s), "step": step}
        lat = []
        nser, err = None, None
        for i in range(repeat + 1):
            t = time.monotonic()
            r = srv.get("/api/v1/query_range", params, timeout=600)
            dt = (time.monotonic() - t) * 1000
            j = r.json()
            if r.status != 200 or not j or j.get("status") != "success":
                err = f"HTTP {r.status} {r.body[:120]!r}"
                break
            nser = len(j["data"]["result"])
            if i:  # the first run warms caches and is not counted
                lat.append(dt)
        if lat:
            lat.sort()
            p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)]
            out[q] = (statistics.median(lat), p95, nser, err)
        else:
            out[q] = (None, None, nser, err)
    return out


# ---- one target ----

def cut_head(srv, end_s, res):
    """Makes ward write its head out as blocks, with ward's own code, while it is stopped:
    `ward tsdb import` of a one-sample file ends with a forced maintenance (head cut +
    compaction). The extra sample (series ward_bench_cut_marker) is negligible."""
    marker = os.path.join(srv.dir, "cut-marker.prom")
    with open(marker, "w") as f:
        f.write(f"ward_bench_cut_marker 1 {end_s * 1000}\n")
    p = subprocess.run([srv.binary, "tsdb", "import", marker, "--format", "text", "--data",
                        srv.data, "--config", srv.config], capture_output=True, text=True,
                       timeout=3600)
    if p.returncode != 0:
        res["notes"].append(f"ward: forcing a head cut with `ward tsdb import` failed (exit "
                            f"{p.returncode}: {p.stderr.strip()[:200]}); the disk numbers "
                            "include the WAL instead of blocks")


def ward_blocks(tsdb):
    """(bytes of raw-resolution blocks, bytes of all blocks incl. downsampled ones)."""
    raw = allb = 0
    bdir = os.path.join(tsdb, "blocks")
    if not os.path.isdir(bdir):
        return 0, 0
    for b in os.listdir(bdir):
        path = os.path.join(bdir, b)
        size = promwire.Server.du_bytes(None, path)
        allb += size
        try:
            with open(os.path.join(path, "meta.json")) as f:
                if json.load(f).get("resolution", 0) == 0:
                    raw += size
        except (OSError, ValueError):
            pass
    return raw, allb


def measure(srv, args, spool, index, nseries, nsamples, end_s):
    res = {"notes": []}
    srv.start()
    time.sleep(2)
    base = srv.rss_kib()
    res["rss_base_kib"] = base
    wall, sent, failed, error = push(srv, spool, index, args.writers, args.lead)
    res["wall"] = wall
    res["sent"] = sent
    res["failed"] = failed
    if error:
        res["notes"].append(f"{srv.name}: first ingest error: {error}")
    time.sleep(2)
    rss = srv.rss_kib()
    res["rss_kib"] = rss
    res["rss_anon_kib"] = srv.rss_kib("RssAnon")
    res["rss_file_kib"] = srv.rss_kib("RssFile")
    res["rss_per_series"] = (rss - base) * 1024 / nseries
    res["q1h"] = time_queries(srv, end_s, 3600, "15s", args.repeat)
    if args.duration >= 24 * 3600000:
        res["q24h"] = time_queries(srv, end_s, 86400, "120s", max(3, args.repeat // 4))
    if isinstance(srv, promwire.Ward):
        srv.stop()
        cut_head(srv, end_s, res)
        res["disk_total"] = srv.du_bytes()
        raw, allb = ward_blocks(os.path.join(srv.data, "tsdb"))
        res["disk_blocks"] = raw or None
        res["disk_blocks_all"] = allb or None
    else:
        r = promwire.http("POST", srv.url + "/api/v1/admin/tsdb/snapshot?skip_head=false",
                          timeout=600)
        snap = None
        j = r.json()
        if r.status == 200 and j and j.get("status") == "success":
            snap = os.path.join(srv.data, "snapshots", j["data"]["name"])
        else:
            res["notes"].append(f"prometheus snapshot failed: HTTP {r.status} {r.body[:120]!r}")
        srv.stop()
        res["disk_blocks"] = srv.du_bytes(snap) if snap else None
        res["disk_blocks_all"] = res["disk_blocks"]
        shutil.rmtree(os.path.join(srv.data, "snapshots"), ignore_errors=True)
        res["disk_total"] = srv.du_bytes()
    res["bps_blocks"] = res["disk_blocks"] / max(1, sent) if res["disk_blocks"] else None
    res["bps_blocks_all"] = res["disk_blocks_all"] / max(1, sent) \
        if res["disk_blocks_all"] else None
    res["bps_total"] = res["disk_total"] / max(1, sent)
    return res


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}{unit}"
        return f"{v:.3g}{unit}" if abs(v) < 10 else f"{v:.1f}{unit}"
    return f"{v:,}{unit}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "n/a"
    return f"{a / b:.2f}"


def prom_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        m = re.search(r"version (\S+)", out)
        return m.group(1) if m else "?"
    except OSError:
        return "?"


def table(args, results, nseries, nsamples):
    w = results.get("ward", {})
    p = results.get("prometheus", {})
    rows = []

    def row(name, key, unit="", f=None):
        a = f(w) if f else w.get(key)
        b = f(p) if f else p.get(key)
        rows.append(f"| {name} | {fmt(a, unit)} | {fmt(b, unit)} | {ratio(a, b)} |")

    dur_h = args.duration / 3600000
    print(f"\n### tsdb benchmark: {args.hosts} hosts x {args.series} series x {dur_h:g} h at "
          f"{args.interval // 1000} s ({nseries:,} series, {nsamples:,} samples)\n")
    print(f"ward: tsdb.wal_fsync {args.ward_fsync}, other tsdb settings default. "
          f"Prometheus {prom_version(args.prometheus_bin)}, default flags.\n")
    print(f"Ingest: {args.writers} concurrent writers, {args.window // 1000} s of one host per "
          f"request ({args.series * (args.window // args.interval):,} samples). Queries: "
          f"{args.repeat} timed runs each after one warm-up.\n")
    print("| measure | ward | Prometheus | ward/Prometheus |")
    print("|---|---:|---:|---:|")
    row("ingest throughput (samples/s)", None,
        f=lambda r: r["sent"] / r["wall"] if r.get("wall") else None)
    row("ingest wall time (s)", "wall")
    row("samples accepted", "sent")
    row("failed requests", "failed")
    row("disk bytes/sample, blocks (raw resolution)", "bps_blocks")
    row("disk bytes/sample, blocks incl. downsampled", "bps_blocks_all")
    row("disk bytes/sample, whole data dir after stop", "bps_total")
    row("RSS after ingest (MiB)", None, f=lambda r: r["rss_kib"] / 1024 if r.get("rss_kib")
        else None)
    row("  of which anonymous (heap) (MiB)", None,
        f=lambda r: r["rss_anon_kib"] / 1024 if r.get("rss_kib") else None)
    row("  of which mapped files (libraries, mmapped blocks) (MiB)", None,
        f=lambda r: r["rss_file_kib"] / 1024 if r.get("rss_kib") else None)
    row("RSS of the empty process (MiB)", None,
        f=lambda r: r["rss_base_kib"] / 1024 if r.get("rss_base_kib") else None)
    row("RSS per active series (bytes)", "rss_per_series")
    print(rows and "\n".join(rows))
    for key, title in (("q1h", "range queries over 1 h, step 15s"),
                       ("q24h", "range queries over 24 h, step 2m")):
        if key not in w and key not in p:
            continue
        print(f"\n{title}: p50 / p95 latency in ms\n")
        print("| query | series | ward p50 | ward p95 | Prometheus p50 | Prometheus p95 | "
              "p50 ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for q in QUERIES:
            a = w.get(key, {}).get(q, (None, None, None, None))
            b = p.get(key, {}).get(q, (None, None, None, None))
            qq = q.replace("|", "\\|")
            nser = fmt(b[2]) if a[2] is None or a[2] == b[2] else f"{fmt(a[2])} vs {fmt(b[2])}"
            print(f"| `{qq}` | {nser} | {fmt(a[0])} | {fmt(a[1])} | {fmt(b[0])} | "
                  f"{fmt(b[1])} | {ratio(a[0], b[0])} |")
            for who, x in (("ward", a), ("prometheus", b)):
                if x[3]:
                    results.setdefault(who, {}).setdefault("notes", []).append(
                        f"{who}: `{q}` failed: {x[3]}")
            if a[2] is not None and b[2] is not None and a[2] != b[2]:
                results["ward"]["notes"].append(f"`{q}`: ward returned {a[2]} series, "
                                                f"Prometheus {b[2]}")
    notes = w.get("notes", []) + p.get("notes", [])
    if notes:
        print("\nNotes:\n")
        for n in notes:
            print(f"- {n}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--series", type=int, default=1000, help="series per host")
    ap.add_argument("--duration", type=parse_dur, default="1h")
    ap.add_argument("--interval", type=parse_dur, default="15s")
    ap.add_argument("--window", type=parse_dur, default="2m",
                    help="time span of one host per request")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--lead", type=int, default=5, help="windows a writer may run ahead")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--targets", default="ward,prometheus")
    ap.add_argument("--ward-bin", default="build/src/cli/ward")
    ap.add_argument("--prometheus-bin", default="prometheus")
    ap.add_argument("--ward-fsync", default="1s", help="ward's tsdb.wal_fsync (Prometheus "
                    "does not fsync its WAL per request either)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gen-procs", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="where the spool and data directories go")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if isinstance(args.duration, str):
        args.duration = parse_dur(args.duration)
    if isinstance(args.interval, str):
        args.interval = parse_dur(args.interval)
    if isinstance(args.window, str):
        args.window = parse_dur(args.window)
    targets = [t for t in args.targets.split(",") if t]

    root = tempfile.mkdtemp(prefix="ward-bench-tsdb-", dir=args.tmp)
    spool = os.path.join(root, "spool")
    os.makedirs(spool)
    results = {}
    srv = None
    try:
        nsteps = args.duration // args.interval
        end = (int(time.time() * 1000) // args.interval) * args.interval
        t0 = end - nsteps * args.interval
        t = time.monotonic()
        index = build_spool(args, t0, nsteps, spool)
        nseries = args.hosts * args.series
        nsamples = sum(n for ix in index for _, _, n in ix)
        print(f"# spool: {nseries:,} series, {nsamples:,} samples, "
              f"{sum(ln for ix in index for _, ln, _ in ix) / 2 ** 20:,.0f} MiB in "
              f"{time.monotonic() - t:.0f} s", file=sys.stderr)
        end_s = (t0 + (nsteps - 1) * args.interval) // 1000
        for name in targets:
            if name == "ward":
                srv = promwire.Ward(root, os.path.abspath(args.ward_bin),
                                    "{self_scrape_interval: 0s, out_of_order_window: 1h, "
                                    f"wal_fsync: {args.ward_fsync}}}")
            else:
                srv = promwire.Prometheus(root, args.prometheus_bin,
                                          ["--web.enable-admin-api"])
            print(f"# {name}: ingesting", file=sys.stderr)
            results[name] = measure(srv, args, spool, index, nseries, nsamples, end_s)
            print(f"# {name}: {results[name]['sent']:,} samples in "
                  f"{results[name]['wall']:.1f} s", file=sys.stderr)
            srv = None
        table(args, results, nseries, nsamples)
    finally:
        if srv is not None:
            srv.kill()
        if args.keep:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
