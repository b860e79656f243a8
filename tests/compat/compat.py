#!/usr/bin/env python3
"""compat.py: side-by-side PromQL correctness test of ward against a real Prometheus.

Starts Prometheus (--web.enable-remote-write-receiver, no scrape targets) and `ward serve`, each
on a free 127.0.0.1 port with a temporary data directory, writes the same deterministic data
set (seeded: counters with resets, gauges with NaN/±Inf, classic histograms, series that start
late and stop early with an explicit staleness marker, gaps; ~50 series x 2 h at 15 s) into
both through remote write, then runs every query of queries.txt against both HTTP APIs: as
instant queries at several times and as range queries with steps 15s, 60s and 5m, and compares
the answers (result type, label sets, timestamps, values with relative tolerance 1e-9; order
for sort/sort_desc/topk/bottomk at the top of an instant query; errors: both must fail, with
the same HTTP status and errorType).
Also compares /api/v1/series, labels, label values, status/buildinfo (keys), and the query
endpoints' parameters (POST forms, RFC 3339 times, requests both must refuse). Prometheus runs
with its default evaluation_interval (1m), the step of a subquery without one.
Prints one line per query (PASS/FAIL + compact diff) and `N passed, N failed`; exit 1 on any
failure. --against prometheus compares Prometheus with a second Prometheus (validates the
harness: everything must pass). Python standard library only.
"""

import argparse
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import promwire  # noqa: E402
from promwire import STALE  # noqa: E402

SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                          r"UndefinedBehaviorSanitizer")
STEP_MS = 15000
DURATION_MS = 2 * 3600 * 1000
REL_TOL = 1e-9
QUERY_TIMEOUT = 60  # seconds per HTTP request
ABS_TOL = 1e-12  # below this two values count as equal (sums of ~1e3 terms in another order)


# ---- the data set ----

