#!/usr/bin/python3
"""PyTorch's side of the peer comparison (scripts/bench_peers.sh).

Mirrors bench/peers/peer_common.hpp: the same shapes, data (an integer hash of the memory index,
so the tensors are bit-identical to the C++ drivers'), epsilon, parameters, timing rule (warm-up,
then the median of samples lasting at least --min-sample-ms, each beside a sample of the copy
probe: bnlab's, loaded from --probe-lib, on this process's tensors) and output format:
    pytorch <operation> <shape> <milliseconds per call> copy_plain=<ms> copy_streaming=<ms>
    # check pytorch <operation> <shape> <name>=<value> ...

Run with /usr/bin/python3 (Debian's python3-torch 1.13) and, as bench_peers.sh does, with
LD_PRELOAD=libtcmalloc_minimal.so.4: PyTorch allocates every output anew, and glibc's malloc
returns blocks this large to the kernel on free, so each call would page-fault its output in
again; tcmalloc keeps the pages and the timing measures the kernel, as for the C++ drivers whose
buffers are allocated once.

What a timed call is (--mode, default "ops"):
  ops       the ATen operators a training step dispatches to, called directly, with no autograd
            graph: forward_training F.batch_norm(training=True) (also updates running statistics,
            O(C)), forward_inference F.batch_norm(training=False) under no_grad, backward
            aten.native_batch_norm_backward (the function autograd's BatchNorm node calls on the
            CPU), *_relu the same followed by relu_ / preceded by aten.threshold_backward (relu_'s
            autograd backward), since PyTorch does not fuse them. This is the fairer default:
            bnlab and oneDNN are timed as bare kernel calls on prepared buffers, and autograd's
            bookkeeping (graph recording, the engine, gradient accumulation into .grad, which adds
            a read and a write of the whole input gradient from the second call on) is framework
            cost, not BatchNorm cost.
  autograd  what a model step costs: forward with the graph recorded (inputs require grad), and
            backward as torch.autograd.grad(y, (x, weight, bias), dy, retain_graph=True) (no
            accumulation into .grad, which would add the extra pass above).
"""

import argparse
import ctypes
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [
    # name, N, C, H, W, layout  (H = W = 1 for NC), as in peer_common.hpp
    ("256x64x56x56_NCHW", 256, 64, 56, 56, "NCHW"),
    ("256x64x56x56_NHWC", 256, 64, 56, 56, "NHWC"),
    ("64x256x28x28_NCHW", 64, 256, 28, 28, "NCHW"),
    ("4096x1024_NC", 4096, 1024, 1, 1, "NC"),
    ("32x300_NC", 32, 300, 1, 1, "NC"),
]
EPSILON = 1e-5
BETA = 0.1
INFERENCE_MEAN = 0.5
INFERENCE_VARIANCE = 1.5


def hashed_uniform(count, offset, multiplier, width):
    """width * (u - 0.5), u = ((i + offset) * multiplier mod 2^32) / 2^32, as peer_common.hpp.

    The products stay below 2^63, so int64 arithmetic gives the C++ uint64 bits; the double
    result is rounded to float32 once, as there."""
    i = torch.arange(offset, offset + count, dtype=torch.int64)
    h = torch.bitwise_and(i * multiplier, 0xFFFFFFFF)
    return h.to(torch.float64).div_(4294967296.0).sub_(0.5).mul_(width)


def make_tensor(shape, values):
    """A float32 tensor of logical shape NCHW (or NC) whose memory holds `values` in order."""
    _, n, c, h, w, layout = shape
    if layout == "NC":
        return values.to(torch.float32).reshape(n, c).contiguous()
    if layout == "NCHW":
        return values.to(torch.float32).reshape(n, c, h, w).contiguous()
    # NHWC: memory order n, h, w, c; viewed as NCHW with channels_last strides.
    t = values.to(torch.float32).reshape(n, h, w, c).permute(0, 3, 1, 2)
    assert t.is_contiguous(memory_format=torch.channels_last)
    return t


