"""The yahoofinance and alpaca sources, offline.

Only the network boundary is stubbed: the HTTP session class each library sends its requests through
(``yfinance._http.requests.Session.request`` — curl_cffi's Session — for yfinance, and
``requests.Session.request`` for alpaca-py's ``RESTClient._one_request``). The stubs answer with the
recorded JSON under ``tests/data/recorded/`` (Yahoo's v8 ``finance/chart`` and Alpaca's ``/v2/stocks/bars``
wire formats), so yfinance's and alpaca-py's own parsing and ours all run for real.
"""

from __future__ import annotations

import base64
import json
import threading
import types
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance  # noqa: F401  (imported here: on import it installs a warnings filter that would beat the marks below)

from finrl_lite.errors import DataError

RECORDED = Path(__file__).parent / "data" / "recorded"
REPO = Path(__file__).resolve().parents[1]
DAYS = pd.to_datetime(
    [
        "2024-02-01", "2024-02-02", "2024-02-05", "2024-02-06", "2024-02-07",
        "2024-02-08", "2024-02-09", "2024-02-12", "2024-02-13", "2024-02-14",
    ]
)  # fmt: skip

# yfinance 1.7 calls DataFrame.rename(inplace=True), deprecated in pandas 3.1: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def _response(status: int, body: Any, url: str) -> requests.Response:
    """A real ``requests.Response`` carrying ``body`` (JSON-encoded unless it is already text)."""
    response = requests.models.Response()
    response.status_code = status
    response.url = url
    response.encoding = "utf-8"
    response.reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(status, "")
    response.headers["Content-Type"] = "application/json" if not isinstance(body, str) else "text/plain"
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    return response


# ====================================================================== Yahoo Finance


