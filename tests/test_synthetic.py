"""The embedded synthetic market looks like a market: fat tails, volatility clustering, correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finrl_lite.data_processors.sources.synthetic import SyntheticSource


def _returns(df: pd.DataFrame) -> np.ndarray:
    close = df.pivot(index="date", columns="tic", values="close")
    return np.log(close).diff().dropna().to_numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stylized_facts(seed: int) -> None:
    band = (0.2, 0.45)
    src = SyntheticSource(num_tickers=25, seed=seed, correlation_band=band)
    r = _returns(src.download([], "2014-01-01", "2019-12-31", "1d"))
    z = (r - r.mean(0)) / r.std(0)
    excess_kurtosis = (z**4).mean(0) - 3.0
    assert np.median(excess_kurtosis) > 0.5
    sq = r**2 - (r**2).mean(0)
    acf1 = (sq[1:] * sq[:-1]).sum(0) / (sq * sq).sum(0)
    assert acf1.mean() > 0.02
    c = np.corrcoef(r.T)
    n = c.shape[0]
    mean_corr = (c.sum() - n) / (n * n - n)
    assert band[0] <= mean_corr <= band[1]


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a = SyntheticSource(num_tickers=4, seed=7).download([], "2019-01-01", "2019-06-30")
    b = SyntheticSource(num_tickers=4, seed=7).download([], "2019-01-01", "2019-06-30")
    c = SyntheticSource(num_tickers=4, seed=8).download([], "2019-01-01", "2019-06-30")
    assert a.to_csv().encode() == b.to_csv().encode()
    assert not np.allclose(a["close"], c["close"])


def test_bars_are_possible_and_volume_rises_with_volatility() -> None:
    df = SyntheticSource(num_tickers=8, seed=3).download([], "2015-01-01", "2019-12-31")
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df[["open", "high", "low", "close"]] > 0).all().all()
    assert (df["volume"] >= 0).all()
    wide = df.pivot(index="date", columns="tic", values=["close", "volume"])
    absret = np.abs(np.log(wide["close"]).diff()).iloc[1:].to_numpy().ravel()
    logvol = np.log(wide["volume"].iloc[1:].to_numpy().ravel() + 1)
    assert np.corrcoef(absret, logvol)[0, 1] > 0.1


def test_ragged_histories_and_named_tickers() -> None:
    src = SyntheticSource(seed=1, ragged=True)
    df = src.download(["AAA", "BBB", "CCC", "DDD"], "2018-01-01", "2018-12-31")
    counts = df.groupby("tic").size()
    full = counts["AAA"]
    assert counts["BBB"] < full and counts["CCC"] < full
    assert df[df.tic == "BBB"]["date"].min() > df["date"].min()  # late listing
    assert df[df.tic == "CCC"]["date"].max() < df["date"].max()  # delisting


def test_index_vix_and_intraday() -> None:
    src = SyntheticSource(num_tickers=3, seed=0)
    vix = src.download_vix("2019-01-01", "2019-12-31")
    assert 5 < vix.median() < 60 and (vix > 0).all()
    idx = src.download_index("2019-01-01", "2019-12-31")
    assert len(idx) == len(vix) == 252
    intraday = src.download([], "2019-03-04", "2019-03-05", "5m")
    assert intraday["date"].nunique() == 2 * 78  # two XNYS sessions of 78 five-minute bars
    assert intraday["date"].dt.hour.min() == 14  # 09:30 New York in UTC (EST)