def gen_data(seed, t0):
    """Returns {labels_tuple: [(t_ms, value)]} for ~50 series from t0 over 2 h at 15 s."""
    rnd = random.Random(seed)
    n = DURATION_MS // STEP_MS + 1
    ts = [t0 + i * STEP_MS for i in range(n)]
    out = {}

    def put(labels, samples):
        out[tuple(sorted(labels.items()))] = samples

    # counters with resets: 3 instances x 2 methods x 2 codes = 12 series
    for inst in ("a", "b", "c"):
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                rate = rnd.uniform(0.5, 20) if code == "200" else rnd.uniform(0.01, 1)
                v = rnd.uniform(0, 1000)
                resets = set(rnd.sample(range(10, n - 10), rnd.randint(0, 2)))
                s = []
                for i, t in enumerate(ts):
                    if i in resets:
                        v = rnd.uniform(0, 5)
                    else:
                        v += rnd.uniform(0, 2 * rate) * 15
                    s.append((t, round(v, 3)))
                put({"__name__": "http_requests_total", "job": "api", "instance": inst,
                     "method": method, "code": code}, s)

    # gauges: 3 instances x 2 sensors; one sensor of one instance gets NaN and +-Inf
    for inst in ("a", "b", "c"):
        for sensor in ("cpu", "disk"):
            v = rnd.uniform(30, 70)
            s = []
            for i, t in enumerate(ts):
                v += rnd.gauss(0, 1.5)
                val = v
                if inst == "c" and sensor == "disk":
                    r = rnd.random()
                    if r < 0.02:
                        val = float("nan")
                    elif r < 0.03:
                        val = float("inf")
                    elif r < 0.04:
                        val = float("-inf")
                s.append((t, val))
            put({"__name__": "node_temp_celsius", "job": "node", "instance": inst,
                 "sensor": sensor}, s)

    # an up-like gauge of 0/1 values, 3 series
    for inst in ("a", "b", "c"):
        s = [(t, 0.0 if rnd.random() < 0.1 else 1.0) for t in ts]
        put({"__name__": "up", "job": "api", "instance": inst}, s)

    # classic histograms: 2 instances x 2 handlers x (5 buckets + sum + count) = 28 series
    les = ["0.1", "0.5", "1", "5", "+Inf"]
    bounds = [0.1, 0.5, 1.0, 5.0, math.inf]
    for inst in ("a", "b"):
        for handler in ("/x", "/y"):
            counts = [0] * 5
            total = 0.0
            bs = [[] for _ in les]
            sums, cnts = [], []
            reset_at = rnd.randint(n // 3, 2 * n // 3) if handler == "/y" else -1
            scale = rnd.uniform(0.1, 2)
            for i, t in enumerate(ts):
                if i == reset_at:
                    counts = [0] * 5
                    total = 0.0
                for _ in range(rnd.randint(0, 12)):
                    d = rnd.expovariate(1 / scale)
                    total += d
                    for j, b in enumerate(bounds):
                        if d <= b:
                            counts[j] += 1
                for j in range(5):
                    bs[j].append((t, float(counts[j])))
                sums.append((t, round(total, 6)))
                cnts.append((t, float(counts[4])))
            base = {"job": "api", "instance": inst, "handler": handler}
            for j, le in enumerate(les):
                put(dict(base, __name__="request_duration_seconds_bucket", le=le), bs[j])
            put(dict(base, __name__="request_duration_seconds_sum"), sums)
            put(dict(base, __name__="request_duration_seconds_count"), cnts)

    # a series that starts late and stops early with an explicit staleness marker
    s = []
    v = 0.0
    for i, t in enumerate(ts):
        if 120 <= i < 320:
            v += rnd.randint(0, 10)
            s.append((t, v))
        elif i == 320:
            s.append((t, STALE))
    put({"__name__": "batch_items_processed_total", "job": "batch", "instance": "x"}, s)
    # ... and one that only starts late (no marker: it runs to the end)
    s = [(t, float(i - 200) * 0.5) for i, t in enumerate(ts) if i >= 200]
    put({"__name__": "batch_items_processed_total", "job": "batch", "instance": "y"}, s)

    # gaps: samples missing for 4 and 12 minutes
    for inst in ("a", "b"):
        s = []
        v = rnd.uniform(0, 10)
        for i, t in enumerate(ts):
            if 100 <= i < 116 or 300 <= i < 348:
                continue
            v = max(0.0, v + rnd.uniform(-1, 1))
            s.append((t, round(v, 4)))
        put({"__name__": "queue_depth", "job": "worker", "instance": inst}, s)
    return out


def write_all(server, data, batch_ms=10 * 60 * 1000):
    """Writes the data in time order, one request per batch_ms window of all series."""
    keys = sorted(data)
    idx = {k: 0 for k in keys}
    t0 = min(s[0][0] for s in data.values() if s)
    tend = max(s[-1][0] for s in data.values() if s)
    lo = t0
    while lo <= tend:
        hi = lo + batch_ms
        batch = []
        for k in keys:
            s = data[k]
            i = idx[k]
            j = i
            while j < len(s) and s[j][0] < hi:
                j += 1
            if j > i:
                batch.append((k, s[i:j]))
            idx[k] = j
        if batch:
            r = server.write(promwire.encode_write_request(batch))
            if r.status // 100 != 2:
                raise RuntimeError(f"{server.name}: remote write answered {r.status}: "
                                   f"{r.body[:300]!r}")
        lo = hi


# ---- queries and comparison ----

def load_queries(path, t0s):
    subs = {"$T0": t0s, "$T30M": t0s + 1800, "$T1H": t0s + 3600, "$TEND": t0s + 7200}
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for k in sorted(subs, key=len, reverse=True):
                line = line.replace(k, str(subs[k]))
            out.append(line)
    return out


def fval(s):
    return float(s)  # Python parses "NaN", "+Inf", "-Inf" as Prometheus writes them


def veq(a, b):
    if a == b:
        return True
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))


def lkey(metric):
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def ordered_kind(q):
    """'sort' when the query's outermost operation sorts the instant vector by value: then
    the order of values is compared (ties may come in either order)."""
    m = re.match(r"^\s*(sort|sort_desc|topk|bottomk)\s*\(", q)
    if not m:
        return None
    if m.group(1) in ("topk", "bottomk") and re.search(r"\)\s*(by|without)\s*\(", q) or \
            re.match(r"^\s*(topk|bottomk)\s*(by|without)", q):
        return None
    # the function must span the whole query
    depth = 0
    for i, c in enumerate(q):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and q[i + 1:].strip():
                return None
    return "sort"


