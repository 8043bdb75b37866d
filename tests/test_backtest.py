"""Back-tests on tiny data with hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finrl_lite.config import StockTradingEnvConfig
from finrl_lite.data_processors import MarketData
from finrl_lite.train.backtest import index_curve, run_agent, run_weights


def _market(open_: np.ndarray, close: np.ndarray, valid: np.ndarray | None = None) -> MarketData:
    t, n = close.shape
    values = np.stack([open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones_like(close)], axis=-1)
    dates = np.arange("2021-01-04", t, dtype="datetime64[D]").astype("datetime64[ns]")
    return MarketData(
        dates,
        tuple(f"T{i}" for i in range(n)),
        ("open", "high", "low", "close", "volume"),
        values,
        np.ones((t, n), bool) if valid is None else valid,
        market_fields=("index",),
        market_values=close.mean(1, keepdims=True),
    )


def test_run_weights_by_hand() -> None:
    open_ = np.array([[10.0, 10.0], [10.0, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 10.0], [11.0, 20.0], [12.0, 22.0]])
    cfg = StockTradingEnvConfig(initial_amount=1000.0, buy_cost_pct=0.01, sell_cost_pct=0.02)
    weights = np.array([[0.5, 0.0], [np.nan, np.nan], [0.0, 0.0]])
    curve = run_weights(weights, _market(open_, close), cfg, "w")
    # bar 0 decides 50% in T0; fill at bar 1 open 10: 50 shares, fee 5 -> cash 495; value at close 11: 495 + 550
    assert curve.values.tolist() == pytest.approx([1000.0, 1045.0, 1095.0])
    assert curve.costs.tolist() == pytest.approx([0.0, 5.0, 0.0])
    assert curve.traded.tolist() == pytest.approx([0.0, 500.0, 0.0])


def test_run_weights_never_overspends_and_skips_invalid() -> None:
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (60, 3)), axis=0))
    valid = np.ones((60, 3), bool)
    valid[20:30, 1] = False
    weights = rng.dirichlet(np.ones(3), size=60)
    cfg = StockTradingEnvConfig(initial_amount=1e4, buy_cost_pct=0.05, sell_cost_pct=0.05)
    curve = run_weights(weights, _market(close, close, valid), cfg, "w")
    assert (curve.values > 0).all() and (curve.costs >= 0).all()


def test_index_curve_scales_the_index() -> None:
    close = np.array([[10.0, 30.0], [12.0, 36.0]])
    curve = index_curve(_market(close, close), 100.0)
    assert curve is not None and curve.values.tolist() == pytest.approx([100.0, 120.0])


class _AllIn:
    """Buys hmax shares of every ticker every step."""

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.ones(obs.shape[0], 2, dtype=torch.float64)


def test_run_agent_matches_env_accounting() -> None:
    open_ = np.array([[10.0, 10.0], [10.0, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 10.0], [11.0, 20.0], [12.0, 22.0]])
    cfg = StockTradingEnvConfig(initial_amount=10_000.0, hmax=10, buy_cost_pct=0.0, sell_cost_pct=0.0)
    curve = run_agent(_AllIn(), _market(open_, close), cfg)
    # step 1: buy 10 + 10 at opens 10 and 20 -> cash 9700, value 9700 + 110 + 200
    # step 2: buy 10 + 10 at 12 and 20 -> cash 9380, value 9380 + 20*12 + 20*22
    assert curve.values.tolist() == pytest.approx([10_000.0, 10_010.0, 10_060.0])
