"""Backup jobs run by the daemon: a dir job on an @every schedule writes snapshots the
offline CLI sees, with metrics and recorded runs; a scheduled drill restores and verifies
the latest snapshot and records its restore time; a job with a bad path fails, counts an
error and sets last_run_success 0; a manual run (POST .../run) is audited and needs the
operator role; the default ward_state job backs up state.db and the tsdb; a PostgreSQL job
streams pg_dump into the repository and its drill restores into a scratch database and runs
the configured query. The passphrase never appears in the logs."""

import json
import os
import subprocess

import harness
from harness import Ward, check, cli_env, describe, eq, metric_value, new_tmpdir, run_cli, \
    wait_for
from test_probes import Postgres

PASS = "daemon jobs passphrase 7f3a"


def bk(repo, *args, want=0):
    env = cli_env()
    env["WARD_BACKUP_REPO"] = repo
    env["WARD_BACKUP_PASSWORD"] = PASS
    p = run_cli(["backup"] + list(args), env=env, timeout=120)
    if want is not None:
        eq(p.returncode, want, f"ward backup {' '.join(args)} ({describe(p)})")
    return p


def snapshots(repo, job=None):
    p = bk(repo, "snapshots", "--json")
    v = json.loads(p.stdout or "[]")
    return [s for s in v if job is None or s.get("job") == job]


def new_repo():
    repo = os.path.join(new_tmpdir("bkrepo"), "repo")
    bk(repo, "init")
    return repo


