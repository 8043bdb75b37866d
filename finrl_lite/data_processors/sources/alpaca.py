"""Historical bars from Alpaca (alpaca-py).

Stocks come from ``StockHistoricalDataClient.get_stock_bars`` (keys from the environment variables
``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``, never from config files); crypto from
``CryptoHistoricalDataClient.get_crypto_bars``, which needs no keys. alpaca-py pages through the
results itself; the ``BarSet.df`` it returns (index ``symbol, timestamp``) is reshaped to the long
format every source shares.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from finrl_lite.data_processors.intervals import parse_interval
from finrl_lite.data_processors.sources.base import check_request, finalize_frame
from finrl_lite.errors import DataError, require

__all__ = ["AlpacaSource", "KEY_ENV", "SECRET_ENV", "alpaca_keys"]

logger = logging.getLogger(__name__)

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"


def alpaca_keys() -> tuple[str, str, list[str]]:
    """The Alpaca key and secret from the environment (stripped; keys are never read from files) and the names of
    the variables not set."""
    key, secret = os.environ.get(KEY_ENV, "").strip(), os.environ.get(SECRET_ENV, "").strip()
    return key, secret, [name for name, value in ((KEY_ENV, key), (SECRET_ENV, secret)) if not value]


_FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
_ADJUSTMENTS = ("raw", "split", "dividend", "all")
_COLUMNS = ["date", "tic", "open", "high", "low", "close", "volume"]


def _timeframe(interval: str) -> Any:
    """Our interval (``1d``, ``1wk``, ``1h``, ``15m``...) -> an alpaca-py ``TimeFrame``."""
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    step = parse_interval(interval)
    minutes = step / pd.Timedelta(minutes=1)
    if minutes == 7 * 24 * 60:
        return TimeFrame(1, TimeFrameUnit.Week)
    if minutes == 24 * 60:
        return TimeFrame(1, TimeFrameUnit.Day)
    if minutes >= 60 and minutes % 60 == 0 and minutes / 60 <= 23:
        return TimeFrame(int(minutes // 60), TimeFrameUnit.Hour)
    if 1 <= minutes <= 59 and minutes == int(minutes):
        return TimeFrame(int(minutes), TimeFrameUnit.Minute)
    raise DataError(
        f"interval '{interval}' is not available from Alpaca; use 1-59 minutes (e.g. 5m), 1-23 hours (e.g. 1h), 1d or 1wk"
    )


def _as_naive_utc(ts: pd.Timestamp) -> Any:
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def barset_to_long(df: pd.DataFrame, tickers: Sequence[str], daily: bool) -> pd.DataFrame:
    """Reshape ``BarSet.df`` (MultiIndex ``symbol, timestamp``; UTC timestamps) into the long format.

    Daily and weekly bars are stamped at midnight in New York (or Chicago for crypto), i.e. 04:00-06:00
    UTC on the same calendar day, so their UTC date is the trading date. Intraday bars keep their
    tz-naive UTC time. Symbols are mapped back to the spelling the caller used.

    Args:
        df: ``BarSet.df`` as alpaca-py builds it (an empty frame when there were no bars).
        tickers: the tickers asked for, in the user's spelling.
        daily: bars are one day or longer.
    """
    if df is None or df.empty:
        return pd.DataFrame(columns=_COLUMNS)
    flat = df.reset_index()
    missing = [c for c in ("symbol", "timestamp", "open", "high", "low", "close", "volume") if c not in flat.columns]
    if missing:
        raise DataError(f"alpaca: bars are missing {missing}; got columns {list(flat.columns)}")
    stamps = pd.to_datetime(flat["timestamp"], utc=True)
    stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if daily:
        stamps = stamps.dt.normalize()
    by_upper = {t.upper(): t for t in tickers}
    out = pd.DataFrame(
        {
            "date": stamps.astype("datetime64[ns]"),
            "tic": [by_upper.get(str(s).upper(), str(s)) for s in flat["symbol"]],
            **{c: flat[c].astype("float64") for c in ("open", "high", "low", "close", "volume")},
        }
    )
    return out[_COLUMNS]


class AlpacaSource:
    """Bars from Alpaca's market data API.

    Args:
        feed: stock data feed (``iex`` on free accounts, ``sip`` with a subscription).
        adjustment: corporate-action adjustment: ``raw``, ``split``, ``dividend`` or ``all``.
        crypto: use the crypto client (tickers like ``BTC/USD``; trades 24/7; needs no keys).
        client: an already built alpaca-py historical data client (for tests or custom endpoints);
            when given, no keys are read.
    """

    name = "alpaca"

    def __init__(self, feed: str = "iex", adjustment: str = "all", crypto: bool = False, client: Any = None) -> None:
        if feed not in _FEEDS:
            raise DataError(f"alpaca: unknown feed '{feed}'; allowed: {', '.join(_FEEDS)}")
        if adjustment not in _ADJUSTMENTS:
            raise DataError(f"alpaca: unknown adjustment '{adjustment}'; allowed: {', '.join(_ADJUSTMENTS)}")
        self.feed = feed
        self.adjustment = adjustment
        self.crypto = bool(crypto)
        self._client = client
        self.default_calendar = "24/7" if self.crypto else "XNYS"

    # ------------------------------------------------------------------ public

    def download(self, tickers: Sequence[str], start: str, end: str, interval: str) -> pd.DataFrame:
        """Download bars for ``tickers`` between ``start`` and ``end`` (both inclusive).

        Args:
            tickers: symbols, e.g. ``["AAPL", "MSFT"]`` or ``["BTC/USD"]`` with ``crypto=True``.
            start: first date (or UTC time for intraday bars).
            end: last date (inclusive).
            interval: ``1d``, ``1wk``, ``1-23h`` or ``1-59m``.

        Returns:
            The long frame ``date, tic, open, high, low, close, volume`` sorted by ``date, tic``.

        Raises:
            DataError: keys missing, the API refused the request, the network failed, or some tickers
                returned no bars (the message names them).
        """
        names, s, e = check_request(tickers, start, end)
        if not names:
            raise DataError("alpaca: no tickers requested; set data.tickers")
        require("alpaca.data", "alpaca", "the alpaca data source")
        timeframe = _timeframe(interval)
        daily = parse_interval(interval) >= pd.Timedelta(days=1)
        # Alpaca's end is inclusive of the instant given; a date means "through that whole day".
        end_arg = e + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if e == e.normalize() else e
        symbols = [n.upper() for n in names]
        client = self._get_client()
        barset = self._fetch(client, symbols, timeframe, _as_naive_utc(s), _as_naive_utc(end_arg))
        frame = barset_to_long(barset.df, names, daily)
        present = set(frame["tic"].unique()) if not frame.empty else set()
        absent = [n for n in names if n not in present]
        what = "crypto" if self.crypto else f"feed '{self.feed}'"
        span = f"{s.date()}..{e.date()} at interval {interval}"
        if len(absent) == len(names):
            raise DataError(
                f"alpaca returned no bars for {absent} ({what}, {span}); check the symbols, the date range "
                f"and that your account has access to this feed"
            )
        if absent:
            raise DataError(
                f"alpaca returned no bars for ticker(s) {absent} ({what}, {span}) while other tickers downloaded; "
                f"check the symbols (unknown, delisted or renamed?)"
            )
        return finalize_frame(frame, origin="alpaca", tickers=names, start=s, end=e)

    def download_vix(self, start: str, end: str, interval: str) -> pd.Series | None:
        """Alpaca has no VIX index data: always None."""
        return None

    # ------------------------------------------------------------------ internals

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        key, secret, unset = alpaca_keys()
        if self.crypto:
            from alpaca.data.historical import CryptoHistoricalDataClient

            if key and secret:
                return CryptoHistoricalDataClient(api_key=key, secret_key=secret)
            return CryptoHistoricalDataClient()
        if unset:
            raise DataError(
                f"alpaca: API keys missing: set the environment variables {KEY_ENV} and {SECRET_ENV} "
                f"(not set: {', '.join(unset)}); keys are read only from the environment, never from config files"
            )
        from alpaca.data.historical import StockHistoricalDataClient

        return StockHistoricalDataClient(api_key=key, secret_key=secret)

    def _fetch(self, client: Any, symbols: list[str], timeframe: Any, start: Any, end: Any) -> Any:
        import requests
        from alpaca.common.exceptions import APIError

        try:
            if self.crypto:
                from alpaca.data.requests import CryptoBarsRequest

                request = CryptoBarsRequest(symbol_or_symbols=symbols, timeframe=timeframe, start=start, end=end)
                return client.get_crypto_bars(request)
            from alpaca.data.enums import Adjustment, DataFeed
            from alpaca.data.requests import StockBarsRequest

            request = StockBarsRequest(
                symbol_or_symbols=symbols,
                timeframe=timeframe,
                start=start,
                end=end,
                adjustment=Adjustment(self.adjustment),
                feed=DataFeed(self.feed),
            )
            return client.get_stock_bars(request)
        except APIError as exc:
            status = getattr(exc, "status_code", None)
            hint = ""
            if status in (401, 403):
                hint = f"; check {KEY_ENV} / {SECRET_ENV} and that your plan includes feed '{self.feed}'"
            raise DataError(f"alpaca refused the bars request for {symbols} (HTTP {status}): {exc}{hint}") from exc
        except requests.exceptions.RequestException as exc:
            raise DataError(
                f"alpaca: cannot reach the market data API for {symbols}; are you offline? ({type(exc).__name__}: {exc})"
            ) from exc
        except (ValueError, AttributeError, TypeError) as exc:
            raise DataError(f"alpaca: unexpected bars response for {symbols}: {exc}") from exc
