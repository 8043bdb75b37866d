"""What a bar feed gives the loop, and the checks every released bar must pass (order, gaps, calendar)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from finrl_lite.data_processors.sources.base import REQUIRED_COLUMNS
from finrl_lite.errors import DataError

__all__ = ["Feed", "check_next_bar", "check_on_calendar"]


@runtime_checkable
class Feed(Protocol):
    """A source of raw bars (long format ``date, tic, open, high, low, close, volume``).

    Attributes:
        origin: What to name in messages (a file, ``alpaca``...).
        interval: Bar interval (``1d``, ``5m``...).
        calendar: exchange_calendars name of the bars (``XNYS``; ``24/7`` for crypto).
    """

    origin: str
    interval: str
    calendar: str

    def history(self) -> pd.DataFrame:
        """Bars before the session (the indicators' warm-up), released at once."""
        ...

    def bars(self, resume_after: str | None = None) -> Iterator[pd.DataFrame]:
        """The session's bars, one bar time at a time, each when it is due.

        Args:
            resume_after: The last bar the loop already traded before a restart: bars up to it come
                without waiting (the loop only rebuilds its history from them).
        """
        ...

    def series(self) -> dict[str, pd.Series]:
        """Per-date market series that come with the bars (``vix``, ``index``), indexed by date."""
        ...


def check_next_bar(origin: str, previous: pd.Timestamp | None, bar: pd.DataFrame) -> pd.Timestamp:
    """Check a released bar: required columns, one timestamp, later than the previous bar.

    Returns:
        The bar's time.

    Raises:
        DataError: naming the bar, the previous bar and what is wrong.
    """
    if bar.empty:
        raise DataError(f"{origin}: released an empty bar")
    missing = [c for c in REQUIRED_COLUMNS if c not in bar.columns]
    if missing:
        raise DataError(f"{origin}: bar rows miss column(s) {missing}")
    times = pd.DatetimeIndex(bar["date"]).unique()
    if len(times) != 1:
        raise DataError(f"{origin}: one released bar holds several times {[str(t) for t in times[:5]]}")
    t = pd.Timestamp(times[0])
    if previous is not None and t <= previous:
        raise DataError(
            f"{origin}: bar {t} arrives after bar {previous}: out of order (bars must come in strictly increasing time)"
        )
    return t


def check_on_calendar(origin: str, dates: np.ndarray, previous: pd.Timestamp | None, t: pd.Timestamp, calendar: str) -> None:
    """After processing: the bar is on the calendar grid and no grid bar lies between it and the previous one.

    Cleaning aligns the bars to the calendar (:func:`~finrl_lite.data_processors.cleaning.clean_frame`): a bar
    that is not a calendar bar is dropped, and a missing calendar bar appears as a filled row.

    Args:
        dates: The processed market's dates.

    Raises:
        DataError: a gap (naming the missing bars) or a bar off the calendar.
    """
    stamps = pd.DatetimeIndex(dates)
    if len(stamps) == 0 or stamps[-1] != t:
        raise DataError(f"{origin}: bar {t} is not a bar of the {calendar} calendar (cleaning dropped it)")
    if previous is None:
        return
    skipped = stamps[(stamps > previous) & (stamps < t)]
    if len(skipped):
        shown = ", ".join(str(g) for g in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        raise DataError(
            f"{origin}: gap in the feed: bar {t} follows bar {previous}, but {len(skipped)} {calendar} bar(s) are "
            f"missing in between ({shown}); the loop does not trade over missing bars"
        )