class YahooServer:
    """Answers yfinance's HTTP requests like query1/query2.finance.yahoo.com would.

    ``mode``: ``"online"`` (recorded charts, 404 for unknown symbols), ``"offline"`` (every request
    raises the HTTP backend's ConnectionError, as with no network) or ``"empty"`` (HTTP 200 with an
    empty body, as behind a captive portal).
    """

    CHARTS = {"AAPL": "yahoo_chart_AAPL_1d.json", "MSFT": "yahoo_chart_MSFT_1d.json", "^VIX": "yahoo_chart_VIX_1d.json"}

    def __init__(self, connection_error: type[Exception]) -> None:
        self.mode = "online"
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next: dict[str, int] = {}  # symbol -> how many more chart requests fail with a connection error
        self._lock = threading.Lock()
        self._connection_error = connection_error

    def chart_calls(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return [p for _, u, p in self.calls if "/v8/finance/chart/" in u and (symbol is None or u.endswith("/" + symbol))]

    def request(self, method: str, url: str, params: dict[str, Any] | None = None, **_: Any) -> requests.Response:
        with self._lock:
            self.calls.append((method, url, dict(params or {})))
        if self.mode == "offline":
            host = urllib.parse.urlsplit(url).hostname
            raise self._connection_error(f"Failed to perform, curl: (6) Could not resolve host: {host}")
        if self.mode == "empty":
            return _response(200, "", url)
        if "fc.yahoo.com" in url:
            return _response(404, "", url)
        if url.endswith("/v1/test/getcrumb"):
            return _response(200, "hAnDmAdE.cRuMb", url)
        if "/v8/finance/chart/" in url:
            symbol = urllib.parse.unquote(url.rsplit("/", 1)[1])
            with self._lock:
                flaky = self.fail_next.get(symbol, 0) > 0
                if flaky:
                    self.fail_next[symbol] -= 1
            if flaky:
                raise self._connection_error("Failed to perform, curl: (28) Operation timed out after 30001 milliseconds")
            if symbol not in self.CHARTS:
                return _response(404, _recorded("yahoo_chart_not_found.json"), url)
            return _response(200, self._chart(symbol, params or {}), url)
        if "/quoteSummary/" in url:
            symbol = urllib.parse.unquote(url.rsplit("/", 1)[1])
            body = {
                "quoteSummary": {
                    "result": None,
                    "error": {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"},
                }
            }
            return _response(404, body, url)
        return _response(
            404, {"finance": {"result": None, "error": {"code": "Not Found", "description": "HTTP 404 Not Found"}}}, url
        )

    def _chart(self, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        """The recorded chart, cut to ``period1 <= t < period2`` (or the last bar for ``range``) like Yahoo does."""
        doc = _recorded(self.CHARTS[symbol])
        result = doc["chart"]["result"][0]
        stamps = result["timestamp"]
        if "period1" in params:
            keep = [i for i, t in enumerate(stamps) if int(params["period1"]) <= t < int(params["period2"])]
        else:
            keep = [len(stamps) - 1]
        result["timestamp"] = [stamps[i] for i in keep]
        quote = result["indicators"]["quote"][0]
        for key in quote:
            quote[key] = [quote[key][i] for i in keep]
        adj = result["indicators"]["adjclose"][0]
        adj["adjclose"] = [adj["adjclose"][i] for i in keep]
        return doc


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch) -> YahooServer:
    """Stub yfinance's HTTP session (and keep its on-disk caches and singleton state out of the test)."""
    import yfinance._http as yf_http
    import yfinance.cache as yf_cache
    import yfinance.data as yf_data

    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", yf_cache._TzCacheDummy())
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", yf_cache._CookieCacheDummy())
    # A fresh YfData singleton: no cookie, crumb or cookie strategy carried over from another test.
    yf_data.SingletonMeta._instances.pop(yf_data.YfData, None)
    yf_data.YfData.cache_get.cache_clear()

    server = YahooServer(yf_http.requests.exceptions.ConnectionError)

    def request(session: Any, method: str, url: str, **kwargs: Any) -> requests.Response:
        return server.request(method, url, **kwargs)

    monkeypatch.setattr(yf_http.requests.Session, "request", request)
    assert yfinance.download is not None
    yield server
    yf_data.SingletonMeta._instances.pop(yf_data.YfData, None)
    yf_data.YfData.cache_get.cache_clear()


@pytest.fixture
def download_spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the arguments of every ``yfinance.download`` call (and run the real function)."""

    real = yfinance.download
    calls: list[dict[str, Any]] = []

    def spy(tickers: Any, **kwargs: Any) -> Any:
        calls.append({"tickers": list(tickers), **kwargs})
        return real(tickers, **kwargs)

    monkeypatch.setattr(yfinance, "download", spy)
    return calls


def _expected_yahoo(symbol: str, adjusted: bool) -> pd.DataFrame:
    """Long frame computed by hand from the recorded chart (auto_adjust scales OHLC by adjclose/close)."""
    result = _recorded(YahooServer.CHARTS[symbol])["chart"]["result"][0]
    q = result["indicators"]["quote"][0]
    close = np.array(q["close"], dtype=float)
    ratio = np.array(result["indicators"]["adjclose"][0]["adjclose"], dtype=float) / close if adjusted else 1.0
    return pd.DataFrame(
        {
            "date": DAYS.astype("datetime64[ns]"),
            "tic": symbol,
            "open": np.array(q["open"], dtype=float) * ratio,
            "high": np.array(q["high"], dtype=float) * ratio,
            "low": np.array(q["low"], dtype=float) * ratio,
            "close": close * ratio,
            "volume": np.array(q["volume"], dtype=float),
        }
    )


def _sorted(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames).sort_values(["date", "tic"], kind="stable").reset_index(drop=True)


def test_yahoo_two_tickers_adjusted(yahoo: YahooServer, download_spy: list[dict[str, Any]]) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    src = YahooFinanceSource(sleep=pytest.fail)
    df = src.download(["AAPL", "MSFT"], "2024-02-01", "2024-02-14", "1d")

    expected = _sorted([_expected_yahoo("AAPL", True), _expected_yahoo("MSFT", True)])
    pd.testing.assert_frame_equal(df[expected.columns.tolist()], expected, check_exact=False, rtol=1e-12, atol=0)
    assert list(df.columns) == ["date", "tic", "open", "high", "low", "close", "volume"]
    # Spot values: AAPL closes after its 2024-02-09 ex-dividend date are unadjusted; before, scaled.
    last = df[(df.tic == "AAPL") & (df.date == "2024-02-14")].iloc[0]
    assert last.close == pytest.approx(184.15, abs=1e-9) and last.volume == 54630500
    first = df[(df.tic == "AAPL") & (df.date == "2024-02-01")].iloc[0]
    assert first.close == pytest.approx(186.86 * (1 - 0.24 / 188.32), abs=1e-6)
    # One batch call, auto_adjust explicit, end moved one day on (yfinance's end is exclusive).
    assert len(download_spy) == 1
    call = download_spy[0]
    assert sorted(call["tickers"]) == ["AAPL", "MSFT"]
    assert call["auto_adjust"] is True and call["start"] == "2024-02-01" and call["end"] == "2024-02-15"
    assert call["interval"] == "1d" and call["progress"] is False
    # The range asked of Yahoo: midnight New York on Feb 1 -> midnight New York on Feb 15.
    params = yahoo.chart_calls("AAPL")[-1]
    assert (params["period1"], params["period2"]) == (1706763600, 1707973200)


def test_yahoo_auto_adjust_false_gives_raw_prices(yahoo: YahooServer, download_spy: list[dict[str, Any]]) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    df = YahooFinanceSource(auto_adjust=False).download(["MSFT", "AAPL"], "2024-02-01", "2024-02-14", "1d")
    expected = _sorted([_expected_yahoo("AAPL", False), _expected_yahoo("MSFT", False)])
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-12, atol=0)
    assert download_spy[0]["auto_adjust"] is False
    assert df[(df.tic == "AAPL") & (df.date == "2024-02-01")].close.item() == 186.86


def test_yahoo_single_ticker_and_date_window(yahoo: YahooServer) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    df = YahooFinanceSource().download(["AAPL"], "2024-02-05", "2024-02-09", "1d")
    expected = _expected_yahoo("AAPL", True)
    expected = expected[(expected.date >= "2024-02-05") & (expected.date <= "2024-02-09")].reset_index(drop=True)
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-12, atol=0)
    assert df.date.tolist()[-1] == pd.Timestamp("2024-02-09")  # the end date is included


def test_yahoo_vix(yahoo: YahooServer) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    vix = YahooFinanceSource().download_vix("2024-02-01", "2024-02-14", "1d")
    assert isinstance(vix, pd.Series) and vix.name == "vix" and vix.index.name == "date"
    assert list(vix.index) == list(DAYS)
    expected = _recorded("yahoo_chart_VIX_1d.json")["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    np.testing.assert_allclose(vix.to_numpy(), expected, rtol=1e-12)
    assert vix.loc["2024-02-13"] == pytest.approx(15.85)


def test_yahoo_empty_answers_are_retried_then_a_clear_error(yahoo: YahooServer, download_spy: list[dict[str, Any]]) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    yahoo.mode = "empty"  # HTTP 200 with an empty body, as behind a captive portal
    sleeps: list[float] = []
    src = YahooFinanceSource(retries=2, backoff_seconds=0.5, sleep=sleeps.append)
    with pytest.raises(DataError) as info:
        src.download(["AAPL", "MSFT"], "2024-02-01", "2024-02-14", "1d")
    message = str(info.value)
    assert "yfinance returned no data for" in message and "offline" in message
    assert "AAPL" in message and "MSFT" in message and "after 3 attempt(s)" in message
    assert "details:" in message
    assert sleeps == [0.5, 1.0]  # exponential backoff, injected sleep
    assert len(download_spy) == 3  # first attempt + 2 retries, each one batch call
    assert len(yahoo.chart_calls()) >= 6  # the stubbed boundary really was hit, for both tickers, each time


def test_yahoo_unresolvable_host_is_not_retried(yahoo: YahooServer, download_spy: list[dict[str, Any]]) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    yahoo.mode = "offline"  # every request fails: curl (6) Could not resolve host
    sleeps: list[float] = []
    with pytest.raises(DataError) as info:
        YahooFinanceSource(retries=3, sleep=sleeps.append).download(["AAPL", "MSFT"], "2024-02-01", "2024-02-14", "1d")
    message = str(info.value)
    assert "cannot resolve Yahoo Finance's host name (offline, or no DNS), so nothing was retried" in message
    assert "AAPL" in message and "MSFT" in message and "Could not resolve host" in message
    assert sleeps == [] and len(download_spy) == 1  # one attempt, no backoff
    assert yahoo.chart_calls()  # the stubbed boundary really was hit


def test_yahoo_retries_only_the_ticker_that_failed(yahoo: YahooServer, download_spy: list[dict[str, Any]]) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    yahoo.fail_next["MSFT"] = 1  # one timeout on MSFT's first request, then Yahoo answers
    sleeps: list[float] = []
    df = YahooFinanceSource(backoff_seconds=2.0, sleep=sleeps.append).download(["AAPL", "MSFT"], "2024-02-01", "2024-02-14", "1d")
    expected = _sorted([_expected_yahoo("AAPL", True), _expected_yahoo("MSFT", True)])
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-12, atol=0)
    assert sleeps == [2.0]
    assert [sorted(c["tickers"]) for c in download_spy] == [["AAPL", "MSFT"], ["MSFT"]]


def test_yahoo_unknown_ticker_named(yahoo: YahooServer) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    sleeps: list[float] = []
    with pytest.raises(DataError, match=r"no data for ticker\(s\) \['NOSUCHTKR'\].*while other tickers downloaded") as info:
        YahooFinanceSource(sleep=sleeps.append).download(["AAPL", "NOSUCHTKR"], "2024-02-01", "2024-02-14", "1d")
    assert "NOSUCHTKR" in str(info.value)
    assert sleeps == []  # Yahoo answered "not found": nothing to retry


def test_yahoo_only_unknown_ticker(yahoo: YahooServer) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    with pytest.raises(DataError, match="NOSUCHTKR"):
        YahooFinanceSource(retries=1, sleep=lambda s: None).download(["NOSUCHTKR"], "2024-02-01", "2024-02-14", "1d")


def test_yahoo_bad_interval() -> None:
    from finrl_lite.data_processors.sources.yahoofinance import YahooFinanceSource

    with pytest.raises(DataError, match="not available from Yahoo"):
        YahooFinanceSource().download(["AAPL"], "2024-02-01", "2024-02-14", "3h")


def _wide(order: str, tz: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A yfinance-style wide frame for AAPL, MSFT and a failed ticker, plus the long frame it means."""
    index = pd.DatetimeIndex(["2024-02-01 14:30", "2024-02-01 15:30", "2024-02-01 16:30"], name="Datetime")
    if tz:
        index = index.tz_localize("UTC").tz_convert(tz)
    fields = ["Open", "High", "Low", "Close", "Volume"]
    values = {
        "AAPL": [[10.0, 11.0, 9.0, 10.5, 100.0], [10.5, 11.5, 10.0, 11.0, 200.0], [np.nan] * 5],
        "MSFT": [[20.0, 21.0, 19.0, 20.5, 300.0], [20.5, 21.5, 20.0, 21.0, 400.0], [21.0, 22.0, 20.5, 21.5, 500.0]],
        "BAD": [[np.nan] * 5] * 3,
    }
    cols = {(t, f): [row[i] for row in rows] for t, rows in values.items() for i, f in enumerate(fields)}
    wide = pd.DataFrame(cols, index=index)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns, names=["Ticker", "Price"])
    if order == "column":
        wide.columns = wide.columns.swaplevel(0, 1)
        wide = wide.sort_index(axis=1, level=0)
    naive = pd.DatetimeIndex(["2024-02-01 14:30", "2024-02-01 15:30", "2024-02-01 16:30"])
    rows = [(naive[i], t, *vals) for t in ("AAPL", "MSFT") for i, vals in enumerate(values[t]) if not np.isnan(vals[0])]
    long = pd.DataFrame(rows, columns=["date", "tic", "open", "high", "low", "close", "volume"])
    return wide, long


@pytest.mark.parametrize("order", ["ticker", "column"])
@pytest.mark.parametrize("tz", [None, "America/New_York"])
def test_wide_to_long_multiindex_orders_and_timezones(order: str, tz: str | None) -> None:
    from finrl_lite.data_processors.sources.yahoofinance import wide_to_long

    wide, expected = _wide(order, tz)
    got = wide_to_long(wide, ["AAPL", "MSFT", "BAD"])
    got = got.sort_values(["tic", "date"]).reset_index(drop=True)
    got["date"] = got["date"].astype("datetime64[ns]")
    expected["date"] = expected["date"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(got, expected.astype(got.dtypes.to_dict()))
    assert "BAD" not in set(got.tic)  # an all-NaN ticker yields no rows


def test_wide_to_long_single_ticker_flat_columns_and_case() -> None:
    from finrl_lite.data_processors.sources.yahoofinance import wide_to_long

    wide, expected = _wide("ticker", "America/New_York")
    flat = wide["MSFT"]  # what multi_level_index=False gives for one ticker
    got = wide_to_long(flat, ["msft"])
    assert got.tic.unique().tolist() == ["msft"]  # the caller's spelling is kept
    np.testing.assert_allclose(got.close.to_numpy(), expected[expected.tic == "MSFT"].close.to_numpy())
    # MultiIndex with one ticker, symbol upper-cased by yfinance
    got2 = wide_to_long(wide[["MSFT"]], ["msft"])
    assert got2.tic.unique().tolist() == ["msft"] and len(got2) == 3


# ====================================================================== Alpaca


class AlpacaServer:
    """Answers alpaca-py's requests like data.alpaca.markets would (from the recorded bars pages).

    Stock bars come in two pages (the second asked for with ``page_token``); symbols and the start/end
    window are applied as the server does; a request without both key headers gets HTTP 401.
    """

    def __init__(self) -> None:
        self.mode = "online"
        self.calls: list[dict[str, Any]] = []

    def request(
        self, method: str, url: str, params: dict[str, Any] | None = None, headers: dict[str, Any] | None = None, **_: Any
    ) -> requests.Response:
        # The query string as it goes on the wire (enums, TimeFrame and None handled the way requests does).
        wire = requests.Request(method, url, params=params).prepare().url or url
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(wire).query))
        self.calls.append({"method": method, "url": url, "params": params, "headers": dict(headers or {})})
        path = urllib.parse.urlsplit(url).path
        if self.mode == "offline":
            raise requests.exceptions.ConnectionError(
                f"HTTPSConnectionPool(host='data.alpaca.markets', port=443): Max retries exceeded with url: {path}"
            )
        if path == "/v2/stocks/bars":
            if not (headers or {}).get("APCA-API-KEY-ID") or not (headers or {}).get("APCA-API-SECRET-KEY"):
                return _response(401, {"message": "unauthorized."}, url)
            if params.get("feed") == "sip":
                return _response(403, {"message": "subscription does not permit querying recent SIP data"}, url)
            page = "alpaca_stocks_bars_page2.json" if params.get("page_token") else "alpaca_stocks_bars_page1.json"
            return _response(200, self._cut(_recorded(page), params), url)
        if path == "/v1beta3/crypto/us/bars":
            return _response(200, self._cut(_recorded("alpaca_crypto_bars_BTCUSD.json"), params), url)
        return _response(404, {"message": "Not Found"}, url)

    @staticmethod
    def _cut(doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        symbols = set((params.get("symbols") or "").split(","))
        lo, hi = pd.Timestamp(params["start"]), pd.Timestamp(params["end"])
        bars = {}
        for sym, rows in doc["bars"].items():
            kept = [b for b in rows if lo <= pd.Timestamp(b["t"]) <= hi]
            if sym in symbols and kept:
                bars[sym] = kept
        return {"bars": bars, "next_page_token": doc["next_page_token"]}

    def bars_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["url"].endswith("/bars")]


