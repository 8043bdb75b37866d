"""Rule-based baselines, as target-weight strategies.

Each strategy turns a :class:`~finrl_lite.data_processors.MarketData` into target weights
``[T, N]``: row ``t`` uses only data up to bar ``t``'s close (no look-ahead) and is the portfolio to
rebalance to at the next fill; ``1 - sum(row)`` stays in cash. A row of NaN means "no rebalancing:
keep the holdings" (buy-and-hold after its first bar, minimum variance between rebalancing dates).
Tickers that are not valid on a bar get weight 0.

Trading starts on bar ``start`` (default: the first bar after the data's warm-up), whose row is always a
full target; the bars before it are history only (the covariance window, the moving averages, the
crossover state) and their rows are 0 (cash). Because no row looks ahead, the weights of a split are
those computed on the whole data with ``start`` at the split's first bar, cut to the split's rows:
:func:`finrl_lite.train.backtest.run_baseline` does that and trades them through the stock-trading
environment in ``target_weights`` mode, under the same market rules as the agents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from finrl_lite.data_processors.indicators import compute_indicators
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_text

__all__ = [
    "BASELINES",
    "EqualWeightBuyAndHold",
    "EqualWeightIndex",
    "IndicatorCrossover",
    "MinimumVariance",
    "WeightStrategy",
    "make_baseline",
]


def _first_bar(market: MarketData, start: int | None) -> int:
    """The bar trading starts on: ``start``, or the end of the data's warm-up (kept inside the data)."""
    first = market.warmup if start is None else start
    if first < 0:
        raise ConfigError(f"baseline start bar must be >= 0, got {first}")
    return min(first, market.num_dates - 1)


def _normalise(raw: np.ndarray) -> np.ndarray:
    raw = np.where(np.isfinite(raw) & (raw > 0), raw, 0.0)
    total = raw.sum(axis=1, keepdims=True)
    return np.divide(raw, total, out=np.zeros_like(raw), where=total > 0)


@dataclass
class WeightStrategy:
    """Base of the baselines: a named strategy with :meth:`target_weights` and trivial persistence."""

    name: ClassVar[str] = "strategy"

    def target_weights(self, market: MarketData, start: int | None = None) -> np.ndarray:
        """Target weights ``[T, N]`` of every bar of ``market``, trading from bar ``start``.

        Args:
            market: The bars to decide on; those before ``start`` are history only.
            start: First bar traded (its row is a full target, never NaN); ``None``: ``market.warmup``.

        Returns:
            ``[T, N]`` float64 weights; rows before ``start`` are 0, a NaN row keeps the holdings.
        """
        raise NotImplementedError

    def learn(self, total_timesteps: int = 0, callback: Any = None) -> WeightStrategy:
        """Rule-based: nothing to learn."""
        return self

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """Rule-based: the name and parameters are the whole state."""
        return atomic_write_text(path, json.dumps({"baseline": self.name, "params": asdict(self)}))

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> WeightStrategy:
        raw = json.loads(Path(path).read_text())
        return make_baseline(raw["baseline"], **raw["params"])


@dataclass
class EqualWeightBuyAndHold(WeightStrategy):
    """Buy the tickers valid on the first traded bar in equal value, then hold."""

    name: ClassVar[str] = "buy_and_hold"

    def target_weights(self, market: MarketData, start: int | None = None) -> np.ndarray:
        start = _first_bar(market, start)
        weights = np.full((market.num_dates, market.num_tickers), np.nan)
        weights[:start] = 0.0
        weights[start] = _normalise(market.valid[start : start + 1].astype(np.float64))[0]
        return weights


@dataclass
class EqualWeightIndex(WeightStrategy):
    """Index proxy: the equal-weight universe of the tickers valid on each bar, rebalanced every bar."""

    name: ClassVar[str] = "equal_weight_index"

    def target_weights(self, market: MarketData, start: int | None = None) -> np.ndarray:
        weights = _normalise(market.valid.astype(np.float64))
        weights[: _first_bar(market, start)] = 0.0
        return weights


