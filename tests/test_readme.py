"""Every ```python block of README.md runs as written: each in its own process, in an empty temporary
folder (its stores land there), and must exit 0, having used every function it defines (a snippet that
defines ``async def main()`` and never runs it checks nothing). A block added to the README later is
run too."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[tuple[str, str]]:
    """``(heading, code)`` of each fenced block marked python (or py) in a markdown text."""
    out = []
    for m in _FENCE.finditer(text):
        if m.group(1).lower() in ("python", "py", "python3"):
            headings = re.findall(r"^#+ +(.+)$", text[:m.start()], re.M)
            out.append((headings[-1] if headings else "top", m.group(2)))
    return out


BLOCKS = python_blocks(README.read_text())


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) >= 3  # Feeds, Replication, Drives: the extraction finds them
    fences = len(re.findall(r"^```(?:python|py|python3)\b", README.read_text(), re.M))
    assert fences == len(BLOCKS)  # none is skipped by a fence the pattern does not close
    assert python_blocks("# A\n```python\nx = 1\n```\ntext\n```sh\nls\n```\n## B\n```py\ny\n```\n") == [
        ("A", "x = 1\n"), ("B", "y\n")]


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[f"{i}-{h}" for i, (h, _) in enumerate(BLOCKS)])
def test_readme_snippet_runs(tmp_path, heading, code):
    tree = ast.parse(code)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert defined <= used, f"the README snippet under {heading!r} never runs {sorted(defined - used)}"
    script = tmp_path / "snippet.py"
    script.write_text(code)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "HOME": str(work), "HYPERNODE_BOOTSTRAP": "none", "HYPERNODE_LOCAL_DISCOVERY": "0"}
    proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"the README snippet under {heading!r} failed:\n{proc.stderr[-3000:]}"
