"""`AlpacaFeed`: the latest completed bars from Alpaca's historical data API (stocks and crypto).

The bars come through the ``alpaca`` data source (:class:`~finrl_lite.data_processors.sources.alpaca.AlpacaSource`,
alpaca-py's ``StockHistoricalDataClient`` / ``CryptoHistoricalDataClient``), the same parsing the training
data went through. A bar is released once it is complete: intraday bars at their open plus the interval,
daily stock bars at the session's close (exchange_calendars), daily crypto bars at the next midnight (24/7).
The feed then asks for every bar since the last one it released, so a slow poll never skips a bar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import pandas as pd

from finrl_lite.data_processors.calendars import bar_grid, session_close
from finrl_lite.data_processors.intervals import is_intraday, parse_interval
from finrl_lite.errors import DataError

__all__ = ["AlpacaFeed"]

logger = logging.getLogger(__name__)


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


class AlpacaFeed:
    """Live bars from Alpaca.

    Args:
        tickers: Symbols (crypto as ``BTC/USD``).
        interval: Bar interval of the run.
        calendar: exchange_calendars name (``XNYS``; ``24/7`` for crypto).
        source: The alpaca data source (``AlpacaSource``) to download through.
        history_bars: Bars of history to download at start.
        poll_seconds: Wait between two requests while a due bar has not arrived.
        settle_seconds: Wait after a bar's end before asking for it.
        now: Current UTC time, tz-naive (tests pass their own clock).
        sleep: Waits (tests pass their own).
    """

    origin = "alpaca"

    def __init__(
        self,
        tickers: Sequence[str],
        interval: str,
        calendar: str,
        source: object,
        history_bars: int = 400,
        poll_seconds: float = 15.0,
        settle_seconds: float = 5.0,
        now: Callable[[], pd.Timestamp] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tickers = list(tickers)
        self.interval, self.calendar = interval, calendar
        self._source = source
        self.history_bars = history_bars
        self.poll_seconds, self.settle_seconds = poll_seconds, settle_seconds
        self._now, self._sleep = now, sleep
        self._last: pd.Timestamp | None = None

    def history(self) -> pd.DataFrame:
        now = self._now()
        step = parse_interval(self.interval)
        span = step * self.history_bars * (1 if self.calendar == "24/7" or is_intraday(self.interval) else 1.5)
        if is_intraday(self.interval) and self.calendar != "24/7":
            span = span * 4  # only about a quarter of a stock day is trading hours
        frame = self._complete(self._download(now - span - pd.Timedelta(days=7), now), now)
        if frame.empty:
            raise DataError(f"alpaca: empty feed: no completed {self.interval} bars for {self.tickers} before {now}")
        self._last = pd.Timestamp(frame["date"].max())
        return frame

    def series(self) -> dict[str, pd.Series]:
        return {}

    def bars(self, resume_after: str | None = None) -> Iterator[pd.DataFrame]:
        if self._last is None:
            self.history()
        while True:
            due = self._next_bar(self._last)
            wait = (self._bar_end(due) + pd.Timedelta(seconds=self.settle_seconds) - self._now()).total_seconds()
            if wait > 0:
                logger.info("alpaca feed: next bar %s is due in %.0f s", due, wait)
                self._sleep(wait)
            now = self._now()
            frame = self._complete(self._download(self._last, now), now)
            new = frame[frame["date"] > self._last]
            if new.empty:
                logger.info("alpaca feed: bar %s not there yet; asking again in %.0f s", due, self.poll_seconds)
                self._sleep(self.poll_seconds)
                continue
            for t, bar in new.groupby("date", sort=True):
                self._last = pd.Timestamp(t)
                yield bar.reset_index(drop=True)

    # ------------------------------------------------------------------ internals

    def _download(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self._source.download(self.tickers, start, end, self.interval)  # type: ignore[attr-defined]

    def _next_bar(self, last: pd.Timestamp) -> pd.Timestamp:
        horizon = last + max(parse_interval(self.interval) * 10, pd.Timedelta(days=10))
        later = [g for g in bar_grid(self.calendar, last, horizon, self.interval) if g > last]
        if not later:
            raise DataError(f"alpaca: no {self.calendar} bar after {last} within {horizon - last}")
        return pd.Timestamp(later[0])

    def _bar_end(self, t: pd.Timestamp) -> pd.Timestamp:
        if is_intraday(self.interval) or self.calendar == "24/7":
            return t + parse_interval(self.interval)
        return session_close(self.calendar, t)

    def _complete(self, frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
        if frame.empty:
            return frame
        ends = pd.DatetimeIndex([self._bar_end(pd.Timestamp(t)) for t in frame["date"].unique()])
        done = set(pd.DatetimeIndex(frame["date"].unique())[ends <= now])
        return frame[frame["date"].isin(done)].reset_index(drop=True)
