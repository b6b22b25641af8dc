#!/usr/bin/python3
"""The epoch section of scripts/bench_peers.sh: bnlab's and PyTorch's epochs, round by round.

    epoch_table.py BNLAB_FILE PYTORCH_FILE

BNLAB_FILE holds bench_training's lines
`epoch bn <seconds> <gemm> <batchnorm> <rest> <steps> <steps on one thread>`,
PYTORCH_FILE torch_mlp_epoch.py's `epoch pytorch <seconds> <steps> <loss>`, two epochs a round
in both. The second epoch of each round is its measurement (the first pays one-time costs: page
faults, JIT, allocator warm-up). The speed-up is the median of the rounds' ratios, each from two
trainings run back to back: the host's speed moves from minute to minute, so a ratio of the two
libraries' medians could pair a slow round of one with a fast round of the other.
Prints Markdown; exits 1 with a message when a file is unreadable or the rounds do not pair up.
"""

import sys


def measured_epochs(path, library, fields):
    """Each round's second epoch line of `library`, as its words (numbers checked)."""
    try:
        with open(path) as f:
            lines = [line.split() for line in f if line.startswith("epoch ")]
    except OSError as error:
        sys.exit(f"epoch_table: cannot read {path}: {error.strerror}")
    for words in lines:
        if len(words) != fields or words[1] != library:
            sys.exit(f"epoch_table: {path}: expected 'epoch {library}' and {fields - 2} numbers, got: {' '.join(words)}")
        try:
            values = [float(w) for w in words[2:]]
        except ValueError:
            sys.exit(f"epoch_table: {path}: not a number in: {' '.join(words)}")
        if not values[0] > 0:
            sys.exit(f"epoch_table: {path}: an epoch must take a positive time, got: {' '.join(words)}")
    if not lines or len(lines) % 2:
        sys.exit(f"epoch_table: {path}: expected two epoch lines a round, found {len(lines)}")
    return lines[1::2]


def table(bnlab_rounds, torch_rounds):
    if len(bnlab_rounds) != len(torch_rounds):
        sys.exit(f"epoch_table: {len(bnlab_rounds)} bnlab rounds against {len(torch_rounds)} PyTorch rounds")
    ratios = [float(t[2]) / float(b[2]) for b, t in zip(bnlab_rounds, torch_rounds)]
    # The round whose ratio is the median (the lower middle one for an even count) is the
    # headline and supplies the split of bnlab's time, so the table's rows are one real round.
    order = sorted(range(len(ratios)), key=lambda i: ratios[i])
    middle = order[(len(ratios) - 1) // 2]
    b, t = bnlab_rounds[middle], torch_rounds[middle]
    seconds, gemm, bn, rest, steps = float(b[2]), float(b[3]), float(b[4]), float(b[5]), int(float(b[6]))
    torch_seconds = float(t[2])
    out = [f"## One epoch of the seed's Approach One model (batch 32, SGD, {steps} steps)", "",
           "| | seconds | us/step | GEMM | BatchNorm | rest |", "| --- | --- | --- | --- | --- | --- |",
           "| bnlab | %.3f | %.0f | %.3f s (%.0f%%) | %.3f s (%.0f%%) | %.3f s (%.0f%%) |" % (
               seconds, seconds / steps * 1e6, gemm, 100 * gemm / seconds, bn, 100 * bn / seconds, rest,
               100 * rest / seconds),
           "| PyTorch 1.13 | %.3f | %.0f | | | |" % (torch_seconds, torch_seconds / steps * 1e6), "",
           "bnlab is %.1fx faster than PyTorch: the median of %d rounds' ratios (min %.1fx, max %.1fx; the "
           "lower middle one for an even count), each from the second epochs of the two libraries trained back "
           "to back, by turns first; the rows above are that median round. Same thread count for both, as an "
           "upper bound for bnlab's fit, which runs steps on one thread while that is measured faster "
           "(docs/performance.md, \"Thread count\"; the last column)." % (ratios[middle], len(ratios), min(ratios),
                                                                         max(ratios)),
           "", "| round | bnlab s | PyTorch s | speed-up | bnlab steps on one thread |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for i, (b, t) in enumerate(zip(bnlab_rounds, torch_rounds)):
        out.append("| %d | %.3f | %.3f | %.2fx | %d |" % (i + 1, float(b[2]), float(t[2]), ratios[i], int(float(b[7]))))
    return out


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: epoch_table.py BNLAB_FILE PYTORCH_FILE")
    print("\n".join(table(measured_epochs(argv[1], "bn", 8), measured_epochs(argv[2], "pytorch", 5))))


if __name__ == "__main__":
    main(sys.argv)
