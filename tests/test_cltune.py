#!/usr/bin/env python3
"""Tests of cltune: usage errors, a tiny search that stores a verified entry `--show` lists,
--resume skipping finished shapes, a planted wrong variant (CLTUNE_TEST_CORRUPT) rejected by
verification and never stored, a corrupt database reported and ignored, the --budget bound,
Ctrl-C leaving an unfinished entry that --resume finishes, and --model tuning each distinct conv.
Usage: test_cltune.py PATH/TO/cltune. Exits 77 (skip) when no OpenCL device exists."""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

CLTUNE = sys.argv[1]
failures = []
TINY = "1,4,9,9,4,3,3,1,1"
TINY_KEY = "n1c4h9w9k4r3s3u1p1d1g1"
NAMES = ["CONV_VW", "CONV_OYB", "CONV_KB", "CONV_PADDED", "LWS"]


def run(cache, *args, env=None):
    e = dict(os.environ)
    e["CLCNN_CACHE_DIR"] = cache
    if env:
        e.update(env)
    p = subprocess.run([CLTUNE, *args], capture_output=True, text=True, env=e, timeout=280)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    if not cond:
        failures.append(name)
        print("FAIL %s %s" % (name, detail))
    else:
        print("ok   %s" % name)


def db_file(cache):
    files = glob.glob(os.path.join(cache, "tune", "*", "*.json"))
    return files[0] if len(files) == 1 else None


def entries(cache):
    path = db_file(cache)
    if path is None:
        return {}
    with open(path) as f:
        root = json.load(f)
    return {(e["kernel"], e["problem"]): e for e in root["entries"]}


def usage(tmp):
    for name, args in [("no solver", ["--shape", TINY]),
                       ("untunable solver", ["--solver", "implicit_gemm", "--shape", TINY]),
                       ("untunable pass", ["--solver", "winograd4", "--pass", "bwd-data",
                                           "--shape", TINY]),
                       ("bad shape", ["--solver", "direct", "--shape", "1,2,3"]),
                       ("bad strategy", ["--solver", "direct", "--shape", TINY,
                                         "--strategy", "genetic"]),
                       ("bad budget", ["--solver", "direct", "--shape", TINY, "--budget", "soon"])]:
        code, out, err = run(tmp, *args)
        lines = [l for l in err.splitlines() if l.strip()]
        check("usage: " + name, code == 2 and len(lines) == 1 and out == "",
              "code=%d err=%r" % (code, err))
    code, _, err = run(tmp, "--solver", "implicit_gemm", "--shape", TINY)
    check("untunable solver says so", "not tunable yet" in err and "gemm" in err, err)


def tiny_search_show_resume(cache):
    code, out, err = run(cache, "--solver", "direct", "--shape", TINY, "--strategy", "random",
                         "--evals", "4", "--seed", "3", "--repeat", "2")
    check("tiny search exits 0", code == 0, "code=%d err=%s" % (code, err[-2000:]))
    check("progress bar on stderr", "evals" in err and "[1/1]" in err and "evals" not in out, err)
    check("table on stdout", "speedup" in out and "def " in out, out)
    e = entries(cache).get(("conv2d_direct", TINY_KEY))
    check("database holds the entry", e is not None, str(entries(cache)))
    if e is not None:
        check("entry has every parameter", sorted(e["params"]) == sorted(NAMES), str(e))
        check("entry verified and complete", e["verified"] is True and e["complete"] is True, str(e))
        check("entry no slower than the defaults", e["time_us"] <= e["default_us"], str(e))
    code, out, err = run(cache, "--show")
    check("--show lists it", code == 0 and TINY_KEY in out and "conv2d_direct" in out
          and "CONV_VW=" in out, out + err)
    code, out, err = run(cache, "--solver", "direct", "--shape", TINY, "--evals", "4", "--resume")
    check("--resume skips a finished shape", code == 0 and "skipped" in out, out + err)
    show_shipped(cache)


