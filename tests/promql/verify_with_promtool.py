#!/usr/bin/env python3
"""verify_with_promtool.py: checks the expectations of tests/promql/*.test against the real
Prometheus 2.42 (`promtool test rules`, Debian 12), the version whose answers ward must give.

Every `eval instant` / `eval_fail` / `eval_ordered` / `eval_warn` case becomes one promtool
rule-unit-test file: the loads since the last `clear` as input_series (same expanding notation;
loads with different intervals are re-emitted at their common interval with `_` gaps), the case as
a promql_expr_test with a deliberately impossible expectation so that promtool prints what it
really got ("got: ..." or "err: ..."). `eval range` cases become one instant eval per step
(same answers as a 2.42 range query, except for `@ start()`/`@ end()`, which are skipped).
promtool 2.42 only loads input samples up to the last evaluation_interval tick at or before the
largest eval_time of a group, so each file also carries a dummy `vector(0)` eval just after the
eval times (after the end of the data when the expression has `@` or a negative offset), and
evaluation_interval is that time; it is 1m when the expression has a subquery without a step, as
the evaluation_interval is also the default subquery step.

  --check (default): print every disagreement and a summary; exit 1 if any.
  --fix: rewrite disagreeing instant expectations to promtool's answer, with a comment
         `# expectation from promtool 2.42` above the eval line (ordered, range and fail
         cases are only reported: fix those by hand).
Python stdlib only. Usage: tests/promql/verify_with_promtool.py [--check|--fix] [-j N] [FILE...]
"""
import argparse
import functools
import concurrent.futures
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile

EPSILON = 1e-6
FIX_COMMENT = "# expectation from promtool 2.42"
DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
DUR_MS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000,
          "y": 31536000000}


def parse_duration(s):
    """'1h5m', '10s', '0', '1000' (seconds) -> milliseconds."""
    s = s.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return int(round(float(s) * 1000))
    pos, total = 0, 0
    for m in DUR_RE.finditer(s):
        if m.start() != pos:
            raise ValueError("bad duration %r" % s)
        total += float(m.group(1)) * DUR_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError("bad duration %r" % s)
    return int(round(total))


# ---- labels and values -------------------------------------------------------------------
def parse_labels(s, i):
    """Parses '{a="b", c="d"}' starting at s[i] == '{'. Returns (dict, index after '}')."""
    assert s[i] == "{"
    i += 1
    out = {}
    while True:
        while i < len(s) and s[i] in " \t,":
            i += 1
        if s[i] == "}":
            return out, i + 1
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s, i)
        name = m.group(0)
        i = m.end()
        while s[i] in " \t":
            i += 1
        assert s[i] == "=", s
        i += 1
        while s[i] in " \t":
            i += 1
        q = s[i]
        i += 1
        val = []
        while s[i] != q:
            if s[i] == "\\":
                i += 1
                val.append({"n": "\n", "t": "\t"}.get(s[i], s[i]))
            else:
                val.append(s[i])
            i += 1
        out[name] = "".join(val)
        i += 1


def parse_series_desc(s):
    """'name{a="b"} rest' / '{a="b"} rest' / 'name rest' / 'rest' -> (labels|None, rest)."""
    s = s.strip()
    m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", s)
    labels = None
    i = 0
    if m and m.end() < len(s) and s[m.end()] in " \t{":
        labels = {"__name__": m.group(0)}
        i = m.end()
    if i < len(s) and s[i] == "{":
        ls, i = parse_labels(s, i)
        labels = dict(labels or {}, **ls)
    return labels, s[i:].strip()


def parse_float(tok):
    t = tok.strip()
    low = t.lower()
    if low in ("nan",):
        return math.nan
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    return float(t)


def expand_values(text):
    """promqltest expanding notation -> list of float|None ('_') |'stale'."""
    out = []
    for tok in text.split():
        m = re.fullmatch(r"(.+?)([+-])(.+?)x(\d+)", tok)
        if tok == "_":
            out.append(None)
        elif tok == "stale":
            out.append("stale")
        elif re.fullmatch(r"_x(\d+)", tok):
            out.extend([None] * int(tok[2:]))  # N blanks, where axN is N+1 values
        elif m and not re.fullmatch(r"[-+]?(inf|nan)", tok.lower()):
            a, b, n = parse_float(m.group(1)), parse_float(m.group(3)), int(m.group(4))
            if m.group(2) == "-":
                b = -b
            v = a
            for _ in range(n + 1):
                out.append(v)
                v += b
        elif re.fullmatch(r"(.+)x(\d+)", tok) and "e" not in tok.lower().split("x")[0][-1:]:
            a, n = tok.rsplit("x", 1)
            out.extend([parse_float(a)] * (int(n) + 1))
        else:
            out.append(parse_float(tok))
    return out


