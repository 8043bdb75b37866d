"""Inputs that used to be read wrong without a word: day-first dates, naive intraday timestamps, absurd prices,
stray numeric columns, splits without a trading day. Each is now read right or is a clear error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from finrl_lite.cli import app
from finrl_lite.config import load_config
from finrl_lite.data_processors.calendars import bar_grid
from finrl_lite.data_processors.cleaning import clean_frame
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import check_finite, prepare_data
from finrl_lite.data_processors.sources.files import CsvSource
from finrl_lite.data_processors.splits import Splits
from finrl_lite.errors import DataError

runner = CliRunner()


def _daily(days: int = 40, start: str = "2015-01-02", tickers: tuple[str, ...] = ("AAA", "BBB")) -> pd.DataFrame:
    """Calm daily bars on XNYS sessions (close drifts by 0.5% a day)."""
    dates = bar_grid("XNYS", pd.Timestamp(start), pd.Timestamp(start) + pd.Timedelta(days=3 * days), "1d")[:days]
    rows = []
    for k, tic in enumerate(tickers):
        close = (20.0 + 10 * k) * 1.005 ** np.arange(days)
        rows += [
            {"date": d, "tic": tic, "open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": 1000.0}
            for d, c in zip(dates, close, strict=True)
        ]
    return pd.DataFrame(rows)


def _prepare(path: Path, *sets: str) -> MarketData:
    overrides = ["data.source=csv", f"data.path={path}", "data.start=2015-01-01", "data.end=2015-12-31", "data.vix=false"]
    overrides += ["data.indicators=[macd]", "data.turbulence_window=10", "data.cache.enabled=false", *sets]
    return prepare_data(load_config(None, overrides), use_cache=False).market


# ---------------------------------------------------------------------- 1. dates


def test_day_first_dates_are_an_error_naming_the_row_unless_the_format_says_so(tmp_path: Path) -> None:
    frame = _daily(days=5)
    frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")  # 02/01/2015 is January 2nd
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"bars\.csv: 10 unparseable date\(s\) .*ISO8601.*row 2: '02/01/2015'.*'%d/%m/%Y'"):
        CsvSource(path).download([], "2015-01-01", "2015-12-31")
    read = CsvSource(path, date_format="%d/%m/%Y").download([], "2015-01-01", "2015-12-31")
    assert [str(d.date()) for d in read["date"].unique()] == [
        "2015-01-02",
        "2015-01-05",
        "2015-01-06",
        "2015-01-07",
        "2015-01-08",
    ]
    # one format for every row: a row written another way is named
    frame.loc[7, "date"] = "2015-01-07"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"1 unparseable date\(s\) .*'%d/%m/%Y'.*row 9: '2015-01-07'"):
        CsvSource(path, date_format="%d/%m/%Y").download([], "2015-01-01", "2015-12-31")


def test_day_first_dates_exit_2_from_the_cli_naming_file_and_row(tmp_path: Path) -> None:
    frame = _daily(days=5)
    frame["date"] = frame["date"].dt.strftime("%d/%m/%Y")
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    sets = ["data.source=csv", f"data.path={path}", "data.splits={}", "data.indicators=[]", "data.turbulence=false"]
    sets += ["data.vix=false", "data.start=2015-01-01"]
    args = ["data", "prepare", "--out", str(tmp_path / "o"), "--no-cache", *[a for s in sets for a in ("--set", s)]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "bars.csv" in result.output and "row 2: '02/01/2015'" in result.output
    ok = runner.invoke(app, [*args, "--set", "data.date_format='%d/%m/%Y'"])
    assert ok.exit_code == 0, ok.output


def test_timestamps_mixing_offsets_and_naive_ones_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    frame = _daily(days=2)
    frame["date"] = ["2015-01-02T14:30:00Z", "2015-01-02 09:30:00", "2015-01-05T14:30:00Z", "2015-01-05T14:30:00Z"]
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"mixes timestamps without a UTC offset \(row 3: '2015-01-02 09:30:00'\)"):
        CsvSource(path).download([], "2015-01-01", "2015-12-31", "1m")


# ---------------------------------------------------------------------- 2. timezones


def _minutes_local(day: str, tickers: tuple[str, ...] = ("AAA", "BBB")) -> pd.DataFrame:
    """A full XNYS session of 1-minute bars stamped in New York wall-clock time, without an offset."""
    local = pd.date_range(f"{day} 09:30", f"{day} 15:59", freq="1min")
    rows = [
        {
            "date": t.strftime("%Y-%m-%d %H:%M:%S"),
            "tic": tic,
            "open": 10.0,
            "high": 10.1,
            "low": 9.9,
            "close": 10.0,
            "volume": 5.0,
        }
        for t in local
        for tic in tickers
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("day", "first_utc"), [("2021-01-05", "14:30"), ("2021-07-06", "13:30")], ids=["winter", "summer"])
def test_naive_intraday_timestamps_are_read_in_the_calendar_timezone(tmp_path: Path, day: str, first_utc: str) -> None:
    path = tmp_path / "minutes.csv"
    _minutes_local(day).to_csv(path, index=False)
    df = CsvSource(path, calendar="XNYS").download([], day, day, "1m")
    out, report = clean_frame(df, calendar="XNYS", interval="1m")
    assert report.dropped == [] and out["date"].nunique() == 390 and out["valid"].all()
    assert str(out["date"].min()) == f"{day} {first_utc}:00"
    # the same instants written with their offset read the same
    with_offset = _minutes_local(day)
    with_offset["date"] = pd.to_datetime(with_offset["date"]).dt.tz_localize("America/New_York").map(pd.Timestamp.isoformat)
    with_offset.to_csv(path, index=False)
    again = CsvSource(path, calendar="XNYS", timezone="Asia/Tokyo").download([], day, day, "1m")  # an offset wins
    pd.testing.assert_series_equal(again["date"], df["date"])


def test_a_wrong_timezone_is_an_error_that_says_so_with_a_sample(tmp_path: Path) -> None:
    path = tmp_path / "minutes.csv"
    _minutes_local("2021-01-05").to_csv(path, index=False)
    df = CsvSource(path, calendar="XNYS", timezone="UTC").download([], "2021-01-05", "2021-01-05", "1m")
    with pytest.raises(DataError) as info:
        clean_frame(df, calendar="XNYS", interval="1m")
    text = str(info.value)
    assert "600 of 780 bars are not bars of the XNYS calendar at interval 1m (UTC)" in text
    assert "AAA 2021-01-05 09:30:00" in text and "run 2021-01-05 14:30:00..2021-01-05 20:59:00" in text
    assert "timezone or interval mismatch" in text and "data.timezone" in text


def test_a_daylight_saving_gap_is_an_error_not_a_shift(tmp_path: Path) -> None:
    path = tmp_path / "minutes.csv"
    frame = _daily(days=1)
    frame["date"] = ["2021-03-14 02:30:00", "2021-03-14 02:30:00"]  # clocks jump from 02:00 to 03:00 in New York
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"does not exist in data\.timezone 'America/New_York'"):
        CsvSource(path, timezone="America/New_York").download([], "2021-03-14", "2021-03-14", "1m")


# ---------------------------------------------------------------------- 3. absurd prices


def test_an_absurd_price_is_dropped_as_a_bad_print_and_reported(tmp_path: Path) -> None:
    frame = _daily()
    frame.loc[20, ["high", "close"]] = 1e300
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    prepared = prepare_data(load_config(None, _sets(path)), use_cache=False)
    assert [(t, d[:10], r) for t, d, r in prepared.report.dropped] == [
        ("AAA", str(frame.loc[20, "date"].date()), "price spike beyond x1.75 from both neighbouring closes")
    ]
    assert np.isfinite(prepared.market.market("turbulence")[10:]).all()
    with pytest.raises(DataError, match=r"1 impossible bar\(s\): AAA 2015-02-02 00:00:00 \(price spike"):
        prepare_data(load_config(None, [*_sets(path), "data.cleaning.on_bad_rows=error"]), use_cache=False)


def test_non_finite_prepared_features_are_an_error_naming_ticker_date_and_field(tmp_path: Path) -> None:
    frame = _daily()
    frame.loc[20, ["high", "close"]] = 1e300
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataError,
        match=r"first 1e\+300 in 'high' of AAA on 2015-02-02 00:00:00; .*first inf in 'turbulence' on 2015-02-02.*nothing can",
    ):
        prepare_data(load_config(None, [*_sets(path), "data.cleaning.max_price_jump=null"]), use_cache=False)
    market = prepare_data(load_config(None, _sets(path)), use_cache=False).market
    values = market.values.copy()
    values[5, 1, market.field_index("macd")] = np.inf
    broken = replace(market, values=values)
    with pytest.raises(DataError, match=r"csv: 1 non-finite .* first inf in 'macd' of BBB on 2015-01-09"):
        check_finite(broken, "csv")
    market_values = market.market_values.copy()
    market_values[3, 0] = -np.inf
    broken = replace(market, market_values=market_values)
    with pytest.raises(DataError, match=r"first -inf in 'turbulence' on 2015-01-07"):
        check_finite(broken, "csv")


def _sets(path: Path) -> list[str]:
    return [
        "data.source=csv",
        f"data.path={path}",
        "data.start=2015-01-01",
        "data.end=2015-12-31",
        "data.vix=false",
        "data.indicators=[macd]",
        "data.turbulence_window=10",
        "data.splits={}",
    ]


def test_a_lasting_jump_is_kept_and_reported_a_reverted_one_is_not_kept() -> None:
    frame = _daily()
    frame.loc[frame.tic == "BBB", ["open", "high", "low", "close"]] *= np.where(np.arange(40) >= 25, 0.4, 1.0)[:, None]
    frame.loc[10, ["open", "high", "low", "close"]] *= 0.5  # down 50% for one day only: reverted, dropped
    out, report = clean_frame(frame)
    assert report.jumps == [("BBB", str(frame.loc[65, "date"]), pytest.approx(0.4 * 1.005**25 / 1.005**24))]
    assert [(t, r) for t, _, r in report.dropped] == [("AAA", "price spike beyond x1.75 from both neighbouring closes")]
    assert out.loc[out.tic == "BBB", "valid"].all()
    kept, report = clean_frame(frame, max_price_jump=2.5)  # neither is beyond x2.5
    assert report.dropped == [] and report.jumps == [] and kept["valid"].all()


def test_sp500_bad_print_dropped_spin_offs_kept_and_reported(sp500_path: Path) -> None:
    tickers = ["LNT", "EBAY", "NI", "BAX", "DISCA", "DISCK", "AAPL"]
    df = CsvSource(sp500_path).download(tickers, "2013-02-08", "2018-02-07")
    _, report = clean_frame(df)
    dropped = {(t, d[:10]): r for t, d, r in report.dropped}
    assert dropped[("LNT", "2016-05-19")] == "close outside [low, high]"  # the bad print (its close is half the others)
    assert not any(r.startswith("price spike") for r in dropped.values())
    jumps = {(t, d[:10]): round(f, 2) for t, d, f in report.jumps}
    assert jumps == {
        ("DISCA", "2014-08-07"): 0.49,
        ("DISCK", "2014-08-07"): 0.49,
        ("BAX", "2015-07-01"): 0.56,
        ("NI", "2015-07-02"): 0.37,
        ("EBAY", "2015-07-20"): 0.43,
    }


# ---------------------------------------------------------------------- 4. extra columns


def test_only_ohlcv_indicators_and_listed_extras_are_observed(tmp_path: Path) -> None:
    frame = _daily()
    frame["sentiment"] = np.linspace(-1, 1, len(frame))
    frame["shares_out"] = 1e6
    path = tmp_path / "bars.csv"
    frame.to_csv(path)  # with pandas' row index: read back as 'Unnamed: 0'
    assert pd.read_csv(path).columns[0] == "Unnamed: 0"
    market = _prepare(path, "data.splits={}")
    assert market.fields == ("open", "high", "low", "close", "volume", "macd")
    market = _prepare(path, "data.splits={}", "data.extra_features=[sentiment]")
    assert market.fields == ("open", "high", "low", "close", "volume", "macd", "sentiment")
    np.testing.assert_allclose(market.field("sentiment")[:, 0], frame.loc[frame.tic == "AAA", "sentiment"].to_numpy())
    with pytest.raises(DataError, match=r"data\.extra_features names 'mood', which is not a column"):
        _prepare(path, "data.splits={}", "data.extra_features=[mood]")


# ---------------------------------------------------------------------- smaller


def test_a_split_of_weekends_and_holidays_has_no_trading_day() -> None:
    dates = bar_grid("XNYS", pd.Timestamp("2019-11-01"), pd.Timestamp("2019-12-31"), "1d").to_numpy()
    with pytest.raises(DataError, match=r"split 'test' \(2019-11-28\.\.2019-11-28\) has no trading day in range"):
        Splits({"test": ("2019-11-28", "2019-11-28")}).validate(dates, 0)  # Thanksgiving
    with pytest.raises(DataError, match=r"split 'test' \(2019-11-30\.\.2019-12-01\) has no trading day in range"):
        Splits({"test": ("2019-11-30", "2019-12-01")}).validate(dates, 0)  # a weekend
    with pytest.raises(DataError, match=r"split 'test' \(2020-03-01\.\.2020-03-31\) lies outside the data"):
        Splits({"test": ("2020-03-01", "2020-03-31")}).validate(dates, 0)
