#!/usr/bin/env python3
"""Tests of the clcnn command line: help, usage errors (one line, exit 2), `devices` as a table
and as JSON, `devices --verbose` showing the binary cache at work, and `export-binaries`.
Usage: test_cli.py PATH/TO/clcnn. Exits 77 (skip) when no OpenCL device exists."""
import gzip
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

CLCNN = sys.argv[1]
failures = []


def run(*args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([CLCNN, *args], capture_output=True, text=True, env=e, timeout=240)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    if not cond:
        failures.append(name)
        print("FAIL %s %s" % (name, detail))
    else:
        print("ok   %s" % name)


def usage_error(name, *args):
    code, out, err = run(*args)
    lines = [l for l in err.splitlines() if l.strip()]
    check(name, code == 2 and len(lines) == 1 and out == "", "code=%d err=%r" % (code, err))
    return err


def save_npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join("%d, " % d for d in shape).rstrip(" ") if len(shape) > 1 else "%d," % shape[0])
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % len(values), *values))


def load_npy(path):
    data = open(path, "rb").read()
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    shape = tuple(int(t) for t in header.split("(")[1].split(")")[0].split(",") if t.strip())
    count = len(data[10 + hlen:]) // 4
    return shape, struct.unpack("<%df" % count, data[10 + hlen:])


def conv_reference(x, xs, w, ws, b, stride, pad, relu):
    n_, c_, h_, w_ = xs
    k_, _, r_, s_ = ws
    ho = (h_ + 2 * pad[0] - r_) // stride[0] + 1
    wo = (w_ + 2 * pad[1] - s_) // stride[1] + 1
    out = []
    for n in range(n_):
        for k in range(k_):
            for oy in range(ho):
                for ox in range(wo):
                    acc = b[k]
                    for c in range(c_):
                        for r in range(r_):
                            iy = oy * stride[0] - pad[0] + r
                            if iy < 0 or iy >= h_:
                                continue
                            for t in range(s_):
                                ix = ox * stride[1] - pad[1] + t
                                if 0 <= ix < w_:
                                    acc += (x[((n * c_ + c) * h_ + iy) * w_ + ix]
                                            * w[((k * c_ + c) * r_ + r) * s_ + t])
                    out.append(max(acc, 0.0) if relu else acc)
    return (n_, k_, ho, wo), out


