"""Yahoo Finance bars through yfinance.

One batch ``yfinance.download`` call per attempt; the wide (MultiIndex) frame it returns is reshaped to
the long format every source shares. yfinance does not raise when a download fails (offline, unknown
ticker, rate limit): it logs the error and returns an empty or all-NaN frame. This module captures
those log records during the call, retries the tickers that came back empty with exponential backoff,
and raises :class:`~finrl_lite.errors.DataError` naming the tickers and yfinance's reasons when they
stay empty. When the host name of Yahoo cannot be resolved (no network, no DNS) nothing is retried: the
error says so after the first attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import pandas as pd

from finrl_lite.data_processors.intervals import parse_interval
from finrl_lite.data_processors.sources.base import check_request, finalize_frame
from finrl_lite.errors import DataError

__all__ = ["YahooFinanceSource"]

logger = logging.getLogger(__name__)

VIX_TICKER = "^VIX"
_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
# yfinance interval names by bar length in minutes.
_YF_INTERVALS = {1: "1m", 2: "2m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 90: "90m", 1440: "1d", 7200: "5d", 10080: "1wk"}
# Words in yfinance's log messages that point at the network rather than at the ticker.
_TRANSIENT_HINTS = (
    "failed to get ticker",
    "connection",
    "timed out",
    "timeout",
    "resolve host",
    "curl",
    "ssl",
    "rate limit",
    "too many requests",
    "currently down",
    "temporarily",
    "network",
)

# ... and those that say the machine cannot resolve host names at all: retrying cannot help.
_UNREACHABLE_HINTS = (
    "could not resolve host",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "nameresolutionerror",
    "no address associated with hostname",
)


class _Capture(logging.Handler):
    """Collects the messages yfinance logs at WARNING or above while a download runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party record must not break the download
            message = str(record.msg)
        with self._mutex:
            self.messages.append(message.strip())


def _yf_interval(interval: str) -> str:
    """Our interval name (``1d``, ``1h``, ``5m``...) -> yfinance's, or a :class:`DataError`."""
    minutes = int(parse_interval(interval) / pd.Timedelta(minutes=1))
    if minutes not in _YF_INTERVALS:
        raise DataError(
            f"interval '{interval}' is not available from Yahoo Finance; use one of {', '.join(_YF_INTERVALS.values())}"
        )
    return _YF_INTERVALS[minutes]


def _is_date(ts: pd.Timestamp) -> bool:
    return ts == ts.normalize()


