"""Request limits: per-client rate limit (429 + Retry-After) and body size (413)."""

import time

from harness import Ward, check, eq, metric_value


def burst(w, n, path="/api/v1/whoami"):
    """n requests as fast as possible; returns the responses."""
    return [w.get(path, token=w.admin_token) for _ in range(n)]


def test_rate_limit_returns_429_with_retry_after():
    w = Ward("rate", limits={"rate_per_client": 2, "burst": 3}).start()
    time.sleep(2.0)  # start-up polling used part of the bucket; let it refill (3 / 2 per s)
    rs = burst(w, 10)
    codes = [r.status for r in rs]
    eq(codes[0], 200, f"first request of a full bucket (codes {codes})")
    check(codes.count(200) >= 3, f"a bucket of 3 allowed fewer than 3 requests: {codes}")
    limited = [r for r in rs if r.status == 429]
    check(limited, f"10 requests at once with burst 3 were never limited: {codes}")
    r = limited[0]
    j = r.json()
    eq((j.get("status"), j.get("errorType")), ("error", "too_many_requests"), "429 envelope")
    ra = r.headers.get("Retry-After")
    check(ra is not None and ra.strip().isdigit() and int(ra) >= 1,
          f"429 without a Retry-After of whole seconds >= 1: {ra!r}")
    check(int(ra) <= 5, f"Retry-After {ra} is far longer than a 2/s refill needs")
    time.sleep(int(ra) + 0.2)
    eq(w.get("/api/v1/whoami", token=w.admin_token).status, 200, "after waiting Retry-After")
    n = metric_value(w.metrics(), "ward_http_rate_limited_total")
    check(n is not None and n >= len(limited),
          f"ward_http_rate_limited_total is {n!r}, want >= {len(limited)}")
    w.stop()


def test_body_over_max_body_gets_413():
    w = Ward("body", limits={"max_body": "1KiB"}).start()
    small = {"name": "small", "role": "viewer"}
    eq(w.request("POST", "/api/v1/tokens", token=w.admin_token, body=small).status, 201,
       "a small body")
    big = {"name": "big", "role": "viewer", "pad": "x" * 4096}
    r = w.request("POST", "/api/v1/tokens", token=w.admin_token, body=big)
    eq(r.status, 413, "a 4 KiB body with max_body 1KiB")
    j = r.json()
    eq((j.get("status"), j.get("errorType")), ("error", "too_large"), "413 envelope")
    names = {t.get("name") for t in w.api("GET", "/api/v1/tokens")}
    check("big" not in names, "the request over max_body was executed anyway")
    eq(w.get("/ready").status, 200, "server still ready after a 413")
    w.stop()


def test_idle_connection_is_closed_after_connection_timeout():
    import socket
    w = Ward("idle", limits={"connection_timeout": "1s"}).start()
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # a request that never ends
    t0 = time.monotonic()
    try:
        data = s.recv(4096)
    except socket.timeout:
        data = None
    dt = time.monotonic() - t0
    s.close()
    check(data is not None, "a stalled connection was still open after 10s (timeout 1s)")
    check(dt < 6, f"a stalled connection was closed only after {dt:.1f}s (timeout 1s)")
    eq(w.get("/ready").status, 200, "server still ready")
    w.stop()
