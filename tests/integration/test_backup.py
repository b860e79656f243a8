"""`ward backup`: the real CLI end to end on a local repository: init, run, incremental run,
snapshots, ls, restore (byte-equal, symlinks, hard links, modes), diff, forget, prune, check,
keys, streams from a command, a flipped byte found by check (exit 1) with the other files
still restorable, a wrong passphrase writing nothing, and kill -9 in the middle of a backup
followed by a run that succeeds and a check that passes, --one-file-system at a tmpfs
mounted inside the tree, and init's choice of cipher and id hash (the old pair stays a
version-1 repository)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import harness
from harness import check, cli_env, describe, eq, new_tmpdir, run_cli, wait_for

PASS = "integration test passphrase"


def env_for(repo, password=PASS):
    env = cli_env()
    env["WARD_BACKUP_REPO"] = repo
    if password is not None:
        env["WARD_BACKUP_PASSWORD"] = password
    return env


def bk(repo, *args, want=0, password=PASS, timeout=120):
    p = run_cli(["backup"] + list(args), env=env_for(repo, password), timeout=timeout)
    if want is not None:
        eq(p.returncode, want, f"ward backup {' '.join(args)} ({describe(p)})")
    return p


def bk_json(repo, *args, want=0):
    p = bk(repo, *args, "--json", want=want)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise harness.TestFailure(f"ward backup {' '.join(args)} --json: {e}: {p.stdout!r}")


def write_random(path, n, seed):
    """n pseudo-random bytes (incompressible, reproducible)."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 1
    with open(path, "wb") as f:
        f.write(bytes(out[:n]))


def make_tree(root):
    os.makedirs(os.path.join(root, "etc", "conf.d"))
    os.makedirs(os.path.join(root, "var", "empty-dir"))
    with open(os.path.join(root, "etc", "app.conf"), "w") as f:
        f.write("listen = 127.0.0.1:80\n" * 50)
    with open(os.path.join(root, "etc", "conf.d", "x.conf"), "w") as f:
        f.write("x = 1\n")
    open(os.path.join(root, "var", "empty"), "w").close()
    write_random(os.path.join(root, "var", "big.bin"), 3 << 20, 1)
    write_random(os.path.join(root, "var", "mid.bin"), 300000, 2)
    os.link(os.path.join(root, "var", "mid.bin"), os.path.join(root, "var", "mid-link.bin"))
    os.symlink("../etc/app.conf", os.path.join(root, "var", "conf-link"))
    os.chmod(os.path.join(root, "etc", "app.conf"), 0o640)
    os.utime(os.path.join(root, "etc", "app.conf"), ns=(1600000000123456789, 1600000000123456789))


