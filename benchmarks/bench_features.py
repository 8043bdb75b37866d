"""Feature engineering speed: finrl_lite's DataProcessor against FinRL's FeatureEngineer, same run.

Both sides start from the same in-memory long frame (date, tic, open, high, low, close, volume) and do
"clean + FinRL's 8 default indicators + turbulence (252-day window)":

* finrl_lite: ``DataProcessor("csv", path=...)`` ``.clean`` / ``.add_indicators`` / ``.add_turbulence``
  (wide ``[T, N]`` arrays, all tickers at once).
* FinRL: a re-implementation of ``FeatureEngineer.preprocess_data`` (finrl/meta/preprocessor/
  preprocessors.py): ``clean_data`` (pivot, keep tickers with a complete close history),
  ``add_technical_indicator`` (``stockstats.StockDataFrame.retype``, then per indicator and per
  ticker a stockstats column, concatenated with pandas and merged back), ``add_turbulence`` (the
  pandas/``np.linalg.pinv`` loop over days) and the final ``ffill().bfill()``.

Data: the S&P 500 file beside the repo (``../shared/data/sp500_5yr_daily.csv.gz``, 505 tickers x 1,259
sessions), or a synthetic random-walk panel of the same shape when it is absent.

Usage::

    python benchmarks/bench_features.py             # 505 tickers, 5 years
    python benchmarks/bench_features.py --quick     # 60 tickers
    python benchmarks/bench_features.py --tickers 100 --repeat 3
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from finrl_lite.data_processors import DataProcessor  # noqa: E402
from finrl_lite.data_processors.indicators import DEFAULT_INDICATORS  # noqa: E402
from finrl_lite.data_processors.risk import turbulence  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
INDICATORS = list(DEFAULT_INDICATORS)
WINDOW = 252


# --------------------------------------------------------------------------------------- FinRL's way
def finrl_clean_data(data: pd.DataFrame) -> pd.DataFrame:
    """FinRL ``clean_data``: keep only tickers whose close exists on every date."""
    df = data.copy().sort_values(["date", "tic"], ignore_index=True)
    df.index = df["date"].factorize()[0]
    closes = df.pivot_table(index="date", columns="tic", values="close").dropna(axis=1)
    return df[df["tic"].isin(closes.columns)]


def finrl_add_technical_indicator(data: pd.DataFrame, indicators: list[str]) -> pd.DataFrame:
    """FinRL ``add_technical_indicator``: stockstats per indicator and per ticker, pandas concat/merge."""
    from stockstats import StockDataFrame

    df = data.copy().sort_values(by=["tic", "date"])
    stock = StockDataFrame.retype(df.copy())
    tickers = stock["tic"].unique()
    for indicator in indicators:
        frames = pd.DataFrame()
        for tic in tickers:
            column = pd.DataFrame(stock[stock["tic"] == tic][indicator])
            column["tic"] = tic
            column["date"] = df[df["tic"] == tic]["date"].to_list()
            frames = pd.concat([frames, column], axis=0, ignore_index=True)  # FinRL grows it row-wise
        df = df.merge(frames[["tic", "date", indicator]], on=["tic", "date"], how="left")
    return df.sort_values(by=["date", "tic"])


def finrl_calculate_turbulence(data: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
    """FinRL ``calculate_turbulence``: one pandas cov and one ``np.linalg.pinv`` per day."""
    pivot = data.pivot(index="date", columns="tic", values="close").pct_change()
    dates = data["date"].unique()
    values: list[float] = [0.0] * window
    count = 0
    for i in range(window, len(dates)):
        current = pivot[pivot.index == dates[i]]
        hist = pivot[(pivot.index < dates[i]) & (pivot.index >= dates[i - window])]
        hist = hist.iloc[hist.isna().sum().min() :].dropna(axis=1)
        deviation = current[list(hist.columns)] - np.mean(hist, axis=0)
        temp = deviation.values.dot(np.linalg.pinv(hist.cov())).dot(deviation.values.T)
        if temp > 0:
            count += 1
            values.append(float(temp[0][0]) if count > 2 else 0.0)  # FinRL zeroes the first two
        else:
            values.append(0.0)
    return pd.DataFrame({"date": pivot.index, "turbulence": values})


def finrl_preprocess(raw: pd.DataFrame, steps: dict[str, float]) -> pd.DataFrame:
    """FinRL ``FeatureEngineer(use_technical_indicator=True, use_turbulence=True).preprocess_data``."""
    t0 = time.perf_counter()
    df = finrl_clean_data(raw)
    t1 = time.perf_counter()
    df = finrl_add_technical_indicator(df, INDICATORS)
    t2 = time.perf_counter()
    turb = finrl_calculate_turbulence(df)
    df = df.merge(turb, on="date").sort_values(["date", "tic"]).reset_index(drop=True)
    df = df.ffill().bfill()
    steps.update(clean=t1 - t0, indicators=t2 - t1, turbulence=time.perf_counter() - t2)
    return df


# ------------------------------------------------------------------------------------- finrl_lite
def lite_preprocess(dp: DataProcessor, raw: pd.DataFrame, steps: dict[str, float]) -> pd.DataFrame:
    """finrl_lite: clean (calendar, valid mask, forward fill), indicators, turbulence."""
    t0 = time.perf_counter()
    df = dp.clean(raw)
    t1 = time.perf_counter()
    df = dp.add_indicators(df, INDICATORS)
    t2 = time.perf_counter()
    df = dp.add_turbulence(df, window=WINDOW)
    steps.update(clean=t1 - t0, indicators=t2 - t1, turbulence=time.perf_counter() - t2)
    return df


# ------------------------------------------------------------------------------------------- data
def synthetic_long(n_tickers: int, n_days: int = 1259, seed: int = 0) -> pd.DataFrame:
    """Random-walk OHLCV with a market factor, on NYSE sessions (what the cleaning aligns to)."""
    import exchange_calendars

    rng = np.random.default_rng(seed)
    dates = exchange_calendars.get_calendar("XNYS").sessions_in_range("2013-02-08", "2025-12-31")[:n_days]
    beta = rng.uniform(0.5, 1.5, n_tickers)
    rets = rng.normal(0, 0.01, (n_days, 1)) * beta + rng.normal(0, 0.015, (n_days, n_tickers))
    close = np.round(50 * np.exp(np.cumsum(rets, axis=0)), 2)
    prev = np.vstack([close[:1], close[:-1]])
    high = np.maximum(close, prev) * (1 + np.abs(rng.normal(0, 0.005, close.shape)))
    low = np.minimum(close, prev) * (1 - np.abs(rng.normal(0, 0.005, close.shape)))
    vol = rng.integers(100_000, 10_000_000, close.shape).astype(float)
    tics = [f"S{j:03d}" for j in range(n_tickers)]
    return pd.DataFrame(
        {
            "date": np.repeat(dates.strftime("%Y-%m-%d"), n_tickers),
            "tic": np.tile(tics, n_days),
            "open": prev.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": vol.ravel(),
        }
    )


def best_of(fn, raw: pd.DataFrame, repeat: int) -> tuple[float, dict[str, float], pd.DataFrame]:
    """Best wall time of ``repeat`` runs, with that run's per-step times."""
    best, best_steps, out = float("inf"), {}, None
    for _ in range(repeat):
        steps: dict[str, float] = {}
        t = time.perf_counter()
        out = fn(raw, steps)
        elapsed = time.perf_counter() - t
        if elapsed < best:
            best, best_steps = elapsed, steps
    return best, best_steps, out