def runs(w, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    return w.api("GET", "/api/v1/backups/runs" + (f"?{qs}" if qs else ""))


def mval(w, name, job):
    return metric_value(w.metrics(), name, {"job": job})


def test_dir_job_on_schedule_snapshots_drills_fails_and_runs_manually_audited():
    repo = new_repo()
    src = new_tmpdir("bksrc")
    os.makedirs(os.path.join(src, "sub"))
    for i in range(5):
        with open(os.path.join(src, "sub", f"f{i}.txt"), "w") as f:
            f.write(f"file {i}\n" * (100 * (i + 1)))
    with open(os.path.join(src, "skip.tmp"), "w") as f:
        f.write("excluded")
    yaml = (
        "backup:\n"
        f"  repository: {repo}\n"
        f"  passphrase: '{PASS}'\n"
        "  ward_state_schedule: '0 0 1 1 *'\n"
        "  jobs:\n"
        "    - name: files\n"
        "      schedule: '@every 2s'\n"
        f"      source: {{type: dir, paths: [{src}], exclude: ['*.tmp']}}\n"
        "      keep: {last: 3}\n"
        "      drill: {schedule: '@every 3s', rto_target: 5m}\n"
        "    - name: broken\n"
        "      schedule: '@every 2s'\n"
        "      source: {type: dir, paths: [/nonexistent/ward-backup-test]}\n"
    )
    w = Ward(extra_yaml=yaml)
    w.start()

    # A snapshot of the job appears in the repository, seen by the offline CLI.
    wait_for(lambda: snapshots(repo, "files"), 30, "a snapshot of job files")
    wait_for(lambda: (mval(w, "ward_backup_last_success_timestamp_seconds", "files") or 0) > 0,
             15, "ward_backup_last_success_timestamp_seconds{job=files}")
    eq(mval(w, "ward_backup_last_run_success", "files"), 1.0, "last_run_success{files}")
    check((mval(w, "ward_backup_files_total", "files") or 0) >= 5, "files_total{files}")
    check((mval(w, "ward_backup_bytes_read_total", "files") or 0) > 0, "bytes_read_total")
    check(mval(w, "ward_backup_last_duration_seconds", "files") is not None, "last_duration")
    snap = snapshots(repo, "files")[-1]
    p = bk(repo, "ls", snap["id"], "--json", want=None)
    check(p.returncode == 0 and "f4.txt" in p.stdout and "skip.tmp" not in p.stdout,
          f"ls of the snapshot: {describe(p)}")

    # The drill restores the latest snapshot, verifies it and records the restore time.
    wait_for(lambda: mval(w, "ward_backup_drill_last_success", "files") == 1.0, 40,
             "ward_backup_drill_last_success{job=files} 1")
    check(mval(w, "ward_backup_restore_seconds", "files") is not None, "restore_seconds")
    check(mval(w, "ward_backup_drill_duration_seconds", "files") is not None, "drill duration")
    drills = runs(w, job="files", kind="drill")
    check(drills and drills[0]["ok"] and "restore_seconds" in drills[0]
          and "verified" in drills[0]["message"], f"drill runs: {drills!r}")
    backups = runs(w, job="files", kind="backup")
    check(backups and backups[0]["ok"] and backups[0]["files"] >= 5, f"backup runs {backups!r}")
    jobs = {j["name"]: j for j in w.api("GET", "/api/v1/backups/jobs")}
    check(set(jobs) == {"files", "broken", "ward_state"}, f"jobs: {list(jobs)}")
    check(jobs["files"]["last_run"] and jobs["files"]["drill"]["last"]["ok"], f"{jobs['files']}")

    # The failing job counts errors and reports last_run_success 0.
    wait_for(lambda: (mval(w, "ward_backup_errors_total", "broken") or 0) >= 1, 20,
             "ward_backup_errors_total{job=broken}")
    eq(mval(w, "ward_backup_last_run_success", "broken"), 0.0, "last_run_success{broken}")
    bad = runs(w, job="broken")
    check(bad and not bad[0]["ok"] and bad[0]["message"], f"broken runs: {bad!r}")
    check(mval(w, "ward_backup_last_success_timestamp_seconds", "broken") is None,
          "no last success for broken")

    # Manual run of the default ward_state job: operator only, audited.
    viewer = w.create_token("v", role="viewer")["token"]
    operator = w.create_token("op", role="operator")["token"]
    w.api("POST", "/api/v1/backups/jobs/ward_state/run", token=viewer, want=403)
    w.api("POST", "/api/v1/backups/jobs/nosuch/run", token=operator, want=404)
    got = w.api("POST", "/api/v1/backups/jobs/ward_state/run", token=operator, want=202)
    eq(got.get("job"), "ward_state", "run response")
    entries = w.audit(action="backup.run")
    check(any(e.get("target") == "ward_state" and e.get("actor") == "op" for e in entries)
          or any(e.get("target") == "ward_state" for e in entries),
          f"audit of backup.run: {entries!r}")
    wait_for(lambda: snapshots(repo, "ward_state"), 30, "a ward_state snapshot")
    ws = snapshots(repo, "ward_state")[-1]
    p = bk(repo, "ls", ws["id"], "--json", want=None)
    check(p.returncode == 0 and "state.db" in p.stdout, f"ward_state snapshot: {describe(p)}")
    # the time-series store as a point-in-time snapshot: its sealed WAL segments (the
    # self-scrape wrote some) and no half-written segment of the live store
    check("tsdb/wal/" in p.stdout, f"tsdb WAL in the ward_state snapshot: {p.stdout[:2000]}")
    man = runs(w, job="ward_state")
    check(man and man[0]["trigger"] == "manual" and man[0]["ok"], f"ward_state runs: {man!r}")
    # A manual drill is audited too.
    w.api("POST", "/api/v1/backups/jobs/ward_state/drill", token=operator, want=202)
    check(w.audit(action="backup.drill"), "audit of backup.drill")
    wait_for(lambda: mval(w, "ward_backup_drill_last_success", "ward_state") == 1.0, 30,
             "ward_state drill passes")

    # keep: last 3 holds the number of snapshots of the job down.
    wait_for(lambda: len(snapshots(repo, "files")) <= 3, 20, "forget keeps 3 snapshots")
    w.stop()
    logs = w.all_stderr() + w.all_stdout()
    check(PASS not in logs, "the passphrase appears in the daemon's output")


def test_postgres_job_streams_pg_dump_and_drill_restores_into_scratch_database():
    pg = Postgres()
    try:
        psql = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", pg.conninfo(), "-c",
                "CREATE TABLE items(id int primary key, name text);"
                "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 42) g"]
        p = subprocess.run(psql, capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, f"psql: {describe(p)}")
        repo = new_repo()
        pwfile = os.path.join(new_tmpdir("bkpw"), "pass")
        with open(pwfile, "w") as f:
            f.write(PASS + "\n")
        yaml = (
            "backup:\n"
            f"  repository: {repo}\n"
            f"  passphrase_file: {pwfile}\n"
            "  ward_state: false\n"
            "  jobs:\n"
            "    - name: pg\n"
            "      schedule: '0 0 1 1 *'\n"
            f"      source: {{type: postgres, conninfo: '{pg.conninfo()}'}}\n"
            "      drill: {query: 'SELECT count(*) FROM items', rto_target: 10m}\n"
        )
        w = Ward(extra_yaml=yaml)
        w.start()
        w.api("POST", "/api/v1/backups/jobs/pg/run", want=202)
        wait_for(lambda: snapshots(repo, "pg"), 60, "a snapshot of job pg")
        s = snapshots(repo, "pg")[-1]
        p = bk(repo, "ls", s["id"], "--json", want=None)
        check(p.returncode == 0 and "pg.pgdump" in p.stdout, f"pg snapshot: {describe(p)}")
        wait_for(lambda: mval(w, "ward_backup_last_run_success", "pg") == 1.0, 20, "pg success")
        w.api("POST", "/api/v1/backups/jobs/pg/drill", want=202)
        wait_for(lambda: mval(w, "ward_backup_drill_last_success", "pg") is not None, 90,
                 "the pg drill ends")
        d = runs(w, job="pg", kind="drill")
        check(d and d[0]["ok"] and d[0]["message"] == "query: 42",
              f"pg drill run: {d!r}")
        check(mval(w, "ward_backup_restore_seconds", "pg") > 0, "restore_seconds{pg}")
        # The scratch database is dropped after the drill.
        p = subprocess.run(["psql", "-X", "-At", "-d", pg.conninfo(), "-c",
                            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_drill%'"],
                           capture_output=True, text=True, timeout=30)
        eq(p.stdout.strip(), "0", "scratch databases left")

        # A failing dump (wrong database) writes no snapshot and counts an error.
        w.write_config(w.config_text(extra_yaml=yaml.replace("dbname=postgres",
                                                             "dbname=nosuchdb")))
        w.stop()
        w.start()
        check((mval(w, "ward_backup_last_success_timestamp_seconds", "pg") or 0) > 0,
              "the last success of pg survives a restart")
        w.api("POST", "/api/v1/backups/jobs/pg/run", want=202)
        wait_for(lambda: (mval(w, "ward_backup_errors_total", "pg") or 0) >= 1, 30,
                 "errors_total{pg}")
        eq(mval(w, "ward_backup_last_run_success", "pg"), 0.0, "last_run_success{pg}")
        bad = runs(w, job="pg", kind="backup")
        check(bad and not bad[0]["ok"] and "pg_dump" in bad[0]["message"],
              f"failed pg run: {bad!r}")
        eq(len(snapshots(repo, "pg")), 1, "no snapshot from the failed dump")
        w.stop()
    finally:
        pg.stop()


def test_default_backup_alert_rules_are_valid_for_promtool():
    import shutil
    rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist",
                         "rules", "backup.yml")
    check(os.path.exists(rules), f"{rules} is missing")
    if not shutil.which("promtool"):
        check(os.environ.get("WARD_NO_PROMTOOL"), "promtool not found (apt install "
              "prometheus); set WARD_NO_PROMTOOL=1 to skip the check")
        return
    p = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0 and "5 rules found" in p.stdout, f"promtool: {describe(p)}")


