"""Vectorized turbulence index against a plain FinRL-style loop (pandas cov + numpy pinv per day)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finrl_lite.data_processors.risk import turbulence
from finrl_lite.errors import DataError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
# VRTX, REGN, DHR have NaN prices / missing days inside 2015-2016; PYPL, KHC, HPE list in 2015
DIRTY = ["VRTX", "REGN", "DHR", "PYPL", "KHC", "HPE"]
START, DAYS = 500, 400  # sessions 500..899 of the file: 2015-02 .. 2016-09


def _synthetic_close(t_len: int, n: int, seed: int = 3) -> pd.DataFrame:
    """Factor-model prices with a late listing and a few missing bars (NaN), as a date x ticker pivot."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, (t_len, 1))
    rets = 0.0004 + market * rng.uniform(0.5, 1.5, n) + rng.normal(0, 0.015, (t_len, n))
    close = 30.0 * np.exp(np.cumsum(rets, axis=0))
    close[: t_len // 3, 0] = np.nan  # listed late
    close[t_len // 2, 1] = np.nan  # a NaN bar
    close[t_len // 2 + 5 : t_len // 2 + 8, 2] = np.nan  # a three-day halt
    cols = [f"T{j:03d}" for j in range(n)]
    return pd.DataFrame(close, index=pd.bdate_range("2016-01-04", periods=t_len), columns=cols)


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame | None:
    if not DATA.exists():
        return None
    df = pd.read_csv(DATA, usecols=["date", "tic", "close"], parse_dates=["date"])
    return df.pivot(index="date", columns="tic", values="close")


def _pivot(sp500: pd.DataFrame | None, n_clean: int, start: int, days: int, dirty: bool) -> pd.DataFrame:
    if sp500 is None:
        return _synthetic_close(days, n_clean + (len(DIRTY) if dirty else 0))
    part = sp500.iloc[start : start + days]
    clean = [c for c in part.columns if part[c].notna().all() and c not in DIRTY][:n_clean]
    return part[clean + (DIRTY if dirty else [])]


def _inputs(pivot: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return pivot.ffill().to_numpy(dtype=float, copy=True), pivot.notna().to_numpy(copy=True)


def reference_turbulence(pivot: pd.DataFrame, window: int) -> tuple[np.ndarray, np.ndarray]:
    """FinRL's loop, with the documented differences (full window, no first-two-positive zeroing).

    Returns:
        Turbulence per day and the number of tickers used per day.
    """
    rets = pivot.pct_change(fill_method=None)
    out, used = np.zeros(len(pivot)), np.zeros(len(pivot), dtype=int)
    for i in range(window, len(pivot)):
        hist = rets.iloc[i - window : i]
        current = rets.iloc[i]
        cols = hist.columns[hist.notna().all().to_numpy() & current.notna().to_numpy()]
        used[i] = len(cols)
        if len(cols) == 0:
            continue
        h = hist[cols]
        y = (current[cols] - h.mean()).to_numpy()
        out[i] = y @ np.linalg.pinv(h.cov().to_numpy()) @ y
    return out, used


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(got == 0, want == 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_matches_loop_covariance_side(sp500: pd.DataFrame | None) -> None:
    pivot = _pivot(sp500, 25, START, DAYS, dirty=True)
    window = 60
    got = turbulence(*_inputs(pivot), window=window)
    want, used = reference_turbulence(pivot, window)
    assert used.max() > used[used > 0].min()  # some tickers were excluded on some days
    assert used.max() < window  # the n x n covariance path
    assert (want[window + 1 :] > 0).all()
    _assert_close(got, want)


def test_matches_loop_gram_side(sp500: pd.DataFrame | None) -> None:
    """More tickers than window days: the covariance is singular, pinv keeps rank window - 1."""
    pivot = _pivot(sp500, 74, START, 160, dirty=True)
    window = 40
    got = turbulence(*_inputs(pivot), window=window)
    want, used = reference_turbulence(pivot, window)
    assert used[window + 1 :].min() > window
    _assert_close(got, want)


def test_zeros_before_window_and_default_window(sp500: pd.DataFrame | None) -> None:
    pivot = _pivot(sp500, 10, 0, 300, dirty=False)
    close, valid = _inputs(pivot)
    out = turbulence(close, valid)  # FinRL's 252
    assert out.shape == (300,)
    assert (out[:253] == 0).all()  # day 252 has no full window of returns (day 0 has none)
    assert (out[253:] > 0).all()
    assert (turbulence(close[:100], valid[:100]) == 0).all()


def test_no_look_ahead(sp500: pd.DataFrame | None) -> None:
    pivot = _pivot(sp500, 25, START, 200, dirty=True)
    close, valid = _inputs(pivot)
    base = turbulence(close, valid, window=50)
    rng = np.random.default_rng(0)
    for cut in (60, 120, 170):
        c2, v2 = close.copy(), valid.copy()
        c2[cut + 1 :] *= rng.uniform(0.5, 1.5, c2[cut + 1 :].shape)
        v2[cut + 1 :: 7, :3] = False
        out = turbulence(c2, v2, window=50)
        np.testing.assert_allclose(out[: cut + 1], base[: cut + 1], rtol=1e-10, atol=0)
        assert not np.allclose(out[cut + 1 :], base[cut + 1 :])


def test_invalid_cell_excludes_ticker_for_its_windows(sp500: pd.DataFrame | None) -> None:
    pivot = _pivot(sp500, 20, START, 200, dirty=False)
    close, valid = _inputs(pivot)
    window, k, j = 30, 100, 4
    full = turbulence(close, valid, window=window)
    valid[k, j] = False  # removes the returns of days k and k + 1
    got = turbulence(close, valid, window=window)
    without = turbulence(np.delete(close, j, axis=1), np.delete(valid, j, axis=1), window=window)
    hit = np.arange(k, k + window + 2)  # days whose window (or the day itself) holds day k or k + 1
    np.testing.assert_allclose(got[hit], without[hit], rtol=1e-9)
    rest = np.r_[window + 1 : k, k + window + 2 : len(got)]
    np.testing.assert_allclose(got[rest], full[rest], rtol=1e-9)
    assert not np.allclose(got[hit], full[hit])


def test_singular_covariance_falls_back_to_pinv(sp500: pd.DataFrame | None) -> None:
    pivot = _pivot(sp500, 12, START, 150, dirty=False)
    pivot = pivot.assign(DUP=pivot.iloc[:, 0], DUP2=pivot.iloc[:, 1] * 2.0)  # identical returns
    got = turbulence(*_inputs(pivot), window=40)
    want, _ = reference_turbulence(pivot, 40)
    _assert_close(got, want)


def test_bad_input() -> None:
    with pytest.raises(DataError, match="valid"):
        turbulence(np.ones((10, 3)), np.ones((10, 2), dtype=bool))
    with pytest.raises(DataError, match="window"):
        turbulence(np.ones((10, 3)), np.ones((10, 3), dtype=bool), window=1)
    out = turbulence(np.ones((80, 2)), np.zeros((80, 2), dtype=bool), window=20)
    assert (out == 0).all()
