#!/usr/bin/env python3
"""The peer for `clcnn bench train`: PyTorch on the CPU trains and runs the same network as
tools/models/lenet.model (or vgg16.model with --model vgg16) on random batches and prints one JSON line with
training and inference images/s. Run it with OpenBLAS (LD_LIBRARY_PATH pointing at Debian's
openblas-pthread), as `clcnn bench train` does: Debian's reference BLAS would flatter clcnn.
With --device cuda it is the peer of a GPU run (cuDNN, with its algorithm search on); each
timed loop then ends with a synchronize, as clcnn's ends with a clcnn_device_finish."""
import argparse
import json
import time

import torch
from torch import nn


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(1024, 10))


def vgg16():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                         nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["lenet", "vgg16"], default="lenet")
    ap.add_argument("--infer-only", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = (vgg16() if a.model == "vgg16" else lenet()).to(dev)
    shape = (a.batch, 3, 224, 224) if a.model == "vgg16" else (a.batch, 1, 28, 28)
    classes = 1000 if a.model == "vgg16" else 10
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(*shape, device=dev)
    y = torch.randint(0, classes, (a.batch,), device=dev)
    train = 0.0
    if not a.infer_only:
        net.train()
        for _ in range(3):  # warm-up
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        sync()
        start = time.perf_counter()
        for _ in range(a.batches):
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        sync()
        train = a.batch * a.batches / (time.perf_counter() - start)
    net.eval()
    with torch.no_grad():
        for _ in range(3):
            torch.softmax(net(x), 1)
        sync()
        start = time.perf_counter()
        for _ in range(a.batches):
            torch.softmax(net(x), 1)
        sync()
        infer = a.batch * a.batches / (time.perf_counter() - start)
    print(json.dumps({"peer": "pytorch " + torch.__version__, "device": str(dev),
                      "threads": torch.get_num_threads(),
                      "blas": torch.__config__.show().count("OpenBLAS") > 0,
                      "train_images_per_s": train, "infer_images_per_s": infer}))


if __name__ == "__main__":
    main()
