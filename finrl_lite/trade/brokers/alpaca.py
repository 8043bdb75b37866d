"""`AlpacaBroker`: an Alpaca paper account through alpaca-py's ``TradingClient(paper=True)``, made safe to retry.

What alpaca-py 0.44 does by itself (read in ``alpaca/common/rest.py``): it sends every request through one
``requests.Session`` without a timeout, retries HTTP 429 and 504 three times after a fixed 3 s sleep (POST
included, so a 504 on a submit is resent blindly), raises ``APIError`` (``status_code``, ``response``) for
other HTTP errors, and lets transport errors through as plain ``requests`` exceptions.

What this adapter adds:

- a timeout on every request (its own ``requests.Session`` subclass, which also reads the rate-limit headers
  ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` of every answer);
- its own retries instead of alpaca-py's: reads (account, positions, orders, clock) are retried on 429, 5xx
  and transport errors with exponential backoff, waiting as long as ``Retry-After`` or
  ``X-RateLimit-Reset`` say when they are given, and pausing before a request once the budget is spent;
- a submit is never resent blindly: a 429 (refused before it was processed) is retried; a timeout, a lost
  connection or a 5xx make the outcome unknown (:class:`SubmitUncertain`), and the caller looks the order
  up by its client order id; a reused id comes back as :class:`DuplicateClientOrderId`.

Keys come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; they are never logged or written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from finrl_lite.data_processors.sources.alpaca import KEY_ENV, SECRET_ENV, alpaca_keys
from finrl_lite.errors import ConfigError, require
from finrl_lite.trade.brokers.base import (
    Account,
    BrokerOrder,
    DuplicateClientOrderId,
    OrderRejected,
    SubmitUncertain,
)
from finrl_lite.trade.errors import BrokerError, BrokerUnavailable
from finrl_lite.trade.orders import OrderIntent

__all__ = ["AlpacaBroker", "KEY_ENV", "SECRET_ENV", "RetryPolicy"]

logger = logging.getLogger(__name__)


T = TypeVar("T")

_STATUS = {
    "new": "accepted",
    "accepted": "accepted",
    "pending_new": "accepted",
    "accepted_for_bidding": "accepted",
    "held": "accepted",
    "calculated": "accepted",
    "pending_cancel": "accepted",
    "pending_replace": "accepted",
    "pending_review": "accepted",
    "stopped": "accepted",
    "suspended": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "done_for_day": "expired",
    "expired": "expired",
    "canceled": "canceled",
    "replaced": "canceled",
    "rejected": "rejected",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries of the requests to Alpaca.

    Attributes:
        timeout: Seconds to connect and to wait for an answer.
        retries: Retries of a read (and of a submit refused with HTTP 429) after the first attempt.
        backoff: First wait between retries (seconds); doubled each time, at most ``max_wait``.
        max_wait: Longest single wait, also for a rate-limit reset.
    """

    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0


def _keys() -> tuple[str, str]:
    key, secret, unset = alpaca_keys()
    if unset:
        raise ConfigError(
            f"--broker alpaca needs the environment variables {KEY_ENV} and {SECRET_ENV} (your Alpaca paper keys; "
            f"not set: {', '.join(unset)}); keys are read only from the environment, never from files"
        )
    return key, secret


def _symbol(ticker: str) -> str:
    return ticker.replace("/", "").upper()