def show_shipped(cache):
    """--show lists the shipped database beneath the user's, marking where each entry is from."""
    user = db_file(cache)
    shipped = os.path.join(cache, "shipped")
    rel = os.path.relpath(user, os.path.join(cache, "tune"))
    os.makedirs(os.path.dirname(os.path.join(shipped, rel)))
    with open(user) as f:
        root = json.load(f)
    mine = root["entries"][0]
    other = dict(mine, problem="n1c4h20w20k4r3s3u1p1d1g1")
    root["entries"] = [dict(mine), other]
    with open(os.path.join(shipped, rel), "w") as f:
        json.dump(root, f)
    code, out, err = run(cache, "--show", env={"CLCNN_TUNE_SHIPPED": shipped})
    rows = {(l.split()[1], l.split()[-1]) for l in out.splitlines()
            if l.startswith("conv2d_direct")}
    check("--show marks user, shipped and overridden entries",
          code == 0 and rows == {(TINY_KEY, "user"), (TINY_KEY, "overridden"),
                                 ("n1c4h20w20k4r3s3u1p1d1g1", "shipped")}, out + err)
    check("--show names the shipped file", os.path.join(shipped, rel) in out, out)
    with open(os.path.join(shipped, rel), "w") as f:
        f.write("{\"schema\": 1, \"entries\": [")
    code, out, err = run(cache, "--show", env={"CLCNN_TUNE_SHIPPED": shipped})
    rows = [l for l in out.splitlines() if l.startswith("conv2d_direct")]
    check("--show: a corrupt shipped file is reported and ignored",
          code == 0 and "corrupt" in err and len(rows) == 1 and rows[0].endswith("user"),
          out + err)


def winograd(cache):
    """The Winograd solvers' spaces: an entry with their parameters, a planted wrong variant
    rejected, and a shape the solver cannot run skipped."""
    names = ["WINO_VP", "WINO_KB", "GEMM_WG", "TRANSFORM_WG", "WS_MIB"]
    code, out, err = run(cache, "--solver", "winograd4", "--shape", TINY, "--strategy",
                         "exhaustive", "--evals", "3", "--repeat", "1",
                         env={"CLTUNE_TEST_CORRUPT": "4,2,1,1,8"})
    check("winograd4 search exits 0", code == 0, err[-2000:])
    check("winograd4 planted variant rejected",
          "rejected VP=4 KB=2 GEMM_WG=1 TRANSFORM_WG=1 WS_MIB=8: wrong result" in err, err)
    e = entries(cache).get(("conv2d_winograd4", TINY_KEY))
    check("winograd4 entry stored", e is not None and sorted(e["params"]) == sorted(names)
          and e["solver"] == "winograd4" and e["verified"] is True
          and [e["params"][n] for n in names] != [4, 2, 1, 1, 8], str(e))
    code, out, err = run(cache, "--solver", "winograd2", "--shape", "1,4,9,9,4,5,5,1,2",
                         "--evals", "1")
    check("winograd2 skips a 5x5 shape", code == 0 and "cannot run it" in out
          and ("conv2d_winograd2", "n1c4h9w9k4r5s5u1p2d1g1") not in entries(cache), out + err)


def gemm(cache):
    """The gemm solver's space: im2col vector width, workspace bound and layout."""
    code, out, err = run(cache, "--solver", "gemm", "--shape", "2,4,9,9,4,3,3,1,1", "--strategy",
                         "exhaustive", "--evals", "3", "--repeat", "1")
    e = entries(cache).get(("conv2d_gemm", "n2c4h9w9k4r3s3u1p1d1g1"))
    check("gemm search stores a verified entry", code == 0 and e is not None
          and sorted(e["params"]) == ["IM2COL_VW", "WIDE", "WS_MIB"] and e["verified"] is True
          and "0 rejected" in out, out + err[-2000:])