@pytest.fixture
def alpaca_server(monkeypatch: pytest.MonkeyPatch) -> AlpacaServer:
    pytest.importorskip("alpaca.data")
    server = AlpacaServer()

    def request(session: Any, method: str, url: str, **kwargs: Any) -> requests.Response:
        return server.request(method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    # alpaca-py sleeps 3 s before retrying HTTP 429/504; no test should ever wait on that. (Only the
    # module's own name `time` is replaced: patching time.sleep itself would reach every thread.)
    import alpaca.common.rest as alpaca_rest

    fake_time = types.SimpleNamespace(sleep=lambda seconds: pytest.fail("alpaca-py retried a request"))
    monkeypatch.setattr(alpaca_rest, "time", fake_time)
    return server


@pytest.fixture
def alpaca_keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY0000000001")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "tEsTsEcReT0000000000000000000000000000001")
    return "PKTESTKEY0000000001", "tEsTsEcReT0000000000000000000000000000001"


def _expected_alpaca(symbols: list[str], pages: list[str]) -> pd.DataFrame:
    rows = []
    for page in pages:
        for sym, bars in _recorded(page)["bars"].items():
            if sym in symbols:
                for b in bars:
                    rows.append((pd.Timestamp(b["t"][:10]), sym, b["o"], b["h"], b["l"], b["c"], float(b["v"])))
    df = pd.DataFrame(rows, columns=["date", "tic", "open", "high", "low", "close", "volume"])
    df["date"] = df["date"].astype("datetime64[ns]")
    return df.sort_values(["date", "tic"], kind="stable").reset_index(drop=True)


def test_alpaca_missing_keys_names_env_vars(alpaca_server: AlpacaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(DataError, match="APCA_API_KEY_ID.*APCA_API_SECRET_KEY"):
        AlpacaSource().download(["AAPL"], "2024-02-01", "2024-02-14", "1d")
    monkeypatch.setenv("APCA_API_KEY_ID", "PKONLYTHEKEY")
    with pytest.raises(DataError, match="not set: APCA_API_SECRET_KEY"):
        AlpacaSource().download(["AAPL"], "2024-02-01", "2024-02-14", "1d")
    assert alpaca_server.calls == []  # refused before any request


def test_alpaca_stock_bars_from_env_keys(alpaca_server: AlpacaServer, alpaca_keys: tuple[str, str]) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    src = AlpacaSource()
    assert src.name == "alpaca" and src.default_calendar == "XNYS"
    df = src.download(["AAPL", "MSFT"], "2024-02-01", "2024-02-14", "1d")

    expected = _expected_alpaca(["AAPL", "MSFT"], ["alpaca_stocks_bars_page1.json", "alpaca_stocks_bars_page2.json"])
    pd.testing.assert_frame_equal(df, expected, check_exact=True)
    assert len(df) == 20 and df.date.nunique() == 10
    assert df.date.min() == pd.Timestamp("2024-02-01") and df.date.max() == pd.Timestamp("2024-02-14")
    row = df[(df.tic == "MSFT") & (df.date == "2024-02-14")].iloc[0]
    assert (row.open, row.close, row.volume) == (408.07, 409.49, 471267.0)

    calls = alpaca_server.bars_calls()
    assert len(calls) == 2  # alpaca-py followed next_page_token
    first, second = calls
    assert first["url"] == "https://data.alpaca.markets/v2/stocks/bars"
    assert first["headers"]["APCA-API-KEY-ID"] == alpaca_keys[0]
    assert first["headers"]["APCA-API-SECRET-KEY"] == alpaca_keys[1]
    p = first["params"]
    assert (p["symbols"], p["timeframe"], p["feed"], p["adjustment"]) == ("AAPL,MSFT", "1Day", "iex", "all")
    assert p["start"].startswith("2024-02-01T00:00:00") and p["end"].startswith("2024-02-14T23:59:59")
    assert "page_token" not in p and p["limit"] == "10000"
    token = second["params"]["page_token"]
    assert base64.b64decode(token).startswith(b"MSFT|")


def test_alpaca_options_reach_the_request(alpaca_server: AlpacaServer, alpaca_keys: tuple[str, str]) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    df = AlpacaSource(adjustment="raw").download(["msft"], "2024-02-05", "2024-02-09", "1d")
    assert df.tic.unique().tolist() == ["msft"] and len(df) == 5
    assert alpaca_server.bars_calls()[0]["params"]["adjustment"] == "raw"
    assert alpaca_server.bars_calls()[0]["params"]["symbols"] == "MSFT"
    with pytest.raises(DataError, match=r"HTTP 403.*SIP"):
        AlpacaSource(feed="sip").download(["AAPL"], "2024-02-01", "2024-02-14", "1d")


def test_alpaca_unknown_symbol_named(alpaca_server: AlpacaServer, alpaca_keys: tuple[str, str]) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    with pytest.raises(DataError, match=r"no bars for ticker\(s\) \['NOSUCHTKR'\]"):
        AlpacaSource().download(["AAPL", "NOSUCHTKR"], "2024-02-01", "2024-02-14", "1d")
    with pytest.raises(DataError, match=r"no bars for \['NOSUCHTKR'\]"):
        AlpacaSource().download(["NOSUCHTKR"], "2024-02-01", "2024-02-14", "1d")


def test_alpaca_offline(alpaca_server: AlpacaServer, alpaca_keys: tuple[str, str]) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    alpaca_server.mode = "offline"
    with pytest.raises(DataError, match="cannot reach.*offline"):
        AlpacaSource().download(["AAPL"], "2024-02-01", "2024-02-14", "1d")
    assert len(alpaca_server.calls) == 1


def test_alpaca_crypto_needs_no_keys(alpaca_server: AlpacaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource

    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    src = AlpacaSource(crypto=True)
    assert src.default_calendar == "24/7"
    df = src.download(["BTC/USD"], "2024-02-01", "2024-02-07", "1d")
    bars = _recorded("alpaca_crypto_bars_BTCUSD.json")["bars"]["BTC/USD"]
    assert df.date.tolist() == list(pd.date_range("2024-02-01", "2024-02-07"))  # weekends included
    np.testing.assert_array_equal(df.close.to_numpy(), [b["c"] for b in bars])
    np.testing.assert_array_equal(df.volume.to_numpy(), [b["v"] for b in bars])
    call = alpaca_server.bars_calls()[0]
    assert call["url"] == "https://data.alpaca.markets/v1beta3/crypto/us/bars"
    assert "APCA-API-KEY-ID" not in call["headers"] or not call["headers"]["APCA-API-KEY-ID"]


def test_alpaca_timeframes_and_vix() -> None:
    pytest.importorskip("alpaca.data")
    from finrl_lite.data_processors.sources.alpaca import AlpacaSource, _timeframe

    assert [str(_timeframe(i)) for i in ("1d", "1wk", "1h", "4h", "15m", "1m")] == [
        "1Day", "1Week", "1Hour", "4Hour", "15Min", "1Min",
    ]  # fmt: skip
    for bad in ("2d", "90m", "1min0"):
        with pytest.raises(DataError):
            _timeframe(bad)
    assert AlpacaSource().download_vix("2024-02-01", "2024-02-14", "1d") is None


def test_sources_registered() -> None:
    from finrl_lite.data_processors.sources import make_source

    y = make_source("yahoofinance", auto_adjust=False, retries=1, backoff_seconds=0.0, timeout_seconds=5.0)
    assert (y.name, y.default_calendar, y.auto_adjust) == ("yahoofinance", "XNYS", False)
    a = make_source("alpaca", feed="iex", adjustment="split", crypto=True)
    assert (a.name, a.default_calendar, a.adjustment) == ("alpaca", "24/7", "split")


# ====================================================================== CLI: finrl-lite data prepare


def _prepare(tmp_path: Path, *overrides: str) -> Any:
    from typer.testing import CliRunner

    from finrl_lite.cli import app

    args = ["data", "prepare", "--out", str(tmp_path / "out")]
    base = [
        "data.start=2024-02-01",
        "data.end=2024-02-14",
        "data.indicators=[]",
        "data.turbulence=false",
        f"data.cache.dir={tmp_path / 'cache'}",
    ]
    for item in (*base, *overrides):
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def _written(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    from finrl_lite.data_processors.market_data import MarketData

    out = tmp_path / "out"
    market = MarketData.load(out / "market_data.parquet")
    summary = json.loads((out / "summary.json").read_text())
    return market, summary


def test_cli_data_prepare_yahoofinance(yahoo: YahooServer, tmp_path: Path) -> None:
    result = _prepare(tmp_path, "data.source=yahoofinance", "data.tickers=[AAPL, MSFT]", "data.vix=true")
    assert result.exit_code == 0, result.output
    market, summary = _written(tmp_path)
    assert list(market.tickers) == ["AAPL", "MSFT"] and list(market.dates) == list(DAYS)
    assert summary["tickers"] == 2 and summary["dates"] == 10 and summary["cache_hit"] is False
    assert summary["market_fields"] == ["vix"]
    close = np.asarray(market.values)[:, :, list(market.fields).index("close")]
    np.testing.assert_allclose(close[:, 0], _expected_yahoo("AAPL", True).close, rtol=1e-12)
    np.testing.assert_allclose(close[:, 1], _expected_yahoo("MSFT", True).close, rtol=1e-12)
    vix = np.asarray(market.market_values)[:, list(market.market_fields).index("vix")]
    np.testing.assert_allclose(vix, _expected_yahoo("^VIX", True).close, rtol=1e-12)

    # Second run: served from the cache under data.cache.dir, no request reaches the network.
    before = len(yahoo.calls)
    again = _prepare(tmp_path, "data.source=yahoofinance", "data.tickers=[AAPL, MSFT]", "data.vix=true")
    assert again.exit_code == 0, again.output
    assert _written(tmp_path)[1]["cache_hit"] is True and len(yahoo.calls) == before
    assert any((tmp_path / "cache").iterdir())


def test_cli_data_prepare_yahoofinance_offline(yahoo: YahooServer, tmp_path: Path) -> None:
    yahoo.mode = "offline"
    result = _prepare(tmp_path, "data.source=yahoofinance", "data.tickers=[AAPL]", "data.yahoofinance.retries=0")
    assert result.exit_code == 2
    assert "yfinance returned no data" in result.output and "offline" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_cli_offline_yahoo_says_one_thing(
    yahoo: YahooServer, download_spy: list[dict[str, Any]], tmp_path: Path, verbosity: list[str]
) -> None:
    """Offline with the Dow 30 config: one attempt and our one message; yfinance's own lines only with -vv."""
    from typer.testing import CliRunner

    from finrl_lite.cli import app

    yahoo.mode = "offline"
    args = [*verbosity, "data", "prepare", "-c", str(REPO / "configs" / "dow30_ppo.yaml"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--set", f"data.cache.dir={tmp_path / 'cache'}"])
    assert result.exit_code == 2
    assert "cannot resolve Yahoo Finance's host name" in result.output and "Traceback" not in result.output
    assert len(download_spy) == 1 and len(download_spy[0]["tickers"]) == 29  # one batch for the Dow 30, no retry
    yfinance_lines = [line for line in result.output.splitlines() if "Failed download" in line or "YFPricesMissing" in line]
    if verbosity:
        assert yfinance_lines  # yfinance's own log output, shown from -vv on
    else:
        assert not yfinance_lines and len(result.output.splitlines()) < 15, result.output


def test_cli_data_prepare_alpaca(alpaca_server: AlpacaServer, alpaca_keys: tuple[str, str], tmp_path: Path) -> None:
    result = _prepare(tmp_path, "data.source=alpaca", "data.tickers=[AAPL, MSFT]", "data.alpaca.feed=iex")
    assert result.exit_code == 0, result.output
    market, summary = _written(tmp_path)
    assert list(market.tickers) == ["AAPL", "MSFT"] and list(market.dates) == list(DAYS)
    assert summary["tickers"] == 2 and summary["dates"] == 10
    expected = _expected_alpaca(["AAPL", "MSFT"], ["alpaca_stocks_bars_page1.json", "alpaca_stocks_bars_page2.json"])
    values = np.asarray(market.values)
    for j, tic in enumerate(market.tickers):
        mine = expected[expected.tic == tic]
        for f in ("open", "close", "volume"):
            np.testing.assert_array_equal(values[:, j, list(market.fields).index(f)], mine[f].to_numpy())
    assert alpaca_server.bars_calls()[0]["headers"]["APCA-API-KEY-ID"] == alpaca_keys[0]


def test_cli_data_prepare_alpaca_without_keys(
    alpaca_server: AlpacaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    result = _prepare(tmp_path, "data.source=alpaca", "data.tickers=[AAPL]")
    assert result.exit_code == 2
    assert "APCA_API_KEY_ID" in result.output and "APCA_API_SECRET_KEY" in result.output
    assert alpaca_server.calls == []
