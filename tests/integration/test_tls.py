"""TLS: with server.tls_cert_file and tls_key_file set, ward serves HTTPS only, with the
configured certificate, and the CLI talks to it over https."""

import os
import ssl
import subprocess
import time
import urllib.request

from harness import TestFailure, Ward, check, describe, eq, run_cli, cli_env


def _self_signed(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"openssl req: {describe(p)}")
    return cert, key


def _get(url, ctx, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        return r.status, r.read()


def test_tls_serves_https_with_the_configured_certificate():
    w = Ward("tls", write_config=False)
    cert, key = _self_signed(w.dir)
    w.write_config(text=(f"server:\n  listen: 127.0.0.1:{w.port}\n  tls_cert_file: {cert}\n"
                         f"  tls_key_file: {key}\nlog:\n  format: json\n"
                         f"storage:\n  data_dir: {w.data}\n"))
    w.spawn()
    ctx = ssl.create_default_context(cafile=cert)
    base = f"https://127.0.0.1:{w.port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            st, body = _get(base + "/ready", ctx)
            if st == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or w.proc.poll() is not None:
            raise TestFailure(f"https /ready never answered; stderr: {w.stderr_tail(8)}")
        time.sleep(0.1)
    tok = None
    for _ in range(50):
        import re
        m = re.search(r"ward_[0-9a-f]{64}", w.stdout())
        if m:
            tok = m.group(0)
            break
        time.sleep(0.05)
    check(tok, "no admin token printed")
    st, body = _get(base + "/api/v1/whoami", ctx, tok)
    eq(st, 200, "whoami over https")
    # Plain HTTP on the TLS port gets no answer a client could mistake for success.
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{w.port}/ready", timeout=3) as r:
            raise TestFailure(f"plain http answered {r.status} on a TLS listener")
    except OSError:
        pass
    # The CLI follows https URLs; WARD_CACERT makes it trust our self-signed certificate.
    env = cli_env(url=base, token=tok)
    env["WARD_CACERT"] = cert
    p = run_cli(["token", "list", "--json"], env=env)
    eq(p.returncode, 0, f"ward token list over https ({describe(p)})")
    w.stop()


def test_tls_with_a_missing_key_file_fails_at_start_with_exit_2():
    w = Ward("tlsbad", write_config=False)
    cert, key = _self_signed(w.dir)
    os.unlink(key)
    w.write_config(text=(f"server:\n  listen: 127.0.0.1:{w.port}\n  tls_cert_file: {cert}\n"
                         f"  tls_key_file: {key}\nstorage:\n  data_dir: {w.data}\n"))
    w.spawn()
    rc = w.proc.wait(timeout=30)
    eq(rc, 2, "exit code with an unreadable TLS key")
    check("key.pem" in w.stderr(), f"the error names the key file: {w.stderr()!r}")
    check(not os.path.exists(w.data), "nothing was created in the data directory")