def _steps(steps: dict[str, float]) -> str:
    return "  (" + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=None, help="first N tickers (default: all 505)")
    parser.add_argument("--quick", action="store_true", help="60 tickers, FinRL side run once")
    parser.add_argument("--repeat", type=int, default=3, help="finrl_lite runs (best time is reported)")
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic panel even if the file exists")
    parser.add_argument("--finrl-repeat", type=int, default=1, help="FinRL runs (best time is reported)")
    args = parser.parse_args()
    n_tickers = args.tickers or (60 if args.quick else None)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        path = DATA
        if args.synthetic or not DATA.exists():
            path = Path(tmp) / "synthetic.csv.gz"
            synthetic_long(n_tickers or 505).to_csv(path, index=False)
            print(f"synthetic random-walk panel ({DATA} {'skipped' if DATA.exists() else 'not found'})")
        dp = DataProcessor("csv", path=path)
        tickers: list[str] = []
        if n_tickers:
            all_tics = sorted(pd.read_csv(path, usecols=["tic"], dtype={"tic": str})["tic"].unique())
            tickers = all_tics[:n_tickers]
        t = time.perf_counter()
        raw = dp.download(tickers, "2000-01-01", "2030-12-31", "1d")
        t_download = time.perf_counter() - t

    import torch  # noqa: F401  (finrl_lite depends on it; keep its import time out of the runs)

    n, n_days = raw["tic"].nunique(), raw["date"].nunique()
    print(f"data: {n} tickers x {n_days} days, {len(raw):,} rows ({path.name}); read {t_download:.2f} s")
    print(f"indicators: {', '.join(INDICATORS)} + turbulence({WINDOW})")

    t_lite, s_lite, lite = best_of(lambda r, s: lite_preprocess(dp, r, s), raw, args.repeat)
    print(f"finrl_lite  clean+indicators+turbulence: {t_lite:8.2f} s (best of {args.repeat})" + _steps(s_lite))
    t_finrl, s_finrl, finrl = best_of(finrl_preprocess, raw, args.finrl_repeat)
    print(f"FinRL       clean+indicators+turbulence: {t_finrl:8.2f} s (best of {args.finrl_repeat})" + _steps(s_finrl))
    print(f"speed-up: {t_finrl / t_lite:.1f}x")
    print("per step: " + ", ".join(f"{k} {s_finrl[k] / s_lite[k]:.1f}x" for k in s_lite))
    check(lite, finrl)


