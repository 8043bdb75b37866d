"""The Alpaca broker and feed, offline: alpaca-py talks to a stub of paper-api.alpaca.markets at the HTTP boundary.

Only ``requests.Session.request`` (the one call alpaca-py's ``RESTClient._one_request`` sends through) is
replaced; the answers are the recorded wire-format JSON under ``tests/trade/recorded/``, so alpaca-py's own
models parse them and our adapter's retry, timeout and lookup logic runs for real.
"""

from __future__ import annotations

import copy
import json
import logging
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

from finrl_lite.errors import ConfigError
from finrl_lite.trade.brokers.base import DuplicateClientOrderId, OrderRejected, SubmitUncertain
from finrl_lite.trade.errors import BrokerError, BrokerUnavailable
from finrl_lite.trade.orders import OrderIntent, client_order_id

pytest.importorskip("alpaca.trading")
# alpaca-py 0.44's BarSet.df trips two pandas 3.1 deprecations: not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The inplace keyword"),
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
]

RECORDED = Path(__file__).with_name("recorded")
KEY, SECRET = "PKTESTPAPERKEY000001", "pApErSeCrEt0000000000000000000000000000042"
NOW = 1_707_771_931.0  # 2024-02-12T21:05:31Z


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


ERRORS = _recorded("alpaca_errors.json")