def check_op_conv2d(tmp):
    rng = random.Random(5)
    xs, ws = (2, 3, 9, 11), (4, 3, 3, 2)
    x = [rng.uniform(-1, 1) for _ in range(2 * 3 * 9 * 11)]
    w = [rng.uniform(-1, 1) for _ in range(4 * 3 * 3 * 2)]
    b = [rng.uniform(-1, 1) for _ in range(4)]
    paths = [os.path.join(tmp, n) for n in ("x.npy", "w.npy", "b.npy", "y.npy")]
    save_npy(paths[0], xs, x)
    save_npy(paths[1], ws, w)
    save_npy(paths[2], (4,), b)
    code, _, err = run("op", "conv2d", "--input", paths[0], "--weight", paths[1], "--bias",
                       paths[2], "--stride", "2,1", "--pad", "1,0", "--relu", "--output", paths[3])
    check("op conv2d runs", code == 0, err)
    if code != 0:
        return
    shape, got = load_npy(paths[3])
    want_shape, want = conv_reference(x, xs, w, ws, b, (2, 1), (1, 0), True)
    check("op conv2d shape", shape == want_shape, "%s vs %s" % (shape, want_shape))
    worst = max(abs(g - r) for g, r in zip(got, want))
    check("op conv2d values", len(got) == len(want) and worst < 1e-5, "max err %g" % worst)
    # Backward passes against a pure-Python reference of the same layer (stride 2,1, pad 1,0).
    (n_, c_, h_, w_), (k_, _, r_, s_) = xs, ws
    ho, wo = want_shape[2], want_shape[3]
    dy = [rng.uniform(-1, 1) for _ in range(n_ * k_ * ho * wo)]
    dy_path = os.path.join(tmp, "dy.npy")
    save_npy(dy_path, want_shape, dy)
    dx_ref = [0.0] * (n_ * c_ * h_ * w_)
    dw_ref = [0.0] * (k_ * c_ * r_ * s_)
    for n in range(n_):
        for k in range(k_):
            for oy in range(ho):
                for ox in range(wo):
                    g = dy[((n * k_ + k) * ho + oy) * wo + ox]
                    for c in range(c_):
                        for r in range(r_):
                            iy = oy * 2 - 1 + r
                            if iy < 0 or iy >= h_:
                                continue
                            for t in range(s_):
                                ix = ox - 0 + t
                                if ix < 0 or ix >= w_:
                                    continue
                                xi = ((n * c_ + c) * h_ + iy) * w_ + ix
                                wi = ((k * c_ + c) * r_ + r) * s_ + t
                                dx_ref[xi] += g * w[wi]
                                dw_ref[wi] += g * x[xi]
    for op, ref, shape in (("conv2d-bwd-data", dx_ref, xs), ("conv2d-bwd-weights", dw_ref, ws)):
        out_path = os.path.join(tmp, op + ".npy")
        code, _, err = run("op", op, "--input", paths[0], "--weight", paths[1], "--grad-output",
                           dy_path, "--stride", "2,1", "--pad", "1,0", "--output", out_path)
        check("op " + op + " runs", code == 0, err)
        if code == 0:
            got_shape, got = load_npy(out_path)
            worst = max(abs(g - r) for g, r in zip(got, ref))
            check("op " + op + " values", got_shape == shape and worst < 1e-4,
                  "%s max err %g" % (got_shape, worst))
    usage_error("op conv2d-bwd-data without dy", "op", "conv2d-bwd-data", "--input", paths[0],
                "--weight", paths[1], "--output", paths[3])
    code, _, err = run("op", "conv2d", "--input", paths[0], "--weight", paths[1], "--groups",
                       "2", "--output", paths[3])
    check("op conv2d bad groups", code == 1 and "groups 2 must divide" in err, err)
    usage_error("op conv2d bad stride", "op", "conv2d", "--input", paths[0], "--weight",
                paths[1], "--stride", "0", "--output", paths[3])
    usage_error("op conv2d bad algo", "op", "conv2d", "--input", paths[0], "--weight", paths[1],
                "--algo", "magic", "--output", paths[3])
    usage_error("op unknown", "op", "deconv")


def pool_reference(x, xs, window, stride, pad, kind):
    """Pooling in pure Python (max or avg-exclude-pad, floor mode); returns shape and values."""
    n_, c_, h_, w_ = xs
    ho = (h_ + 2 * pad[0] - window[0]) // stride[0] + 1
    wo = (w_ + 2 * pad[1] - window[1]) // stride[1] + 1
    out = []
    for p in range(n_ * c_):
        for oy in range(ho):
            for ox in range(wo):
                vals = [x[(p * h_ + iy) * w_ + ix]
                        for iy in range(oy * stride[0] - pad[0], oy * stride[0] - pad[0] + window[0])
                        for ix in range(ox * stride[1] - pad[1], ox * stride[1] - pad[1] + window[1])
                        if 0 <= iy < h_ and 0 <= ix < w_]
                out.append(max(vals) if kind == "max" else sum(vals) / len(vals))
    return (n_, c_, ho, wo), out


