"""interop/bench/clone_bench.py runs (in --quick mode) and prints its four cases. No timing is asserted;
what is asserted is the store sizes it prints: the clone of a drive whose file was written twice keeps
one version, ``--history`` both."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop
BENCH = Path(__file__).resolve().parent / "bench"


def test_clone_benchmark_runs():
    out = subprocess.run([sys.executable, str(BENCH / "clone_bench.py"), "--quick"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = out.stdout.splitlines()[1:]
    assert len(rows) == 4 and all(row.rstrip().endswith("x") for row in rows), out.stdout
    for row in rows[2:]:  # the 2 MiB file written twice
        sizes = [float(m) for m in re.findall(r"store\s+([\d.]+) MiB", row)]
        assert sizes[0] < 2.5 and sizes[1] > 3.5, row