class Answer:
    def __init__(self, r):
        if isinstance(r, Exception):  # no HTTP answer at all: connection refused, timeout
            self.status, self.raw, self.ok, self.error = 0, b"", False, f"no answer: {r}"
            self.error_type = None
            self.type = self.data = None
            return
        self.status = r.status
        self.raw = r.body[:300]
        j = r.json()
        self.ok = r.status == 200 and j is not None and j.get("status") == "success"
        self.error = None if self.ok else (j or {}).get("error", self.raw)
        self.error_type = None if self.ok else (j or {}).get("errorType")
        self.type = None
        self.data = None
        if self.ok:
            self.type = j["data"]["resultType"]
            self.data = j["data"]["result"]


def compare(q, pa, wa, instant):
    """Returns None when the answers agree, else a short description of the difference."""
    if pa.ok != wa.ok:
        if pa.ok:
            return f"prometheus succeeded, ward failed: HTTP {wa.status} {str(wa.error)[:200]}"
        return f"prometheus failed ({str(pa.error)[:120]}), ward succeeded ({wa.type})"
    if not pa.ok:
        if (pa.status, pa.error_type) != (wa.status, wa.error_type):
            return (f"both failed, differently: prometheus HTTP {pa.status} {pa.error_type} "
                    f"({str(pa.error)[:80]}), ward HTTP {wa.status} {wa.error_type} "
                    f"({str(wa.error)[:80]})")
        return None
    if pa.type != wa.type:
        return f"resultType prometheus={pa.type} ward={wa.type}"
    if pa.type in ("scalar", "string"):
        (pt, pv), (wt, wv) = pa.data, wa.data
        if pt != wt:
            return f"timestamp prometheus={pt} ward={wt}"
        if pa.type == "string":
            return None if pv == wv else f"string prometheus={pv!r} ward={wv!r}"
        return None if veq(fval(pv), fval(wv)) else f"value prometheus={pv} ward={wv}"
    if pa.type == "vector":
        pm = {lkey(e["metric"]): e["value"] for e in pa.data}
        wm = {lkey(e["metric"]): e["value"] for e in wa.data}
    else:
        pm = {lkey(e["metric"]): e["values"] for e in pa.data}
        wm = {lkey(e["metric"]): e["values"] for e in wa.data}
    if len(pm) != len(pa.data) or len(wm) != len(wa.data):
        return (f"duplicate label sets: prometheus {len(pa.data)} series/{len(pm)} distinct, "
                f"ward {len(wa.data)}/{len(wm)}")
    only_p = sorted(set(pm) - set(wm))
    only_w = sorted(set(wm) - set(pm))
    if only_p or only_w:
        msg = f"label sets differ ({len(pm)} vs {len(wm)} series)"
        if only_p:
            msg += f"; only in prometheus: {', '.join(only_p[:3])}" + \
                (f" (+{len(only_p) - 3})" if len(only_p) > 3 else "")
        if only_w:
            msg += f"; only in ward: {', '.join(only_w[:3])}" + \
                (f" (+{len(only_w) - 3})" if len(only_w) > 3 else "")
        return msg
    for k in sorted(pm):
        pv, wv = pm[k], wm[k]
        if pa.type == "vector":
            pv, wv = [pv], [wv]
        pts = {p[0]: p[1] for p in pv}
        wts = {p[0]: p[1] for p in wv}
        if list(pts) != list(wts):
            miss = sorted(set(pts) - set(wts))
            extra = sorted(set(wts) - set(pts))
            return (f"{k}: timestamps differ ({len(pts)} vs {len(wts)} points); "
                    f"only in prometheus: {miss[:4]}{'...' if len(miss) > 4 else ''}; "
                    f"only in ward: {extra[:4]}{'...' if len(extra) > 4 else ''}")
        bad = [(t, pts[t], wts[t]) for t in pts if not veq(fval(pts[t]), fval(wts[t]))]
        if bad:
            t, a, b = bad[0]
            return (f"{k}: {len(bad)} value(s) differ, first at t={t}: prometheus={a} "
                    f"ward={b}")
    if instant and pa.type == "vector" and ordered_kind(q):
        pseq = [fval(e["value"][1]) for e in pa.data]
        wseq = [fval(e["value"][1]) for e in wa.data]
        if not all(veq(a, b) for a, b in zip(pseq, wseq)):
            return f"order differs: prometheus {pseq[:6]} ward {wseq[:6]}"
    return None


