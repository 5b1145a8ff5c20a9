#!/usr/bin/env python3
"""tools/run-tests on a fake build directory: a passing and a failing test executable, --skip,
the exit status and the per-test logs; and its refusals of bad arguments."""
import os
import subprocess
import sys
import tempfile

script = sys.argv[1]
failures = []


def check(what, cond):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=60)


with tempfile.TemporaryDirectory() as tmp:
    tests = os.path.join(tmp, "build", "tests")
    os.makedirs(tests)
    for name, body in (("test_pass", "echo fine; exit 0"), ("test_fail", "echo boom >&2; exit 3"),
                       ("test_skipped", "exit 9")):
        path = os.path.join(tests, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
    logs = os.path.join(tmp, "logs")
    r = run("--build", os.path.join(tmp, "build"), "--logs", logs, "--jobs", "2",
            "--skip", "skipped")
    check("a failing test fails the run", r.returncode == 1)
    check("the failure is named with its exit status",
          "FAIL  test_fail (exit 3" in r.stdout)
    check("the passing test is reported", "ok    test_pass" in r.stdout)
    check("--skip leaves a test out", "test_skipped" not in r.stdout)
    check("the summary counts", "2 run, 1 failed" in r.stdout)
    with open(os.path.join(logs, "test_fail.log")) as f:
        check("the failing test's output is in its log", f.read().strip() == "boom")

    os.remove(os.path.join(tests, "test_fail"))
    r = run("--build", os.path.join(tmp, "build"), "--logs", logs, "--skip", "skipped")
    check("all passing: exit 0", r.returncode == 0 and "1 run, 0 failed" in r.stdout)

    for args, message in ((["--build", os.path.join(tmp, "nowhere")], "is not a directory"),
                          (["--jobs", "0"], "--jobs wants a positive number"),
                          (["--frobnicate"], "unknown argument '--frobnicate'"),
                          (["--build", tmp], "no tests/ under the build directory")):
        r = run(*args)
        check("refused: " + " ".join(args[:1]),
              r.returncode == 2 and message in r.stderr and r.stdout == "")

sys.exit(1 if failures else 0)
