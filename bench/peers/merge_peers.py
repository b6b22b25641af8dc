#!/usr/bin/python3
"""Merges the peer drivers' outputs into one Markdown table (scripts/bench_peers.sh).

Reads the lines of peer_common.hpp's format from each file given:
    <library> <operation> <shape> <ms> copy_plain=<ms> copy_streaming=<ms>
    # check <library> <operation> <shape> name=value ...
and writes the table with bnlab's speed-ups, bnlab's bandwidth against the copy probe, the probe
per shape, and whether every library computed the same results (the check sums, which the shared
input data make comparable).

Every operation was timed beside the copy probe in its own process, sample by sample
(peer_common.hpp's time_paired), so each entry is first made a ratio to the probe timed beside
it: "probe units", the operation's time over the faster copy's. The speed-ups compare those
(peer units / bnlab units: above 1x bnlab is faster), and "vs copy" is bnlab's. On this host the
bandwidth a process gets moves by up to 2x between minutes; libraries measured in turn, by raw
milliseconds, would compare different minutes. The milliseconds are shown too (median round).
"""

import argparse
import statistics
import sys
from collections import defaultdict

# Order of the rows; passes = minimum traffic in tensor passes (docs/batchnorm.md): training
# forward 3, inference 2, backward 5; the fused ReLU adds none.
OPERATIONS = [
    ("forward_training", "forward training", 3),
    ("forward_inference", "forward inference", 2),
    ("backward", "backward", 5),
    ("forward_training_relu", "BN+ReLU forward training", 3),
    ("backward_relu", "BN+ReLU backward", 5),
]
PEERS = [("onednn", "oneDNN"), ("pytorch", "PyTorch")]
# Relative tolerances on the check sums (sums of absolute values over the whole tensor). They are
# there to catch a peer computing another operation (a wrong flag, layout or convention), not
# rounding. With the ReLU, an element whose pre-activation lies within float rounding of 0 can be
# masked either way (docs/batchnorm.md); each such element moves sum |dbeta| by up to |dy| <= 0.2
# against totals near 80 for the large NHWC shape, and the quick run saw oneDNN and PyTorch
# 3.3e-3 away from bnlab there (bnlab within 1e-6 of a float64 evaluation), hence the wider bound.
CHECK_TOLERANCE = 1e-3
CHECK_TOLERANCE_RELU = 2e-2


def parse_shape_elements(shape):
    """'256x64x56x56_NCHW' -> 256*64*56*56."""
    count = 1
    for d in shape.split("_")[0].split("x"):
        count *= int(d)
    return count


def read(paths):
    rounds = defaultdict(list)  # (library, op, shape) -> one (ms, plain ms, streaming ms) per round
    checks = defaultdict(dict)  # (op, shape) -> library -> {name: value}
    shapes = []
    comments = []
    for path in paths:
        with open(path) as f:
            for line in f:
                words = line.split()
                if not words:
                    continue
                if words[0] == "#":
                    if len(words) >= 5 and words[1] == "check":
                        _, _, library, op, shape, *pairs = words
                        checks[(op, shape)][library] = {
                            k: float(v) for k, v in (p.split("=", 1) for p in pairs)}
                    elif len(words) < 2 or words[1] != "bandwidth":  # the table shows those
                        if line.rstrip("\n") not in comments:  # the same header from every round
                            comments.append(line.rstrip("\n"))
                    continue
                try:
                    library, op, shape, ms, plain, streaming = words
                    probe = dict(p.split("=", 1) for p in (plain, streaming))
                    entry = (float(ms), float(probe["copy_plain"]), float(probe["copy_streaming"]))
                except (ValueError, KeyError):
                    raise SystemExit(f"merge_peers: {path}: cannot parse line (expected '<library> <operation> "
                                     f"<shape> <ms> copy_plain=<ms> copy_streaming=<ms>'): {line.rstrip()}")
                rounds[(library, op, shape)].append(entry)
                if shape not in shapes:
                    shapes.append(shape)
    return Results(rounds), checks, shapes, comments


class Results:
    """Per (library, operation, shape): the median round's milliseconds, and the median over rounds
    of the time in probe units (operation ms over the faster copy's ms beside it). On a shared host
    a library's best round would compare lucky windows; its median compares the typical one."""

    def __init__(self, rounds):
        self.ms = {key: statistics.median(e[0] for e in entries) for key, entries in rounds.items()}
        self.units = {key: statistics.median(e[0] / min(e[1], e[2]) for e in entries)
                      for key, entries in rounds.items()}
        # The probe per shape, from bnlab's process: medians over its operations and rounds.
        self.probe = {}
        for (library, _, shape), entries in rounds.items():
            if library == "bnlab":
                self.probe.setdefault(shape, []).extend(entries)

    def probe_bandwidth(self, shape):
        """(faster copy GB/s, plain GB/s, streaming GB/s) from bnlab's process, or None."""
        entries = self.probe.get(shape)
        if not entries:
            return None
        moved = 2 * parse_shape_elements(shape) * 4  # a copy reads and writes the tensor once
        plain = statistics.median(e[1] for e in entries)
        streaming = statistics.median(e[2] for e in entries)
        return moved / (min(plain, streaming) * 1e6), moved / (plain * 1e6), moved / (streaming * 1e6)


def fmt_ms(ms):
    if ms is None:
        return "—"
    return f"{ms:.4f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def fmt_ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return "—"
    return f"{numerator / denominator:.2f}x"


def in_memory(shape):
    """Tensors of 1 MiB and more, timed with cold caches (peer_common.hpp's cold_cache_for)."""
    return parse_shape_elements(shape) * 4 >= 1 << 20