def _response(status: int, body: Any, url: str, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.models.Response()
    response.status_code = status
    response.url = url
    response.encoding = "utf-8"
    response.headers["Content-Type"] = "application/json"
    response.headers.update({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "150", "X-RateLimit-Reset": str(int(NOW) + 60)})
    response.headers.update(headers or {})
    response._content = json.dumps(body).encode()
    return response


class AlpacaPaperServer:
    """A stateful stand-in for paper-api.alpaca.markets/v2.

    Orders are accepted on submit and fill at ``prices`` when they are next looked up (the market opened in
    between). ``faults`` holds, per ``"METHOD /path"``, answers to give instead of the normal one, in order:
    ``"429"``, ``"500"``, ``"timeout_after_create"`` (the order is created, the answer lost),
    ``"connect_timeout"`` (nothing reached the server).
    """

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, float] = {}
        self.cash = 100_000.0
        self.prices: dict[str, float] = {}
        self.reject_symbols: set[str] = set()
        self.faults: dict[str, list[str]] = {}
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        params, body, headers = kwargs.get("params") or {}, kwargs.get("json") or {}, kwargs.get("headers") or {}
        self.calls.append({"method": method, "path": path, "params": params, "json": body, "timeout": kwargs.get("timeout")})
        if headers.get("APCA-API-KEY-ID") != KEY or headers.get("APCA-API-SECRET-KEY") != SECRET:
            return self._error("unauthorized", url)
        fault = (self.faults.get(f"{method} {path}") or [None]).pop(0) if self.faults.get(f"{method} {path}") else None
        if fault == "429":
            return self._error("rate_limited", url, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 7)})
        if fault == "500":
            return self._error("server_error", url)
        if fault == "connect_timeout":
            raise requests.exceptions.ConnectTimeout(f"HTTPSConnectionPool(host='paper-api.alpaca.markets'): {path}")
        if method == "POST" and path == "/v2/orders":
            return self._submit(body, url, lost=fault == "timeout_after_create")
        if path == "/v2/orders:by_client_order_id":
            order = self.orders.get(params.get("client_order_id", ""))
            if order is None:
                return self._error("not_found", url)
            self._fill(order)
            return _response(200, order, url)
        if path == "/v2/orders":
            return _response(200, list(self.orders.values()), url)
        if path == "/v2/positions":
            return _response(200, [self._position(s, q) for s, q in self.positions.items() if q], url)
        if path == "/v2/account":
            account = _recorded("alpaca_account.json")
            equity = self.cash + sum(q * self.prices.get(s, 0.0) for s, q in self.positions.items())
            account.update(cash=str(self.cash), equity=str(equity), portfolio_value=str(equity))
            return _response(200, account, url)
        if path == "/v2/clock":
            return _response(200, _recorded("alpaca_clock.json"), url)
        return _response(404, {"message": "Not Found"}, url)

    def _error(self, name: str, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        return _response(ERRORS[name]["status"], ERRORS[name]["body"], url, headers)

    def _submit(self, body: dict[str, Any], url: str, lost: bool) -> requests.Response:
        cid = body["client_order_id"]
        if cid in self.orders:
            return self._error("duplicate", url)
        if body["symbol"] in self.reject_symbols:
            return self._error("buying_power", url)
        order = _recorded("alpaca_order.json")
        order.update(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=body["symbol"],
            qty=str(body["qty"]),
            side=body["side"],
            time_in_force=body["time_in_force"],
            type=body["type"],
            order_type=body["type"],
        )
        self.orders[cid] = order
        if lost:
            raise requests.exceptions.ReadTimeout(
                "HTTPSConnectionPool(host='paper-api.alpaca.markets'): Read timed out. (read timeout=10.0)"
            )
        return _response(200, order, url)

    def _fill(self, order: dict[str, Any]) -> None:
        if order["status"] != "accepted" or order["symbol"] not in self.prices:
            return
        qty, price = float(order["qty"]), self.prices[order["symbol"]]
        sign = 1.0 if order["side"] == "buy" else -1.0
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], 0.0) + sign * qty
        self.cash -= sign * qty * price
        order.update(status="filled", filled_qty=order["qty"], filled_avg_price=str(price), filled_at="2024-02-13T14:30:00.5Z")

    def _position(self, symbol: str, qty: float) -> dict[str, Any]:
        p = _recorded("alpaca_position.json")
        price = self.prices.get(symbol, 100.0)
        p.update(symbol=symbol, qty=str(abs(qty)), qty_available=str(abs(qty)), side="long" if qty > 0 else "short")
        p.update(current_price=str(price), market_value=str(qty * price), cost_basis=str(qty * price))
        return p

    def posts(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == "POST"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> AlpacaPaperServer:
    stub = AlpacaPaperServer()

    def request(session: Any, method: str, url: str, **kwargs: Any) -> requests.Response:
        return stub.request(method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    return stub


class Clock:
    """Fake time: sleeping advances it (and is recorded)."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _broker(clock: Clock, tickers: tuple[str, ...] = ("AAPL", "MSFT")) -> Any:
    from finrl_lite.trade.brokers.alpaca import AlpacaBroker, RetryPolicy

    return AlpacaBroker(
        tickers, policy=RetryPolicy(timeout=7.5, retries=3, backoff=0.5), sleep=clock.sleep, clock=lambda: clock.now
    )


def _intent(ticker: str = "AAPL", side: str = "buy", qty: float = 26) -> OrderIntent:
    cid = client_order_id("0123456789abcdef", "2024-02-12", ticker, side)
    return OrderIntent(cid, "2024-02-12T00:00:00", ticker, side, qty, 187.15)


# ---------------------------------------------------------------------------------------------- the adapter


def test_submit_lookup_positions_account_through_alpaca_py(server: AlpacaPaperServer) -> None:
    clock = Clock()
    broker = _broker(clock)
    order = broker.submit(_intent())
    assert (order.ticker, order.side, order.qty, order.status) == ("AAPL", "buy", 26.0, "accepted")
    post = server.posts()[0]
    assert post["json"] == {
        "symbol": "AAPL",
        "qty": 26.0,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": _intent().client_order_id,
    }
    server.prices["AAPL"] = 187.15
    filled = broker.get_order(_intent().client_order_id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == ("filled", 26.0, 187.15)
    assert broker.positions() == {"AAPL": 26.0}
    assert broker.account().cash == pytest.approx(100_000 - 26 * 187.15)
    assert broker.get_order("fl-never-sent") is None  # 404: never received
    assert [o.client_order_id for o in broker.list_orders("fl-0123456789ab-")] == [_intent().client_order_id]
    assert broker.clock().is_open is False
    assert {c["timeout"] for c in server.calls} == {7.5}  # every request has a timeout
    assert clock.sleeps == []


def test_429_then_success_waits_for_the_rate_limit_reset(server: AlpacaPaperServer) -> None:
    clock = Clock()
    broker = _broker(clock)
    server.faults["GET /v2/account"] = ["429"]
    assert broker.account().cash == 100_000.0
    assert clock.sleeps == [7.0]  # X-RateLimit-Reset is 7 s ahead: more than the 0.5 s backoff
    server.faults["POST /v2/orders"] = ["429", "429"]  # a refused submit was not processed: sent again
    assert broker.submit(_intent()).status == "accepted"
    assert len(server.posts()) == 3 and len(server.orders) == 1


def test_spent_rate_limit_budget_pauses_before_the_next_request(
    server: AlpacaPaperServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    broker = _broker(clock)
    original = server.request

    def spent(method: str, url: str, **kwargs: Any) -> requests.Response:
        response = original(method, url, **kwargs)
        response.headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.now) + 3)})
        return response

    monkeypatch.setattr(server, "request", spent)
    broker.positions()
    assert clock.sleeps == []
    broker.positions()
    assert clock.sleeps == [3.0]


def test_500_is_retried_on_reads_and_makes_a_submit_uncertain(server: AlpacaPaperServer) -> None:
    clock = Clock()
    broker = _broker(clock)
    server.faults["GET /v2/positions"] = ["500", "500"]
    assert broker.positions() == {}
    assert clock.sleeps == [0.5, 1.0]  # exponential backoff
    server.faults["POST /v2/orders"] = ["500"]
    with pytest.raises(SubmitUncertain, match="HTTP 500"):
        broker.submit(_intent())
    assert len(server.posts()) == 1  # never resent blindly
    server.faults["GET /v2/account"] = ["500"] * 4
    with pytest.raises(BrokerUnavailable, match="failed 4 times.*HTTP 500"):
        broker.account()


def test_rejected_duplicate_and_unauthorized(server: AlpacaPaperServer, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _broker(Clock())
    server.reject_symbols.add("MSFT")
    with pytest.raises(OrderRejected, match="HTTP 403: insufficient buying power"):
        broker.submit(_intent("MSFT"))
    broker.submit(_intent())
    with pytest.raises(DuplicateClientOrderId, match="client_order_id must be unique"):
        broker.submit(_intent())
    assert len(server.orders) == 1
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong")
    with pytest.raises(BrokerError, match="HTTP 401.*APCA_API_KEY_ID"):
        _broker(Clock()).account()


def test_missing_keys_name_the_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY.*not set: APCA_API_KEY_ID"):
        _broker(Clock())


# ---------------------------------------------------------------------------------------------- the loop


def _alpaca_trader(run: Path, journal: Path, max_bars: int) -> Any:
    from finrl_lite.trade.config import PaperConfig
    from finrl_lite.trade.session import open_session

    cfg = PaperConfig(broker="alpaca", journal=str(journal), max_bars=max_bars, alpaca={"backoff_seconds": 0.0})
    return open_session(run, cfg)


def _set_prices(server: AlpacaPaperServer, run: Path) -> None:
    from finrl_lite.data_processors.processor import prepare_data
    from finrl_lite.train.pipeline import load_run_config

    market = prepare_data(load_run_config(run)).market.slice("trade")
    server.prices.update({t: float(market.field("open")[1, i]) for i, t in enumerate(market.tickers)})


def test_timeout_on_submit_is_followed_by_the_lookup_that_finds_the_order(
    server: AlpacaPaperServer, tiny_run: Path, tmp_path: Path
) -> None:
    _set_prices(server, tiny_run)
    server.faults["POST /v2/orders"] = ["timeout_after_create", "connect_timeout"]
    trader = _alpaca_trader(tiny_run, tmp_path / "journal.sqlite", max_bars=1)
    trader.start()
    trader.run()
    orders = trader.journal.orders()
    trader.journal.close()
    # first order: created, answer lost -> looked up and found (one POST); second: never reached the server ->
    # not found by the lookup -> sent again under the same id
    first, second = orders[0].client_order_id, orders[1].client_order_id
    posts = [c["json"]["client_order_id"] for c in server.posts()]
    assert posts.count(first) == 1 and posts.count(second) == 2
    assert sorted(server.orders) == sorted(o.client_order_id for o in orders)
    assert orders[0].status == "filled"  # the lookup found it (and the stub had filled it by then)
    assert orders[1].status == "accepted"  # the answer to the second send


def _first_bar_orders(server: AlpacaPaperServer, run: Path, tmp_path: Path) -> list[Any]:
    """The orders the agent places at the session's first bar, from a dry run (nothing reaches the server)."""
    from finrl_lite.trade.config import PaperConfig
    from finrl_lite.trade.session import open_session

    cfg = PaperConfig(
        broker="alpaca", journal=str(tmp_path / "dry.sqlite"), max_bars=1, dry_run=True, alpaca={"backoff_seconds": 0.0}
    )
    trader = open_session(run, cfg)
    trader.start()
    trader.run()
    orders = trader.journal.orders()
    trader.journal.close()
    assert not server.posts() and not server.orders
    return orders


def test_rejected_order_and_duplicate_id_in_a_session(server: AlpacaPaperServer, tiny_run: Path, tmp_path: Path) -> None:
    _set_prices(server, tiny_run)
    planned = _first_bar_orders(server, tiny_run, tmp_path)
    assert len(planned) >= 2, f"the tiny agent places {len(planned)} orders at the first bar; the test needs two"
    found, rejected = planned[0], planned[-1]
    trader = _alpaca_trader(tiny_run, tmp_path / "journal.sqlite", max_bars=1)
    trader.start()
    # an earlier run of this session got the first order to the broker but died before journaling the answer
    server._submit(
        {
            "client_order_id": found.client_order_id,
            "symbol": found.ticker,
            "qty": found.qty,
            "side": found.side,
            "time_in_force": "day",
            "type": "market",
        },
        "",
        False,
    )
    server.reject_symbols.add(rejected.ticker)
    trader.run()
    by_ticker = {o.ticker: o for o in trader.journal.orders()}
    events = trader.journal.events()
    trader.journal.close()
    assert [(o.ticker, o.client_order_id) for o in planned] == [(t, o.client_order_id) for t, o in by_ticker.items()]
    assert by_ticker[found.ticker].status == "filled"  # refused as a duplicate, then found at the broker: one order
    assert by_ticker[rejected.ticker].status == "rejected" and "insufficient buying power" in by_ticker[rejected.ticker].reason
    assert all(by_ticker[o.ticker].status == "accepted" for o in planned[1:-1])
    assert len(server.orders) == len(planned) - 1  # the rejected order is not kept
    assert not [e for e in events if e["kind"] == "uncertain"]


def test_normal_session_from_the_cli_never_leaks_the_secret(
    server: AlpacaPaperServer, tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from finrl_lite.cli import app

    _set_prices(server, tiny_run)
    journal = tmp_path / "alpaca" / "journal.sqlite"
    server.faults["GET /v2/account"] = ["429"]
    server.faults["GET /v2/positions"] = ["500"]
    argv = ["-vv", "paper", str(tiny_run), "--broker", "alpaca", "--journal", str(journal), "--max-bars", "4"]
    argv += ["--set", "alpaca.backoff_seconds=0", "--no-live"]
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        status = CliRunner().invoke(app, ["paper", "status", str(journal)])
    assert status.exit_code == 0, status.output
    assert "4 bar(s) (4 traded)" in result.output and "broker alpaca" in status.output
    orders = _journal_orders(journal)
    assert sorted(server.orders) == sorted(o.client_order_id for o in orders) and len(orders) >= 4
    assert {o.status for o in orders} == {"filled", "accepted"}  # each bar's sync saw the previous bar's fills
    positions = {o.ticker: 0.0 for o in orders}
    for o in orders:
        positions[o.ticker] += o.filled_qty if o.side == "buy" else -o.filled_qty
    assert {t: q for t, q in positions.items() if q} == server.positions
    # the secret key appears nowhere: output, logs, journal, log file, PNG
    assert server.faults == {"GET /v2/account": [], "GET /v2/positions": []}  # the 429 and the 500 were met
    assert not [t for t in (result.output, status.output, caplog.text) if SECRET in t or KEY in t]
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in Path(tiny_run).rglob("*") if p.is_file()]
    assert any(p.name == "paper.log" for p in written) and any(p.suffix == ".png" for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes() or KEY.encode() in p.read_bytes()]


def _journal_orders(path: Path) -> list[Any]:
    from finrl_lite.trade.journal import Journal

    journal = Journal(path, read_only=True)
    try:
        return journal.orders()
    finally:
        journal.close()


# ---------------------------------------------------------------------------------------------- the feed


def test_alpaca_feed_history_then_each_completed_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded daily bars of AAPL/MSFT (2024-02-01..14) through the real alpaca data source and alpaca-py."""
    import alpaca.common.rest as alpaca_rest

    from finrl_lite.data_processors.sources.alpaca import AlpacaSource
    from finrl_lite.trade.feeds.alpaca import AlpacaFeed

    recorded = Path(__file__).parents[1] / "data" / "recorded"
    pages = {False: json.loads((recorded / "alpaca_stocks_bars_page1.json").read_text()),
             True: json.loads((recorded / "alpaca_stocks_bars_page2.json").read_text())}  # fmt: skip

    def request(session: Any, method: str, url: str, params: Any = None, **_: Any) -> requests.Response:
        wire = requests.Request(method, url, params=params).prepare().url or url
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(wire).query))
        lo, hi = pd.Timestamp(q["start"]), pd.Timestamp(q["end"])
        doc = copy.deepcopy(pages[bool(q.get("page_token"))])
        doc["bars"] = {s: [b for b in rows if lo <= pd.Timestamp(b["t"]) <= hi] for s, rows in doc["bars"].items()}
        doc["bars"] = {s: rows for s, rows in doc["bars"].items() if rows and s in q["symbols"].split(",")}
        return _response(200, doc, url)

    monkeypatch.setattr(requests.Session, "request", request)
    monkeypatch.setattr(alpaca_rest, "time", type("T", (), {"sleep": staticmethod(lambda s: pytest.fail("retried"))}))
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    now = {"t": pd.Timestamp("2024-02-09 23:00")}  # after Friday's close: bars through 02-09 are complete
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now["t"] += pd.Timedelta(seconds=seconds)

    feed = AlpacaFeed(
        ["AAPL", "MSFT"], "1d", "XNYS", AlpacaSource(), history_bars=5, settle_seconds=60, now=lambda: now["t"], sleep=sleep
    )
    history = feed.history()
    assert history["date"].max() == pd.Timestamp("2024-02-09") and set(history["tic"]) == {"AAPL", "MSFT"}
    bars = feed.bars()
    released = [next(bars) for _ in range(3)]
    assert [b["date"].iloc[0] for b in released] == [pd.Timestamp(d) for d in ("2024-02-12", "2024-02-13", "2024-02-14")]
    assert all(len(b) == 2 for b in released)
    # each bar is asked for one minute after its session's close (21:00 UTC in February), never before
    assert now["t"] == pd.Timestamp("2024-02-14 21:01")