def run_query(srv, q, mode):
    try:
        if mode[0] == "instant":
            return Answer(srv.get("/api/v1/query", {"query": q, "time": f"{mode[1]:.3f}"},
                                  timeout=QUERY_TIMEOUT))
        _, start, end, step = mode
        return Answer(srv.get("/api/v1/query_range",
                              {"query": q, "start": f"{start:.3f}", "end": f"{end:.3f}",
                               "step": step}, timeout=QUERY_TIMEOUT))
    except OSError as e:
        return Answer(e)


def api_checks(prom, ward, t0s):
    """The metadata endpoints: label names, label values, series (sorted lists compared)."""
    rng = {"start": str(t0s), "end": str(t0s + 7800)}
    checks = [
        ("/api/v1/labels", dict(rng)),
        ("/api/v1/labels", dict(rng, **{"match[]": 'up'})),
        ("/api/v1/label/__name__/values", dict(rng)),
        ("/api/v1/label/instance/values", dict(rng)),
        ("/api/v1/label/le/values", dict(rng)),
        ("/api/v1/label/instance/values", dict(rng, **{"match[]": 'queue_depth'})),
        ("/api/v1/label/nonexistent/values", dict(rng)),
        ("/api/v1/series", dict(rng, **{"match[]": 'http_requests_total{code="500"}'})),
        ("/api/v1/series", dict(rng, **{"match[]": ['up', 'queue_depth{instance=~"a|x"}']})),
        ("/api/v1/series", dict(rng, **{"match[]": '{__name__=~"request_duration.*",le="1"}'})),
        ("/api/v1/series", {"start": str(t0s + 7300), "end": str(t0s + 7400),
                            "match[]": 'batch_items_processed_total'}),
        # Grafana asks for exemplars of a panel's query; neither server stores any here
        ("/api/v1/query_exemplars", dict(rng, query='rate(http_requests_total[5m])')),
        ("/api/v1/query_exemplars", {"query": "up", "start": str(t0s + 60), "end": str(t0s)}),
        ("/api/v1/query_exemplars", dict(rng, query='sum(up')),
        ("/api/v1/query_exemplars", dict(rng, start="yesterday", query='up')),
        # Grafana's data source with its default HTTP method POST sends these as forms
        ("POST /api/v1/labels", dict(rng, **{"match[]": 'queue_depth'})),
        ("POST /api/v1/series", dict(rng, **{"match[]": ['up', 'queue_depth']})),
        ("POST /api/v1/query_exemplars", dict(rng, query='http_requests_total')),
    ]
    results = []
    pr, wr = prom.get("/api/v1/status/buildinfo"), ward.get("/api/v1/status/buildinfo")
    pj, wj = pr.json() or {}, wr.json() or {}
    pk, wk = sorted((pj.get("data") or {}).keys()), sorted((wj.get("data") or {}).keys())
    results.append(("API /api/v1/status/buildinfo (same keys)",
                    None if (pr.status, pj.get("status"), pk) == (wr.status, wj.get("status"), wk)
                    else f"prometheus HTTP {pr.status} keys {pk}, ward HTTP {wr.status} keys {wk}"))
    for path, params in checks:
        method, _, path = path.rpartition(" ")
        shown = params.get("match[]", "")
        if "query" in params:
            st, en = params["start"], params["end"]
            shown = f"query={params['query']}" + (
                f" start={st}" if not st.isdigit() else
                " (end before start)" if int(en) < int(st) else "")
        name = f"API {method + ' ' if method else ''}{path} {shown}".strip()
        if method == "POST":
            pr, wr = prom.post_form(path, params), ward.post_form(path, params)
        else:
            pr, wr = prom.get(path, params), ward.get(path, params)
        pj, wj = pr.json(), wr.json()
        pok = pr.status == 200 and pj and pj.get("status") == "success"
        wok = wr.status == 200 and wj and wj.get("status") == "success"
        if pok != wok:
            results.append((name, f"prometheus HTTP {pr.status}, ward HTTP {wr.status} "
                                  f"{wr.body[:200]!r}"))
            continue
        if not pok:
            results.append((name, None))
            continue
        pd, wd = pj["data"], wj["data"]
        if path.endswith("/series"):
            pd = sorted(lkey(m) for m in pd)
            wd = sorted(lkey(m) for m in wd)
        else:
            pd, wd = sorted(pd), sorted(wd)
        if pd != wd:
            results.append((name, f"prometheus {pd[:8]} ward {wd[:8]} "
                                  f"(only prometheus: {sorted(set(pd) - set(wd))[:5]}, "
                                  f"only ward: {sorted(set(wd) - set(pd))[:5]})"))
        else:
            results.append((name, None))
    return results


