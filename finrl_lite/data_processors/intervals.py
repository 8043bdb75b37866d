"""Bar intervals: parsing and annualisation."""

from __future__ import annotations

import re

import pandas as pd

from finrl_lite.errors import DataError

__all__ = ["parse_interval", "is_intraday", "bars_per_year"]

_PATTERN = re.compile(r"^(\d+)(m|min|h|d|wk)$")
_UNIT = {"m": "min", "min": "min", "h": "h", "d": "D", "wk": "W"}


def parse_interval(interval: str) -> pd.Timedelta:
    """``"1d"``, ``"5m"``, ``"1h"``, ``"1wk"`` -> Timedelta; anything else is a :class:`DataError`."""
    m = _PATTERN.match(interval.strip())
    if not m or int(m.group(1)) <= 0:
        raise DataError(f"interval '{interval}' not understood; expected e.g. 1d, 1wk, 1h, 30m, 15m, 5m, 1m")
    return pd.Timedelta(int(m.group(1)), unit=_UNIT[m.group(2)])


def is_intraday(interval: str) -> bool:
    return parse_interval(interval) < pd.Timedelta(days=1)


def bars_per_year(interval: str, calendar: str = "XNYS") -> float:
    """Bars in a year for annualising returns: 252 trading days (365 for 24/7), scaled for intraday bars."""
    step = parse_interval(interval)
    always_open = calendar in ("24/7", "always_open")
    days = 365.0 if always_open else 252.0
    if step >= pd.Timedelta(days=7):
        return 52.0
    if step >= pd.Timedelta(days=1):
        return days
    minutes_per_day = 24 * 60 if always_open else 390
    return days * minutes_per_day / (step / pd.Timedelta(minutes=1))