class CopyProbe:
    """bnlab's copy probe (src/kernels/memory_probe.cpp, built as libbnlab_probe.so) through ctypes,
    on this process's own tensors: x copied into a tensor of the same size."""

    def __init__(self, path):
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            raise SystemExit(f"torch_batchnorm: cannot load the copy probe {path}: {e} "
                             "(scripts/bench_peers.sh builds it as target bnlab_probe)")
        for fn in (self.lib.bnlab_probe_copy_plain, self.lib.bnlab_probe_copy_streaming):
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            fn.restype = None
        self.lib.bnlab_probe_evict_caches.argtypes = []
        self.lib.bnlab_probe_evict_caches.restype = None
        self.evict = self.lib.bnlab_probe_evict_caches

    def functions(self, x):
        out = torch.empty(x.numel(), dtype=torch.float32)
        src, dst, count = x.data_ptr(), out.data_ptr(), x.numel()
        # The streaming copy wants a 64-byte aligned destination; tcmalloc and glibc give that for
        # tensors this large, but not necessarily for 32x300.
        if dst % 64 != 0:
            out = torch.empty(x.numel() + 16, dtype=torch.float32)
            offset = (-out.data_ptr() % 64) // 4
            out = out[offset:offset + count]
            dst = out.data_ptr()
        plain = lambda: self.lib.bnlab_probe_copy_plain(src, dst, count)  # noqa: E731
        streaming = lambda: self.lib.bnlab_probe_copy_streaming(src, dst, count)  # noqa: E731
        return plain, streaming, out  # the caller holds `out`, the destination, alive


def calls_per_sample(args, body):
    """Calls per sample: as many back-to-back calls as last min_sample_ms (peer_common.hpp)."""
    fastest = float("inf")
    for _ in range(args.warmup):
        start = time.perf_counter()
        body()
        fastest = min(fastest, (time.perf_counter() - start) * 1e3)
    return max(1, math.ceil(args.min_sample_ms / max(fastest, 1e-6)))


def sample_ms(body, calls):
    start = time.perf_counter()
    for _ in range(calls):
        body()
    return (time.perf_counter() - start) * 1e3 / calls


def cold_cache_for(args, count):
    """Tensors of 1 MiB and more are timed with cold caches (peer_common.hpp's cold_cache_for)."""
    return not args.warm_cache and count * 4 >= 1 << 20


def time_paired(args, body, probe, evict=None):
    """(op ms, plain copy ms, streaming copy ms), timed in turns as peer_common.hpp's
    time_in_turns does: each sample runs the plain copy, the streaming copy and the operation,
    starting with a different one each time; the median of each. With `evict` (cold caches) a
    sample is one call, after evict() (untimed)."""
    plain, streaming, _ = probe
    functions = (plain, streaming, body)
    calls = [calls_per_sample(args, f) for f in functions]
    if evict:
        calls = [1, 1, 1]
    samples = ([], [], [])
    for r in range(args.repetitions):
        for turn in range(len(functions)):
            b = (turn + r) % len(functions)
            if evict:
                evict()
            samples[b].append(sample_ms(functions[b], calls[b]))
    plain_ms, streaming_ms, body_ms = (statistics.median(s) for s in samples)
    return body_ms, plain_ms, streaming_ms


def sum_abs(t):
    return float(t.abs().sum(dtype=torch.float64))


