"""Performance metrics of an equity curve, in one place.

Returns are simple bar-to-bar returns of the portfolio value. Annualisation uses the number of bars
per year of the data's interval (:func:`finrl_lite.data_processors.intervals.bars_per_year`), never a
literal. Units: returns and drawdowns are fractions (0.1 = 10%); ``max_drawdown`` is <= 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from finrl_lite.data_processors.intervals import bars_per_year

__all__ = ["METRIC_NAMES", "compute_metrics", "mean_confidence_interval"]

METRIC_NAMES = (
    "cumulative_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "turnover",
    "costs_paid",
)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def compute_metrics(
    values: Sequence[float] | np.ndarray,
    interval: str = "1d",
    calendar: str = "XNYS",
    traded_value: Sequence[float] | np.ndarray | None = None,
    costs: Sequence[float] | np.ndarray | None = None,
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """Metrics of one equity curve.

    Args:
        values: portfolio value at each bar, ``[T]`` with ``T >= 2``.
        interval: bar interval of the curve (sets the annualisation factor).
        calendar: ``XNYS``-like (252 days a year) or ``24/7`` (365).
        traded_value: absolute traded notional per bar (for turnover), optional.
        costs: transaction costs paid per bar, optional.
        risk_free_rate: annual risk-free rate subtracted in Sharpe and Sortino.

    Returns:
        A dict with every name in :data:`METRIC_NAMES`. ``turnover`` is annualised traded notional over
        the average portfolio value.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be a 1-D curve with at least 2 points, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("values must be finite and positive")
    per_year = bars_per_year(interval, calendar)
    r = v[1:] / v[:-1] - 1.0
    n = r.size
    excess = r - risk_free_rate / per_year
    std = float(r.std(ddof=1)) if n > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
    growth = v[-1] / v[0]
    annual_return = float(growth ** (per_year / n) - 1.0)
    drawdown = v / np.maximum.accumulate(v) - 1.0
    max_dd = float(drawdown.min())
    traded = float(np.sum(traded_value)) if traded_value is not None else 0.0
    return {
        "cumulative_return": float(growth - 1.0),
        "annual_return": annual_return,
        "annual_volatility": std * math.sqrt(per_year),
        "sharpe": _ratio(float(excess.mean()), std) * math.sqrt(per_year),
        "sortino": _ratio(float(excess.mean()), downside) * math.sqrt(per_year),
        "calmar": _ratio(annual_return, -max_dd),
        "max_drawdown": max_dd,
        "turnover": traded / float(v.mean()) * per_year / n,
        "costs_paid": float(np.sum(costs)) if costs is not None else 0.0,
    }


def mean_confidence_interval(samples: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean and a Student-t confidence interval over seeds (``low == high == mean`` for one sample)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples")
    mean = float(x.mean())
    if x.size == 1:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(x.size)}
