"""Calendar alignment, ragged tickers kept with a mask, forward fill only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from finrl_lite.data_processors.cleaning import clean_frame
from finrl_lite.data_processors.sources.files import CsvSource


def _bars(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"date": pd.Timestamp(d), "tic": t, "open": c, "high": c + 1, "low": c - 1, "close": c, "volume": 10.0}
            for d, t, c in rows
        ]
    )


def test_ragged_ticker_kept_with_mask_and_no_backfill() -> None:
    # XNYS: 2021-01-15 Fri, 2021-01-18 MLK holiday, 2021-01-19 Tue, 2021-01-20 Wed.
    df = _bars(
        [
            ("2021-01-14", "AAA", 10),
            ("2021-01-15", "AAA", 11),
            ("2021-01-19", "AAA", 12),
            ("2021-01-20", "AAA", 13),
            ("2021-01-15", "NEW", 50),
            ("2021-01-20", "NEW", 52),  # lists late, misses 01-19
            ("2021-01-16", "AAA", 99),  # a Saturday: not a session
        ]
    )
    out, report = clean_frame(df, calendar="XNYS")
    assert report.counts() == {"not a XNYS bar": 1}
    new = out[out.tic == "NEW"].set_index("date")
    assert list(new.index.strftime("%m-%d")) == ["01-14", "01-15", "01-19", "01-20"]
    assert np.isnan(new.loc["2021-01-14", "close"])  # before listing: not filled backwards
    assert not new.loc["2021-01-14", "valid"]
    assert new.loc["2021-01-19", "close"] == 50 and not new.loc["2021-01-19", "valid"]  # forward-filled
    assert new.loc["2021-01-19", "volume"] == 0 and new.loc["2021-01-19", "high"] == 50
    assert new["valid"].tolist() == [False, True, False, True]
    assert report.filled_cells == 1


def test_crypto_minutes_on_24_7(crypto_path: Path) -> None:
    df = CsvSource(crypto_path).download(["ALGOUSDT", "LINKUSDT"], "2023-02-01", "2023-02-01", "1m")
    out, report = clean_frame(df, calendar="24/7", interval="1m")
    assert out["date"].nunique() == 1440 and out["valid"].all() and report.dropped == []


def test_sp500_real_dirty_rows_reported(sp500_path: Path) -> None:
    df = CsvSource(sp500_path).download([], "2013-02-08", "2018-02-07")
    out, report = clean_frame(df)
    counts = report.counts()
    assert counts["NaN price"] == 11
    assert counts["high < low"] + counts["open outside [low, high]"] + counts["close outside [low, high]"] == 12
    dropped = {(t, d[:10]) for t, d, _ in report.dropped}
    assert ("VRTX", "2015-05-12") in dropped and ("CHD", "2014-05-19") in dropped
    assert out["date"].nunique() == 1259 and out["tic"].nunique() == 505
    dhr = out[out.tic == "DHR"]
    assert (~dhr["valid"]).sum() >= 16 and dhr["close"].notna().all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 2), st.floats(2, 100)), min_size=1, max_size=40))
def test_forward_fill_never_uses_the_future(cells: list[tuple[int, int, float]]) -> None:
    days = pd.bdate_range("2021-03-01", periods=20)
    rows = {(days[d], f"T{t}"): c for d, t, c in cells}
    df = _bars([(str(d.date()), t, c) for (d, t), c in rows.items()])
    out, _ = clean_frame(df, align_to_calendar=False, max_price_jump=None)  # random prices: every kind of jump
    for (date, tic), grp in out.groupby(["date", "tic"]):
        row = grp.iloc[0]
        past = {d: c for (d, t), c in rows.items() if t == tic and d <= date}
        if not past:
            assert np.isnan(row["close"]) and not row["valid"]
        else:
            assert row["close"] == past[max(past)]
            assert row["valid"] == ((date, tic) in rows)
