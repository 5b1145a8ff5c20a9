#!/usr/bin/env python3
"""A peer for `clcnn bench conv` where oneDNN is not the right one (a GPU): PyTorch times the
same convolutions (forward, backward data or backward weights) on the device it is given, with
cuDNN's own algorithm search on (torch.backends.cudnn.benchmark), and prints one JSON line per
shape: the median and min milliseconds of the call plus a device synchronize, as clcnn's bench
times the call plus a clcnn_device_finish.

  conv_torch.py --shapes vgg16|lenet|N,C,H,W,K,R,S,stride,pad[;...] [--pass fwd|bwd-data|bwd-weights]
                [--device cpu|cuda] [--repeat N] [--min-time MS]"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

# The same sets as tools/bench.c (name, N, C, H, W, K, R, S, stride, pad).
SETS = {
    "lenet": [("conv1", 64, 1, 28, 28, 32, 5, 5, 1, 2), ("conv2", 64, 32, 14, 14, 64, 5, 5, 1, 2)],
    "vgg16": [(name, n, c, hw, hw, c, 3, 3, 1, 1)
              for name, c, hw in (("conv1_2", 64, 224), ("conv2_2", 128, 112),
                                  ("conv3_2", 256, 56), ("conv4_2", 512, 28),
                                  ("conv5_1", 512, 14))
              for n in (1, 8)],
}


def parse_shapes(text):
    if text in SETS:
        return SETS[text]
    shapes = []
    for i, item in enumerate(text.split(";")):
        v = [int(x) for x in item.split(",")]
        if len(v) != 9:
            raise SystemExit("conv_torch.py: --shapes item %d '%s': want N,C,H,W,K,R,S,stride,pad"
                             % (i + 1, item))
        shapes.append(("shape%d" % (i + 1), *v))
    return shapes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="lenet")
    ap.add_argument("--pass", dest="pass_", choices=["fwd", "bwd-data", "bwd-weights"],
                    default="fwd")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=200.0)
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for name, n, c, h, w, k, r, s, stride, pad in parse_shapes(a.shapes):
        x = torch.randn(n, c, h, w, device=dev)
        wt = torch.randn(k, c, r, s, device=dev)
        oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
        dy = torch.randn(n, k, oh, ow, device=dev)
        if a.pass_ == "fwd":
            def call():
                return F.conv2d(x, wt, stride=stride, padding=pad)
        elif a.pass_ == "bwd-data":
            def call():
                return torch.nn.grad.conv2d_input(x.shape, wt, dy, stride=stride, padding=pad)
        else:
            def call():
                return torch.nn.grad.conv2d_weight(x, wt.shape, dy, stride=stride, padding=pad)
        for _ in range(3):  # warm-up, and cuDNN's search
            call()
        sync()
        times = []
        while len(times) < a.repeat or sum(times) < a.min_time:
            start = time.perf_counter()
            call()
            sync()
            times.append((time.perf_counter() - start) * 1e3)
        med = statistics.median(times)
        flops = 2.0 * n * k * oh * ow * c * r * s
        print(json.dumps({"peer": "pytorch " + torch.__version__, "device": str(dev),
                          "shape": name, "n": n, "pass": a.pass_, "median_ms": med,
                          "min_ms": min(times), "gflops": flops / med / 1e6}), flush=True)


if __name__ == "__main__":
    main()