def http_checks(prom, ward, t0s):
    """The query endpoints' parameters: POST forms (Grafana's default), time formats, and
    the requests both must refuse. Compared like queries: answer, or error status and type."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0s + 1800))
    q = "sum by (instance) (rate(http_requests_total[5m]))"
    rng = {"query": q, "start": str(t0s), "end": str(t0s + 3600), "step": "60"}
    checks = [
        ("POST", "/api/v1/query", {"query": q, "time": str(t0s + 1800)}, True),
        ("POST", "/api/v1/query_range", rng, False),
        ("POST", "/api/v1/query_range", dict(rng, step="1m"), False),
        ("GET", "/api/v1/query", {"query": q, "time": iso}, True),
        ("GET", "/api/v1/query", {"query": q, "time": f"{t0s + 1800}.123"}, True),
        ("GET", "/api/v1/query_range", dict(rng, start=iso, step="0.5m"), False),
        ("GET", "/api/v1/query_range", dict(rng, step="15.5"), False),
        ("GET", "/api/v1/query_range", dict(rng, start=str(t0s + 3600), end=str(t0s + 3600)),
         False),
        # refused by both
        ("GET", "/api/v1/query", {"time": str(t0s)}, True),
        ("GET", "/api/v1/query", {"query": "up", "time": "yesterday"}, True),
        ("GET", "/api/v1/query_range", dict(rng, step="0"), False),
        ("GET", "/api/v1/query_range", dict(rng, step="-15"), False),
        ("GET", "/api/v1/query_range", dict(rng, start=str(t0s + 3600), end=str(t0s)), False),
        ("GET", "/api/v1/query_range", dict(rng, start=str(t0s), end=str(t0s + 86400),
                                            step="1"), False),
        ("GET", "/api/v1/query_range", {"query": "up", "start": str(t0s)}, False),
        ("GET", "/api/v1/query_range", dict(rng, query="up[5m]"), False),
        ("GET", "/api/v1/query_range", dict(rng, query='"a string"'), False),
    ]
    results = []
    for method, path, params, instant in checks:
        shown = {k: v for k, v in params.items() if k != "query" or v != q}
        name = f"HTTP {method} {path} {urllib.parse.unquote(urllib.parse.urlencode(shown))}"
        try:
            if method == "POST":
                pa, wa = Answer(prom.post_form(path, params)), Answer(ward.post_form(path, params))
            else:
                pa, wa = Answer(prom.get(path, params)), Answer(ward.get(path, params))
        except OSError as e:
            results.append((name, f"no answer: {e}"))
            continue
        results.append((name, compare(params.get("query", ""), pa, wa, instant)))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ward-bin", default=None,
                    help="the ward executable (default: build-test/src/cli/ward of this tree)")
    ap.add_argument("--prometheus-bin", default="prometheus")
    ap.add_argument("--against", choices=("ward", "prometheus"), default="ward",
                    help="the server compared with Prometheus (prometheus: harness self-test)")
    ap.add_argument("--keep", action="store_true", help="keep servers' directories (and print "
                    "where), for debugging")
    ap.add_argument("--only", metavar="REGEX", help="run only the queries matching REGEX")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"))
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--verbose", action="store_true", help="print every mode's failure, not "
                    "only the first per query")
    args = ap.parse_args()
    if args.ward_bin is None:
        args.ward_bin = os.path.join(HERE, "..", "..", "build-test", "src", "cli", "ward")

    root = tempfile.mkdtemp(prefix="ward-compat-")
    servers = []
    dead = []
    failed = passed = 0
    try:
        prom = promwire.Prometheus(root, args.prometheus_bin)
        if args.against == "ward":
            if not os.access(args.ward_bin, os.X_OK):
                print(f"compat: {args.ward_bin} is not an executable; build ward first or pass "
                      "--ward-bin", file=sys.stderr)
                return 2
            other = promwire.Ward(root, os.path.abspath(args.ward_bin))
        else:
            other = promwire.Prometheus(root, args.prometheus_bin)
            other.name = "prometheus-2"
        servers = [prom, other]
        prom.start()
        other.start()

        # data 3 h before now (aligned to the hour), so neither server treats it as too old
        now_ms = int(time.time() * 1000)
        t0 = (now_ms // 3600000) * 3600000 - 3 * 3600000
        t0s = t0 // 1000
        data = gen_data(args.seed, t0)
        nsamples = sum(len(s) for s in data.values())
        for s in servers:
            write_all(s, data)
        print(f"# wrote {len(data)} series, {nsamples} samples into each; t0={t0s}")

        queries = load_queries(args.queries, t0s)
        if args.only:
            rx = re.compile(args.only)
            queries = [q for q in queries if rx.search(q)]
        modes = [("instant", t0s + 60), ("instant", t0s + 1800), ("instant", t0s + 3607.5),
                 ("instant", t0s + 4800), ("instant", t0s + 4807.5),
                 ("instant", t0s + 7200), ("instant", t0s + 7440), ("instant", t0s + 8000),
                 ("range", t0s - 300, t0s + 7800, "15s"), ("range", t0s, t0s + 7200, "60s"),
                 ("range", t0s + 17, t0s + 7500, "300")]
        for q in queries:
            dead = [s for s in servers if s.proc.poll() is not None]
            if dead:
                failed += 1
                print(f"FAIL {dead[0].name} exited with {dead[0].proc.returncode} before "
                      f"query {q!r}; the remaining queries were not run. Log tail:\n"
                      f"{dead[0].log_tail(30)}")
                break
            diffs = []
            for mode in modes:
                d = compare(q, run_query(prom, q, mode), run_query(other, q, mode),
                            mode[0] == "instant")
                if d:
                    where = (f"instant@{mode[1] - t0s:+g}s" if mode[0] == "instant" else
                             f"range[{mode[1] - t0s:+g}s..{mode[2] - t0s:+g}s step {mode[3]}]")
                    diffs.append(f"{where}: {d}")
            if diffs:
                failed += 1
                print(f"FAIL {q}")
                for d in (diffs if args.verbose else diffs[:2]):
                    print(f"     {d}")
                if not args.verbose and len(diffs) > 2:
                    print(f"     (+{len(diffs) - 2} more modes differ)")
            else:
                passed += 1
                print(f"PASS {q}")
            sys.stdout.flush()
        if not args.only:
            for name, d in api_checks(prom, other, t0s) + http_checks(prom, other, t0s):
                if d:
                    failed += 1
                    print(f"FAIL {name}\n     {d}")
                else:
                    passed += 1
                    print(f"PASS {name}")
        for s in servers:
            if s.proc.poll() is not None and not dead:
                failed += 1
                print(f"FAIL {s.name} exited with {s.proc.returncode} during the run:\n"
                      f"{s.log_tail()}")
    except Exception as e:  # noqa: BLE001 - reported as a failure, with the servers' logs
        failed += 1
        print(f"FAIL harness: {e}")
        for s in servers:
            print(f"--- {s.name} log tail:\n{s.log_tail()}")
    finally:
        for s in servers:
            s.stop()
        for s in servers:
            m = SANITIZER_RE.search(s.log_tail(10 ** 6))
            if m:
                failed += 1
                print(f"FAIL {s.name}: sanitizer report: {m.group(0)}\n"
                      f"{s.log_tail(10 ** 6)[m.start():m.start() + 2000]}")
        if args.keep:
            print(f"# kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
