#!/usr/bin/env python3
"""Tests of bench/peers/epoch_table.py: the epoch speed-up is the median of each round's own
ratio, and files that do not pair up are refused. Run by ctest (tests/CMakeLists.txt)."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "peers", "epoch_table.py")


def bnlab_round(seconds, one_thread_steps=32):
    # bench_training: epoch bn <seconds> <gemm> <batchnorm> <rest> <steps> <steps on one thread>;
    # the first epoch of a round is a warm-up that the table ignores.
    return (f"epoch bn 9.0 1 1 7 1719 0\n"
            f"epoch bn {seconds} {seconds / 2} {seconds / 4} {seconds / 4} 1719 {one_thread_steps}\n")


def torch_round(seconds):
    return f"epoch pytorch 9.0 1719 0.8\nepoch pytorch {seconds} 1719 0.5\n"


class EpochTableTest(unittest.TestCase):
    def run_script(self, bnlab_text, torch_text):
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, "b.txt"), os.path.join(d, "t.txt")]
            for path, text in zip(paths, (bnlab_text, torch_text)):
                with open(path, "w") as f:
                    f.write(text)
            return subprocess.run([sys.executable, SCRIPT, *paths], capture_output=True, text=True)

    def test_the_speed_up_pairs_each_round(self):
        # Round 1 ran in a slow phase of the host, round 3 in a fast one, and round 2 changed
        # phase between its two trainings. The rounds' ratios are 3x, 6x and 3x, median 3x; the
        # ratio of the two libraries' medians (1.8 s over 0.3 s) would be 6x.
        result = self.run_script(bnlab_round(0.6) + bnlab_round(0.3) + bnlab_round(0.3),
                                 torch_round(1.8) + torch_round(1.8) + torch_round(0.9))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("bnlab is 3.0x faster than PyTorch: the median of 3 rounds' ratios", result.stdout)
        self.assertIn("| 3 | 0.300 | 0.900 | 3.00x | 32 |", result.stdout)

    def test_the_rows_are_the_median_round(self):
        result = self.run_script(bnlab_round(0.2) + bnlab_round(0.4) + bnlab_round(0.5),
                                 torch_round(1.0) + torch_round(1.0) + torch_round(1.0))
        self.assertEqual(result.returncode, 0, result.stderr)
        # Ratios 5x, 2.5x and 2x: the median is round 2, 0.4 s split as written.
        self.assertIn("| bnlab | 0.400 | 233 | 0.200 s (50%) | 0.100 s (25%) | 0.100 s (25%) |", result.stdout)
        self.assertIn("| PyTorch 1.13 | 1.000 |", result.stdout)
        self.assertIn("median of 3 rounds' ratios (min 2.0x, max 5.0x;", result.stdout)

    def test_an_even_count_takes_the_lower_middle_round_everywhere(self):
        result = self.run_script(bnlab_round(0.2, 0) + bnlab_round(0.4, 1400),
                                 torch_round(1.0) + torch_round(1.0))
        self.assertEqual(result.returncode, 0, result.stderr)
        # Ratios 5x and 2.5x: the headline and the rows are the 2.5x round, not an average.
        self.assertIn("bnlab is 2.5x faster than PyTorch", result.stdout)
        self.assertIn("| bnlab | 0.400 |", result.stdout)
        self.assertIn("| 2 | 0.400 | 1.000 | 2.50x | 1400 |", result.stdout)

    def test_rounds_that_do_not_pair_up_are_refused(self):
        result = self.run_script(bnlab_round(0.3) + bnlab_round(0.3), torch_round(1.0))
        self.assertEqual(result.returncode, 1)
        self.assertIn("2 bnlab rounds against 1 PyTorch rounds", result.stderr)

    def test_a_missing_second_epoch_is_refused(self):
        result = self.run_script(bnlab_round(0.3) + "epoch bn 0.3 0.1 0.1 0.1 1719 0\n", torch_round(1.0) * 2)
        self.assertEqual(result.returncode, 1)
        self.assertIn("expected two epoch lines a round, found 3", result.stderr)

    def test_a_garbled_line_is_refused(self):
        result = self.run_script(bnlab_round(0.3).replace("0.15", "fast"), torch_round(1.0))
        self.assertEqual(result.returncode, 1)
        self.assertIn("not a number", result.stderr)


if __name__ == "__main__":
    unittest.main()