def clblast(cache):
    """CLBlast's SGEMM parameters, one device-wide entry, each candidate checked on every shape."""
    code, out, err = run(cache, "--solver", "clblast", "--shape", "2,4,9,9,4,3,3,1,1",
                         "--strategy", "random", "--evals", "1", "--repeat", "1")
    e = entries(cache).get(("clblast_xgemm", "sgemm"))
    names = ["KWG", "MDIMC", "MIN_INDIRECT", "MWG", "NDIMC", "NWG", "VWM", "VWN"]
    check("clblast search stores one verified device-wide entry",
          code == 0 and e is not None and sorted(e["params"]) == names and e["verified"] is True
          and e["complete"] is True and "1 evaluated" in out and "0 rejected" in out,
          out + err[-2000:])
    check("clblast table lists the defaults and the candidate",
          "MIN_INDIRECT=0 MWG=64" in out and len([l for l in out.splitlines()
                                                   if l.startswith("1 ")]) == 1, out)
    code, out, err = run(cache, "--solver", "clblast", "--shape", "2,4,9,9,4,3,3,1,1", "--resume")
    check("clblast --resume skips", code == 0 and "skipped" in out, out + err)


def backward(cache):
    """--pass bwd-weights tunes implicit_gemm into an entry keyed by the pass; a planted wrong
    variant is rejected there too."""
    shape, key = "2,8,9,9,32,3,3,1,1", "n2c8h9w9k32r3s3u1p1d1g1"
    code, out, err = run(cache, "--solver", "implicit_gemm", "--pass", "bwd-weights", "--shape",
                         shape, "--strategy", "exhaustive", "--evals", "3", "--repeat", "1",
                         env={"CLTUNE_TEST_CORRUPT": "2,1,2"})
    e = entries(cache).get(("conv2d_bwd_weights_implicit_gemm", key))
    check("bwd-weights search stores an entry keyed by the pass",
          code == 0 and e is not None and e["solver"] == "implicit_gemm"
          and sorted(e["params"]) == ["CHUNK_MIB", "IG_KV", "IG_MR"]
          and [e["params"][n] for n in ["IG_MR", "IG_KV", "CHUNK_MIB"]] != [2, 1, 2]
          and ("conv2d_direct", key) not in entries(cache), out + err[-2000:])
    check("bwd-weights planted variant rejected",
          "rejected IG_MR=2 IG_KV=1 CHUNK_MIB=2: wrong result" in err and "--pass bwd-weights" in out,
          out + err[-2000:])
    code, out, err = run(cache, "--solver", "direct", "--pass", "bwd-data", "--shape", shape,
                         "--strategy", "random", "--evals", "2", "--repeat", "1")
    e = entries(cache).get(("conv2d_bwd_data_direct", key))
    check("bwd-data direct stores its own entry",
          code == 0 and e is not None and sorted(e["params"]) == ["BWD_CB", "BWD_VW", "BWD_YB"]
          and e["verified"] is True, out + err[-2000:])


def pool(cache):
    """--solver pool: an entry of the pooling forward, every candidate with the defaults' bits."""
    code, out, err = run(cache, "--solver", "pool", "--shape", "2,4,16,16,2,2,2,0",
                         "--strategy", "exhaustive", "--evals", "3", "--repeat", "1")
    e = entries(cache).get(("pool_fwd", "n2c4h16w16r2s2u2p0m0"))
    check("pool search stores a verified entry",
          code == 0 and e is not None and sorted(e["params"]) == ["LWS", "POOL_VW"]
          and e["verified"] is True and "0 rejected" in out, out + err[-2000:])
    code, out, err = run(cache, "--solver", "pool", "--shape", "2,4,16")
    check("pool: bad shape is a usage error", code == 2 and "N,C,H,W,R,S,stride,pad" in err, err)


def planted_wrong_variant(cache):
    # Exhaustive order starts at the smallest values: the first candidate is corrupted.
    first = "2,1,1,0,0"
    code, out, err = run(cache, "--solver", "direct", "--shape", TINY, "--strategy", "exhaustive",
                         "--evals", "3", "--repeat", "1",
                         env={"CLTUNE_TEST_CORRUPT": first})
    check("planted variant run exits 0", code == 0, err[-2000:])
    check("planted variant rejected", "1 rejected" in out and
          "rejected VW=2 OYB=1 KB=1 PADDED=0 LWS=0: wrong result" in err, out + err)
    rows = [l for l in out.splitlines() if l[:1].isdigit()]
    check("planted variant not in the table",
          all("VW=2 OYB=1 KB=1 PADDED=0 LWS=0" not in l for l in rows) and len(rows) == 2, out)
    e = entries(cache).get(("conv2d_direct", TINY_KEY))
    check("planted variant not stored",
          e is not None and [e["params"][n] for n in NAMES] != [2, 1, 1, 0, 0], str(e))


