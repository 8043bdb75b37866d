"""The embedded synthetic market: a seeded multi-asset generator with realistic stylized facts.

Returns follow a factor model (a market factor and sector factors) whose factors and idiosyncratic
parts each have GARCH(1,1) variance and Student-t shocks, plus occasional jumps. So the series show
fat tails (positive excess kurtosis), volatility clustering (autocorrelated squared returns) and
cross-sectional correlation (the average pairwise correlation aims at the middle of
``correlation_band``). Volume rises with conditional volatility. An equal-weight index and a VIX-like
series (annualised one-step-ahead market volatility, known at the bar's close) come with it.

Same options and seed, same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from finrl_lite.data_processors.calendars import bar_grid
from finrl_lite.data_processors.intervals import bars_per_year
from finrl_lite.data_processors.sources.base import check_request
from finrl_lite.errors import DataError

__all__ = ["SyntheticSource", "SyntheticMarket"]

logger = logging.getLogger(__name__)

_SECTOR_SHARE = 0.25  # share of a ticker's variance explained by its sector factor
_OVERNIGHT_SHARE = 0.2  # share of a bar's variance that happens between bars (the open gap)


class SyntheticMarket:
    """Generated prices of one request: the long frame plus the index and VIX series."""

    def __init__(self, frame: pd.DataFrame, index: pd.Series, vix: pd.Series) -> None:
        self.frame = frame
        self.index = index
        self.vix = vix


class SyntheticSource:
    """Seeded synthetic market (see the module docstring). Options mirror ``SyntheticConfig``."""

    name = "synthetic"
    default_calendar = "XNYS"

    def __init__(
        self,
        num_tickers: int = 10,
        seed: int = 0,
        num_factors: int = 3,
        correlation_band: tuple[float, float] = (0.2, 0.45),
        annual_volatility: float = 0.25,
        annual_drift: float = 0.07,
        tail_dof: float = 4.0,
        garch_alpha: float = 0.08,
        garch_beta: float = 0.9,
        jump_intensity: float = 0.01,
        jump_scale: float = 0.03,
        ragged: bool = False,
        calendar: str | None = None,
    ) -> None:
        if num_tickers < 1:
            raise DataError(f"synthetic: num_tickers must be >= 1, got {num_tickers}")
        if garch_alpha + garch_beta >= 1.0:
            raise DataError("synthetic: garch_alpha + garch_beta must be < 1")
        self.num_tickers = num_tickers
        self.seed = seed
        self.num_factors = num_factors
        self.correlation_band = tuple(correlation_band)
        self.annual_volatility = annual_volatility
        self.annual_drift = annual_drift
        self.tail_dof = tail_dof
        self.garch_alpha = garch_alpha
        self.garch_beta = garch_beta
        self.jump_intensity = jump_intensity
        self.jump_scale = jump_scale
        self.ragged = ragged
        self.calendar = calendar or self.default_calendar
        self._last: tuple[tuple[object, ...], SyntheticMarket] | None = None

    @staticmethod
    def ticker_names(n: int) -> list[str]:
        return [f"SYN{i:03d}" for i in range(n)]

    def download(self, tickers: Sequence[str], start: object, end: object, interval: str = "1d") -> pd.DataFrame:
        return self.generate(tickers, start, end, interval).frame

    def download_vix(self, start: object, end: object, interval: str = "1d") -> pd.Series:
        return self.generate((), start, end, interval).vix

    def download_index(self, start: object, end: object, interval: str = "1d") -> pd.Series:
        return self.generate((), start, end, interval).index

    # ------------------------------------------------------------------ generator
    def generate(self, tickers: Sequence[str], start: object, end: object, interval: str = "1d") -> SyntheticMarket:
        """Generate the market for a request (memoised for the last request)."""
        names, s, e = check_request(tickers, start, end)
        names = names or self.ticker_names(self.num_tickers)
        key = (tuple(names), s, e, interval)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        dates = bar_grid(self.calendar, s, e, interval)
        if len(dates) < 2:
            raise DataError(f"synthetic: fewer than 2 bars of {self.calendar} between {s} and {e} (empty result)")
        market = self._simulate(names, dates, interval)
        self._last = (key, market)
        return market

    def _shocks(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        dof = self.tail_dof
        return rng.standard_t(dof, size=shape) * np.sqrt((dof - 2.0) / dof)

    def _garch_paths(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit-variance GARCH(1,1) paths driven by shocks ``z [T, K]``: (eps, h_next) with h_next[t] = var of t+1."""
        a, b = self.garch_alpha, self.garch_beta
        omega = 1.0 - a - b
        t_len = z.shape[0]
        h = np.ones(z.shape[1])
        eps = np.empty_like(z)
        h_next = np.empty_like(z)
        for t in range(t_len):
            eps[t] = np.sqrt(h) * z[t]
            h = omega + a * eps[t] ** 2 + b * h
            h_next[t] = h
        return eps, h_next

    def _simulate(self, names: list[str], dates: pd.DatetimeIndex, interval: str) -> SyntheticMarket:
        n, t_len = len(names), len(dates)
        rng = np.random.default_rng(np.random.PCG64([self.seed, n, t_len]))
        per_year = bars_per_year(interval, self.calendar)
        sigma = self.annual_volatility / np.sqrt(per_year)
        drift = self.annual_drift / per_year

        lo, hi = self.correlation_band
        target = 0.5 * (lo + hi)
        k = self.num_factors
        sector_share = _SECTOR_SHARE if k > 0 else 0.0
        market_share = float(np.clip(target - sector_share / max(k, 1), 0.02, 0.9))
        idio_share = max(1.0 - market_share - sector_share, 0.02)

        # Loadings: betas around 1, each ticker in one sector.
        beta = rng.uniform(0.8, 1.2, size=n)
        sector = rng.integers(0, max(k, 1), size=n)
        vol_scale = sigma * rng.uniform(0.7, 1.3, size=n)

        shocks = self._shocks(rng, (t_len, 1 + max(k, 1) + n))
        eps, h_next = self._garch_paths(shocks)
        f_market = eps[:, 0]
        f_sector = eps[:, 1 : 1 + max(k, 1)][:, sector]
        idio = eps[:, 1 + max(k, 1) :]
        unit = np.sqrt(market_share) * beta * f_market[:, None] + np.sqrt(sector_share) * f_sector + np.sqrt(idio_share) * idio
        jumps = (rng.random((t_len, n)) < self.jump_intensity) * rng.normal(0.0, self.jump_scale, (t_len, n))
        log_ret = drift - 0.5 * vol_scale**2 + vol_scale * unit + jumps

        # Intrabar path: open gap, close, and a range around them.
        gap = log_ret * _OVERNIGHT_SHARE + rng.normal(0.0, 0.1, (t_len, n)) * vol_scale * np.sqrt(_OVERNIGHT_SHARE)
        start_price = rng.uniform(20.0, 200.0, size=n)
        log_close = np.log(start_price) + np.cumsum(log_ret, axis=0)
        close = np.exp(log_close)
        prev_close = np.vstack([start_price[None, :], close[:-1]])
        open_ = prev_close * np.exp(gap)
        cond_vol = vol_scale * np.sqrt(np.vstack([np.ones((1, n)), h_next[:-1, 1 + max(k, 1) :]]) * idio_share + market_share)
        wick = np.abs(rng.normal(0.0, 0.5, (t_len, n, 2))) * cond_vol[:, :, None]
        high = np.maximum(open_, close) * np.exp(wick[:, :, 0])
        low = np.minimum(open_, close) * np.exp(-wick[:, :, 1])

        base_volume = np.exp(rng.normal(np.log(2e6), 0.8, size=n)) / (per_year / 252.0)
        activity = (np.abs(log_ret) / vol_scale + 1.0) * (cond_vol / vol_scale) ** 1.5
        volume = np.round(base_volume * activity * np.exp(rng.normal(0.0, 0.3, (t_len, n))))

        present = np.ones((t_len, n), dtype=bool)
        if self.ragged and n >= 3:
            present[: int(0.3 * t_len), 1] = False  # a late listing
            present[int(0.7 * t_len) :, 2] = False  # a delisting

        rows = np.nonzero(present)
        frame = pd.DataFrame(
            {
                "date": dates.values[rows[0]],
                "tic": np.asarray(names, dtype=object)[rows[1]],
                "open": open_[rows],
                "high": high[rows],
                "low": low[rows],
                "close": close[rows],
                "volume": volume[rows],
            }
        )
        index_level = 100.0 * np.exp(np.cumsum(log_ret.mean(axis=1)))
        market_var_next = h_next[:, 0] * market_share * (vol_scale.mean() * beta.mean()) ** 2
        idio_var = idio_share * vol_scale.mean() ** 2
        vix = 100.0 * np.sqrt((market_var_next + idio_var / n) * per_year) * 1.1
        logger.debug("synthetic %s market: %d bars x %d tickers", interval, t_len, n)
        return SyntheticMarket(
            frame=frame,
            index=pd.Series(index_level, index=dates, name="index"),
            vix=pd.Series(vix, index=dates, name="vix"),
        )
