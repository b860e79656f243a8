"""`ward config check` and `ward config default`: offline validation with file:line:col."""

import json
import os
import re

from harness import check, cli_env, describe, eq, new_tmpdir, run_cli

GOOD = """server:
  listen: 127.0.0.1:9797
  threads: 4
  limits: {max_body: 1MiB, max_header: 16KiB, rate_per_client: 100, burst: 200,
           connection_timeout: 30s, max_connections: 512, max_connections_per_client: 64}
log: {level: info, format: auto}
storage: {data_dir: ./ward-data}
"""


def write(name, text):
    d = new_tmpdir("conf")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_bad(text, line=None, mention=None, what=""):
    path = write("ward.yaml", text)
    p = run_cli(["config", "check", path])
    eq(p.returncode, 2, f"ward config check on {what} ({describe(p)})")
    out = p.stdout + p.stderr
    pat = re.escape(path) + r":(\d+):(\d+)"
    m = re.search(pat, out) or re.search(r"ward\.yaml:(\d+):(\d+)", out)
    check(m, f"{what}: no file:line:col in {out!r}")
    if line is not None:
        eq(int(m.group(1)), line, f"{what}: line in {m.group(0)}")
    if mention:
        check(mention in out, f"{what}: message does not mention {mention!r}: {out!r}")
    return p


def test_config_check_accepts_a_good_file():
    path = write("ward.yaml", GOOD)
    p = run_cli(["config", "check", path])
    eq(p.returncode, 0, f"ward config check on a good file ({describe(p)})")
    p = run_cli(["config", "check", path, "--json"])
    eq(p.returncode, 0, f"--json on a good file ({describe(p)})")
    j = json.loads(p.stdout)
    eq((j.get("ok"), j.get("errors")), (True, []), "--json of a good file")


def test_config_check_reports_a_syntax_error_with_file_line_col_and_exit_2():
    check_bad("server:\n  listen: 127.0.0.1:9797\n  limits: [oops\nlog:\n  level: info\n",
              what="a YAML syntax error")


def test_config_check_reports_an_unknown_key_with_its_line():
    check_bad("server:\n  listen: 127.0.0.1:9797\n  lisen: 127.0.0.1:1\n", line=3,
              mention="lisen", what="an unknown key")


def test_config_check_reports_wrong_types_and_bad_values():
    check_bad("server:\n  threads: lots\n", line=2, mention="threads", what="a wrong type")
    check_bad("server:\n  limits:\n    max_body: 12 parsecs\n", line=3, mention="max_body",
              what="a bad size")
    check_bad("server:\n  limits:\n    connection_timeout: soon\n", line=3,
              mention="connection_timeout", what="a bad duration")
    check_bad("log:\n  level: chatty\n", line=2, mention="level", what="a bad enum")


def test_config_check_reports_a_truncated_file():
    cut = GOOD[:GOOD.index("connection_timeout")]  # ends inside the flow mapping
    check_bad(cut, what="a truncated file")
    p = run_cli(["config", "check", write("ward.yaml", cut), "--json"])
    eq(p.returncode, 2, f"--json on a truncated file ({describe(p)})")
    j = json.loads(p.stdout)
    check(j.get("ok") is False and j.get("errors"), f"--json of a truncated file: {j!r}")


def test_config_check_on_a_missing_file_exits_2_naming_it():
    path = os.path.join(new_tmpdir("conf"), "nope.yaml")
    p = run_cli(["config", "check", path])
    eq(p.returncode, 2, f"ward config check on a missing file ({describe(p)})")
    check(path in p.stderr + p.stdout, f"the message does not name {path}: {describe(p)}")


def test_config_env_substitution_is_applied_before_validation():
    path = write("ward.yaml", "server:\n  threads: ${WARD_IT_THREADS}\n"
                              "  listen: ${WARD_IT_LISTEN:-127.0.0.1:9797}\n")
    env = cli_env()
    env["WARD_IT_THREADS"] = "3"
    p = run_cli(["config", "check", path], env=env)
    eq(p.returncode, 0, f"${{WARD_IT_THREADS}}=3 ({describe(p)})")
    env["WARD_IT_THREADS"] = "lots"
    p = run_cli(["config", "check", path], env=env)
    eq(p.returncode, 2, f"${{WARD_IT_THREADS}}=lots ({describe(p)})")


def test_config_default_output_passes_config_check():
    p = run_cli(["config", "default"])
    eq(p.returncode, 0, f"ward config default ({describe(p)})")
    for key in ("server:", "listen:", "storage:", "data_dir:"):
        check(key in p.stdout, f"ward config default lacks {key!r}")
    path = write("default.yaml", p.stdout)
    p = run_cli(["config", "check", path])
    eq(p.returncode, 0, f"ward config check on ward config default's output ({describe(p)})")