def check(lite: pd.DataFrame, finrl: pd.DataFrame) -> None:
    """Sanity: indicators agree on tickers both keep; our turbulence on FinRL's ticker set agrees."""
    all_valid = lite.groupby("tic")["valid"].all()  # our cleaning dropped no bar of theirs
    kept = sorted(set(finrl["tic"]) & set(all_valid[all_valid].index))
    a = lite[lite["tic"].isin(kept)].set_index(["date", "tic"]).sort_index()
    b = finrl.assign(date=pd.to_datetime(finrl["date"])).set_index(["date", "tic"]).sort_index()
    worst = 0.0
    for name in INDICATORS:
        x, y = a[name].to_numpy(float), b[name].reindex(a.index).to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        rel = np.abs(x[ok] - y[ok]) / np.maximum(np.abs(y[ok]), 1e-9 * np.abs(y[ok]).max())
        worst = max(worst, float(rel.max()))
    print(f"indicators on {len(kept)} tickers both keep whole, after warm-up: max rel diff vs FinRL {worst:.1e}")
    pivot = b["close"].unstack("tic")
    ours = turbulence(pivot.to_numpy(float), np.isfinite(pivot.to_numpy(float)), WINDOW)
    theirs = b["turbulence"].groupby(level="date").first().reindex(pivot.index).to_numpy()
    both = (ours > 0) & (theirs > 0)
    rel = np.abs(ours[both] - theirs[both]) / theirs[both]
    print(
        f"turbulence on FinRL's {pivot.shape[1]} tickers: {both.sum()} days both > 0, "
        f"median rel diff {np.median(rel):.1e}, max {rel.max():.1e} "
        f"(FinRL zeroes its first two positive values and trims the first window)"
    )


if __name__ == "__main__":
    main()
