"""Every kind of bad input gets a clear error (naming file, row or field) or a reported drop."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from finrl_lite.data_processors.cleaning import clean_frame
from finrl_lite.data_processors.sources import make_source
from finrl_lite.data_processors.sources.files import CsvSource, ParquetSource
from finrl_lite.errors import DataError
from finrl_lite.io import atomic_path

GOOD = """date,tic,open,high,low,close,volume,sector
2021-01-04,AAA,10,11,9,10.5,100,tech
2021-01-04,BBB,20,21,19,20.5,200,energy
2021-01-05,AAA,10.5,11.5,10,11,110,tech
2021-01-05,BBB,20.5,21.5,20,21,210,energy
2021-01-06,AAA,11,12,10.5,11.5,120,tech
2021-01-06,BBB,21,22,20.5,21.5,220,energy
"""


def _csv(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_file_keeps_extra_columns(tmp_path: Path) -> None:
    df = CsvSource(_csv(tmp_path, GOOD)).download([], "2021-01-01", "2021-01-31")
    assert list(df.columns)[:7] == ["date", "tic", "open", "high", "low", "close", "volume"]
    assert df["sector"].tolist() == ["tech", "energy"] * 3
    assert df["close"].tolist() == [10.5, 20.5, 11.0, 21.0, 11.5, 21.5]


def test_gzip_and_parquet_accepted(tmp_path: Path) -> None:
    gz = tmp_path / "bars.csv.gz"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    assert len(CsvSource(gz).download([], "2021-01-01", "2021-01-31")) == 6
    pq = tmp_path / "bars.parquet"
    pd.read_csv(_csv(tmp_path, GOOD)).to_parquet(pq)
    assert len(ParquetSource(pq).download(["AAA"], "2021-01-01", "2021-01-31")) == 3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.csv: file not found"):
        CsvSource(tmp_path / "missing.csv").download([], "2021-01-01", "2021-01-31")


def test_wrongly_compressed_file(tmp_path: Path) -> None:
    p = _csv(tmp_path, GOOD, "bars.csv.gz")  # plain text with a .gz name
    with pytest.raises(DataError, match=r"bars\.csv\.gz: cannot decompress or read"):
        CsvSource(p).download([], "2021-01-01", "2021-01-31")
    bad_parquet = _csv(tmp_path, "not parquet", "x.parquet")
    with pytest.raises(DataError, match=r"x\.parquet: not a readable parquet file"):
        ParquetSource(bad_parquet).download([], "2021-01-01", "2021-01-31")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the file is empty"):
        CsvSource(_csv(tmp_path, "")).download([], "2021-01-01", "2021-01-31")


def test_missing_required_column(tmp_path: Path) -> None:
    text = GOOD.replace(",volume,", ",vol,")
    with pytest.raises(DataError, match=r"bars\.csv: missing required column\(s\) \['volume'\]"):
        CsvSource(_csv(tmp_path, text)).download([], "2021-01-01", "2021-01-31")


def test_unparseable_dates_name_the_row(tmp_path: Path) -> None:
    text = GOOD.replace("2021-01-05,BBB", "2021-13-45,BBB")
    with pytest.raises(DataError, match=r"unparseable date.*row 5: '2021-13-45'"):
        CsvSource(_csv(tmp_path, text)).download([], "2021-01-01", "2021-01-31")


def test_non_numeric_price_names_the_row(tmp_path: Path) -> None:
    text = GOOD.replace("2021-01-05,AAA,10.5,11.5,10,11,", "2021-01-05,AAA,10.5,11.5,10,eleven,")
    with pytest.raises(DataError, match=r"column 'close'.*row 4 \(AAA 2021-01-05"):
        CsvSource(_csv(tmp_path, text)).download([], "2021-01-01", "2021-01-31")


def test_unknown_ticker_start_after_end_empty_result(tmp_path: Path) -> None:
    src = CsvSource(_csv(tmp_path, GOOD))
    with pytest.raises(DataError, match=r"unknown ticker\(s\) \['ZZZ'\]"):
        src.download(["AAA", "ZZZ"], "2021-01-01", "2021-01-31")
    with pytest.raises(DataError, match="start 2021-02-01 is after end 2021-01-01"):
        src.download([], "2021-02-01", "2021-01-01")
    with pytest.raises(DataError, match="empty result"):
        src.download([], "2022-01-01", "2022-12-31")


def test_unknown_source() -> None:
    with pytest.raises(DataError, match="unknown data source 'bloomberg'; known sources: synthetic, csv"):
        make_source("bloomberg")


def _frame(text: str) -> pd.DataFrame:
    from io import StringIO

    df = pd.read_csv(StringIO(text))
    df["date"] = pd.to_datetime(df["date"])
    return df


def test_conflicting_duplicates_are_listed_exact_ones_dropped() -> None:
    df = _frame(GOOD)
    exact = pd.concat([df, df.iloc[[0]]])
    out, report = clean_frame(exact)
    assert report.exact_duplicates == 1 and len(out) == 6
    conflict = pd.concat([df, df.iloc[[0]].assign(close=10.4)])
    with pytest.raises(DataError, match=r"1 \(date, tic\) pair\(s\).*AAA 2021-01-04"):
        clean_frame(conflict)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("close", float("nan"), "NaN price"),
        ("close", 0.0, "non-positive price"),
        ("low", -1.0, "non-positive price"),
        ("low", 11.9, "high < low"),
        ("close", 11.8, "close outside [low, high]"),
        ("volume", -5.0, "negative volume"),
    ],
)
def test_impossible_bars_dropped_with_report_or_rejected(column: str, value: float, reason: str) -> None:
    df = _frame(GOOD)
    df.loc[2, column] = value  # AAA 2021-01-05 (high 11.5)
    out, report = clean_frame(df, on_bad_rows="drop")
    assert report.dropped == [("AAA", "2021-01-05 00:00:00", reason)]
    row = out[(out.tic == "AAA") & (out.date == "2021-01-05")].iloc[0]
    assert not row["valid"] and row["close"] == 10.5  # forward-filled from the day before
    with pytest.raises(
        DataError, match=rf"1 impossible bar\(s\): AAA 2021-01-05 00:00:00 \({reason.replace('[', '.').replace(']', '.')}\)"
    ):
        clean_frame(df, on_bad_rows="error")


def test_all_rows_bad_is_an_error() -> None:
    df = _frame(GOOD).assign(close=-1.0)
    with pytest.raises(DataError, match="no rows left"):
        clean_frame(df)


def test_failed_write_leaves_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