def corrupt_database(cache):
    code, _, _ = run(cache, "--solver", "direct", "--shape", TINY, "--evals", "1")
    path = db_file(cache)
    check("database written", code == 0 and path is not None)
    if path is None:
        return
    with open(path, "w") as f:
        f.write('{"schema": 1, "entries": [ {"kernel": ')
    code, out, err = run(cache, "--show")
    check("corrupt database: --show warns, exits 0", code == 0 and "corrupt" in err, out + err)
    code, out, err = run(cache, "--solver", "direct", "--shape", TINY, "--evals", "1")
    check("corrupt database: tuning still works", code == 0, err[-2000:])
    check("corrupt database: rewritten whole", ("conv2d_direct", TINY_KEY) in entries(cache))


def budget_bound(cache):
    t0 = time.time()
    code, out, err = run(cache, "--solver", "direct", "--shape", "1,16,40,40,16,3,3,1,1",
                         "--strategy", "exhaustive", "--budget", "4s", "--repeat", "2")
    elapsed = time.time() - t0
    # Device creation and the defaults' build come before the bound; one candidate may be
    # building when it expires (it is then not timed).
    check("--budget bounds the run", code == 0 and elapsed < 4 + 20, "%.1f s" % elapsed)
    check("--budget stops the search early", "stopped at its bound" in out, out)


def interrupt_then_resume(cache):
    e = dict(os.environ)
    e["CLCNN_CACHE_DIR"] = cache
    p = subprocess.Popen([CLTUNE, "--solver", "direct", "--shape", "1,16,40,40,16,3,3,1,1",
                          "--strategy", "exhaustive", "--repeat", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    key = "n1c16h40w40k16r3s3u1p1d1g1"
    deadline = time.time() + 120
    while time.time() < deadline and ("conv2d_direct", key) not in entries(cache):
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    check("Ctrl-C exits 130", p.returncode == 130, "code=%s err=%s" % (p.returncode, err[-500:]))
    e1 = entries(cache).get(("conv2d_direct", key))
    check("Ctrl-C leaves an unfinished entry", e1 is not None and e1["complete"] is False, str(e1))
    code, out, err = run(cache, "--solver", "direct", "--shape", "1,16,40,40,16,3,3,1,1",
                         "--evals", "2", "--repeat", "1", "--resume")
    e2 = entries(cache).get(("conv2d_direct", key))
    check("--resume finishes an unfinished shape", code == 0 and "skipped" not in out
          and e2 is not None and e2["complete"] is True, out + err)


def model(cache):
    path = os.path.join(os.environ.get("CLCNN_MODEL_DIR", "tools/models"), "lenet.model")
    code, out, err = run(cache, "--solver", "direct", "--model", path, "--batch", "2",
                         "--evals", "2", "--repeat", "1")
    got = entries(cache)
    keys = sorted(k[1] for k in got if k[0] == "conv2d_direct")
    check("--model tunes each conv", code == 0 and keys == ["n2c1h28w28k32r5s5u1p2d1g1",
                                                           "n2c32h14w14k64r5s5u1p2d1g1"],
          "%s %s" % (keys, err[-1000:]))


def main():
    probe = subprocess.run([CLTUNE, "--show"], capture_output=True, text=True)
    if probe.returncode != 0 and "NO_DEVICE" in probe.stderr:
        return 77
    helped = subprocess.run([CLTUNE, "--help"], capture_output=True, text=True)
    check("help", helped.returncode == 0 and "--strategy" in helped.stdout)
    for test in [usage, tiny_search_show_resume, winograd, gemm, clblast, backward, pool,
                 planted_wrong_variant, corrupt_database,
                 budget_bound, interrupt_then_resume, model]:
        with tempfile.TemporaryDirectory() as tmp:
            test(tmp)
    if failures:
        print("%d failure(s): %s" % (len(failures), ", ".join(failures)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