def fmt_value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def fmt_labels(ls):
    def esc(v):
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    name = ls.get("__name__", "")
    rest = ", ".join('%s="%s"' % (k, esc(ls[k])) for k in sorted(ls) if k != "__name__")
    if name and re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", name):
        return "%s{%s}" % (name, rest) if rest else name
    if name:
        rest = ('__name__="%s"' % esc(name)) + (", " + rest if rest else "")
    return "{%s}" % rest


def almost_equal(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    s, d = abs(a) + abs(b), abs(a - b)
    if a == 0 or b == 0 or s < 2.2250738585072014e-308:
        return d < EPSILON * 2.2250738585072014e-308
    return d / min(s, 1.7976931348623157e308) < EPSILON


# ---- .test files -----------------------------------------------------------------------
class Case:
    def __init__(self, path, lineno, kind, fail, ordered, expr):
        self.path, self.lineno, self.kind = path, lineno, kind
        self.fail, self.ordered = fail, ordered
        self.expr = expr
        self.t_ms = None          # instant
        self.range = None         # (start, end, step)
        self.exp_lines = []       # (line index, text) of indented expectation lines
        self.loads = []           # [(interval_ms, [(labels_text, values_text)])]
        self.expect_fail = False  # "expect fail" / expected_fail_message lines


def parse_test_file(path):
    lines = open(path, encoding="utf-8", errors="surrogateescape").read().split("\n")
    cases, loads, i = [], [], 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("load "):
            interval = parse_duration(ln.split()[1])
            series = []
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
                body = lines[i].strip()
                if body.startswith("#"):
                    i += 1
                    continue
                ls, rest = parse_series_desc(body)
                series.append((body[:len(body) - len(rest)].strip(), rest))
                i += 1
            loads.append((interval, series))
            continue
        if ln.startswith("clear"):
            loads = []
        elif ln.startswith("eval"):
            m = re.match(r"(eval(?:_fail|_ordered|_warn|_info)?)\s+(instant|range)\s+(.*)$", ln)
            word, kind, rest = m.group(1), m.group(2), m.group(3)
            if kind == "instant":
                m2 = re.match(r"at\s+(\S+)\s+(.*)$", rest)
                c = Case(path, i, kind, word == "eval_fail", word == "eval_ordered", m2.group(2))
                c.t_ms = parse_duration(m2.group(1))
            else:
                m2 = re.match(r"from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.*)$", rest)
                c = Case(path, i, kind, word == "eval_fail", word == "eval_ordered", m2.group(4))
                c.range = tuple(parse_duration(m2.group(k)) for k in (1, 2, 3))
            c.loads = list(loads)
            j = i + 1
            while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip():
                t = lines[j].strip()
                if t.startswith("expected_fail_message") or re.match(r"expect\s+fail", t):
                    c.expect_fail = True
                elif t.startswith("expect ") and "ordered" in t:
                    c.ordered = True
                elif not t.startswith("expect") and not t.startswith("#"):
                    c.exp_lines.append((j, t))
                j += 1
            cases.append(c)
            i = j
            continue
        i += 1
    return lines, cases


def expected_samples(c):
    """Instant: [(labels, value)]. Range: [(labels, [value|None per step])]."""
    out = []
    for _, t in c.exp_lines:
        ls, rest = parse_series_desc(t)
        if ls is None:
            ls = {}
        if c.kind == "instant":
            out.append((ls, parse_float(rest)))
        else:
            out.append((ls, expand_values(rest)))
    return out


# ---- promtool ----------------------------------------------------------------------------
def input_series(c):
    """input_series entries and interval for the case's loads, or raise ValueError."""
    if not c.loads:
        return [], 60000, 0
    intervals = sorted({iv for iv, _ in c.loads})
    if len(intervals) == 1:
        iv = intervals[0]
        ents, npts = [], 0
        for _, series in c.loads:
            for desc, vals in series:
                ents.append((desc, vals))
                npts = max(npts, len(expand_values(vals)))
        return ents, iv, npts * iv
    g = intervals[0]
    for iv in intervals[1:]:
        g = math.gcd(g, iv)
    ents, end = [], 0
    for iv, series in c.loads:
        k = iv // g
        for desc, vals in series:
            out, n = [], 0
            for v in expand_values(vals):
                if n and k > 1:
                    out.append("_" if k == 2 else "_x%d" % (k - 1))
                out.append("_" if v is None else "stale" if v == "stale" else fmt_go(v))
                n += 1
            ents.append((desc, " ".join(out)))
            end = max(end, n * iv)
    return ents, g, end


def fmt_go(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return repr(v)


def yaml_for(c, eval_times, expr):
    ents, iv, end = input_series(c)
    # Data past the eval time matters only to `@` and negative offsets.
    last = max(eval_times + ([end] if re.search(r"@|offset\s*-", expr) else [])) + 1
    ei = "%dms" % last
    if re.search(r":\s*\]", expr):
        ei = "1m"  # also the default subquery step
        last = (last + 59999) // 60000 * 60000
    out = ["evaluation_interval: %s" % ei, "tests:", "  - interval: %dms" % iv, "    input_series:"]
    if not ents:
        out[-1] = "    input_series: []"
    for desc, vals in ents:
        out.append("      - series: %s" % json.dumps(desc))
        out.append("        values: %s" % json.dumps(vals))
    out.append("    promql_expr_test:")
    for t in eval_times:
        out += ["      - expr: %s" % json.dumps(expr), "        eval_time: %dms" % t,
                "        exp_samples:", "          - labels: 'nothing'",
                "            value: -12345"]
    out += ["      - expr: 'vector(0)'", "        eval_time: %dms" % last,
            "        exp_samples:", "          - labels: '{}'", "            value: 0"]
    return "\n".join(out) + "\n"


def parse_got(s):
    """'{a="b"} 1E+00, {..} NaN' or 'nil' -> [(labels, value)]."""
    s = s.strip()
    if s == "nil":
        return []
    out, i = [], 0
    while i < len(s):
        ls, i = parse_labels(s, i)
        j = s.find(", {", i)
        if j < 0:
            j = len(s)
        out.append((ls, parse_float(s[i:j])))
        i = j + 2
    return out


def run_promtool(yaml_text):
    """-> list (per eval, in order) of ('ok', samples) | ('err', msg)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, encoding="utf-8",
                                     errors="surrogateescape") as f:
        f.write(yaml_text)
        name = f.name
    try:
        p = subprocess.run(["promtool", "test", "rules", name], capture_output=True, text=True,
                           errors="replace", timeout=300)
    finally:
        os.unlink(name)
    text = p.stdout + p.stderr
    res = []
    lines = text.split("\n")
    for k, ln in enumerate(lines):
        m = re.match(r'\s+expr: ".*", time: [^,]+,(?: err: (.*))?$', ln)
        if not m:
            continue
        if m.group(1) is not None:
            res.append(("err", m.group(1)))
            continue
        for ln2 in lines[k + 1:k + 4]:
            if ln2.strip().startswith("got: "):
                res.append(("ok", parse_got(ln2.strip()[5:])))
                break
    if not res and p.returncode != 0:
        return [("tool", text.strip())]
    return res


def sample_key(ls):
    return tuple(sorted(ls.items()))


def same_samples(a, b):
    if len(a) != len(b):
        return False
    da = {sample_key(ls): v for ls, v in a}
    for ls, v in b:
        k = sample_key(ls)
        if k not in da or not almost_equal(da[k], v):
            return False
    return True


def to_242_syntax(expr):
    """Rewrites Prometheus 3 syntax that ward also accepts into its 2.42 equivalent, so the case
    can still be verified: double_exponential_smoothing -> holt_winters, `@ 100s` -> `@ 100`,
    unit-less durations `[100]`, `[100:1]`, `offset 50` -> seconds, and a duration as a function
    argument (`predict_linear(x, 1h)`) -> seconds. Returns the rewritten expression."""
    def secs(d):
        ms = parse_duration(d)
        return ("%d" % (ms // 1000)) if ms % 1000 == 0 else repr(ms / 1000)
    e = re.sub(r"\bdouble_exponential_smoothing\s*\(", "holt_winters(", expr)
    e = re.sub(r"@\s*(\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)\b",
               lambda m: "@ " + secs(m.group(1)), e)
    e = re.sub(r"\boffset\s+(-?)(\d+(?:\.\d+)?)(?![\w.])", lambda m: "offset %s%ss" % (
        m.group(1), m.group(2)), e)
    e = re.sub(r"\[(\d+)(?=[:\]])", r"[\1s", e)
    e = re.sub(r":(\d+)\]", r":\1s]", e)
    e = re.sub(r",\s*(\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)\s*\)",
               lambda m: ", " + secs(m.group(1)) + ")", e)
    return e


def check_case(c):
    """-> (status, detail, got) with status in ok|differ|skip."""
    if c.kind == "range":
        if re.search(r"@\s*(start|end)\s*\(\s*\)", c.expr):
            return "skip", "range query with @ start()/end(): not instant evals", None
        start, end, step = c.range
        times = list(range(start, end + 1, step))
    else:
        times = [c.t_ms]
    expr = to_242_syntax(c.expr)
    note = "" if expr == c.expr else " [checked as 2.42 syntax: %s]" % expr
    try:
        res = run_promtool(yaml_for(c, times, expr))
    except ValueError as e:
        return "skip", "cannot express the case: %s" % e, None
    if res and res[0][0] == "tool":
        return "skip", "promtool rejected the test file: %s" % res[0][1].replace("\n", " | "), None
    if len(res) != len(times):
        return "skip", "could not read promtool's answer (%d of %d)" % (len(res), len(times)), None
    want_fail = c.fail or c.expect_fail
    errs = [r[1] for r in res if r[0] == "err"]
    if want_fail:
        if errs:
            return "ok", note + "fails in promtool too: %s" % errs[0], None
        return "differ", note + "expected failure, promtool 2.42 got %s" % fmt_samples(
            res[0][1]), None
    if errs and re.match(r"\s*\(*\s*[\"'`]", c.expr):
        return "skip", "string result: promtool rule tests take vectors and scalars only", None
    if errs:
        return "differ", note + "promtool 2.42 fails: %s" % errs[0], None
    exp = expected_samples(c)
    if c.kind == "instant":
        got = res[0][1]
        if same_samples(exp, got):
            return "ok", note + "", got
        return "differ", note + "want %s\n      got  %s" % (fmt_samples(exp), fmt_samples(got)), got
    # range: per step
    for si, t in enumerate(times):
        want_t = [(ls, vs[si]) for ls, vs in exp if si < len(vs) and vs[si] is not None]
        if not same_samples(want_t, res[si][1]):
            return "differ", note + "at step %dms: want %s\n      got  %s" % (
                t, fmt_samples(want_t), fmt_samples(res[si][1])), res
    return "ok", note + "", res


def fmt_samples(ss):
    if not ss:
        return "(empty)"
    return ", ".join("%s %s" % (fmt_labels(ls), fmt_value(v)) for ls, v in ss)


def fix_file(path, lines, fixes):
    """fixes: [(case, got samples)] for instant, non-fail, non-ordered cases."""
    edits = sorted(fixes, key=lambda f: f[0].lineno, reverse=True)
    for c, got in edits:
        indent = "  "
        first = c.lineno + 1
        last = c.lineno
        j = c.lineno + 1
        while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip():
            if lines[j][:1] == "\t":
                indent = "\t"
            last = j
            j += 1
        keep = [lines[k] for k in range(first, last + 1)
                if lines[k].strip().startswith(("expect", "#"))]
        got_sorted = sorted(got, key=lambda s: fmt_labels(s[0]))
        new = keep + ["%s%s %s" % (indent, fmt_labels(ls), fmt_value(v)) for ls, v in got_sorted]
        lines[first:last + 1] = new
        if lines[c.lineno - 1].strip() != FIX_COMMENT:
            lines.insert(c.lineno, FIX_COMMENT)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(lines))


print = functools.partial(print, flush=True)  # noqa: A001 (progress while running)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true")
    g.add_argument("--fix", action="store_true")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("-v", action="store_true", help="print agreeing cases too")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "*.test")))
    counts = {"ok": 0, "differ": 0, "skip": 0}
    for path in files:
        lines, cases = parse_test_file(path)
        with concurrent.futures.ThreadPoolExecutor(a.j) as ex:
            results = list(ex.map(check_case, cases))
        fixes = []
        for c, (st, detail, got) in zip(cases, results):
            counts[st] += 1
            if st == "ok" and not a.v:
                continue
            print("%s:%d: %s: %s  %s" % (os.path.basename(path), c.lineno + 1, st.upper(),
                                         c.expr, detail))
            if st == "differ" and a.fix:
                if c.kind == "instant" and not c.fail and not c.expect_fail and not c.ordered \
                        and got is not None:
                    fixes.append((c, got))
                else:
                    print("      (not fixed automatically: %s case)" % (
                        "range" if c.kind == "range" else "ordered" if c.ordered else "fail"))
        if fixes:
            fix_file(path, lines, fixes)
    print("promtool 2.42: %d agree, %d differ, %d not verifiable" % (
        counts["ok"], counts["differ"], counts["skip"]))
    return 1 if counts["differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