def table(results, shapes):
    lines = ["| shape | operation | bnlab ms | oneDNN ms | PyTorch ms | bnlab/oneDNN speed-up "
             "| bnlab/oneDNN, one process | bnlab/PyTorch speed-up | bnlab vs copy |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for shape in shapes:
        for op, label, passes in OPERATIONS:
            keys = [(library, op, shape) for library in ["bnlab"] + [p for p, _ in PEERS]]
            if all(k not in results.ms for k in keys):
                continue
            ms = [results.ms.get(k) for k in keys]
            units = [results.units.get(k) for k in keys]
            # A kernel moving `passes` tensor passes in the time of a copy (2 passes) runs at
            # passes / 2 of the copy's bandwidth.
            vs_copy = f"{passes / 2 / units[0]:.2f}" if units[0] else "—"
            # bnlab timed in oneDNN's process, in turns with it on the same inputs.
            beside_key = ("bnlab_beside_onednn", op, shape)
            # Speed-ups in probe units for tensors in memory; an in-cache tensor's copy takes about
            # a microsecond, mostly call overhead (and, in the Python driver, ctypes's), so there
            # the milliseconds themselves are compared.
            speed = results.units if in_memory(shape) else results.ms
            lines.append(f"| {shape} | {label} | {fmt_ms(ms[0])} | {fmt_ms(ms[1])} | {fmt_ms(ms[2])} "
                         f"| {fmt_ratio(speed.get(keys[1]), speed.get(keys[0]))} "
                         f"| {fmt_ratio(speed.get(keys[1]), speed.get(beside_key))} "
                         f"| {fmt_ratio(speed.get(keys[2]), speed.get(keys[0]))} | {vs_copy} |")
    return lines


def probe_table(results, shapes):
    lines = ["| shape | tensor MB | copy probe GB/s | plain GB/s | streaming GB/s |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for shape in shapes:
        probe = results.probe_bandwidth(shape)
        if probe is None:
            continue
        mb = parse_shape_elements(shape) * 4 / 1e6
        lines.append(f"| {shape} | {mb:.2f} | {probe[0]:.2f} | {probe[1]:.2f} | {probe[2]:.2f} |")
    return lines


def check_report(checks):
    """Every library's sums against bnlab's: the same inputs must give the same results."""
    problems = []
    compared = 0
    worst = 0.0
    for (op, shape), by_library in sorted(checks.items()):
        reference = by_library.get("bnlab")
        if reference is None:
            continue
        for library, values in by_library.items():
            if library == "bnlab":
                continue
            for name, value in values.items():
                expected = reference.get(name)
                if expected is None:
                    continue
                compared += 1
                deviation = abs(value - expected) / max(abs(expected), 1e-30)
                worst = max(worst, deviation)
                tolerance = CHECK_TOLERANCE_RELU if op.endswith("_relu") else CHECK_TOLERANCE
                if deviation > tolerance:
                    problems.append(f"- {library} {op} {shape}: {name} = {value:.9e}, bnlab {expected:.9e} "
                                    f"(relative {deviation:.2e}, tolerance {tolerance:g})")
    if compared == 0:
        return ["Results: no peer results to compare with bnlab's."]
    bounds = f"tolerance {CHECK_TOLERANCE:g}, {CHECK_TOLERANCE_RELU:g} with the ReLU"
    if problems:
        return [f"Results: **{len(problems)} of {compared} check sums differ** from bnlab's ({bounds}; "
                f"relative):", ""] + problems
    return [f"Results: all {compared} check sums (sum |y|; sum |dx|, |dgamma|, |dbeta|) agree with bnlab's "
            f"within {worst:.1e} (relative; {bounds}), so every library computed the same operation on "
            f"the same data."]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="outputs of the drivers")
    parser.add_argument("--title", default="BatchNorm kernels: bnlab, oneDNN and PyTorch side by side")
    parser.add_argument("--preamble", action="append", default=[],
                        help="a line to print under the title (CPU, date, threads); repeatable")
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args()

    results, checks, shapes, comments = read(args.files)
    lines = [f"## {args.title}", ""]
    lines += [f"{p}  " for p in args.preamble]
    if args.preamble:
        lines.append("")
    lines += table(results, shapes)
    lines += ["",
              "Milliseconds per call: median of the samples after a warm-up, wall clock, the same "
              "thread count for all (median round). Every operation was timed beside the copy "
              "probe (the faster of a plain and a streaming copy of the same tensor), sample by "
              "sample, in its own process; the speed-ups compare times in those probe units (peer "
              "over bnlab, above 1x bnlab is faster), so a library is not favoured by the minute "
              "it ran in (for tensors under 1 MiB, timed in cache, whose copy is mostly call "
              "overhead, the milliseconds themselves). bnlab/oneDNN, one process: bnlab's kernels timed inside oneDNN's "
              "driver, in turns with oneDNN's calls on the same input buffers, the most direct "
              "comparison. bnlab vs copy: bnlab's bandwidth over its minimum traffic (forward "
              "training 3 tensor passes, inference 2, backward 5, the fused ReLU none more) "
              "divided by the probe's beside it (2 passes); 1.00 streams as fast as a copy. "
              "PyTorch's BN+ReLU is batch_norm then relu_ (it does not fuse them); oneDNN's is "
              "the fuse_norm_relu flag.",
              ""]
    lines += probe_table(results, shapes)
    lines += [""] + check_report(checks)
    lines += ["", "Drivers:", ""] + [f"    {c}" for c in comments]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