def _yf_bounds(start: pd.Timestamp, end: pd.Timestamp) -> tuple[str | pd.Timestamp, str | pd.Timestamp]:
    """Inclusive start/end -> yfinance's arguments (its ``end`` is exclusive).

    Dates are passed as ``YYYY-MM-DD`` strings (midnight at the exchange), the end moved one day on;
    times are taken as UTC (naive inputs) and the end moved one second on.
    """
    start_arg: str | pd.Timestamp = start.strftime("%Y-%m-%d") if _is_date(start) else _as_utc(start)
    if _is_date(end):
        end_arg: str | pd.Timestamp = (end + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    else:
        end_arg = _as_utc(end) + pd.Timedelta(seconds=1)
    return start_arg, end_arg


def _as_utc(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _field_level(columns: pd.MultiIndex) -> int:
    """Which level of yfinance's column MultiIndex holds the price fields (Open, Close...)."""
    for level in range(columns.nlevels):
        values = set(map(str, columns.get_level_values(level)))
        if {"Open", "Close"} <= values:
            return level
    raise DataError(f"yfinance returned columns without price fields: {list(columns)[:8]}")


def wide_to_long(data: pd.DataFrame, tickers: Sequence[str]) -> pd.DataFrame:
    """Reshape the frame ``yfinance.download`` returns into the long format.

    Handles ``(field, ticker)`` columns (``group_by="column"``), ``(ticker, field)`` columns
    (``group_by="ticker"``), flat field columns for a single ticker, and tz-aware indexes
    (converted to tz-naive UTC). Rows where every price is NaN (a ticker that failed, or a date another
    ticker traded on) are dropped. yfinance upper-cases symbols; they are mapped back to the names
    asked for.

    Args:
        data: what ``yfinance.download`` returned.
        tickers: the tickers asked for, in the user's spelling.

    Returns:
        A long frame with columns ``date, tic, open, high, low, close, volume`` (possibly empty).
    """
    columns = ["date", "tic", *_FIELDS.values()]
    if data is None or data.empty or len(data.columns) == 0:
        return pd.DataFrame(columns=columns)
    by_upper = {t.upper(): t for t in tickers}
    frames = []
    if isinstance(data.columns, pd.MultiIndex):
        field_level = _field_level(data.columns)
        ticker_level = 1 - field_level if data.columns.nlevels == 2 else None
        if ticker_level is None:
            raise DataError(f"yfinance returned {data.columns.nlevels} column levels; expected 2")
        for symbol in pd.unique(data.columns.get_level_values(ticker_level)):
            part = data.xs(symbol, axis=1, level=ticker_level)
            frames.append((by_upper.get(str(symbol).upper(), str(symbol)), part))
    else:
        if len(tickers) != 1:
            raise DataError(f"yfinance returned flat columns {list(data.columns)} for {len(tickers)} tickers")
        frames.append((tickers[0], data))

    index = pd.DatetimeIndex(data.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    out = []
    for tic, part in frames:
        missing = [f for f in _FIELDS if f not in part.columns]
        if missing:
            raise DataError(f"yfinance returned no {missing} column(s) for {tic}; got {list(part.columns)}")
        block = pd.DataFrame({name: part[f].to_numpy(dtype="float64") for f, name in _FIELDS.items()}, index=index)
        block = block[~block[["open", "high", "low", "close"]].isna().all(axis=1).to_numpy()]
        if block.empty:
            continue
        block.insert(0, "tic", tic)
        out.append(block.rename_axis("date").reset_index())
    if not out:
        return pd.DataFrame(columns=columns)
    return pd.concat(out, ignore_index=True)[columns]


def _reasons(tickers: Sequence[str], messages: Sequence[str]) -> str:
    """yfinance's log lines that mention one of ``tickers`` (or all lines, when none does)."""
    wanted = [t.upper() for t in tickers]
    picked = [m for m in messages if any(t in m.upper() for t in wanted)] or list(messages)
    unique = list(dict.fromkeys(m for m in picked if m))
    if not unique:
        return "yfinance gave no reason"
    text = "; ".join(unique[:6])
    return text if len(unique) <= 6 else f"{text}; ... ({len(unique) - 6} more)"


def _forget_cached_responses() -> None:
    """Drop yfinance's in-process memo of GET responses so that a retry really asks Yahoo again.

    yfinance memoizes ``YfData.cache_get`` (an ``lru_cache``) for past date ranges and for the
    timezone lookup, failed responses included: without this a retry would replay the failure.
    """
    try:
        from yfinance.data import YfData

        YfData.cache_get.cache_clear()
    except Exception:  # internal API of yfinance; a retry without it still works, only less well
        logger.debug("could not clear yfinance's response cache", exc_info=True)


def _looks_transient(messages: Sequence[str]) -> bool:
    lowered = " ".join(messages).lower()
    return any(hint in lowered for hint in _TRANSIENT_HINTS)


def _network_unreachable(messages: Sequence[str]) -> bool:
    lowered = " ".join(messages).lower()
    return any(hint in lowered for hint in _UNREACHABLE_HINTS)


class YahooFinanceSource:
    """Daily and intraday bars from Yahoo Finance (yfinance).

    Args:
        auto_adjust: adjust OHLC for splits and dividends (passed to yfinance explicitly; its default
            changed between versions).
        retries: retries of the tickers that came back empty, after the first attempt.
        backoff_seconds: delay before the first retry; doubled for each further retry.
        timeout_seconds: per-request timeout given to yfinance.
        sleep: the function used to wait between retries (tests inject a stub).
    """

    name = "yahoofinance"
    default_calendar = "XNYS"

    def __init__(
        self,
        auto_adjust: bool = True,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if retries < 0:
            raise DataError(f"yahoofinance: retries must be >= 0, got {retries}")
        if backoff_seconds < 0 or timeout_seconds <= 0:
            raise DataError(
                f"yahoofinance: backoff_seconds must be >= 0 and timeout_seconds > 0, got {backoff_seconds} and {timeout_seconds}"
            )
        self.auto_adjust = bool(auto_adjust)
        self.retries = int(retries)
        self.backoff_seconds = float(backoff_seconds)
        self.timeout_seconds = float(timeout_seconds)
        self._sleep = sleep

    # ------------------------------------------------------------------ public

    def download(self, tickers: Sequence[str], start: str, end: str, interval: str) -> pd.DataFrame:
        """Download bars for ``tickers`` between ``start`` and ``end`` (both inclusive).

        Args:
            tickers: Yahoo symbols, e.g. ``["AAPL", "MSFT"]``.
            start: first date (or UTC time for intraday bars).
            end: last date (inclusive).
            interval: ``1d``, ``1wk``, ``1h``, ``30m``, ``15m``, ``5m``, ``2m`` or ``1m``.

        Returns:
            The long frame ``date, tic, open, high, low, close, volume`` sorted by ``date, tic``.

        Raises:
            DataError: no data at all (offline, Yahoo down), or some tickers returned nothing
                (unknown or delisted symbols); the message names them and gives yfinance's reasons.
        """
        names, s, e = check_request(tickers, start, end)
        if not names:
            raise DataError("yahoofinance: no tickers requested; set data.tickers")
        frame = self._download_with_retries(names, s, e, interval)
        return finalize_frame(frame, origin="yfinance", tickers=names, start=s, end=e)

    def download_vix(self, start: str, end: str, interval: str) -> pd.Series | None:
        """The CBOE VIX close (``^VIX``) indexed by date, named ``vix``.

        Raises:
            DataError: Yahoo returned no VIX data for the range.
        """
        frame = self.download([VIX_TICKER], start, end, interval)
        series = frame.set_index("date")["close"].rename("vix")
        series.index.name = "date"
        return series

    # ------------------------------------------------------------------ internals

    def _download_with_retries(self, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        yf_interval = _yf_interval(interval)
        pending = list(tickers)
        got: list[pd.DataFrame] = []
        messages: list[str] = []
        attempt = 0
        while True:
            frame, attempt_messages = self._download_once(pending, start, end, yf_interval)
            messages.extend(attempt_messages)
            if not frame.empty:
                got.append(frame)
            present = set(frame["tic"].unique()) if not frame.empty else set()
            pending = [t for t in pending if t not in present]
            if not pending:
                break
            nothing_at_all = not got
            if nothing_at_all and _network_unreachable(attempt_messages):
                span = f"{start.date()}..{end.date()} at interval {interval}"
                raise DataError(
                    f"yfinance returned no data for {pending} ({span}): this machine cannot resolve Yahoo Finance's "
                    f"host name (offline, or no DNS), so nothing was retried. details: {_reasons(pending, messages)}"
                )
            retryable = nothing_at_all or _looks_transient(attempt_messages)
            if attempt >= self.retries or not retryable:
                break
            delay = self.backoff_seconds * (2**attempt)
            attempt += 1
            logger.warning(
                "yfinance returned no data for %s (attempt %d of %d); retrying in %.1f s",
                pending,
                attempt,
                self.retries + 1,
                delay,
            )
            self._sleep(delay)
            _forget_cached_responses()

        if pending:
            span = f"{start.date()}..{end.date()} at interval {interval}"
            reasons = _reasons(pending, messages)
            tries = attempt + 1
            if not got:
                raise DataError(
                    f"yfinance returned no data for {pending} ({span}) after {tries} attempt(s); "
                    f"are you offline, is Yahoo Finance blocking or rate-limiting this machine, or are the "
                    f"tickers unknown? details: {reasons}"
                )
            raise DataError(
                f"yfinance returned no data for ticker(s) {pending} ({span}) while other tickers downloaded; "
                f"check the symbols (unknown, delisted or renamed?). details: {reasons}"
            )
        return pd.concat(got, ignore_index=True)

    def _download_once(
        self, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp, yf_interval: str
    ) -> tuple[pd.DataFrame, list[str]]:
        """One batch ``yfinance.download`` call; returns the long frame and yfinance's log messages."""
        import yfinance  # core dependency, imported here to keep `import finrl_lite` fast

        start_arg, end_arg = _yf_bounds(start, end)
        capture = _Capture()
        yf_logger = logging.getLogger("yfinance")
        yf_logger.addHandler(capture)
        errors_before = dict(getattr(getattr(yfinance, "shared", None), "_ERRORS", {}) or {})
        try:
            data = yfinance.download(
                tickers,
                start=start_arg,
                end=end_arg,
                interval=yf_interval,
                auto_adjust=self.auto_adjust,
                actions=False,
                group_by="ticker",
                progress=False,
                threads=len(tickers) > 1,
                timeout=self.timeout_seconds,
            )
        except Exception as exc:  # yfinance raises only for bugs or rate limits; treat like a failed attempt
            logger.debug("yfinance.download raised", exc_info=True)
            capture.messages.append(f"{type(exc).__name__}: {exc}")
            data = None
        finally:
            yf_logger.removeHandler(capture)
        messages = list(capture.messages)
        # Older yfinance versions record per-ticker errors in a module global instead of logging them.
        shared_errors = getattr(getattr(yfinance, "shared", None), "_ERRORS", None) or {}
        for tic, err in shared_errors.items():
            if errors_before.get(tic) != err:
                messages.append(f"{tic}: {err}")
        frame = wide_to_long(data if isinstance(data, pd.DataFrame) else pd.DataFrame(), tickers)
        return frame, messages