def tree_state(root):
    """path -> (type, mode, mtime_ns, content sha / link target) for every entry."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                out[rel] = ("file", st.st_mode & 0o7777, st.st_mtime_ns, h)
    return out


def setup_repo(name):
    d = new_tmpdir(name)
    repo = os.path.join(d, "repo")
    src = os.path.join(d, "src")
    os.makedirs(src)
    make_tree(src)
    bk(repo, "init")
    return d, repo, src


def test_backup_round_trip_incremental_diff_forget_prune_check():
    d, repo, src = setup_repo("bk-round")
    s1 = bk_json(repo, "run", src, "--job", "files")
    eq(s1["partial"], False, "first snapshot partial")
    eq(s1["stats"]["files"], 6, "files in the first snapshot")
    # Second run: nothing is read again.
    s2 = bk_json(repo, "run", src, "--job", "files")
    eq(s2["stats"]["bytes_read"], 0, "bytes read by an unchanged second run")
    eq(s2["stats"]["files_unchanged"], 6, "unchanged files")
    eq(s2.get("parent"), s1["id"], "parent of the second snapshot")
    # Change one file.
    with open(os.path.join(src, "etc", "conf.d", "x.conf"), "a") as f:
        f.write("y = 2\n")
    s3 = bk_json(repo, "run", src, "--job", "files")
    eq(s3["stats"]["files_changed"], 1, "changed files in the third run")
    snaps = bk_json(repo, "snapshots")
    eq([s["id"] for s in snaps], [s1["id"], s2["id"], s3["id"]], "snapshot ids")
    # ls
    ls = bk(repo, "ls", s3["id"][:10], "--json").stdout.strip().splitlines()
    paths = {json.loads(line)["path"] for line in ls}
    check("/src/var/conf-link" in paths, f"ls misses the symlink: {sorted(paths)}")
    # diff
    diff = bk_json(repo, "diff", s1["id"], s3["id"])
    eq(diff, [{"change": "M", "path": "/src/etc/conf.d/x.conf"}], "diff of s1 and s3")
    # restore byte-equal with modes, times, links
    target = os.path.join(d, "restore")
    r = bk_json(repo, "restore", "latest", "--target", target)
    eq(r["errors"], 0, "restore errors")
    eq(tree_state(os.path.join(target, "src")), tree_state(src), "restored tree")
    a = os.stat(os.path.join(target, "src", "var", "mid.bin"))
    b = os.stat(os.path.join(target, "src", "var", "mid-link.bin"))
    eq(a.st_ino, b.st_ino, "hard link restored as a hard link")
    # restore with --include
    part = os.path.join(d, "part")
    bk(repo, "restore", s3["id"], "--target", part, "--include", "/src/etc")
    eq(sorted(os.listdir(os.path.join(part, "src"))), ["etc"], "include restored only etc")
    # forget + prune + check
    fates = bk_json(repo, "forget", "--keep-last", "1")
    eq(sorted(f["keep"] for f in fates), [False, False, True], "forget fates")
    bk(repo, "forget", want=2)  # no policy: usage error
    bk(repo, "prune")
    c = bk_json(repo, "check", "--read-data")
    eq(c["errors"], 0, f"check errors after prune: {c['findings']}")
    eq(len(bk_json(repo, "snapshots")), 1, "snapshots after forget")


def test_backup_wrong_passphrase_is_clear_and_writes_nothing():
    d, repo, src = setup_repo("bk-pass")
    before = sorted(os.walk(repo))
    p = bk(repo, "snapshots", password="not it", want=4)
    check("wrong passphrase" in p.stderr, f"message: {p.stderr!r}")
    check("not it" not in p.stderr + p.stdout, "the passphrase was echoed")
    bk(repo, "run", src, password="not it", want=4)
    eq(sorted(os.walk(repo)), before, "repository after wrong passphrases")
    p = bk(repo, "snapshots", password=None, want=2)
    check("WARD_BACKUP_PASSWORD" in p.stderr, f"no hint about the passphrase: {p.stderr!r}")


def test_backup_keys_add_list_remove_never_last():
    d, repo, src = setup_repo("bk-keys")
    newpw = os.path.join(d, "new-pw")
    with open(newpw, "w") as f:
        f.write("second passphrase\n")
    added = bk_json(repo, "key", "add", "--new-password-file", newpw)
    keys = bk_json(repo, "key", "list")
    eq(len(keys), 2, "keys after add")
    first = [k["id"] for k in keys if k["current"]][0]
    bk(repo, "snapshots", password="second passphrase")
    # Remove the first key using the second passphrase; then the last one stays.
    run_cli(["backup", "key", "remove", first[:12]], env=env_for(repo, "second passphrase"))
    keys = json.loads(bk(repo, "key", "list", "--json", password="second passphrase").stdout)
    eq(len(keys), 1, "keys after remove")
    p = bk(repo, "key", "remove", added["id"], password="second passphrase", want=2)
    check("last key" in p.stderr, f"message: {p.stderr!r}")
    bk(repo, "snapshots", want=4)  # the first passphrase is gone


def test_backup_stdin_from_command_and_failing_command():
    d, repo, src = setup_repo("bk-stdin")
    big = os.path.join(src, "var", "big.bin")
    s = bk_json(repo, "run", "--stdin-from", f"cat '{big}'", "--job", "pg",
                "--stdin-name", "db.dump")
    eq(s["stats"]["bytes_read"], 3 << 20, "stream bytes")
    p = bk(repo, "run", "--stdin-from", "echo half; exit 3", "--job", "pg", want=1)
    check("exited with status 3" in p.stderr, f"message: {p.stderr!r}")
    eq(len(bk_json(repo, "snapshots", "--job", "pg")), 1, "no snapshot of a failed command")
    target = os.path.join(d, "out")
    bk(repo, "restore", "latest", "--job", "pg", "--target", target)
    with open(big, "rb") as a, open(os.path.join(target, "db.dump"), "rb") as b:
        check(a.read() == b.read(), "restored stream differs")


def flip_byte_in_largest_pack(repo):
    packs = []
    for dirpath, _, files in os.walk(os.path.join(repo, "data")):
        for f in files:
            p = os.path.join(dirpath, f)
            packs.append((os.path.getsize(p), p))
    packs.sort()
    path = packs[-1][1]
    with open(path, "r+b") as f:
        f.seek(packs[-1][0] // 3)
        c = f.read(1)
        f.seek(packs[-1][0] // 3)
        f.write(bytes([c[0] ^ 0x10]))
    return path


def test_backup_flipped_byte_fails_check_and_names_the_file():
    d, repo, src = setup_repo("bk-flip")
    s = bk_json(repo, "run", src)
    eq(bk_json(repo, "check", "--read-data")["errors"], 0, "clean check")
    flip_byte_in_largest_pack(repo)
    bk(repo, "check", want=0)  # structure alone does not read data
    p = bk(repo, "check", "--read-data", want=1)
    check("damaged chunk" in p.stderr and "/src/var/big.bin" in p.stderr,
          f"check does not name the damaged file: {p.stderr!r}")
    check(s["id"][:8] in p.stderr, f"check does not name the snapshot: {p.stderr!r}")
    target = os.path.join(d, "out")
    p = bk(repo, "restore", "latest", "--target", target, want=1)
    check("big.bin" in p.stderr, f"restore does not report the damaged file: {p.stderr!r}")
    check(not os.path.exists(os.path.join(target, "src", "var", "big.bin")),
          "a damaged file was restored")
    with open(os.path.join(target, "src", "etc", "app.conf")) as f:
        check(f.read().startswith("listen"), "unaffected file not restored")


def test_backup_kill9_mid_backup_then_next_run_and_check_pass():
    d, repo, src = setup_repo("bk-kill")
    data = os.path.join(d, "stream.bin")
    write_random(data, 40 << 20, 7)
    # The command sends 40 MiB and then waits: ward has written the first packs and is
    # blocked reading when it is killed.
    cmd = f"cat '{data}'; sleep 60"
    p = subprocess.Popen([harness.WARD, "backup", "run", "--stdin-from", cmd, "--job", "k"],
                         env=env_for(repo), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    harness._procs.append(p)

    def packs():
        n = 0
        for _, _, files in os.walk(os.path.join(repo, "data")):
            n += len([f for f in files if not f.startswith(".")])
        return n >= 2

    wait_for(packs, 60, "packs written by the running backup")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    eq(bk_json(repo, "snapshots"), [], "snapshots after kill -9")
    # The dead process's lock does not block; the next run reuses what was written.
    s = bk_json(repo, "run", "--stdin-from", f"cat '{data}'", "--job", "k")
    check(s["stats"]["bytes_added"] < s["stats"]["bytes_read"],
          f"the second run reused nothing: {s['stats']}")
    s2 = bk_json(repo, "run", src)
    eq(s2["partial"], False, "run after kill")
    c = bk_json(repo, "check", "--read-data")
    eq(c["errors"], 0, f"check after kill -9: {c['findings']}")
    bk(repo, "prune")
    c = bk_json(repo, "check", "--read-data")
    eq((c["errors"], c["warnings"]), (0, 0), f"check after prune: {c['findings']}")


test_backup_kill9_mid_backup_then_next_run_and_check_pass.timeout = 300


def test_backup_usage_errors_exit_2():
    d = new_tmpdir("bk-usage")
    env = cli_env()
    p = run_cli(["backup", "snapshots"], env=env)
    eq(p.returncode, 2, f"no repository ({describe(p)})")
    repo = os.path.join(d, "repo")
    bk(repo, "init")
    bk(repo, "init", want=2)  # already a repository
    bk(repo, "run", want=2)  # nothing to back up
    bk(repo, "check", "--read-data-subset", "0%", want=2)
    bk(repo, "frobnicate", want=2)


def test_backup_init_chooses_cipher_and_id_hash_old_pair_stays_version_1():
    d = new_tmpdir("bk-cipher")
    src = os.path.join(d, "src")
    os.makedirs(src)
    make_tree(src)
    old, new = os.path.join(d, "old"), os.path.join(d, "new")
    bk(old, "init", "--cipher", "xchacha20-poly1305", "--id-hash", "blake2b-256-keyed")
    bk(new, "init")
    for repo, version, cipher, id_hash in ((old, 1, "xchacha20-poly1305", "blake2b-256-keyed"),
                                           (new, 2, "xaes-256-gcm", "hmac-sha256")):
        with open(os.path.join(repo, "config")) as f:
            cfg = json.load(f)
        eq((cfg["version"], cfg["cipher"], cfg["id_hash"]), (version, cipher, id_hash),
           f"config of {os.path.basename(repo)}")
        bk(repo, "run", src)
        target = os.path.join(d, "restore-" + os.path.basename(repo))
        bk(repo, "restore", "latest", "--target", target)
        eq(tree_state(os.path.join(target, "src")), tree_state(src),
           f"tree restored from {os.path.basename(repo)}")
        bk(repo, "check", "--read-data")
    # An unknown name is refused before a passphrase is asked for, and nothing is made.
    bad = os.path.join(d, "bad")
    p = bk(bad, "init", "--cipher", "rot13", want=2, password=None)
    check("rot13" in p.stderr and "xaes-256-gcm" in p.stderr, f"message: {p.stderr!r}")
    check("passphrase" not in p.stderr.lower(), f"asked for a passphrase: {p.stderr!r}")
    check(not os.path.exists(os.path.join(bad, "config")), "a repository was made")


def test_backup_unreadable_file_makes_a_partial_snapshot_exit_1():
    import tempfile
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("setpriv"):
        return  # cannot drop privileges here; the unit test covers the library
    # Root reads everything: run ward as nobody on a tree nobody owns.
    d = tempfile.mkdtemp(prefix="ward-bk-partial-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        repo = os.path.join(d, "repo")
        src = os.path.join(d, "src")
        os.makedirs(src)
        make_tree(src)
        secret = os.path.join(src, "etc", "secret.key")
        with open(secret, "w") as f:
            f.write("top secret\n")
        prefix = []
        if as_root:
            for dirpath, dirnames, filenames in os.walk(d):
                for n in dirnames + filenames:
                    os.lchown(os.path.join(dirpath, n), 65534, 65534)
            os.chown(d, 65534, 65534)
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        os.chmod(secret, 0)
        env = env_for(repo)

        def ward(*args):
            p = subprocess.run(prefix + [harness.WARD, "backup"] + list(args), env=env,
                               cwd=d, capture_output=True, text=True, timeout=120)
            harness.sanitizer_check(p.stderr, "ward backup " + " ".join(args))
            return p

        p = ward("init")
        eq(p.returncode, 0, f"init as an unprivileged user ({describe(p)})")
        p = ward("run", src)
        eq(p.returncode, 1, f"run with an unreadable file ({describe(p)})")
        check("PARTIAL" in p.stderr and "secret.key" in p.stderr,
              f"the unreadable file is not listed: {p.stderr!r}")
        snaps = json.loads(ward("snapshots", "--json").stdout)
        eq(snaps[0]["partial"], True, "snapshot partial flag")
        check(snaps[0]["unreadable"][0].endswith("/etc/secret.key"),
              f"unreadable list: {snaps[0]['unreadable']}")
        eq(snaps[0]["stats"]["files"], 6, "the other files are in the partial snapshot")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_backup_one_file_system_keeps_the_mount_point_but_not_what_is_mounted():
    """--one-file-system: a tmpfs mounted inside the tree is not crossed (its mount point is
    kept as an empty directory, as restic and borg keep it); without it, it is backed up."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        raise harness.Skip("mounting a tmpfs needs root and mount(8)")
    d, repo, src = setup_repo("bk-ofs")
    mnt = os.path.join(src, "mnt")
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "ward-test", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise harness.Skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        os.makedirs(os.path.join(mnt, "deep"))
        with open(os.path.join(mnt, "deep", "other-fs.txt"), "w") as f:
            f.write("on another file system\n")

        def listed(snap):
            out = bk(repo, "ls", snap["id"], "--json").stdout.strip().splitlines()
            return {json.loads(line)["path"] for line in out}

        one = bk_json(repo, "run", src, "--one-file-system")
        paths = listed(one)
        check("/src/mnt" in paths, f"the mount point itself is missing: {sorted(paths)}")
        check(not any(x.startswith("/src/mnt/") for x in paths),
              f"--one-file-system crossed into the tmpfs: {sorted(paths)}")
        eq(one["stats"]["files"], 6, "files with --one-file-system")
        every = bk_json(repo, "run", src)
        check("/src/mnt/deep/other-fs.txt" in listed(every),
              "without --one-file-system the tmpfs's file is missing")
        eq(every["stats"]["files"], 7, "files without --one-file-system")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
