"""Rule-based baselines: hand-checked rules and no look-ahead."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finrl_lite.agents.baselines import (
    BASELINES,
    EqualWeightBuyAndHold,
    IndicatorCrossover,
    MinimumVariance,
    _project_to_simplex,
    make_baseline,
)
from finrl_lite.data_processors import DataProcessor, MarketData
from finrl_lite.errors import ConfigError


@pytest.fixture(scope="module")
def market() -> MarketData:
    dp = DataProcessor("synthetic", num_tickers=4, seed=9, ragged=True)
    return dp.to_market_data(dp.clean(dp.download([], "2018-01-01", "2019-06-30")))


def _panel(close: np.ndarray, volume: np.ndarray) -> MarketData:
    t, n = close.shape
    values = np.stack([close, close, close, close, volume], axis=-1)
    dates = np.arange("2020-01-01", t, dtype="datetime64[D]").astype("datetime64[ns]")
    return MarketData(
        dates, tuple(f"T{i}" for i in range(n)), ("open", "high", "low", "close", "volume"), values, np.ones((t, n), bool)
    )


@pytest.mark.parametrize("start", [None, 150])
@pytest.mark.parametrize("name", list(BASELINES))
def test_no_look_ahead_and_valid_weights(name: str, start: int | None, market: MarketData) -> None:
    strategy = make_baseline(name)
    weights = strategy.target_weights(market, start)
    assert weights.shape == (market.num_dates, market.num_tickers)
    w = np.nan_to_num(weights)  # NaN rows: keep holdings
    assert (w >= 0).all() and (w.sum(1) <= 1 + 1e-9).all()
    assert (w[~market.valid] == 0).all()
    first = market.warmup if start is None else start
    assert (weights[:first] == 0).all() and np.isfinite(weights[first]).all()  # history is cash; the start bar trades
    for cut in (first, 200):
        changed = market.values.copy()
        changed[cut + 1 :, :, :4] *= np.random.default_rng(cut).uniform(0.5, 1.5, size=changed[cut + 1 :, :, :4].shape)
        changed[cut + 1 :, :, 4] *= 3.0
        future = replace(market, values=changed)
        np.testing.assert_array_equal(strategy.target_weights(future, start)[: cut + 1], weights[: cut + 1])  # NaN == NaN


@pytest.mark.parametrize("name", ["min_variance", "indicator_crossover"])
def test_history_before_the_start_is_used_and_the_start_bar_trades(name: str, market: MarketData) -> None:
    """With history the first rebalance is on the start bar, with the state the history built up."""
    start = 150
    with_history = make_baseline(name).target_weights(market, start)
    assert np.nan_to_num(with_history[start]).sum() > 0.99  # invested on the start bar
    if name == "min_variance":  # the same covariance window as a run started long before
        early = make_baseline(name, rebalance_every=start - 60).target_weights(market, 60)
        np.testing.assert_allclose(with_history[start], early[start])
    else:  # the held set at the start is the one the crossover reached by then
        running = pd.DataFrame(make_baseline(name).target_weights(market, 0)).ffill().to_numpy()
        np.testing.assert_array_equal(with_history[start] > 0, running[start] > 0)


def test_buy_and_hold_buys_once_then_holds() -> None:
    close = np.array([[10.0, 20.0], [20.0, 20.0], [40.0, 10.0]])
    w = EqualWeightBuyAndHold().target_weights(_panel(close, np.ones_like(close)))
    np.testing.assert_array_equal(w, [[0.5, 0.5], [np.nan, np.nan], [np.nan, np.nan]])
    w = EqualWeightBuyAndHold().target_weights(_panel(close, np.ones_like(close)), start=1)
    np.testing.assert_array_equal(w, [[0.0, 0.0], [0.5, 0.5], [np.nan, np.nan]])
    with pytest.raises(ConfigError, match="start bar must be >= 0"):
        EqualWeightBuyAndHold().target_weights(_panel(close, np.ones_like(close)), start=-1)


def test_crossover_rule_buys_and_sells_on_the_mirror_condition() -> None:
    t = np.arange(80, dtype=float)
    up = np.where(t < 40, 10 + t, 50 - (t - 40) * 1.5)  # rises, then falls
    flat = np.full(80, 10.0)
    volume = np.stack([np.where(t < 40, 100 + 10 * t, 500 - 10 * (t - 40)), np.full(80, 100.0)], axis=1)
    w = IndicatorCrossover().target_weights(_panel(np.stack([up, flat], axis=1), volume))
    held = pd.DataFrame(w).ffill().to_numpy()  # NaN rows keep the last target
    assert held[35, 0] == 1.0 and held[35, 1] == 0.0  # uptrend, rising volume: held
    assert held[75, 0] == 0.0  # downtrend with falling volume and negative histogram: sold


def test_min_variance_prefers_the_quiet_asset() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, [0.01, 0.03], size=(300, 2))
    close = 100 * np.exp(np.cumsum(r, axis=0))
    w = MinimumVariance(lookback=250, rebalance_every=1000, shrinkage=0.0).target_weights(_panel(close, np.ones_like(close)))
    assert w[250, 0] == pytest.approx(0.9, abs=0.05)  # 1/s^2 weights: 1/1 : 1/9 -> 0.9 : 0.1


def test_simplex_projection() -> None:
    np.testing.assert_allclose(_project_to_simplex(np.array([0.5, 0.5])), [0.5, 0.5])
    np.testing.assert_allclose(_project_to_simplex(np.array([2.0, 0.0])), [1.0, 0.0])
    p = _project_to_simplex(np.array([0.3, -0.2, 0.4]))
    assert p.min() >= 0 and p.sum() == pytest.approx(1.0)


def test_save_load_and_errors(tmp_path: Path) -> None:
    path = MinimumVariance(lookback=30).save(tmp_path / "b.json")
    loaded = MinimumVariance.load(path)
    assert isinstance(loaded, MinimumVariance) and loaded.lookback == 30
    with pytest.raises(ConfigError, match="unknown baseline 'momentum'"):
        make_baseline("momentum")
    with pytest.raises(ConfigError, match="bad parameters"):
        make_baseline("min_variance", window=3)
