"""Exchange calendars (exchange_calendars): the grid of bars that every ticker is aligned to."""

from __future__ import annotations

import functools
import warnings

import pandas as pd

from finrl_lite.data_processors.intervals import is_intraday, parse_interval
from finrl_lite.errors import DataError

__all__ = ["bar_grid", "calendar_timezone", "session_close"]


def _calendar(name: str, start: pd.Timestamp, end: pd.Timestamp):  # type: ignore[no-untyped-def]
    import exchange_calendars as xcals

    if name not in xcals.get_calendar_names():
        raise DataError(f"unknown exchange calendar '{name}'; e.g. XNYS, XNAS, XLON, XSHG, 24/7 (exchange_calendars names)")
    # Whole years, so that nearby requests share one (cached) calendar object.
    first = pd.Timestamp(year=start.year - 1, month=1, day=1)
    last = pd.Timestamp(year=end.year + 1, month=12, day=31)
    return _build_calendar(name, first, last)


@functools.lru_cache(maxsize=16)
def _build_calendar(name: str, first: pd.Timestamp, last: pd.Timestamp):  # type: ignore[no-untyped-def]
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # exchange_calendars itself trips a pandas 3 deprecation warning
        warnings.simplefilter("ignore", DeprecationWarning)
        return xcals.get_calendar(name, start=first, end=last)


def calendar_timezone(name: str) -> str:
    """The IANA timezone of an exchange calendar (``America/New_York`` for XNYS, ``UTC`` for 24/7)."""
    today = pd.Timestamp.today()
    return str(_calendar(name, today, today).tz)


def session_close(calendar: str, session: pd.Timestamp) -> pd.Timestamp:
    """The close of ``calendar``'s session ``session`` (a date), as a tz-naive UTC time."""
    close = _calendar(calendar, session, session).session_close(session.normalize())
    return pd.Timestamp(close).tz_convert("UTC").tz_localize(None)


def bar_grid(calendar: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DatetimeIndex:
    """Every bar timestamp of ``calendar`` in ``[start, end]``.

    Daily bars are session dates (tz-naive midnight); intraday bars are tz-naive UTC bar-open times.
    """
    cal = _calendar(calendar, start, end)
    if not is_intraday(interval):
        step = parse_interval(interval)
        sessions = cal.sessions_in_range(start.normalize(), end.normalize())
        if step > pd.Timedelta(days=1):  # weekly: the first session of each period
            sessions = pd.DatetimeIndex(pd.Series(sessions, index=sessions).resample(step).first().dropna().values)
        return pd.DatetimeIndex(sessions).tz_localize(None) if sessions.tz is not None else pd.DatetimeIndex(sessions)
    first_session = cal.date_to_session(start.normalize(), direction="next")
    last_session = cal.date_to_session(end.normalize(), direction="previous")
    if first_session > last_session:
        return pd.DatetimeIndex([])
    period = f"{int(parse_interval(interval) / pd.Timedelta(minutes=1))}min"
    index = cal.trading_index(first_session, last_session, period=period, intervals=False, force=True)
    index = index.tz_convert("UTC").tz_localize(None)
    return index[(index >= start) & (index <= end + (pd.Timedelta(days=1) if end == end.normalize() else pd.Timedelta(0)))]
