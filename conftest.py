"""Shared fixtures: paths of the repo, the JS interop stack, and a runner for its scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent

# No test may reach the public hyperswarm DHT or multicast on a real network: the `hypernode` command
# finds peers only where a test says (--bootstrap 127.0.0.1:P; local discovery inside a namespace).
os.environ["HYPERNODE_BOOTSTRAP"] = ""
os.environ["HYPERNODE_LOCAL_DISCOVERY"] = "0"
INTEROP = ROOT / "interop"
VECTORS = ROOT / "tests" / "vectors"


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def node_available() -> bool:
    return shutil.which("node") is not None and (INTEROP / "node_modules" / "hypercore").is_dir()


def run_js(script: str, *args: str, timeout: float = 120) -> Any:
    """Run ``interop/js/<script>`` with node and return its last stdout line parsed as JSON."""
    proc = subprocess.run(["node", str(INTEROP / "js" / script), *map(str, args)], cwd=INTEROP,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"node {script} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def js() -> Any:
    if not node_available():
        if os.environ.get("CI"):
            raise RuntimeError("interop/node_modules is missing: run `npm ci` in interop/")
        pytest.skip("node or interop/node_modules missing (run `npm ci` in interop/)")
    return run_js


def node11_available() -> bool:
    return shutil.which("node") is not None and (INTEROP / "v11" / "node_modules" / "hypercore").is_dir()


def require_node11() -> None:
    """Skip the test when node or interop/v11/node_modules is missing; in CI, fail instead."""
    if not node11_available():
        if os.environ.get("CI"):
            raise RuntimeError("interop/v11/node_modules is missing: run `npm ci` in interop/v11/")
        pytest.skip("node or interop/v11/node_modules missing (run `npm ci` in interop/v11/)")


def run_js11(script: str, *args: str, timeout: float = 120) -> Any:
    """Run ``interop/v11/js/<script>`` (the hypercore 11 stack) and return its last stdout line as JSON."""
    proc = subprocess.run(["node", str(INTEROP / "v11" / "js" / script), *map(str, args)],
                          cwd=INTEROP / "v11", capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"node {script} {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def js11() -> Any:
    """Runs the scripts of interop/v11/js with the pinned hypercore 11 stack."""
    require_node11()
    return run_js11


@pytest.fixture
def vectors() -> Any:
    return load_vectors
