"""The README's main command: `hypernode demo` runs to the end and shows what it claims."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hypernode.cli", "demo", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "refused a tampered block 1" in out.stdout
    assert "cloned 1000 blocks" in out.stdout and "got the live append: 'appended live'" in out.stdout
    assert (tmp_path / "writer" / "bitfield").exists()


def test_bad_usage_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-m", "hypernode.cli", "nonsense"], capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
