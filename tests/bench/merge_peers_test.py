#!/usr/bin/env python3
"""Tests of bench/peers/merge_peers.py: the probe-unit arithmetic behind the peer table's ratios,
and its refusal of lines it cannot read. Run by ctest (tests/CMakeLists.txt)."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "peers", "merge_peers.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import merge_peers  # noqa: E402

SHAPE = "64x256x8x8_NCHW"  # 4 MiB a tensor pass: compared in probe units


def line(library, op, ms, plain, streaming):
    return f"{library} {op} {SHAPE} {ms} copy_plain={plain} copy_streaming={streaming}\n"


class MergePeersTest(unittest.TestCase):
    def write(self, directory, name, text):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_ratios_compare_probe_units_not_raw_milliseconds(self):
        with tempfile.TemporaryDirectory() as d:
            # bnlab's process ran in a slow minute (its copy took 2 ms), oneDNN's in a fast one
            # (1 ms): bnlab took 3 probe-units, oneDNN 4.5, so bnlab is 1.5x faster although
            # its raw milliseconds (6 against 4.5) are larger.
            files = [self.write(d, "b.txt", line("bnlab", "forward_training", 6.0, 2.5, 2.0)),
                     self.write(d, "o.txt", line("onednn", "forward_training", 4.5, 1.0, 1.25))]
            results, _, shapes, _ = merge_peers.read(files)
            rows = merge_peers.table(results, shapes)
            cells = [c.strip() for c in rows[2].split("|")]
            self.assertEqual(cells[3:6], ["6.00", "4.50", "—"])  # raw ms shown as measured
            self.assertEqual(cells[6], "1.50x")
            self.assertEqual(cells[7], "—")  # no bnlab timed inside oneDNN's process here
            # Forward training moves 3 passes in 3 copy times of 2 passes: 0.50 of the copy.
            self.assertEqual(cells[9], "0.50")

    def test_the_one_process_column_compares_bnlab_timed_inside_onednns_driver(self):
        with tempfile.TemporaryDirectory() as d:
            onednn = (line("onednn", "backward", 4.0, 1.0, 1.0)
                      + line("bnlab_beside_onednn", "backward", 5.0, 1.0, 1.0))
            files = [self.write(d, "b.txt", line("bnlab", "backward", 2.0, 1.0, 1.0)),
                     self.write(d, "o.txt", onednn)]
            results, _, shapes, _ = merge_peers.read(files)
            cells = [c.strip() for c in merge_peers.table(results, shapes)[2].split("|")]
            self.assertEqual(cells[6], "2.00x")  # across processes: 4 units against 2
            self.assertEqual(cells[7], "0.80x")  # in oneDNN's process: 4 units against 5

    def test_an_in_cache_shape_compares_milliseconds(self):
        # 32x300 (38 KB): the copy beside it is call overhead, so the speed-up is ms over ms.
        small = "32x300_NC"
        with tempfile.TemporaryDirectory() as d:
            files = [self.write(d, "b.txt", f"bnlab backward {small} 0.003 copy_plain=0.001 copy_streaming=0.001\n"),
                     self.write(d, "t.txt", f"pytorch backward {small} 0.012 copy_plain=0.002 copy_streaming=0.002\n")]
            results, _, shapes, _ = merge_peers.read(files)
            cells = [c.strip() for c in merge_peers.table(results, shapes)[2].split("|")]
            self.assertEqual(cells[8], "4.00x")  # 12 us against 3 us, not 6 units against 3

    def test_each_library_takes_its_median_round(self):
        with tempfile.TemporaryDirectory() as d:
            rounds = [(3.0, 1.0), (9.0, 1.0), (4.0, 2.0)]  # units 3, 9, 2: median 3
            files = [self.write(d, f"b{i}.txt", line("bnlab", "backward", ms, probe, probe))
                     for i, (ms, probe) in enumerate(rounds)]
            results, _, _, _ = merge_peers.read(files)
            self.assertAlmostEqual(results.units[("bnlab", "backward", SHAPE)], 3.0)
            self.assertAlmostEqual(results.ms[("bnlab", "backward", SHAPE)], 4.0)
            # The probe table: bnlab's median plain and streaming copy, 2 passes of 4 MiB.
            fastest, plain, streaming = results.probe_bandwidth(SHAPE)
            self.assertAlmostEqual(plain, 2 * 4 * 2**20 / (1.0 * 1e6))
            self.assertAlmostEqual(fastest, streaming)

    def test_a_line_without_the_probe_is_refused_by_name(self):
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, "old.txt", f"bnlab forward_training {SHAPE} 1.0\n")
            run = subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("cannot parse line", run.stderr)
            self.assertIn("old.txt", run.stderr)


if __name__ == "__main__":
    unittest.main()