def check_op_pool(tmp):
    rng = random.Random(7)
    xs = (2, 3, 9, 11)
    x = [rng.uniform(-1, 1) for _ in range(2 * 3 * 9 * 11)]
    px, py = os.path.join(tmp, "px.npy"), os.path.join(tmp, "py.npy")
    save_npy(px, xs, x)
    x = load_npy(px)[1]  # the float32 values the tool sees
    for kind in ("max", "avg-exclude-pad"):
        code, _, err = run("op", "pool", "--input", px, "--kind", kind, "--window", "3,2",
                           "--stride", "2,3", "--pad", "1,1", "--output", py)
        check("op pool %s runs" % kind, code == 0, err)
        if code != 0:
            continue
        shape, got = load_npy(py)
        want_shape, want = pool_reference(x, xs, (3, 2), (2, 3), (1, 1), kind)
        check("op pool %s shape" % kind, shape == want_shape, "%s vs %s" % (shape, want_shape))
        worst = max(abs(g - r) for g, r in zip(got, want))
        check("op pool %s values" % kind, len(got) == len(want) and worst < 1e-6,
              "max err %g" % worst)
    code, _, err = run("op", "pool", "--input", px, "--window", "3", "--pad", "3", "--output", py)
    check("op pool bad pad", code == 1 and "padding 3x3 must be smaller than the window 3x3" in err,
          err)
    usage_error("op pool bad kind", "op", "pool", "--input", px, "--kind", "median", "--output", py)


def check_op_linear_xent(tmp):
    """linear, linear-bwd, softmax-xent and softmax-xent-bwd against pure-Python references."""
    import math
    rng = random.Random(11)
    n, c, h, w, out = 3, 2, 2, 3, 4
    fin = c * h * w
    p = {k: os.path.join(tmp, k + ".npy") for k in ("x", "w", "b", "y", "dy", "dx", "dw", "db",
                                                    "l", "loss", "dz")}
    save_npy(p["x"], (n, c, h, w), [rng.uniform(-1, 1) for _ in range(n * fin)])
    save_npy(p["w"], (out, fin), [rng.uniform(-1, 1) for _ in range(out * fin)])
    save_npy(p["b"], (out,), [rng.uniform(-1, 1) for _ in range(out)])
    save_npy(p["dy"], (n, out), [rng.uniform(-1, 1) for _ in range(n * out)])
    x, wt, b, dy = (load_npy(p[k])[1] for k in ("x", "w", "b", "dy"))
    code, _, err = run("op", "linear", "--input", p["x"], "--weight", p["w"], "--bias", p["b"],
                       "--output", p["y"])
    check("op linear runs", code == 0, err)
    if code == 0:
        shape, got = load_npy(p["y"])
        want = [b[o] + sum(x[r * fin + i] * wt[o * fin + i] for i in range(fin))
                for r in range(n) for o in range(out)]
        worst = max(abs(g - r) for g, r in zip(got, want))
        check("op linear values", shape == (n, out) and worst < 1e-5,
              "%s max err %g" % (shape, worst))
    code, _, err = run("op", "linear-bwd", "--input", p["x"], "--weight", p["w"], "--grad-output",
                       p["dy"], "--output", p["dx"], "--grad-weight", p["dw"], "--grad-bias",
                       p["db"])
    check("op linear-bwd runs", code == 0, err)
    if code == 0:
        want_dx = [sum(dy[r * out + o] * wt[o * fin + i] for o in range(out))
                   for r in range(n) for i in range(fin)]
        want_dw = [sum(dy[r * out + o] * x[r * fin + i] for r in range(n))
                   for o in range(out) for i in range(fin)]
        want_db = [sum(dy[r * out + o] for r in range(n)) for o in range(out)]
        for key, want, shape in (("dx", want_dx, (n, c, h, w)), ("dw", want_dw, (out, fin)),
                                 ("db", want_db, (out,))):
            got_shape, got = load_npy(p[key])
            worst = max(abs(g - r) for g, r in zip(got, want))
            check("op linear-bwd " + key, got_shape == shape and worst < 1e-5,
                  "%s max err %g" % (got_shape, worst))
    labels = [2, 0, 3]
    save_npy(p["l"], (n,), [float(v) for v in labels])
    z = load_npy(p["dy"])[1]  # reuse dy as N x 4 logits
    code, _, err = run("op", "softmax-xent", "--input", p["dy"], "--labels", p["l"], "--output",
                       p["loss"])
    check("op softmax-xent runs", code == 0, err)
    rows = [z[r * out:(r + 1) * out] for r in range(n)]
    lse = [max(row) + math.log(sum(math.exp(v - max(row)) for v in row)) for row in rows]
    if code == 0:
        shape, got = load_npy(p["loss"])
        want = sum(lse[r] - rows[r][labels[r]] for r in range(n)) / n
        check("op softmax-xent value", shape == (1,) and abs(got[0] - want) < 1e-5,
              "%s %r vs %r" % (shape, got, want))
    code, _, err = run("op", "softmax-xent-bwd", "--input", p["dy"], "--labels", p["l"],
                       "--output", p["dz"])
    check("op softmax-xent-bwd runs", code == 0, err)
    if code == 0:
        _, got = load_npy(p["dz"])
        want = [(math.exp(rows[r][k] - lse[r]) - (1.0 if k == labels[r] else 0.0)) / n
                for r in range(n) for k in range(out)]
        worst = max(abs(g - r) for g, r in zip(got, want))
        check("op softmax-xent-bwd values", worst < 1e-6, "max err %g" % worst)
    save_npy(p["l"], (n,), [2.0, 4.0, 0.0])
    code, _, err = run("op", "softmax-xent", "--input", p["dy"], "--labels", p["l"], "--output",
                       p["loss"])
    check("op softmax-xent bad label",
          code == 1 and "labels[1] = 4 is outside the classes [0, 4)" in err, err)
    usage_error("op linear without weight", "op", "linear", "--input", p["x"], "--output", p["y"])


