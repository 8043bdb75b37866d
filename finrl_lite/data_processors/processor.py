"""`DataProcessor`: FinRL's download -> clean -> indicators -> turbulence/VIX -> arrays, done right.

Example:
    >>> dp = DataProcessor("synthetic", num_tickers=5, seed=1)
    >>> df = dp.download([], "2018-01-01", "2019-12-31", "1d")
    >>> df = dp.add_turbulence(dp.add_indicators(dp.clean(df), ["macd", "rsi_30"]), window=60)
    >>> market = dp.to_market_data(df)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from finrl_lite.data_processors.cache import DataCache, cache_key
from finrl_lite.data_processors.cleaning import CleaningReport, clean_frame
from finrl_lite.data_processors.indicators import check_indicator_names, compute_indicators, warmup_bars
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.panel import to_wide, wide_to_columns
from finrl_lite.data_processors.risk import turbulence
from finrl_lite.data_processors.sources import SOURCES, Source, make_source, source_options
from finrl_lite.data_processors.sources.base import REQUIRED_COLUMNS
from finrl_lite.data_processors.splits import Splits
from finrl_lite.errors import DataError

__all__ = ["DataProcessor", "PreparedData", "check_finite", "prepare_data", "process_frame", "MARKET_COLUMNS"]

logger = logging.getLogger(__name__)

MARKET_COLUMNS = ("turbulence", "vix", "index")
"""Per-date series; in the long frame they repeat on every ticker's row (as in FinRL)."""

_OHLCV = ("open", "high", "low", "close", "volume")