class AlpacaBroker:
    """An Alpaca paper-trading account.

    Args:
        tickers: The run's tickers (crypto as ``BTC/USD``).
        crypto: Crypto orders (time in force GTC; stocks use DAY, which an order sent after the close
            keeps for the next session's open).
        policy: Timeouts and retries.
        sleep: Waits between retries (tests pass a recorder).
        clock: Seconds since the epoch (for ``X-RateLimit-Reset``).
    """

    name = "alpaca"

    def __init__(
        self,
        tickers: tuple[str, ...],
        crypto: bool = False,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key, secret = _keys()
        require("alpaca.trading", "alpaca", "--broker alpaca")
        import requests
        from alpaca.trading.client import TradingClient

        self.policy = policy or RetryPolicy()
        self.crypto = crypto
        self._sleep, self._clock = sleep, clock
        self._by_symbol = {_symbol(t): t for t in tickers}
        self._session = _timed_session(self.policy.timeout)

        class _Client(TradingClient):  # type: ignore[misc]
            def _one_request(self, method: str, url: str, opts: dict, retry: int) -> dict:  # noqa: ARG002
                return super()._one_request(method, url, opts, 0)  # no retries inside alpaca-py: ours below

        self._client = _Client(api_key=key, secret_key=secret, paper=True)
        self._client._session = self._session
        self._requests = requests

    # ------------------------------------------------------------------ the broker interface

    def submit(self, intent: OrderIntent) -> BrokerOrder:
        from alpaca.common.exceptions import APIError
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        request = MarketOrderRequest(
            symbol=_symbol(intent.ticker) if not self.crypto else intent.ticker,
            qty=intent.qty,
            side=OrderSide.BUY if intent.side == "buy" else OrderSide.SELL,
            time_in_force=TimeInForce.GTC if self.crypto else TimeInForce.DAY,
            client_order_id=intent.client_order_id,
        )
        attempt = 0
        while True:
            self._respect_budget()
            try:
                return self._order(self._client.submit_order(request))
            except APIError as exc:
                status = exc.status_code
                text = _message(exc)
                if status == 429 and attempt < self.policy.retries:
                    self._wait(attempt, exc, "submit (rate limited, not processed)")
                    attempt += 1
                    continue
                if status == 422 and "client_order_id must be unique" in text:
                    raise DuplicateClientOrderId(text) from None
                if status is not None and status >= 500:
                    raise SubmitUncertain(f"HTTP {status}: {text}") from None
                if status == 401:
                    raise BrokerError(f"alpaca refused the order (HTTP 401): {text}; check {KEY_ENV} / {SECRET_ENV}") from None
                raise OrderRejected(f"HTTP {status}: {text}") from None
            except self._requests.exceptions.RequestException as exc:
                raise SubmitUncertain(f"{type(exc).__name__}: {exc}") from None

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        order = self._read("order lookup", lambda: self._client.get_order_by_client_id(client_order_id), missing_ok=True)
        return None if order is None else self._order(order)

    def list_orders(self, prefix: str) -> list[BrokerOrder]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500)
        orders = self._read("orders", lambda: self._client.get_orders(filter=request))
        return [self._order(o) for o in orders if str(o.client_order_id).startswith(prefix)]

    def positions(self) -> dict[str, float]:
        out = {}
        for p in self._read("positions", self._client.get_all_positions):
            qty = float(p.qty)
            if str(getattr(p.side, "value", p.side)) == "short" and qty > 0:
                qty = -qty
            out[self._by_symbol.get(_symbol(p.symbol), p.symbol)] = qty
        return {k: v for k, v in out.items() if v != 0}

    def account(self) -> Account:
        acc = self._read("account", self._client.get_account)
        if getattr(acc, "trading_blocked", False) or getattr(acc, "account_blocked", False):
            raise BrokerError("alpaca: the account is blocked from trading (trading_blocked/account_blocked)")
        return Account(cash=float(acc.cash), equity=float(acc.equity) if acc.equity is not None else None)

    def clock(self) -> Any:
        """alpaca-py's ``Clock`` (``is_open``, ``next_open``, ``next_close``)."""
        return self._read("clock", self._client.get_clock)

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ internals

    def _order(self, o: Any) -> BrokerOrder:
        status = str(getattr(o.status, "value", o.status))
        avg = o.filled_avg_price
        return BrokerOrder(
            client_order_id=str(o.client_order_id),
            broker_order_id=str(o.id),
            ticker=self._by_symbol.get(_symbol(str(o.symbol)), str(o.symbol)),
            side=str(getattr(o.side, "value", o.side)),
            qty=float(o.qty) if o.qty is not None else 0.0,
            status=_STATUS.get(status, "accepted"),  # type: ignore[arg-type]
            filled_qty=float(o.filled_qty or 0.0),
            filled_avg_price=float(avg) if avg not in (None, "") and float(avg) > 0 else None,
            reason=status if status in ("rejected", "canceled", "expired", "done_for_day") else "",
        )

    def _read(self, what: str, call: Callable[[], T], missing_ok: bool = False) -> T:
        from alpaca.common.exceptions import APIError

        last = ""
        for attempt in range(self.policy.retries + 1):
            self._respect_budget()
            try:
                return call()
            except APIError as exc:
                status = exc.status_code
                if status == 404 and missing_ok:
                    return None  # type: ignore[return-value]
                if status in (401, 403):
                    raise BrokerError(
                        f"alpaca refused the {what} request (HTTP {status}): {_message(exc)}; check {KEY_ENV} / {SECRET_ENV} "
                        "(paper keys) and the account"
                    ) from None
                if status != 429 and (status is None or status < 500):
                    raise BrokerError(f"alpaca: {what} request failed (HTTP {status}): {_message(exc)}") from None
                last = f"HTTP {status}: {_message(exc)}"
                if attempt < self.policy.retries:
                    self._wait(attempt, exc, what)
            except self._requests.exceptions.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt < self.policy.retries:
                    self._wait(attempt, None, what)
        raise BrokerUnavailable(f"alpaca: {what} request failed {self.policy.retries + 1} times (last: {last})")

    def _wait(self, attempt: int, exc: Any, what: str) -> None:
        wait = min(self.policy.backoff * 2**attempt, self.policy.max_wait)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        hinted = _header_wait(headers, self._clock(), rate_limited=getattr(response, "status_code", None) == 429)
        if hinted is not None:
            wait = min(max(wait, hinted), self.policy.max_wait)
        logger.warning("alpaca: %s failed, retrying in %.2f s", what, wait)
        self._sleep(wait)

    def _respect_budget(self) -> None:
        limit = self._session.rate_limit
        if limit is not None and limit[0] <= 0:
            wait = min(max(limit[1] - self._clock(), 0.0), self.policy.max_wait)
            self._session.rate_limit = None
            if wait > 0:
                logger.info("alpaca: rate-limit budget spent, waiting %.2f s for its reset", wait)
                self._sleep(wait)


def _message(exc: Any) -> str:
    try:
        return str(exc.message)
    except Exception:  # the body is not the usual {"code", "message"} JSON
        return str(exc)[:300]


def _header_wait(headers: Any, now: float, rate_limited: bool) -> float | None:
    """Seconds to wait from ``Retry-After``, or from ``X-RateLimit-Reset`` (epoch seconds) on a 429, if given."""
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset is not None and rate_limited:
        try:
            return max(float(reset) - now, 0.0)
        except ValueError:
            return None
    return None


def _timed_session(timeout: float) -> Any:
    """A ``requests.Session`` with a default timeout that keeps the last rate-limit headers it saw."""
    import requests

    class TimedSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.rate_limit: tuple[float, float] | None = None  # (remaining, reset in epoch seconds)

        def request(self, method: str, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs.setdefault("timeout", timeout)
            response = super().request(method, url, **kwargs)
            remaining, reset = response.headers.get("X-RateLimit-Remaining"), response.headers.get("X-RateLimit-Reset")
            try:
                self.rate_limit = (float(remaining), float(reset)) if remaining is not None and reset is not None else None
            except ValueError:
                self.rate_limit = None
            return response

    return TimedSession()