def run_shape(shape, args, copy_probe):
    name, n, c, h, w, layout = shape
    count = n * c * h * w
    x = make_tensor(shape, hashed_uniform(count, 0, 2654435761, 4.0).add_(0.5))
    dy = make_tensor(shape, hashed_uniform(count, 12345, 2246822519, 0.4))
    # float32 arithmetic, as 1.0f + 0.01f * (c % 7) in C++.
    weight = (torch.arange(c) % 7).to(torch.float32) * 0.01 + 1.0
    bias = torch.full((c,), BETA, dtype=torch.float32)
    running_mean = torch.zeros(c)
    running_var = torch.ones(c)
    moving_mean = torch.full((c,), INFERENCE_MEAN, dtype=torch.float32)
    moving_var = torch.full((c,), INFERENCE_VARIANCE, dtype=torch.float32)
    mask = [True, True, True]
    results = {}

    probe = copy_probe.functions(x)
    evict = copy_probe.evict if cold_cache_for(args, count) else None

    def report(op, timing):
        ms, plain_ms, streaming_ms = timing
        print(f"pytorch {op} {name} {ms:.6f} copy_plain={plain_ms:.6f} copy_streaming={streaming_ms:.6f}",
              flush=True)

    def check_forward(op, y):
        print(f"# check pytorch {op} {name} sum_abs_y={sum_abs(y):.9e}")

    def check_backward(op, grads):
        dx, dgamma, dbeta = grads
        print(f"# check pytorch {op} {name} sum_abs_dx={sum_abs(dx):.9e} "
              f"sum_abs_dgamma={sum_abs(dgamma):.9e} sum_abs_dbeta={sum_abs(dbeta):.9e}")

    def forward_training(relu):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, True, 0.1, EPSILON)
        results["y"] = torch.relu_(y) if relu else y

    def forward_inference():
        results["y"] = F.batch_norm(x, moving_mean, moving_var, weight, bias, False, 0.1, EPSILON)

    if args.mode == "ops":
        with torch.no_grad():
            report("forward_training", time_paired(args, lambda: forward_training(False), probe, evict))
            check_forward("forward_training", results["y"])
            report("forward_inference", time_paired(args, forward_inference, probe, evict))
            check_forward("forward_inference", results["y"])

            # The saved statistics the backward needs, from the operator autograd would record.
            _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(
                x, weight, bias, None, None, True, 0.1, EPSILON)

            def backward(grad):
                results["grads"] = torch.ops.aten.native_batch_norm_backward(
                    grad, x, weight, None, None, save_mean, save_invstd, True, EPSILON, mask)

            report("backward", time_paired(args, lambda: backward(dy), probe, evict))
            check_backward("backward", results["grads"])
            report("forward_training_relu", time_paired(args, lambda: forward_training(True), probe, evict))
            check_forward("forward_training_relu", results["y"])
            y_relu = results["y"]

            def backward_relu():
                backward(torch.ops.aten.threshold_backward(dy, y_relu, 0.0))

            report("backward_relu", time_paired(args, backward_relu, probe, evict))
            check_backward("backward_relu", results["grads"])
        return

    # --mode autograd: the graph is recorded by every training forward.
    x.requires_grad_(True)
    weight.requires_grad_(True)
    bias.requires_grad_(True)

    def autograd_backward(y):
        results["grads"] = torch.autograd.grad(y, (x, weight, bias), dy, retain_graph=True)

    report("forward_training", time_paired(args, lambda: forward_training(False), probe, evict))
    check_forward("forward_training", results["y"].detach())
    with torch.no_grad():
        report("forward_inference", time_paired(args, forward_inference, probe, evict))
        check_forward("forward_inference", results["y"])
    forward_training(False)
    y_plain = results["y"]
    report("backward", time_paired(args, lambda: autograd_backward(y_plain), probe, evict))
    check_backward("backward", results["grads"])
    report("forward_training_relu", time_paired(args, lambda: forward_training(True), probe, evict))
    check_forward("forward_training_relu", results["y"].detach())
    y_relu = results["y"]
    report("backward_relu", time_paired(args, lambda: autograd_backward(y_relu), probe, evict))
    check_backward("backward_relu", results["grads"])


def allocator():
    """Which malloc this process runs on, so the table can say whether tcmalloc was preloaded."""
    try:
        with open("/proc/self/maps") as maps:
            return "tcmalloc" if "libtcmalloc" in maps.read() else "glibc malloc"
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=21)
    parser.add_argument("--min-sample-ms", type=float, default=1.0)
    parser.add_argument("--shape", default="")
    parser.add_argument("--warm-cache", action="store_true",
                        help="no cache eviction between samples (peer_common.hpp's cold_cache_for)")
    parser.add_argument("--probe-lib", required=True,
                        help="libbnlab_probe.so (bench/peers), the copy probe timed beside each operation")
    parser.add_argument("--mode", choices=("ops", "autograd"), default="ops")
    parser.add_argument("--quick", action="store_true",
                        help="warm-up 1, repetitions 3 (checks that it runs; not a measurement)")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.repetitions = 1, 3
    if args.threads < 1 or args.warmup < 1 or args.repetitions < 1 or args.min_sample_ms < 0:
        parser.error("--threads, --warmup and --repetitions must be >= 1, --min-sample-ms >= 0")
    torch.set_num_threads(args.threads)
    print(f"# PyTorch {torch.__version__}, {allocator()}, mode {args.mode}, "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')}")
    print(f"# pytorch: threads {args.threads} (torch.get_num_threads {torch.get_num_threads()}), "
          f"warm-up {args.warmup}, repetitions {args.repetitions}, min sample {args.min_sample_ms:g} ms, "
          f"{'warm caches' if args.warm_cache else 'cold caches for tensors of 1 MiB and more'}")
    copy_probe = CopyProbe(args.probe_lib)
    known = {s[0] for s in SHAPES}
    if args.shape and args.shape not in known:
        parser.error(f"--shape {args.shape}: expected one of {sorted(known)}")
    for shape in SHAPES:
        if not args.shape or args.shape == shape[0]:
            run_shape(shape, args, copy_probe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
