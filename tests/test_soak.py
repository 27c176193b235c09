"""The soak at CI size: three nodes replicating live with churn for HYPERNODE_SOAK_SECONDS (12 s), then
all three identical and every acknowledged write there (interop/bench/soak.py; the report's figures
come from runs of a few minutes)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "interop" / "bench" / "soak.py"


async def test_three_nodes_with_churn_end_identical(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="hypernode")
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    seconds = float(os.environ.get("HYPERNODE_SOAK_SECONDS", "12"))
    seed = int(os.environ.get("HYPERNODE_SOAK_SEED", "3"))
    result = await soak.soak(seconds, seed=seed, directory=tmp_path)
    assert result["identical"] and result["churn_events"] >= seconds / 3
    assert sum(result["writes"].values()) > 30
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    print(f"\nsoak: {result}")
