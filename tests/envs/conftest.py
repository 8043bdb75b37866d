"""Fixtures of the environment tests: a real S&P 500 panel (skipped when the data is absent) and synthetic ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.synthetic import default_market

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SP500_FILE = DATA_DIR / "sp500_5yr_daily.csv.gz"
REAL_TICKERS = ("AAPL", "AMZN", "BA", "GOOGL", "GS", "IBM", "JNJ", "JPM", "MMM", "XOM")


def turbulence_like(close: np.ndarray, window: int = 60) -> np.ndarray:
    """Mahalanobis distance of each day's returns from a trailing ``window`` (0 before it fills), like FinRL's."""
    rets = np.zeros_like(close)
    rets[1:] = close[1:] / close[:-1] - 1.0
    out = np.zeros(close.shape[0])
    for t in range(window + 1, close.shape[0]):
        hist = rets[t - window : t]
        dev = rets[t] - hist.mean(axis=0)
        cov = np.cov(hist, rowvar=False)
        out[t] = float(dev @ np.linalg.pinv(cov) @ dev)
    return out


def load_real_market(tickers: tuple[str, ...] = REAL_TICKERS, num_dates: int | None = None) -> MarketData:
    """The S&P 500 file's ``tickers`` (full histories) as a :class:`MarketData` with two return features."""
    import pandas as pd

    df = pd.read_csv(SP500_FILE, usecols=["date", "tic", "open", "high", "low", "close", "volume"])
    df = df[df["tic"].isin(tickers)]
    wide = {
        f: df.pivot(index="date", columns="tic", values=f)[list(tickers)].to_numpy(np.float64)
        for f in ("open", "high", "low", "close", "volume")
    }
    dates = pd.to_datetime(df.pivot(index="date", columns="tic", values="close").index).to_numpy("datetime64[ns]")
    if num_dates is not None:
        wide = {k: v[:num_dates] for k, v in wide.items()}
        dates = dates[:num_dates]
    close = wide["close"]
    ret1 = np.zeros_like(close)
    ret1[1:] = close[1:] / close[:-1] - 1.0
    ret5 = np.zeros_like(close)
    ret5[5:] = close[5:] / close[:-5] - 1.0
    values = np.stack([wide["open"], wide["high"], wide["low"], close, wide["volume"], ret1, ret5], axis=-1)
    return MarketData(
        dates=dates,
        tickers=tickers,
        fields=("open", "high", "low", "close", "volume", "ret1", "ret5"),
        values=values,
        valid=np.isfinite(close),
        market_fields=("turbulence",),
        market_values=turbulence_like(close)[:, None],
        source="sp500_5yr_daily",
    )


@pytest.fixture(scope="session")
def real_market() -> MarketData:
    if not SP500_FILE.is_file():
        pytest.skip("../shared/data/sp500_5yr_daily.csv.gz not present")
    return load_real_market()


@pytest.fixture(scope="session")
def small_market() -> MarketData:
    return default_market(num_tickers=4, num_dates=60, num_features=2, seed=3)


@pytest.fixture(scope="session")
def ragged_market() -> MarketData:
    return default_market(num_tickers=4, num_dates=80, num_features=2, seed=5, ragged=True)
