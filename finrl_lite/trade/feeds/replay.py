"""`ReplayFeed`: stored bars released one bar time at a time on a clock, as if they were arriving live.

Bars before the session start are the history (the indicators' warm-up). The session's bars are released
in the order they are stored (a recording is replayed as recorded: a bar out of order is the loop's to
refuse); ``speed`` times faster than real time, or as fast as the loop takes them with ``speed=0``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import MARKET_COLUMNS
from finrl_lite.data_processors.sources import make_source
from finrl_lite.data_processors.sources.base import REQUIRED_COLUMNS
from finrl_lite.data_processors.splits import DateRange
from finrl_lite.errors import DataError

__all__ = ["ReplayFeed"]

logger = logging.getLogger(__name__)


class ReplayFeed:
    """Replay of stored raw bars.

    Args:
        frame: Long frame ``date, tic, open, high, low, close, volume`` (more columns are ignored).
        start: First bar of the session; earlier bars are the history.
        end: Last bar of the session (inclusive; a date means through that day); None: all.
        speed: Times faster than real time (``86400`` plays a daily bar per second); 0: no waiting.
        series: Per-date market series (``vix``, ``index``) that come with the bars.
        interval: Bar interval.
        calendar: exchange_calendars name of the bars.
        origin: What to name in messages.
        sleep, monotonic: The clock (tests pass their own).

    Raises:
        DataError: a required column is missing, or the session has no bars.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        start: object,
        end: object | None = None,
        speed: float = 0.0,
        series: dict[str, pd.Series] | None = None,
        interval: str = "1d",
        calendar: str = "XNYS",
        origin: str = "replay",
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"{origin}: missing required column(s) {missing}; found {list(frame.columns)}")
        if speed < 0:
            raise DataError(f"{origin}: speed must be >= 0, got {speed}")
        frame = frame[list(REQUIRED_COLUMNS)].reset_index(drop=True)
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        self.origin, self.interval, self.calendar = origin, interval, calendar
        self.speed = float(speed)
        self._sleep, self._monotonic = sleep, monotonic
        self._series = dict(series or {})
        s = pd.Timestamp(start)
        e = pd.Timestamp(end) if end is not None else None
        # a date-only end includes that whole day's bars, as a split's does
        in_session = DateRange.parse("session", s, e).mask(frame["date"].to_numpy()) if e is not None else frame["date"] >= s
        self._history = frame[frame["date"] < s]
        self._session = frame[in_session]
        if self._session.empty:
            span = f"{frame['date'].min()}..{frame['date'].max()}" if not frame.empty else "no bars at all"
            window = f"{s}..{e}" if e is not None else f"from {s}"
            raise DataError(f"{origin}: empty feed: no bars in the session {window} (the data has {span})")
        self.start, self.end = s, e

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_market(cls, market: MarketData, start: object, end: object | None = None, **kwargs: object) -> ReplayFeed:
        """Replay a prepared :class:`MarketData` (a run's own data): its real bars, and its market series."""
        frame = market.to_frame()
        frame = frame[frame["valid"]].drop(columns=["valid"])
        series = {name: pd.Series(market.market(name), index=pd.DatetimeIndex(market.dates)) for name in market.market_fields}
        series.pop("turbulence", None)  # computed again from the bars, like every other feature
        kwargs.setdefault("interval", market.interval)
        kwargs.setdefault("calendar", market.calendar)
        return cls(frame, start, end, series=series, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        tickers: Sequence[str],
        start: object,
        end: object | None = None,
        date_format: str = "ISO8601",
        timezone: str | None = None,
        **kwargs: object,
    ) -> ReplayFeed:
        """Replay a long-format csv/parquet file of raw bars (read by the csv/parquet data source with
        ``date_format``, ``timezone`` and the feed's ``calendar``, as a run's ``data`` section reads its file).

        When every one of ``tickers`` is in the file, the other tickers are left out; otherwise all are kept
        (and the loop names both layouts). Columns ``vix`` and ``index``, when present, are the market series.
        """
        p = Path(path)
        kind = "parquet" if p.suffix == ".parquet" else "csv"
        source = make_source(kind, path=p, date_format=date_format, timezone=timezone, calendar=kwargs.get("calendar"))
        frame = source.download([], "1900-01-01", "2200-01-01", str(kwargs.get("interval", "1d")))
        present = set(frame["tic"].unique())
        if tickers and set(tickers) <= present and present != set(tickers):
            logger.info("%s: replaying the run's %d tickers, leaving out %s", p, len(tickers), sorted(present - set(tickers)))
            frame = frame[frame["tic"].isin(list(tickers))]
        series = {}
        for name in MARKET_COLUMNS:
            if name in frame.columns and name != "turbulence":
                per_date = frame.groupby("date")[name].first()
                series[name] = pd.Series(per_date.to_numpy(np.float64), index=pd.DatetimeIndex(per_date.index))
        return cls(frame, start, end, series=series, origin=str(p), **kwargs)  # type: ignore[arg-type]

    @property
    def tickers(self) -> tuple[str, ...]:
        """Every ticker in the stored bars, sorted."""
        return tuple(sorted(set(self._history["tic"]) | set(self._session["tic"])))

    # ------------------------------------------------------------------ the feed interface

    def history(self) -> pd.DataFrame:
        return self._history.copy()

    def series(self) -> dict[str, pd.Series]:
        return dict(self._series)

    def bars(self, resume_after: str | None = None) -> Iterator[pd.DataFrame]:
        dates = self._session["date"].to_numpy()
        # consecutive rows with the same time form one bar (a recording is replayed in its own order)
        cuts = np.flatnonzero(dates[1:] != dates[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(dates)]
        resume = pd.Timestamp(resume_after) if resume_after is not None else None
        first_paced: tuple[float, pd.Timestamp] | None = None
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            bar = self._session.iloc[lo:hi]
            t = pd.Timestamp(dates[lo])
            if self.speed > 0 and (resume is None or t > resume):
                if first_paced is None:
                    first_paced = (self._monotonic(), t)
                due = first_paced[0] + (t - first_paced[1]).total_seconds() / self.speed
                wait = due - self._monotonic()
                if wait > 0:
                    self._sleep(wait)
            yield bar.reset_index(drop=True)