@dataclass
class MinimumVariance(WeightStrategy):
    """Long-only minimum-variance portfolio of a rolling covariance, rebalanced on a schedule.

    The first rebalance is on the start bar when the bars before it hold ``lookback`` returns (a split with
    the data before it as history), else on the first bar that does (cash until then); the next ones
    every ``rebalance_every`` bars after it.

    Attributes:
        lookback: bars of returns in the covariance window.
        rebalance_every: bars between rebalancing dates (weights drift in between).
        shrinkage: weight of the diagonal in a shrunk covariance (stabilises the solve).
        iterations: projected-gradient iterations of the long-only solve.
    """

    name: ClassVar[str] = "min_variance"
    lookback: int = 60
    rebalance_every: int = 21
    shrinkage: float = 0.1
    iterations: int = 200

    def target_weights(self, market: MarketData, start: int | None = None) -> np.ndarray:
        if self.lookback < 2 or self.rebalance_every < 1:
            raise ConfigError("min_variance: lookback must be >= 2 and rebalance_every >= 1")
        close = market.field("close")
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.diff(np.log(close), axis=0, prepend=np.nan)
        t_len, n = close.shape
        start = _first_bar(market, start)
        weights = np.full((t_len, n), np.nan)
        first = min(max(self.lookback, start), t_len)  # returns[t - lookback + 1 .. t] exist from t = lookback
        weights[:first] = 0.0
        for t in range(first, t_len, self.rebalance_every):
            window = returns[t - self.lookback + 1 : t + 1]
            usable = np.isfinite(window).all(axis=0) & market.valid[t]
            weights[t] = 0.0
            if usable.any():
                k = int(usable.sum())
                weights[t, usable] = self._solve(np.cov(window[:, usable], rowvar=False).reshape(k, k))
        return weights

    def _solve(self, cov: np.ndarray) -> np.ndarray:
        k = cov.shape[0]
        cov = (1 - self.shrinkage) * cov + self.shrinkage * np.diag(np.diag(cov))
        w = np.full(k, 1.0 / k)
        step = 1.0 / max(np.linalg.eigvalsh(cov).max(), 1e-12)
        for _ in range(self.iterations):
            w = _project_to_simplex(w - step * cov @ w)
        return w


def _project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto ``{w >= 0, sum(w) = 1}`` (Duchi et al., 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


@dataclass
class IndicatorCrossover(WeightStrategy):
    """The classic SMA / volume-SMA / MACD-histogram strategy, long-only, equal weight over held tickers.

    Buy a ticker when close > SMA(fast) and close > SMA(slow) and volume SMA(fast) > volume SMA(slow) and
    the MACD histogram > 0; sell it on the mirror condition (all four reversed); otherwise keep the
    position. The indicators and the held set run over the history before the start bar; on the start bar
    the held tickers are bought in equal weights, later rebalanced to equal weights when the held set changes.
    """

    name: ClassVar[str] = "indicator_crossover"
    fast: int = 5
    slow: int = 10

    def target_weights(self, market: MarketData, start: int | None = None) -> np.ndarray:
        start = _first_bar(market, start)
        panel = {f: market.field(f) for f in ("open", "high", "low", "close", "volume")}
        names = [
            f"close_{self.fast}_sma",
            f"close_{self.slow}_sma",
            f"volume_{self.fast}_sma",
            f"volume_{self.slow}_sma",
            "macdh",
        ]
        ind = compute_indicators(panel, names)
        close = panel["close"]
        sma_f, sma_s, vol_f, vol_s, hist = (ind[k] for k in names)
        with np.errstate(invalid="ignore"):
            buy = (close > sma_f) & (close > sma_s) & (vol_f > vol_s) & (hist > 0)
            sell = (close < sma_f) & (close < sma_s) & (vol_f < vol_s) & (hist < 0)
        weights = np.full(close.shape, np.nan)
        state = np.zeros(close.shape[1], dtype=bool)
        for t in range(close.shape[0]):
            held = np.where(buy[t], True, np.where(sell[t], False, state)) & market.valid[t]
            if t == start or (held != state).any():  # rebalance only when the held set changes
                weights[t] = _normalise(held[None, :].astype(np.float64))[0]
            state = held
        weights[:start] = 0.0
        return weights


BASELINES: dict[str, type[WeightStrategy]] = {
    cls.name: cls for cls in (EqualWeightBuyAndHold, EqualWeightIndex, MinimumVariance, IndicatorCrossover)
}


def make_baseline(name: str, **params: Any) -> WeightStrategy:
    """A baseline by name (``buy_and_hold``, ``equal_weight_index``, ``min_variance``, ``indicator_crossover``)."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline '{name}'; known: {', '.join(BASELINES)}")
    try:
        return BASELINES[name](**params)
    except TypeError as exc:
        raise ConfigError(f"baseline '{name}': bad parameters {sorted(params)} ({exc})") from exc
