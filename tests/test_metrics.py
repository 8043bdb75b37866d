"""Metrics on tiny curves with hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finrl_lite.train.metrics import METRIC_NAMES, compute_metrics, mean_confidence_interval


def test_hand_computed_curve() -> None:
    v = [100.0, 110.0, 99.0, 108.9]
    m = compute_metrics(v, interval="1d", traded_value=[0, 50, 50, 0], costs=[0, 0.1, 0.1, 0])
    r = np.array([0.1, -0.1, 0.1])
    assert m["cumulative_return"] == pytest.approx(0.089)
    assert m["annual_return"] == pytest.approx(1.089 ** (252 / 3) - 1)
    assert m["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["calmar"] == pytest.approx(m["annual_return"] / 0.1)
    assert m["turnover"] == pytest.approx(100 / np.mean(v) * 252 / 3)
    assert m["costs_paid"] == pytest.approx(0.2)
    assert set(m) == set(METRIC_NAMES)


def test_annualisation_follows_interval() -> None:
    v = [100.0, 101.0, 100.5, 102.0]
    daily = compute_metrics(v, "1d")["annual_volatility"]
    minute = compute_metrics(v, "1m")["annual_volatility"]
    crypto = compute_metrics(v, "1d", calendar="24/7")["annual_volatility"]
    assert minute / daily == pytest.approx(math.sqrt(390))
    assert crypto / daily == pytest.approx(math.sqrt(365 / 252))


def test_rejects_bad_curves() -> None:
    with pytest.raises(ValueError):
        compute_metrics([100.0])
    with pytest.raises(ValueError):
        compute_metrics([100.0, -1.0])


@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=50))
def test_drawdown_bounds(growth: list[float]) -> None:
    v = 100 * np.cumprod(growth)
    m = compute_metrics(v)
    assert -1.0 < m["max_drawdown"] <= 0.0
    assert m["annual_volatility"] >= 0.0


def test_confidence_interval() -> None:
    ci = mean_confidence_interval([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0
    assert ci["high"] - 2.0 == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))
    assert mean_confidence_interval([5.0]) == {"mean": 5.0, "low": 5.0, "high": 5.0, "n": 1}
