"""The interface every data source implements, and checks shared by all of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from finrl_lite.errors import DataError

__all__ = ["REQUIRED_COLUMNS", "PRICE_COLUMNS", "Source", "check_request", "finalize_frame"]

REQUIRED_COLUMNS = ("date", "tic", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


@runtime_checkable
class Source(Protocol):
    """A market data source.

    ``download`` returns a long DataFrame with at least the columns ``date, tic, open, high, low,
    close, volume`` (extra columns are kept), sorted by ``date, tic``. Daily bars have midnight dates;
    intraday bars have tz-naive UTC timestamps.
    """

    name: str
    default_calendar: str

    def download(self, tickers: Sequence[str], start: str, end: str, interval: str) -> pd.DataFrame: ...

    def download_vix(self, start: str, end: str, interval: str) -> pd.Series | None:
        """The VIX (or an equivalent volatility index) indexed by date, or None when the source has none."""
        ...


def check_request(tickers: Sequence[str], start: object, end: object) -> tuple[list[str], pd.Timestamp, pd.Timestamp]:
    """Validate a download request: parse dates, refuse start after end, dedupe tickers."""
    try:
        s, e = pd.Timestamp(start), pd.Timestamp(end)
    except (ValueError, TypeError) as exc:
        raise DataError(f"cannot parse start/end {start!r}..{end!r}: {exc}") from exc
    if s > e:
        raise DataError(f"start {s.date()} is after end {e.date()}")
    seen: dict[str, None] = {}
    for t in tickers:
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"ticker {t!r} is not a non-empty string")
        seen.setdefault(t.strip(), None)
    return list(seen), s, e


def finalize_frame(
    df: pd.DataFrame,
    origin: str,
    tickers: Sequence[str] = (),
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Check a source's long frame and bring it to the common form.

    Checks required columns, parses dates (naming unparseable rows), converts numbers, keeps the
    requested tickers and dates, and rejects unknown tickers and an empty result.

    Args:
        df: long frame from a source.
        origin: what to name in messages (a file path, ``yfinance``...).
        tickers: requested tickers; empty means all.
        start, end: inclusive date range to keep (None: all).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{origin}: missing required column(s) {missing}; expected columns {list(REQUIRED_COLUMNS)}, found {list(df.columns)}"
        )
    df = df.copy()
    df["tic"] = df["tic"].astype(str)
    dates = pd.to_datetime(df["date"], errors="coerce", utc=True, format="mixed")
    bad = dates.isna() & df["date"].notna() | df["date"].isna()
    if bad.any():
        rows = df.index[bad]
        sample = ", ".join(f"row {int(i) + 2}: {df.at[i, 'date']!r}" for i in rows[:5])
        raise DataError(f"{origin}: {int(bad.sum())} unparseable date(s) in column 'date' ({sample})")
    df["date"] = dates.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    for col in ("open", "high", "low", "close", "volume"):
        converted = pd.to_numeric(df[col], errors="coerce")
        bad_num = converted.isna() & df[col].notna()
        if bad_num.any():
            i = df.index[bad_num][0]
            raise DataError(
                f"{origin}: column '{col}' has {int(bad_num.sum())} non-numeric value(s), "
                f"first at row {int(i) + 2} ({df.at[i, 'tic']} {df.at[i, 'date']}: {df.at[i, col]!r})"
            )
        df[col] = converted.astype("float64")
    if tickers:
        present = set(df["tic"].unique())
        unknown = [t for t in tickers if t not in present]
        if unknown:
            raise DataError(f"{origin}: unknown ticker(s) {unknown}: not in the data ({len(present)} tickers present)")
        df = df[df["tic"].isin(list(tickers))]
    if start is not None:
        df = df[df["date"] >= start]
    if end is not None:
        inclusive_end = end + pd.Timedelta(days=1) if end == end.normalize() else end + pd.Timedelta(microseconds=1)
        df = df[df["date"] < inclusive_end]
    if df.empty:
        span = f" between {start} and {end}" if start is not None or end is not None else ""
        raise DataError(f"{origin}: no rows{span} for the requested tickers (empty result)")
    return df.sort_values(["date", "tic"], kind="stable").reset_index(drop=True)