def check_trace(what, path, names):
    """A Chrome trace: valid JSON, the queue and loader lanes named, and each of names once."""
    try:
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        check(what, False, str(e))
        return
    lanes = {e["args"]["name"] for e in events if e.get("ph") == "M"}
    counts = {}
    for e in events:
        if e.get("ph") == "X":
            counts[e["name"]] = counts.get(e["name"], 0) + 1
    missing = [n for n in names if counts.get(n) != 1]
    check(what, {"compute queue", "transfer queue", "loader 0"} <= lanes and not missing,
          "lanes %s, not once: %s" % (sorted(lanes), missing[:5]))


def check_train_eval_infer(tmp):
    """One short training run, then eval and infer on what it wrote (needs Fashion-MNIST)."""
    data = "/usr/share/datasets/fashion-mnist"
    if not os.path.exists(os.path.join(data, "t10k-images-idx3-ubyte.gz")):
        print("skip train/eval/infer: Fashion-MNIST is not installed at " + data)
        return
    models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "models")
    model = os.path.join(models, "lenet.model")
    weights = os.path.join(tmp, "lenet.weights")
    trace = os.path.join(tmp, "train.json")
    code, out, err = run("train", "--model", model, "--epochs", "1", "--limit", "512",
                         "--out", weights, "--trace", trace)
    m = re.search(r"test accuracy ([0-9.]+)", out)
    check("train", code == 0 and m is not None and float(m.group(1)) > 0.2 and
          os.path.exists(weights), out + err)
    if m is None:
        return
    check_trace("train --trace", trace, ["epoch 1 b%d %s" % (b, stage) for b in range(8)
                                         for stage in ("load", "upload", "conv1 fwd",
                                                       "conv1 bwd", "download")] +
                ["eval 1 b%d upload" % b for b in range(157)])
    # Serial, with two loaders: the same weights, bit for bit.
    serial = os.path.join(tmp, "serial.weights")
    code, out2, err = run("train", "--model", model, "--epochs", "1", "--limit", "512",
                          "--out", serial, "--inflight", "1", "--loaders", "2")
    with open(weights, "rb") as f, open(serial, "rb") as g:
        check("train --inflight 1 gives the same bits", code == 0 and f.read() == g.read() and
              m.group(0) in out2, out2 + err)
    code, out, err = run("eval", "--model", model, "--weights", weights)
    check("eval matches train", code == 0 and "test accuracy " + m.group(1) in out and
          "Ankle boot" in out, out + err)
    with gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")) as f:
        pixels = f.read(16 + 784)[16:]
    pgm = os.path.join(tmp, "first.pgm")
    with open(pgm, "wb") as f:
        f.write(b"P5\n# the first test image\n28 28\n255\n" + pixels)
    code, out, err = run("infer", "--model", model, "--weights", weights, "--top", "2", pgm)
    names = re.findall(r"  ([A-Za-z /-]+) (0\.[0-9]+)", out)
    check("infer", code == 0 and len(names) == 2 and float(names[0][1]) >= float(names[1][1]),
          out + err)
    # The same image as .npy pixel values, in one batch with the PGM, traced.
    npy = os.path.join(tmp, "first.npy")
    save_npy(npy, (1, 28, 28), [float(v) for v in pixels])
    trace = os.path.join(tmp, "infer.json")
    code, out2, err = run("infer", "--model", model, "--weights", weights, "--top", "2",
                          "--batch", "2", "--trace", trace, pgm, npy, pgm)
    lines = out2.splitlines()
    check("infer .npy and batches", code == 0 and len(lines) == 3 and
          lines[0].split(":", 1)[1] == lines[1].split(":", 1)[1] == lines[2].split(":", 1)[1] and
          lines[0].split(":", 1)[1] == out.split(":", 1)[1].rstrip("\n"), out + out2 + err)
    check_trace("infer --trace", trace, ["infer b0 upload", "infer b1 download",
                                         "infer b0 conv2 fwd"])
    bad = os.path.join(tmp, "bad.pgm")
    with open(bad, "wb") as f:
        f.write(b"P5 3 3 255\n" + bytes(9))
    code, out, err = run("infer", "--model", model, "--weights", weights, bad)
    check("infer wrong size", code == 1 and "3x3 grey" in err, err)


