"""The market the loop decides on: raw bars so far -> the training pipeline's processing -> :class:`MarketData`.

Every new bar is appended to the raw history and the whole history goes through
:func:`~finrl_lite.data_processors.processor.process_frame` (cleaning, indicators, turbulence, VIX, index),
the code :func:`~finrl_lite.data_processors.processor.prepare_data` ran on the training data. Each step
only looks backwards, so the last row equals the row the training pipeline computed for that bar.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from finrl_lite.config import DataConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import DataProcessor, process_frame
from finrl_lite.errors import DataError

__all__ = ["LiveMarket", "SeriesSource"]

logger = logging.getLogger(__name__)


class SeriesSource:
    """A data source that only answers the per-date series a feed brings (``vix``, ``index``).

    It stands in for the run's source inside :class:`DataProcessor`: the bars come from the feed, and so do
    the series, cut to the bars' dates the same way (``asof``: the last value at or before each bar).
    """

    def __init__(self, name: str, calendar: str, series: dict[str, pd.Series]) -> None:
        self.name = name
        self.default_calendar = calendar
        self._series = series
        if "index" in series:
            self.download_index = self._index

    def download(self, tickers: Any, start: Any, end: Any, interval: str) -> pd.DataFrame:
        raise DataError(f"{self.name}: bars come from the feed, not from a download")

    def download_vix(self, start: Any, end: Any, interval: str) -> pd.Series | None:
        return self._cut("vix", start, end)

    def _index(self, start: Any, end: Any, interval: str) -> pd.Series | None:
        return self._cut("index", start, end)

    def _cut(self, name: str, start: Any, end: Any) -> pd.Series | None:
        series = self._series.get(name)
        if series is None:
            return None
        return series[series.index <= pd.Timestamp(end)]


class _Once(logging.Filter):
    """Lets each distinct message through once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


class LiveMarket:
    """Raw bars of a session plus their history, processed like the run's training data.

    Args:
        data: The run's ``data`` config (indicators, turbulence window, VIX, cleaning).
        calendar: Calendar of the bars (the run's data calendar).
        history: Raw bars before the session.
        series: Market series from the feed (``vix``, ``index``).
        uses_vix: The environment reads the VIX (turbulence rule or observation); without it a feed that
            has no VIX can still trade a run prepared with one.
        origin: What to name in messages.

    Raises:
        DataError: the run needs the VIX and the feed has none.
    """

    def __init__(
        self,
        data: DataConfig,
        calendar: str,
        history: pd.DataFrame,
        series: dict[str, pd.Series],
        uses_vix: bool,
        origin: str,
    ) -> None:
        if data.vix and "vix" not in series:
            if uses_vix:
                raise DataError(
                    f"{origin}: the run's environment reads the VIX (env.risk_series vix) but this feed has no VIX series; "
                    "replay a file with a 'vix' column or the run's own data"
                )
            data = data.model_copy(update={"vix": False})
        self.data = data
        self._dp = DataProcessor.from_config(data, source=SeriesSource(origin, calendar, series), calendar=calendar)
        self._frames = [history] if not history.empty else []
        self._reported = _Once()

    def append(self, bar: pd.DataFrame) -> None:
        """Add one released bar."""
        self._frames.append(bar)

    def market(self) -> MarketData:
        """Everything so far, processed (one call per new bar; what cleaning reports about the bars is logged once
        per session, not again on every later bar)."""
        frame = pd.concat(self._frames, ignore_index=True) if len(self._frames) > 1 else self._frames[0]
        self._frames = [frame]
        cleaning = logging.getLogger("finrl_lite.data_processors.cleaning")
        cleaning.addFilter(self._reported)
        try:
            return process_frame(self._dp, frame, self.data)
        finally:
            cleaning.removeFilter(self._reported)