class DataProcessor:
    """One data source plus the processing steps FinRL users know.

    Args:
        source: a name of :data:`~finrl_lite.data_processors.sources.SOURCES`: ``synthetic`` (default), ``csv``,
            ``parquet``, ``yahoofinance``, ``alpaca``, or a registered one; or a source object (anything with the
            :class:`~finrl_lite.data_processors.sources.Source` methods).
        calendar: exchange_calendars name for cleaning; None: the source's default (XNYS; 24/7 for crypto).
        on_bad_rows: impossible bars are dropped and reported (``drop``) or raise (``error``).
        align_to_calendar: reindex every ticker on the calendar's bars.
        max_price_jump: a close more than this factor away from both neighbouring closes is a bad print (an
            impossible bar); None: no check (see :func:`~finrl_lite.data_processors.cleaning.clean_frame`).
        indicator_backend: ``numpy``, or ``cupy`` to compute indicators on a GPU.
        **options: the source's own options (e.g. ``path=`` for csv, ``seed=`` for synthetic).
    """

    def __init__(
        self,
        source: str | Source = "synthetic",
        *,
        calendar: str | None = None,
        on_bad_rows: Literal["drop", "error"] = "drop",
        align_to_calendar: bool = True,
        max_price_jump: float | None = 1.75,
        indicator_backend: str = "numpy",
        **options: Any,
    ) -> None:
        if isinstance(source, str):
            self.source_name = source
            if calendar is not None and source in SOURCES and SOURCES.get(source).takes_path:
                options.setdefault("calendar", calendar)  # a file's naive intraday timestamps are in its calendar's timezone
            self.source = make_source(source, **options)
        else:
            self.source_name, self.source = source.name, source
        self.calendar = calendar or self.source.default_calendar
        self.on_bad_rows = on_bad_rows
        self.align_to_calendar = align_to_calendar
        self.max_price_jump = max_price_jump
        self.indicator_backend = indicator_backend
        self.indicators: list[str] = []
        """Indicator columns added by :meth:`add_indicators` (observed features of :meth:`to_market_data`)."""
        self.interval = "1d"
        self.report = CleaningReport(calendar=self.calendar)

    @classmethod
    def from_config(cls, data: Any, source: Source | None = None, calendar: str | None = None) -> DataProcessor:
        """The processor a ``data`` config describes: its source and cleaning settings (``source`` replaces the
        config's own, ``calendar`` its cleaning calendar)."""
        cleaning = data.cleaning
        return cls(
            source if source is not None else data.source,
            calendar=calendar or cleaning.calendar,
            on_bad_rows=cleaning.on_bad_rows,
            align_to_calendar=cleaning.align_to_calendar,
            max_price_jump=cleaning.max_price_jump,
            **(source_options(data) if source is None else {}),
        )

    # ------------------------------------------------------------------ steps
    def download(self, tickers: Sequence[str], start: object, end: object, interval: str = "1d") -> pd.DataFrame:
        """Long frame ``date, tic, open, high, low, close, volume`` from the source."""
        self.interval = interval
        return self.source.download(tickers, start, end, interval)

    def clean(self, df: pd.DataFrame) -> pd.DataFrame:
        """Drop duplicates and impossible bars, align to the calendar, forward-fill; adds ``valid``."""
        out, self.report = clean_frame(
            df,
            calendar=self.calendar,
            interval=self.interval,
            on_bad_rows=self.on_bad_rows,
            align_to_calendar=self.align_to_calendar,
            origin=self.source_name,
            max_price_jump=self.max_price_jump,
        )
        return out

    def add_indicators(self, df: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
        """Add indicator columns, computed for all tickers at once."""
        check_indicator_names(names)
        self.indicators += [n for n in names if n not in self.indicators]
        if not names:
            return df
        dates, tickers, wide = to_wide(df, _OHLCV)
        values = compute_indicators(wide, names, backend=self.indicator_backend)
        return wide_to_columns(df, dates, tickers, values)

    def add_turbulence(self, df: pd.DataFrame, window: int = 252) -> pd.DataFrame:
        """Add ``turbulence``: Mahalanobis distance of each bar's returns against the trailing ``window``."""
        dates, tickers, wide = to_wide(_with_valid(df), ["close", "valid"])
        series = turbulence(wide["close"], wide["valid"] == 1.0, window=window)
        return _add_market_series(df, "turbulence", pd.Series(series, index=dates))

    def add_vix(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add ``vix`` from the source (forward-filled onto the frame's dates, never backwards)."""
        getter = getattr(self.source, "download_vix", None)
        start, end = df["date"].min(), df["date"].max()
        series = getter(start, end, self.interval) if getter is not None else None
        if series is None:
            raise DataError(
                f"source '{self.source_name}' has no VIX series; use turbulence, or a source with one (synthetic, yahoofinance)"
            )
        return _add_market_series(df, "vix", series)

    def add_index(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add the source's market ``index`` series when it has one (the synthetic source does)."""
        getter = getattr(self.source, "download_index", None)
        if getter is None:
            raise DataError(f"source '{self.source_name}' has no index series")
        return _add_market_series(df, "index", getter(df["date"].min(), df["date"].max(), self.interval))

    def to_market_data(self, df: pd.DataFrame, splits: Splits | None = None, extra_features: Sequence[str] = ()) -> MarketData:
        """Dense :class:`MarketData` from a processed long frame.

        Its per-ticker fields are OHLCV, the indicators added by :meth:`add_indicators` and ``extra_features``
        (numeric columns of the source); no other column is observed.

        Raises:
            DataError: a required or an extra feature column is missing or not numeric, or a value is infinite or beyond
                the float32 range of observations (naming ticker, date and field).
        """
        for col in REQUIRED_COLUMNS:
            if col not in df.columns:
                raise DataError(f"frame has no column '{col}'")
        features = [c for c in self.indicators if c in df.columns]
        for name in extra_features:
            if name not in df.columns:
                raise DataError(
                    f"{self.source_name}: data.extra_features names '{name}', which is not a column of the data "
                    f"(columns: {[c for c in df.columns if c not in ('valid',)]})"
                )
            if not pd.api.types.is_numeric_dtype(df[name]):
                raise DataError(f"{self.source_name}: extra feature '{name}' is not numeric (dtype {df[name].dtype})")
            if name not in features:
                features.append(name)
        ignored = [
            c
            for c in df.columns
            if c not in ("date", "tic", "valid", *_OHLCV, *MARKET_COLUMNS, *features) and pd.api.types.is_numeric_dtype(df[c])
        ]
        if ignored:
            logger.info(
                "%s: numeric column(s) %s not observed (list them in data.extra_features to observe them)",
                self.source_name,
                ignored,
            )
        market_cols = [c for c in MARKET_COLUMNS if c in df.columns]
        dates, tickers, wide = to_wide(_with_valid(df), [*_OHLCV, *features, "valid"])
        valid = wide["valid"] == 1.0
        per_date = df.groupby("date")[market_cols].first().reindex(dates)
        data = MarketData(
            dates=dates.astype("datetime64[ns]"),
            tickers=tuple(tickers),
            fields=(*_OHLCV, *features),
            values=np.stack([wide[c] for c in (*_OHLCV, *features)], axis=-1),
            valid=valid,
            market_fields=tuple(market_cols),
            market_values=per_date.to_numpy(np.float64),
            interval=self.interval,
            calendar=self.calendar,
            warmup=_warmup_of(features),
            source=self.source_name,
        )
        check_finite(data, self.source_name)
        if splits is not None:
            splits.validate(data.dates, data.warmup)
            data = replace(data, splits=splits)
        return data

    # ------------------------------------------------------------------ one call
    @classmethod
    def prepare(cls, config: Any, use_cache: bool = True) -> MarketData:
        """Everything a config's ``data`` section asks for, in one call (cached)."""
        return prepare_data(config, use_cache=use_cache).market


def _with_valid(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a numeric ``valid`` column (a cleaned frame has one; otherwise: rows with a close)."""
    valid = df["valid"] if "valid" in df.columns else df["close"].notna()
    return df.assign(valid=valid.astype(np.float64))


def _add_market_series(df: pd.DataFrame, name: str, series: pd.Series) -> pd.DataFrame:
    index = pd.DatetimeIndex(series.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    series = pd.Series(series.to_numpy(np.float64), index=index).sort_index()
    series = series[~series.index.duplicated(keep="last")]
    # The value at a bar is the last one known at or before it (asof): a forward fill, never backwards.
    dates = pd.DatetimeIndex(np.sort(df["date"].unique()))
    aligned = series.reindex(series.index.union(dates)).ffill().reindex(dates)
    out = df.copy()
    out[name] = aligned.reindex(pd.DatetimeIndex(out["date"])).to_numpy()
    return out


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite(market: MarketData, origin: str) -> None:
    """Refuse infinite values, and values beyond the float32 range the observations are computed in.

    NaN is not refused: it means "no value yet" (before a ticker's first bar, during an indicator's warm-up).

    Raises:
        DataError: naming the field, ticker and date of the first such value (and how many there are).
    """
    problems: list[str] = []
    for kind, values, where in (
        ("per-ticker field", market.values, lambda i: (market.fields[i[2]], market.tickers[i[1]], i[0])),
        ("market series", market.market_values, lambda i: (market.market_fields[i[1]], None, i[0])),
    ):
        with np.errstate(invalid="ignore"):
            bad = np.abs(values) > _FLOAT32_MAX  # inf included, NaN not
        if not bad.any():
            continue
        first = np.argwhere(bad)[0]
        field, ticker, t = where(tuple(int(x) for x in first))
        whose = f" of {ticker}" if ticker is not None else ""
        problems.append(
            f"{int(bad.sum())} non-finite or out-of-range value(s) of {kind} data, first {float(values[tuple(first)])!r} "
            f"in '{field}'{whose} on {pd.Timestamp(market.dates[t])}"
        )
    if problems:
        raise DataError(
            f"{origin}: " + "; ".join(problems) + ". Check the raw prices there (an absurd print: cleaning.max_price_jump "
            "drops bad prints); nothing can learn from infinite features"
        )


def _warmup_of(features: Sequence[str]) -> int:
    names = []
    for f in features:
        try:
            check_indicator_names([f])
        except DataError:
            continue
        names.append(f)
    return warmup_bars(names) if names else 0


@dataclass
class PreparedData:
    """The result of :func:`prepare_data`: the market, the cleaning report, and where it came from."""

    market: MarketData
    report: CleaningReport
    cache_hit: bool
    cache_path: Path | None


def process_frame(dp: DataProcessor, df: pd.DataFrame, config: Any) -> MarketData:
    """Raw bars -> :class:`MarketData`: clean -> indicators -> turbulence -> VIX -> index, as a config's ``data`` asks.

    The one processing path: :func:`prepare_data` runs it on a download, the paper-trading loop on the bars
    it has seen so far (every step only looks backwards, so a prefix of the bars gives a prefix of the result).

    Args:
        dp: The processor (its source provides the VIX and index series).
        df: Long frame ``date, tic, open, high, low, close, volume``.
        config: ``AppConfig`` or its ``DataConfig``.
    """
    cfg = getattr(config, "data", config)
    dp.interval = cfg.interval
    df = dp.clean(df)
    df = dp.add_indicators(df, cfg.indicators)
    if cfg.turbulence:
        df = dp.add_turbulence(df, window=cfg.turbulence_window)
    if cfg.vix:
        df = dp.add_vix(df)
    if hasattr(dp.source, "download_index"):
        df = dp.add_index(df)
    return dp.to_market_data(df, extra_features=cfg.extra_features)


def prepare_data(config: Any, use_cache: bool = True) -> PreparedData:
    """Run the whole data pipeline for a config (``AppConfig`` or its ``DataConfig``).

    download -> clean -> indicators -> turbulence -> VIX -> index -> MarketData with splits; the result
    is cached under ``data.cache.dir`` keyed by everything that shapes it.
    """
    cfg = getattr(config, "data", config)
    options = source_options(cfg)
    dp = DataProcessor.from_config(cfg)
    check_indicator_names(cfg.indicators)
    splits = Splits({k: (v.start, v.end) for k, v in cfg.splits.items()}) if cfg.splits else None
    fingerprint = getattr(dp.source, "fingerprint", None)
    key = cache_key(
        {
            "source": cfg.source,
            "options": options,
            "file": fingerprint() if fingerprint is not None else None,
            "tickers": cfg.tickers,
            "start": cfg.start,
            "end": cfg.end,
            "interval": cfg.interval,
            "indicators": cfg.indicators,
            "extra_features": cfg.extra_features,
            "turbulence": [cfg.turbulence, cfg.turbulence_window],
            "vix": cfg.vix,
            "cleaning": cfg.cleaning.model_dump(),
            "calendar": dp.calendar,
        }
    )
    cache = DataCache(cfg.cache.dir) if use_cache and cfg.cache.enabled else None
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        market, extra = hit
        report = CleaningReport.from_dict(extra.get("report", {}))
        cache_hit = True
    else:
        market = process_frame(dp, dp.download(cfg.tickers, cfg.start, cfg.end, cfg.interval), cfg)
        report = dp.report
        cache_hit = False
        if cache is not None:
            cache.put(key, market, {"report": report.to_dict()})
    if splits is not None:
        splits.validate(market.dates, market.warmup)
        market = replace(market, splits=splits)
    return PreparedData(market, report, cache_hit, cache.directory if cache is not None else None)
