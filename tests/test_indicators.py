"""Vectorized indicators against stockstats (what FinRL uses), on real data when it is available."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finrl_lite.data_processors.indicators import (
    DEFAULT_INDICATORS,
    available_indicators,
    check_indicator_names,
    compute_indicators,
    warmup_bars,
)
from finrl_lite.errors import ConfigError, DataError, MissingDependencyError

stockstats = pytest.importorskip("stockstats")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sp500_5yr_daily.csv.gz"
FIELDS = ("open", "high", "low", "close", "volume")
# clean tickers (no NaN prices, no gaps, no impossible bars); GOOG, PYPL, HLT start after 2013-02-08
TICKERS = ["AAPL", "MSFT", "XOM", "JPM", "GE", "AMZN", "PCLN", "F", "KO", "BA", "NVDA", "CHTR"]
LATE = ["GOOG", "PYPL", "HLT"]
DELISTED = "KO"  # cut short in the panel (then forward-filled) to cover delistings
CUT = 200
NAMES = [
    *DEFAULT_INDICATORS,
    "macds",
    "macdh",
    "boll",
    "close_10_ema",
    "close_20_ema",
    "close_5_sma",
    "volume_10_sma",
    "high_7_ema",
    "atr",
    "atr_5",
    "rsi",
    "rsi_6",
    "cci",
    "cci_3",
    "dx",
    "dx_1",
    "obv",
    "log_return",
]
STOCKSTATS_NAME = {"log_return": "log-ret"}


def _synthetic_long(seed: int = 7) -> pd.DataFrame:
    """Random-walk OHLCV, 15 tickers x 700 days, three listed late."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=700)
    frames = []
    for tic in TICKERS + LATE:
        start = 0 if tic not in LATE else 100 + 150 * LATE.index(tic)
        n = len(dates) - start
        close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
        close = np.round(close, 2)  # cents: flat windows and exact zero moves occur, as in real data
        prev = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0, 0.01, (2, n))) * close
        high = np.maximum(close, prev) + spread[0]
        low = np.minimum(close, prev) - spread[1]
        frames.append(
            pd.DataFrame(
                {
                    "date": dates[start:],
                    "tic": tic,
                    "open": prev,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(1_000, 1_000_000, n).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def long_df() -> pd.DataFrame:
    if DATA.exists():
        df = pd.read_csv(DATA, parse_dates=["date"])
        df = df[df["tic"].isin(TICKERS + LATE)].reset_index(drop=True)
    else:
        df = _synthetic_long()
    # a delisting: the ticker's last CUT bars disappear
    last = np.sort(df["date"].unique())[-CUT]
    return df[~((df["tic"] == DELISTED) & (df["date"] >= last))].reset_index(drop=True)


@pytest.fixture(scope="module")
def panel(long_df: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    wide = {f: long_df.pivot(index="date", columns="tic", values=f) for f in FIELDS}
    tickers = list(wide["close"].columns)
    arrays = {f: w.ffill().to_numpy(dtype=float) for f, w in wide.items()}  # ffill only: NaN before listing
    return arrays, tickers


@pytest.fixture(scope="module")
def ours(panel: tuple[dict[str, np.ndarray], list[str]]) -> dict[str, np.ndarray]:
    return compute_indicators(panel[0], NAMES)


@pytest.fixture(scope="module")
def reference(long_df: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tic, g in long_df.groupby("tic"):
            sdf = stockstats.wrap(g.sort_values("date")[["date", *FIELDS]].reset_index(drop=True))
            out[str(tic)] = {n: np.asarray(sdf[STOCKSTATS_NAME.get(n, n)], dtype=float) for n in NAMES}
    return out


def test_panel_has_late_and_delisted_tickers(panel: tuple[dict[str, np.ndarray], list[str]]) -> None:
    close, tickers = panel[0]["close"], panel[1]
    assert len(tickers) == 15
    for tic in LATE:
        assert np.isnan(close[0, tickers.index(tic)])
    assert np.isfinite(close[-1]).all()


@pytest.mark.parametrize("name", NAMES)
def test_matches_stockstats(
    name: str,
    panel: tuple[dict[str, np.ndarray], list[str]],
    ours: dict[str, np.ndarray],
    reference: dict[str, dict[str, np.ndarray]],
) -> None:
    close, tickers = panel[0]["close"], panel[1]
    warm = warmup_bars([name])
    for j, tic in enumerate(tickers):
        ref = reference[tic][name]
        first = int(np.argmax(np.isfinite(close[:, j])))
        got = ours[name][:, j]
        assert np.isnan(got[:first]).all(), f"{name} {tic}: values before the first bar"
        mine = got[first : first + len(ref)]
        assert np.isnan(mine[:warm]).all(), f"{name} {tic}: values during the warm-up"
        assert np.isfinite(mine[warm:]).all(), f"{name} {tic}: NaN after the warm-up"
        # tiny atol for values that cross 0 (macd, cci, obv, log_return)
        atol = 1e-9 * float(np.nanmax(np.abs(ref[warm:]))) if len(ref) > warm else 0.0
        np.testing.assert_allclose(mine[warm:], ref[warm:], rtol=1e-6, atol=atol, err_msg=f"{name} {tic}")


def test_delisted_ticker_is_forward_filled(panel: tuple[dict[str, np.ndarray], list[str]], ours) -> None:
    j = panel[1].index(DELISTED)
    sma = ours["close_5_sma"][:, j]
    assert np.isfinite(sma[-CUT:]).all()
    np.testing.assert_allclose(sma[-1], panel[0]["close"][-1, j])  # flat after the delisting
    np.testing.assert_allclose(ours["log_return"][-CUT + 1 :, j], 0.0)


def test_obv_against_hand_loop(panel: tuple[dict[str, np.ndarray], list[str]], ours) -> None:
    close, volume = panel[0]["close"], panel[0]["volume"]
    for j in range(close.shape[1]):
        first = int(np.argmax(np.isfinite(close[:, j])))
        obv, acc = [0.0], 0.0
        for t in range(first + 1, close.shape[0]):
            if close[t, j] > close[t - 1, j]:
                acc += volume[t, j]
            elif close[t, j] < close[t - 1, j]:
                acc -= volume[t, j]
            obv.append(acc)
        np.testing.assert_allclose(ours["obv"][first:, j], obv)


def test_unknown_name_lists_allowed() -> None:
    with pytest.raises(DataError) as info:
        check_indicator_names(["macd", "rsi30", "close_0_sma", "foo"])
    msg = str(info.value)
    for bad in ("'rsi30'", "'close_0_sma'", "'foo'"):
        assert bad in msg
    assert "'macd'" not in msg.split("allowed")[0]
    for allowed in ("macd", "boll_ub", "close_60_sma", "rsi_<N>", "close_10_ema"):
        assert allowed in msg.split("allowed")[1]
    with pytest.raises(DataError, match="'bogus'"):
        compute_indicators({f: np.ones((3, 2)) for f in FIELDS}, ["bogus"])


def test_available_and_parsing() -> None:
    names = available_indicators()
    assert names[: len(DEFAULT_INDICATORS)] == list(DEFAULT_INDICATORS)
    assert check_indicator_names(names) == names
    assert check_indicator_names(["close_250_ema", "volume_3_sma", "atr_21", "cci_7"])


def test_warmup_bars() -> None:
    assert warmup_bars([]) == 0
    assert warmup_bars(DEFAULT_INDICATORS) == 59
    expected = {
        "macd": 25,
        "macds": 33,
        "boll_ub": 19,
        "rsi_30": 30,
        "cci_30": 29,
        "dx_30": 30,
        "close_30_sma": 29,
        "close_10_ema": 9,
        "atr": 13,
        "obv": 0,
        "log_return": 1,
    }
    for name, warm in expected.items():
        assert warmup_bars([name]) == warm, name
    with pytest.raises(DataError):
        warmup_bars(["nope"])


def test_backends_and_fields() -> None:
    panel = {f: np.ones((40, 2)) for f in FIELDS}
    with pytest.raises(ConfigError, match="backend"):
        compute_indicators(panel, ["macd"], backend="jax")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"finrl-lite\[gpu\]"):
            compute_indicators(panel, ["macd"], backend="cupy")
    else:  # pragma: no cover - GPU machines
        got = compute_indicators(panel, ["macd", "cci_30"], backend="cupy")
        want = compute_indicators(panel, ["macd", "cci_30"])
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, equal_nan=True)
    with pytest.raises(DataError, match="high"):
        compute_indicators({"close": np.ones((5, 2))}, ["atr"])
    with pytest.raises(DataError, match="shape"):
        compute_indicators({"close": np.ones((5, 2)), "high": np.ones((5, 3)), "low": np.ones((5, 2))}, ["dx"])
    assert compute_indicators(panel, []) == {}


def test_ticker_without_data_and_short_history() -> None:
    panel = {f: np.full((50, 3), 10.0) for f in FIELDS}
    for f in FIELDS:
        panel[f][:, 1] = np.nan  # never listed
        panel[f][:45, 2] = np.nan  # 5 bars only
    out = compute_indicators(panel, ["close_30_sma", "rsi_30", "macd", "log_return"])
    assert np.isnan(out["close_30_sma"][:, 1:]).all()
    assert np.isnan(out["rsi_30"][:, 1:]).all()
    np.testing.assert_allclose(out["close_30_sma"][29:, 0], 10.0)
    np.testing.assert_allclose(out["rsi_30"][30:, 0], 50.0)  # no move at all: stockstats says 50
    np.testing.assert_allclose(out["log_return"][46:, 2], 0.0)


def _random_panel(seed: int, t_len: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (t_len, n)), axis=0))
    high = close * (1 + np.abs(rng.normal(0, 0.01, (t_len, n))))
    low = close * (1 - np.abs(rng.normal(0, 0.01, (t_len, n))))
    panel = {"open": close.copy(), "high": high, "low": low, "close": close, "volume": rng.uniform(1, 9, (t_len, n))}
    for f in FIELDS:
        panel[f][: 7 * seed % 40, 0] = np.nan  # a late listing
    return panel


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(1, 1000), cut=st.integers(0, 149), scale=st.floats(0.5, 2.0))
def test_no_look_ahead(seed: int, cut: int, scale: float) -> None:
    names = ["macd", "macdh", "boll_ub", "rsi_30", "cci_30", "dx_30", "close_30_sma", "atr", "obv", "log_return"]
    base = _random_panel(seed, 150, 3)
    changed = {f: a.copy() for f, a in base.items()}
    for f in FIELDS:
        changed[f][cut + 1 :] *= scale
        changed[f][cut + 1 :] += 1.0
    a, b = compute_indicators(base, names), compute_indicators(changed, names)
    for n in names:
        np.testing.assert_allclose(a[n][: cut + 1], b[n][: cut + 1], rtol=1e-12, atol=1e-12, err_msg=n)


def test_internal_nan_is_forward_filled_not_backward() -> None:
    panel = _random_panel(3, 80, 2)
    dirty = {f: a.copy() for f, a in panel.items()}
    first = int(np.argmax(np.isfinite(panel["close"][:, 0])))
    dirty["high"][first, 0] = np.nan  # nothing to fill from: the close stands in
    for f in FIELDS:
        dirty[f][50, 1] = np.nan
    fixed = {f: a.copy() for f, a in panel.items()}
    fixed["high"][first, 0] = fixed["close"][first, 0]
    for f in FIELDS:
        fixed[f][50, 1] = fixed[f][49, 1] if f != "volume" else 0.0
    names = ["atr", "obv", "close_5_sma", "high_3_ema"]
    got, want = compute_indicators(dirty, names), compute_indicators(fixed, names)
    for n in names:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-12, equal_nan=True, err_msg=n)
    assert compute_indicators({f: np.empty((0, 3)) for f in FIELDS}, ["macd"])["macd"].shape == (0, 3)
