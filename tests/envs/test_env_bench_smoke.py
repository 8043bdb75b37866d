"""The benchmark script runs end to end on tiny sizes (a smoke test: nothing about speed is asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_env.py"


def test_bench_env_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_env", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--num-envs", "1,4", "--steps", "2", "--finrl-steps", "5", "--tickers", "3", "--peer", "reimpl"]) == 0
    out = capsys.readouterr().out
    assert "FinRL-style pandas StockTradingEnv" in out and "x FinRL" in out and "failed" not in out
