#!/usr/bin/python3
"""PyTorch 1.13's group_norm and layer_norm on the shapes of bench_batchnorm's group_norm32_* and
layer_norm_* entries (32 groups on the image shapes, one group of all features on NC), for the
table in docs/layers.md.

Run with Debian's Python and tcmalloc, as bench_peers.sh runs torch_batchnorm.py (PyTorch
allocates every output anew; tcmalloc keeps the pages, so fresh pages are not what is timed):
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/bin/python3 \\
        bench/peers/torch_normalization.py --threads 2
and compare with `build/bench/bench_batchnorm --benchmark_filter='group_norm|layer_norm'` run
in turns. Forward under no_grad; backward through torch.autograd.grad(y, (x, weight, bias), dy),
as a model step pays for it. Prints the median of --reps calls after one warm-up call.
"""
import argparse
import time

import torch

SHAPES = [
    ("256x64x56x56_NCHW", (256, 64, 56, 56), False),
    ("256x64x56x56_NHWC", (256, 64, 56, 56), True),
    ("64x256x28x28_NCHW", (64, 256, 28, 28), False),
    ("4096x1024_NC", (4096, 1024), False),
    ("32x300_NC", (32, 300), False),
]


def median_ms(call, reps):
    call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, shape, channels_last in SHAPES:
        x = torch.randn(shape)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        channels = shape[1]
        weight = torch.ones(channels, requires_grad=True)
        bias = torch.zeros(channels, requires_grad=True)
        if len(shape) == 2:
            kind = "layer_norm"
            normalize = lambda t: torch.nn.functional.layer_norm(t, (channels,), weight, bias, 1e-5)
        else:
            kind = "group_norm32"
            normalize = lambda t: torch.nn.functional.group_norm(t, 32, weight, bias, 1e-5)
        with torch.no_grad():
            forward = median_ms(lambda: normalize(x), args.reps)
        x_grad = x.clone().requires_grad_(True)
        y = normalize(x_grad)
        dy = torch.randn_like(y)
        backward = median_ms(lambda: torch.autograd.grad(y, (x_grad, weight, bias), dy, retain_graph=True), args.reps)
        print(f"pytorch {kind} {name} forward {forward:.4f} ms backward {backward:.4f} ms")


if __name__ == "__main__":
    main()
