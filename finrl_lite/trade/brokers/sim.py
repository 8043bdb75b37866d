"""`SimBroker`: a broker that fills with the environment's own execution rules and keeps its state in SQLite.

Orders wait until the next bar arrives (:meth:`SimBroker.advance`); then all of them fill together at that
bar's open through :func:`~finrl_lite.envs.simulator.execute_orders`, the function the environment steps
with: sells before buys, buys in descending order of size and limited by the cash left, whole lots, fees,
slippage, T+1, untradable tickers skipped. That is the environment's default ``execution="next_open"``
(decide on a bar's close, fill at the next bar's open). The state (cash, positions, orders) lives in its
own SQLite file, so across restarts of the loop it behaves like a remote broker: it knows which client
order ids it has received, and it never fills a bar twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.simulator import execute_orders
from finrl_lite.errors import ConfigError, DataError
from finrl_lite.trade.brokers.base import Account, BrokerOrder, DuplicateClientOrderId, OrderRejected
from finrl_lite.trade.orders import OrderIntent
from finrl_lite.trade.sqlite import connect, transaction

__all__ = ["MarketBar", "SimBroker"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), cash REAL NOT NULL, last_bar TEXT, last_day INTEGER);
CREATE TABLE IF NOT EXISTS positions (ticker TEXT PRIMARY KEY, qty REAL NOT NULL, locked REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    ticker TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    status TEXT NOT NULL,
    filled_qty REAL NOT NULL DEFAULT 0,
    filled_avg_price REAL,
    fee REAL NOT NULL DEFAULT 0,
    fill_bar TEXT,
    reason TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class MarketBar:
    """One bar of the processed market, as the broker needs it to fill and value.

    Attributes:
        time: Bar time (journal text form).
        day: Calendar day number (for the T+1 rule).
        open: ``[N]`` open prices (0 where the ticker has no price yet).
        close: ``[N]`` close prices.
        valid: ``[N]`` bool, the ticker had a real bar.
    """

    time: str
    day: int
    open: np.ndarray
    close: np.ndarray
    valid: np.ndarray


class SimBroker:
    """A simulated broker for the tickers of one run.

    Args:
        path: Its SQLite state file (created on first use); None keeps the state in memory.
        params: The run's environment parameters (fees, lots, slippage, T+1, fractional shares).
        tickers: The run's tickers (the order of the environment's columns).
        initial_cash: Cash of a new account.
        owner: Identity of the session that owns the account (the run id); another owner is refused.
    """

    name = "sim"

    def __init__(
        self,
        path: str | Path | None,
        params: StockTradingParams,
        tickers: tuple[str, ...],
        initial_cash: float,
        owner: str,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.params = params
        self.tickers = tuple(tickers)
        self._column = {t: i for i, t in enumerate(self.tickers)}
        label = str(self.path) if self.path is not None else "<in-memory sim broker>"
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect(self.path)
            self._db.executescript(_SCHEMA)
            with transaction(self._db) as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    db.execute("INSERT INTO meta VALUES ('owner', ?), ('tickers', ?)", (owner, json.dumps(self.tickers)))
                    db.execute("INSERT INTO account (id, cash) VALUES (1, ?)", (float(initial_cash),))
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{label}: not a readable sim broker file (corrupt or not SQLite: {exc})") from exc
        if meta and meta.get("owner") != owner:
            raise ConfigError(
                f"{label} is the sim broker account of another run (run id {meta.get('owner')}), not of run {owner}; "
                "use the journal it belongs to, or move it away"
            )
        if meta and tuple(json.loads(meta["tickers"])) != self.tickers:
            raise ConfigError(f"{label} holds an account for tickers {json.loads(meta['tickers'])}, not {list(self.tickers)}")

    # ------------------------------------------------------------------ the broker interface

    def submit(self, intent: OrderIntent) -> BrokerOrder:
        if intent.ticker not in self._column:
            raise OrderRejected(f"unknown symbol {intent.ticker}")
        if not intent.qty > 0 or intent.side not in ("buy", "sell"):
            raise OrderRejected(f"invalid order: {intent.side} {intent.qty}")
        try:
            with transaction(self._db) as db:
                open_same = db.execute(
                    "SELECT client_order_id FROM orders WHERE ticker = ? AND status = 'accepted'", (intent.ticker,)
                ).fetchone()
                if open_same is not None and open_same[0] != intent.client_order_id:
                    raise OrderRejected(f"an order for {intent.ticker} is already open ({open_same[0]})")
                db.execute(
                    "INSERT INTO orders (client_order_id, ticker, side, qty, status) VALUES (?, ?, ?, ?, 'accepted')",
                    (intent.client_order_id, intent.ticker, intent.side, float(intent.qty)),
                )
        except sqlite3.IntegrityError:
            raise DuplicateClientOrderId(f"client_order_id must be unique: {intent.client_order_id}") from None
        order = self.get_order(intent.client_order_id)
        assert order is not None
        return order

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        row = self._db.execute("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _order(row)

    def list_orders(self, prefix: str = "") -> list[BrokerOrder]:
        rows = self._db.execute(
            "SELECT * FROM orders WHERE substr(client_order_id, 1, ?) = ? ORDER BY seq", (len(prefix), prefix)
        )
        return [_order(r) for r in rows]

    def positions(self) -> dict[str, float]:
        return {t: float(q) for t, q in self._db.execute("SELECT ticker, qty FROM positions WHERE qty != 0")}

    def account(self) -> Account:
        return Account(cash=float(self._db.execute("SELECT cash FROM account").fetchone()[0]))

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ the exchange side

    def advance(self, bar: MarketBar) -> None:
        """Fill every open order at ``bar``'s open with the environment's rules (once per bar; idempotent).

        Orders on a ticker that is not tradable on the bar, or buys the cash does not cover, fill partly
        or not at all and expire (the reason says which).
        """
        params = self.params
        with transaction(self._db):
            cash_now, last_bar, last_day = self._db.execute("SELECT cash, last_bar, last_day FROM account").fetchone()
            if last_bar is not None and bar.time <= last_bar:
                return  # this bar has been filled already (nothing written)
            rows = self._db.execute("SELECT client_order_id, ticker, side, qty FROM orders WHERE status = 'accepted'").fetchall()
            n = len(self.tickers)
            holdings, locked = np.zeros(n), np.zeros(n)
            for ticker, qty, lock in self._db.execute("SELECT ticker, qty, locked FROM positions"):
                holdings[self._column[ticker]], locked[self._column[ticker]] = qty, lock
            if params.t_plus_1 and last_day is not None and last_day != bar.day:
                locked[:] = 0.0
            orders = np.zeros(n)
            for _, ticker, side, qty in rows:
                orders[self._column[ticker]] = qty if side == "buy" else -qty
            price = np.nan_to_num(bar.open)
            tradable = bar.valid & (price > 0)
            dt_ = params.dtype
            fills = execute_orders(
                params,
                torch.tensor([cash_now], dtype=dt_),
                torch.as_tensor(holdings, dtype=dt_).unsqueeze(0),
                torch.as_tensor(locked, dtype=dt_).unsqueeze(0),
                torch.as_tensor(orders, dtype=dt_).unsqueeze(0),
                torch.as_tensor(price, dtype=dt_).unsqueeze(0),
                torch.as_tensor(tradable).unsqueeze(0),
                torch.zeros(1, dtype=torch.bool),
            )
            filled = (fills.bought - fills.sold)[0]
            fee, notional = _per_fill_costs(params, filled, torch.as_tensor(price, dtype=dt_))
            for cid, ticker, side, qty in rows:
                j = self._column[ticker]
                got = float(abs(filled[j]))
                if got >= qty:
                    status, reason = "filled", ""
                else:
                    status = "expired"
                    reason = (
                        f"{ticker} not tradable on {bar.time}"
                        if not tradable[j]
                        else f"filled {got:g} of {qty:g} ({'cash' if side == 'buy' else 'shares'} ran out)"
                    )
                avg = float(notional[j]) / got if got > 0 else None
                self._db.execute(
                    "UPDATE orders SET status = ?, filled_qty = ?, filled_avg_price = ?, fee = ?, fill_bar = ?, reason = ?"
                    " WHERE client_order_id = ?",
                    (status, got, avg, float(fee[j]), bar.time, reason, cid),
                )
            new_holdings, new_locked = fills.holdings[0].tolist(), fills.locked[0].tolist()
            for j, ticker in enumerate(self.tickers):
                self._db.execute(
                    "INSERT INTO positions VALUES (?, ?, ?)"
                    " ON CONFLICT (ticker) DO UPDATE SET qty = excluded.qty, locked = excluded.locked",
                    (ticker, new_holdings[j], new_locked[j]),
                )
            self._db.execute(
                "UPDATE account SET cash = ?, last_bar = ?, last_day = ?", (float(fills.cash[0]), bar.time, int(bar.day))
            )
        if rows:
            logger.info("sim broker: %d order(s) filled on %s; cash %.2f", len(rows), bar.time, float(fills.cash[0]))


def _per_fill_costs(params: StockTradingParams, filled: torch.Tensor, price: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fee and notional of each ticker's fill on its own, by the same :func:`execute_orders` (one row per ticker).

    The fills already happened together; executing each one alone, with enough cash and shares, gives the
    fee and notional that the environment's rules charge for it (their sum is the bar's total).
    """
    n = filled.shape[0]
    orders = torch.diag(filled)
    holdings = torch.diag((-filled).clamp_min(0.0))
    enough = float((filled.abs() * price).sum()) * (1.0 + params.buy_cost_pct) + params.min_cost * n + 1.0
    cash = torch.full((n,), enough, dtype=filled.dtype)
    one = execute_orders(
        params,
        cash,
        holdings,
        torch.zeros_like(holdings),
        orders,
        price.expand(n, n),
        torch.ones(n, n, dtype=torch.bool),
        torch.zeros(n, dtype=torch.bool),
    )
    return one.costs, one.notional


def _order(row: sqlite3.Row | tuple) -> BrokerOrder:
    (_, cid, ticker, side, qty, status, filled, avg, fee, _, reason) = tuple(row)
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=f"sim-{cid}",
        ticker=ticker,
        side=side,
        qty=float(qty),
        status=status,
        filled_qty=float(filled),
        filled_avg_price=None if avg is None else float(avg),
        fee=float(fee),
        reason=reason,
    )
