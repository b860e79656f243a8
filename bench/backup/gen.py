#!/usr/bin/env python3
"""gen.py: the dataset of bench/backup/run.sh, and the 1 % change between the two backups.

  gen.py create DIR SIZE_MB   source trees (many small text files), logs (compressible
                              lines), binaries (incompressible), and duplicated files
                              (copies of some of the above): about 30/30/30/10 % of SIZE_MB.
  gen.py change DIR [PCT]     modifies PCT % (default 1) of the files: half get bytes
                              overwritten in the middle, half get a line appended.
Deterministic (seeded), so every tool sees the same bytes.
"""
import os
import random
import sys

WORDS = ("static int void return struct buf err if else for while const char size_t "
         "uint64_t error warning info debug request response latency bytes user host "
         "service backup restore chunk index pack snapshot tree key lock").split()


def text_blob(rng, n):
    out = []
    size = 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        out.append(line)
        size += len(line) + 1
    return ("\n".join(out) + "\n").encode()[:n]


def log_blob(rng, n, start):
    out = []
    size = 0
    t = start
    while size < n:
        t += rng.randint(1, 900)
        line = (f"2026-11-{1 + t // 86400000 % 28:02d}T{t // 3600000 % 24:02d}:"
                f"{t // 60000 % 60:02d}:{t // 1000 % 60:02d}.{t % 1000:03d}Z level="
                f"{rng.choice(['info', 'warn', 'error', 'debug'])} msg=\""
                f"{' '.join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))}\" "
                f"req_id={rng.getrandbits(64):016x} dur_ms={rng.randint(0, 5000)}")
        out.append(line)
        size += len(line) + 1
    return ("\n".join(out) + "\n").encode()[:n]


def create(root, size_mb):
    rng = random.Random(42)
    total = size_mb << 20
    made = []
    # source trees: 30 % in files of 1-64 KiB
    budget, i = total * 30 // 100, 0
    while budget > 0:
        d = os.path.join(root, "src", f"proj{i // 400:03d}", f"mod{i // 40 % 10}")
        os.makedirs(d, exist_ok=True)
        n = min(budget, rng.randint(1024, 64 << 10))
        p = os.path.join(d, f"file{i:05d}.c")
        with open(p, "wb") as f:
            f.write(text_blob(rng, n))
        made.append(p)
        budget -= n
        i += 1
    # logs: 30 % in files of 4-32 MiB
    budget, i = total * 30 // 100, 0
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    while budget > 0:
        n = min(budget, rng.randint(4 << 20, 32 << 20))
        p = os.path.join(root, "logs", f"app-{i:03d}.log")
        with open(p, "wb") as f:
            f.write(log_blob(rng, n, i * 86400000))
        made.append(p)
        budget -= n
        i += 1
    # binaries: 30 % incompressible, files of 256 KiB - 16 MiB
    budget, i = total * 30 // 100, 0
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    while budget > 0:
        n = min(budget, rng.randint(256 << 10, 16 << 20))
        p = os.path.join(root, "bin", f"blob{i:03d}.bin")
        with open(p, "wb") as f:
            f.write(rng.randbytes(n))
        made.append(p)
        budget -= n
        i += 1
    # duplicates: 10 % copies of earlier files
    budget, i = total * 10 // 100, 0
    os.makedirs(os.path.join(root, "copies"), exist_ok=True)
    while budget > 0 and made:
        srcp = rng.choice(made)
        with open(srcp, "rb") as f:
            data = f.read()
        data = data[:budget]
        with open(os.path.join(root, "copies", f"copy{i:04d}"), "wb") as f:
            f.write(data)
        budget -= len(data)
        i += 1


def change(root, pct):
    rng = random.Random(7)
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, n) for n in sorted(names)]
    files.sort()
    k = max(1, len(files) * pct // 100)
    for j, p in enumerate(rng.sample(files, k)):
        size = os.path.getsize(p)
        if j % 2 == 0 and size > 64:
            with open(p, "r+b") as f:
                f.seek(size // 2)
                f.write(rng.randbytes(min(64, size // 2)))
        else:
            with open(p, "ab") as f:
                f.write(b"changed line for the second backup\n")
    print(k)


if __name__ == "__main__":
    if sys.argv[1] == "create":
        create(sys.argv[2], int(sys.argv[3]))
    else:
        change(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
