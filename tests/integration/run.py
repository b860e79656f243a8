#!/usr/bin/env python3
"""run.py: ward's integration test runner (Python standard library only, no pip).

Discovers tests/integration/test_*.py, runs every function named test_* in file order, one
at a time, each under a time limit, and prints exactly one line per test:
    PASS <name>
    FAIL <name>: <reason on one line>
followed, for a failure, by indented details (the tail of each daemon's log). Every daemon
a test starts is killed afterwards. Exit status: 0 when all passed, 1 otherwise.

Usage: run.py --ward build-test/src/cli/ward [-k SUBSTRING]... [--keep] [--list]
"""

import argparse
import importlib.util
import inspect
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

DEFAULT_TIMEOUT = 120  # seconds per test; a function may set .timeout


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test took longer than its time limit")


def _terminate(signum, frame):
    harness.cleanup(keep=True)
    sys.stdout.write(f"\ninterrupted by signal {signum}\n")
    sys.stdout.flush()
    os._exit(128 + signum)


def discover(patterns):
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fn[:-3], os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        funcs = [f for name, f in inspect.getmembers(mod, inspect.isfunction)
                 if name.startswith("test_") and f.__module__ == mod.__name__]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            if patterns and not any(p in f.__name__ or p in fn for p in patterns):
                continue
            tests.append(f)
    return tests


def one_line(s, limit=400):
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "..."


def main():
    ap = argparse.ArgumentParser(description="ward integration tests")
    ap.add_argument("--ward", default=os.environ.get("WARD_BIN", "build-test/src/cli/ward"),
                    help="the ward binary to test")
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep every temporary directory")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()

    tests = discover(args.k)
    if args.list:
        for t in tests:
            print(t.__name__)
        return 0

    harness.WARD = os.path.abspath(args.ward)
    if not os.access(harness.WARD, os.X_OK):
        print(f"FAIL integration_setup: ward binary not found or not executable: {harness.WARD}")
        return 1
    harness.TMP_ROOT = tempfile.mkdtemp(prefix="ward-it-")
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    passed = failed = skipped = 0
    kept = []
    t_all = time.monotonic()
    for t in tests:
        name = t.__name__[len("test_"):] if t.__name__.startswith("test_") else t.__name__
        t0 = time.monotonic()
        err = None
        skip = None
        details = ""
        signal.alarm(int(getattr(t, "timeout", DEFAULT_TIMEOUT)))
        try:
            t()
            harness.post_check()
        except harness.Skip as e:
            skip = str(e)
        except harness.TestFailure as e:
            err = str(e)
        except TestTimeout as e:
            err = str(e)
            details = traceback.format_exc(limit=6)
        except Exception as e:  # noqa: BLE001 - a crash in a test is a failure of that test
            err = f"{type(e).__name__}: {e}"
            details = traceback.format_exc(limit=6)
        finally:
            signal.alarm(0)
        dt = time.monotonic() - t0
        if skip is not None:
            skipped += 1
            print(f"SKIP {name}: {one_line(skip)}")
            harness.cleanup(keep=args.keep)
        elif err is None:
            passed += 1
            print(f"PASS {name} ({dt:.1f}s)" if os.environ.get("WARD_IT_TIMES") else
                  f"PASS {name}")
            harness.cleanup(keep=args.keep)
        else:
            failed += 1
            print(f"FAIL {name}: {one_line(err)}")
            if "\n" in err:
                details = err + "\n" + details
            for w in harness.live():
                details += f"\n[{w.name}: {w.dir}] stderr tail:\n" + "\n".join(
                    w.stderr().splitlines()[-12:])
            for line in details.strip().splitlines():
                print("    " + line)
            kept += harness.cleanup(keep=True)
        sys.stdout.flush()

    print(f"integration: {passed} passed, {failed} failed, {skipped} skipped in "
          f"{time.monotonic() - t_all:.0f}s")
    if kept:
        print(f"integration: directories of failed tests kept under {harness.TMP_ROOT}")
    elif not args.keep:
        shutil.rmtree(harness.TMP_ROOT, ignore_errors=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