def test_reload_adds_and_removes_jobs_and_bad_schedules_are_rejected():
    repo = new_repo()
    src = new_tmpdir("bksrc2")
    with open(os.path.join(src, "a.txt"), "w") as f:
        f.write("a\n")

    def conf(jobs):
        return (f"backup:\n  repository: {repo}\n  passphrase: '{PASS}'\n"
                "  ward_state: false\n  jobs:\n" + jobs)
    one = (f"    - {{name: one, schedule: '0 0 1 1 *', source: {{type: dir, paths: [{src}]}}}}\n")
    two = (f"    - {{name: two, schedule: '@every 1s', source: {{type: dir, paths: [{src}]}}}}\n")
    w = Ward(extra_yaml=conf(one))
    w.start()
    names = [j["name"] for j in w.api("GET", "/api/v1/backups/jobs")]
    eq(names, ["one"], "jobs before reload")
    w.write_config(w.config_text(extra_yaml=conf(two)))
    w.api("POST", "/api/v1/reload")
    names = [j["name"] for j in w.api("GET", "/api/v1/backups/jobs")]
    eq(names, ["two"], "jobs after reload")
    wait_for(lambda: snapshots(repo, "two"), 30, "a snapshot of the job added by reload")
    w.write_config(w.config_text(extra_yaml=conf(two.replace("@every 1s", "99 * * * *"))))
    r = w.request("POST", "/api/v1/reload", token=w.admin_token)
    check(r.status >= 400 and "backup.jobs[two].schedule" in r.text(),
          f"bad schedule reload: {r.status} {r.body[:300]!r}")
    names = [j["name"] for j in w.api("GET", "/api/v1/backups/jobs")]
    eq(names, ["two"], "jobs after a rejected reload")
    w.stop()
