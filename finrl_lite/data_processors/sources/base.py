"""The interface every data source implements, and checks shared by all of them."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from finrl_lite.errors import DataError

__all__ = ["REQUIRED_COLUMNS", "PRICE_COLUMNS", "Source", "check_request", "finalize_frame", "parse_dates"]

logger = logging.getLogger(__name__)

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


_PANDAS_INDEX = re.compile(r"^Unnamed: \d+$")
"""A column pandas names when it reads a file whose row index was written without a name."""
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
"""The end of a timestamp string that carries its UTC offset."""
_SLASHED = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
"""A day-first or month-first date (``02/01/2015``), which only an explicit format can read."""


def _row(index: object) -> str:
    return f"row {int(index) + 2}" if isinstance(index, int | np.integer) else f"row {index}"  # CSV line (after the header)


def parse_dates(
    column: pd.Series, origin: str, date_format: str = "ISO8601", timezone: str | None = None, intraday: bool = False
) -> pd.Series:
    """Timestamps of a date column, read with one explicit format, as tz-naive ``datetime64[ns]``.

    Daily dates stay the dates they are. Intraday timestamps become UTC: naive ones are read as wall-clock times
    in ``timezone`` (the calendar's, when the source passes it), ones with an offset are converted as they say.

    Args:
        column: the ``date`` column (strings, or datetimes already).
        origin: what to name in messages.
        date_format: ``ISO8601`` or one strftime format (``%d/%m/%Y``) every string must match.
        timezone: IANA timezone of naive intraday timestamps; None: UTC.
        intraday: whether the bars are intraday.

    Raises:
        DataError: a value that does not match ``date_format`` (naming the first such row, with a hint for
            day-first or month-first dates), timestamps with and without an offset in one column, or a local time that
            the timezone's daylight-saving change makes ambiguous or skips.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed, naive = column, getattr(column.dt, "tz", None) is None
    else:
        text = column.astype("string").str.strip()
        try:
            parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{origin}: column 'date' cannot be read with date_format {date_format!r} ({exc})") from exc
        bad = parsed.isna()
        if bad.any():
            first = bad.idxmax()
            value = column.loc[first]
            hint = (
                f"; dates like {value!r} read day-first or month-first: set data.date_format to '%d/%m/%Y' or '%m/%d/%Y'"
                if isinstance(value, str) and date_format == "ISO8601" and _SLASHED.match(value.strip())
                else ""
            )
            raise DataError(
                f"{origin}: {int(bad.sum())} unparseable date(s) in column 'date' (expected date_format {date_format!r}), "
                f"first at {_row(first)}: {value!r}{hint}"
            )
        has_offset = text.str.contains(_OFFSET, regex=True)
        if has_offset.any() and not has_offset.all():
            plain, offset = has_offset.idxmin(), has_offset.idxmax()
            raise DataError(
                f"{origin}: column 'date' mixes timestamps without a UTC offset ({_row(plain)}: {column.loc[plain]!r}) "
                f"and with one ({_row(offset)}: {column.loc[offset]!r}); write every timestamp the same way"
            )
        naive = not bool(has_offset.any())
        if naive:  # to_datetime labelled the wall-clock times UTC; take the label off
            parsed = parsed.dt.tz_localize(None)
    if naive and intraday and timezone is not None:
        try:
            parsed = parsed.dt.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz/zoneinfo raise ValueError subclasses for DST gaps and repeats
            raise DataError(
                f"{origin}: a naive timestamp is ambiguous or does not exist in data.timezone {timezone!r} "
                f"(a daylight-saving change: {exc}); write the timestamps with their UTC offset"
            ) from exc
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def finalize_frame(
    df: pd.DataFrame,
    origin: str,
    tickers: Sequence[str] = (),
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    date_format: str = "ISO8601",
    timezone: str | None = None,
    intraday: bool = False,
) -> pd.DataFrame:
    """Check a source's long frame and bring it to the common form.

    Checks required columns, parses dates (:func:`parse_dates`, naming unparseable rows), converts numbers, drops
    a pandas row index column (``Unnamed: 0``), keeps the requested tickers and dates, and rejects unknown
    tickers and an empty result.

    Args:
        df: long frame from a source.
        origin: what to name in messages (a file path, ``yfinance``...).
        tickers: requested tickers; empty means all.
        start, end: inclusive date range to keep (None: all).
        date_format, timezone, intraday: how to read the date column (see :func:`parse_dates`).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{origin}: missing required column(s) {missing}; expected columns {list(REQUIRED_COLUMNS)}, found {list(df.columns)}"
        )
    index_columns = [c for c in df.columns if isinstance(c, str) and _PANDAS_INDEX.match(c)]
    if index_columns:
        logger.info("%s: ignoring %s (a row index pandas wrote into the file)", origin, index_columns)
    df = df.drop(columns=index_columns)
    df["tic"] = df["tic"].astype(str)
    if df["date"].isna().any():
        first = df["date"].isna().idxmax()
        raise DataError(f"{origin}: {int(df['date'].isna().sum())} empty date(s) in column 'date', first at {_row(first)}")
    df["date"] = parse_dates(df["date"], origin, date_format, timezone, intraday)
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