def main():
    code, out, _ = run("--help")
    check("help", code == 0 and "devices" in out and "export-binaries" in out)
    code, out, _ = run("devices", "--help")
    check("devices --help", code == 0 and "--json" in out and "usage: clcnn devices" in out)
    code, out, _ = run("--version")
    check("version", code == 0 and out.startswith("clcnn 0."))
    err = usage_error("unknown command", "frobnicate")
    check("unknown command named", "'frobnicate'" in err)
    err = usage_error("unknown option", "devices", "--bogus")
    check("unknown option named", "'--bogus'" in err)
    usage_error("missing value", "devices", "--device")
    usage_error("export without dir", "export-binaries")
    usage_error("train without model", "train")
    usage_error("train bad optimizer", "train", "--model", "x.model", "--optimizer", "rmsprop")
    usage_error("train bad epochs", "train", "--model", "x.model", "--epochs", "0")
    usage_error("eval without weights", "eval", "--model", "x.model")
    usage_error("infer without images", "infer", "--model", "x.model", "--weights", "w")
    models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "models")
    code, out, _ = run("summary", os.path.join(models, "alexnet.model"), "--json")
    doc = json.loads(out) if code == 0 else {}
    check("summary alexnet", code == 0 and doc.get("params") == 61100840 and
          len(doc.get("layers", [])) == 16)
    code, out, err = run("summary", os.path.join(models, "nope.model"))
    check("summary missing file", code == 1 and "nope.model" in err)
    code, _, _ = run()
    check("no arguments", code == 2)
    err = usage_error("bench pipeline bad rounds", "bench", "pipeline", "--rounds", "0")
    check("bench pipeline bad rounds named", "'0' for --rounds" in err)

    code, out, err = run("devices", "--json")
    if code != 0 and "no OpenCL platform" in err:
        print("no OpenCL device: skipping the device part")
        return 77 if not failures else 1
    doc = json.loads(out)
    devices = doc["devices"]
    check("json devices", code == 0 and len(devices) >= 1)
    sel = doc["selected"]
    check("json selected", 0 <= sel < len(devices))
    d = devices[sel]
    for key in ("name", "vendor", "type", "driver_version", "opencl_c_version", "compute_units",
                "local_mem_bytes", "max_work_group_size", "fp16", "fp64", "unified_memory",
                "quirks", "arch"):
        check("json key " + key, key in d)

    code, out, _ = run("bench", "pipeline", "--batch", "4", "--batches", "2", "--inflight", "1,2",
                       "--rounds", "3")
    rows = re.findall(r"^(\d+) +([\d.]+) +([\d.]+)x +([\d.]+)x +([\d.]+)x +([\d.]+) +([\d.]+)x +"
                      r"([\d.]+)x-([\d.]+)x$", out, re.M)
    runs = re.findall(r"^(\d+) +([\d.]+) +[\d.]+x +[\d.]+ +[\d.]+ +[\d.]+% +([\d.]+)$", out,
                      re.M)
    # The geometric mean of the three rounds' ratios and its interval (t with 2 degrees of
    # freedom, 4.303), from the printed rates.
    logs = [math.log(float(runs[i + 1][1]) / float(runs[i][1])) for i in range(0, len(runs) - 1, 2)]
    mean = sum(logs) / len(logs) if logs else 0.0
    half = (4.303 * math.sqrt(sum((x - mean) ** 2 for x in logs) / 2 / 3)
            if len(logs) == 3 else 0.0)
    expected = (math.exp(mean), math.exp(mean - half), math.exp(mean + half))
    check("bench pipeline rounds", code == 0 and out.count("\n1 ") == 4 and
          "# medians over 3 rounds" in out and [r[0] for r in rows] == ["1", "2"] and
          rows[0][2:5] == ("1.00", "1.00", "1.00") and
          float(rows[1][3]) <= float(rows[1][2]) <= float(rows[1][4]) and
          rows[0][6:9] == ("1.000", "1.000", "1.000") and
          float(rows[1][3]) <= float(rows[1][6]) <= float(rows[1][4]) and
          all(abs(float(rows[1][6 + k]) - expected[k]) <= 0.002 * expected[k] + 0.0015
              for k in range(3)) and
          [r[0] for r in runs] == ["1", "2"] * 3 and "idle ms/b" in out, out)

    # A busy process beside it: the rounds it ran in are flagged.
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        code, out, _ = run("bench", "pipeline", "--batch", "4", "--batches", "2", "--inflight",
                           "1", "--rounds", "2")
    finally:
        busy.kill()
        busy.wait()
    check("bench pipeline load", code == 0 and "# load average (1, 5, 15 min):" in out and
          re.search(r"^# warning: other processes used [\d.]+ cores during round 1$", out, re.M),
          out)

    code, out, _ = run("devices")
    check("table", code == 0 and d["name"][:20] in out and "* " in out and "picks [%d]" % sel in out)
    code, _, err = run("devices", "--device", "no-such-device-xyz")
    check("bad selector", code == 1 and "matches no device" in err and d["name"][:20] in err)

    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        code, out, _ = run("devices", "--verbose", env={"CLCNN_CACHE_DIR": cache})
        cached = re.search(r"(\d+) from the cache", out)
        compiled = re.search(r"(\d+) compiled", out)
        check("verbose cold", code == 0 and cached and cached.group(1) == "0" and compiled and
              compiled.group(1) != "0", out)
        code, out, _ = run("devices", "--verbose", env={"CLCNN_CACHE_DIR": cache})
        cached = re.search(r"(\d+) from the cache", out)
        compiled = re.search(r"(\d+) compiled", out)
        check("verbose warm", code == 0 and cached and cached.group(1) != "0" and compiled and
              compiled.group(1) == "0", out)
        bins = os.path.join(tmp, "bins")
        code, out, err = run("export-binaries", bins)
        files = os.listdir(bins) if os.path.isdir(bins) else []
        check("export", code == 0 and len(files) >= 1 and all(f.endswith(".clbin") for f in files),
              err)
        code, out, _ = run("devices", "--verbose",
                           env={"CLCNN_CACHE_DIR": "off", "CLCNN_BINARY_DIR": bins})
        check("offline load", code == 0 and "%d offline binaries" % len(files) in out, out)
        check_op_conv2d(tmp)
        check_train_eval_infer(tmp)
        check_op_pool(tmp)
        check_op_linear_xent(tmp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
