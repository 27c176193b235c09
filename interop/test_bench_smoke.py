"""The benchmarks run (in --quick mode) and print a ratio for every case. No timing is asserted:
speed is measured by running the benchmarks themselves (see interop/bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop
BENCH = Path(__file__).resolve().parent / "bench"


@pytest.mark.parametrize("script,rows", [("feed_bench.py", 8), ("wire_bench.py", 2),
                                         ("replication_bench.py", 16), ("multi_bench.py", 15),
                                         ("drive_bench.py", 8), ("utp_bench.py", 6),
                                         ("core11_core_bench.py", 10), ("core11_replication_bench.py", 8)])
def test_benchmark_runs(js, script, rows):
    out = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines()[1:] if line.strip()]
    assert len(lines) == rows, out.stdout
    for line in lines:
        assert line.rstrip().endswith("x") or "x " in line, line  # every row carries a ratio


def test_load_benchmark_runs():
    """hypernode serve and 5 concurrent hypernode clone processes (the full run uses 50)."""
    out = subprocess.run([sys.executable, str(BENCH / "load_bench.py"), "--quick"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "identical clones 5/5" in out.stdout and "server peak RSS" in out.stdout
