"""The trading journal: one SQLite file (WAL, ``synchronous=FULL``) that survives ``kill -9``.

Every intended order is written, with its deterministic client order id, before it is sent; what the broker
answers (accepted, fills, rejection) is written after. A bar is first ``decided`` (the action and its orders,
in one transaction) and then ``done`` (cash, equity and positions after it). On a restart the journal says
exactly where the loop stopped; :mod:`finrl_lite.trade.reconcile` compares it with the broker.

Tables::

    meta    key/value: schema, run_id, run_dir, layout, broker, start cash/positions/equity
    bars    one row per bar: status (decided|done|warmup), action, cash, equity, positions, baselines
    orders  one row per order: client_order_id, bar, ticker, side, qty, status, fills, reason
    events  what happened besides orders: reconciliation, risk blocks, resends, errors
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finrl_lite.errors import ConfigError, DataError
from finrl_lite.trade.brokers.base import BrokerOrder
from finrl_lite.trade.orders import OrderIntent
from finrl_lite.trade.sqlite import connect, transaction

__all__ = ["Journal", "JournalBar", "JournalOrder", "OPEN_STATUSES", "SCHEMA_VERSION"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
OPEN_STATUSES = ("intended", "not_received", "accepted", "partially_filled")
"""Journal statuses of orders whose outcome is not final (``not_received``: the broker never got it; it is
sent again if its bar is traded again, otherwise it stays so)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    time TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    action TEXT,
    cash REAL,
    equity REAL,
    positions TEXT,
    baselines TEXT,
    broker_equity REAL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    bar_time TEXT NOT NULL,
    ticker TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    ref_price REAL NOT NULL,
    status TEXT NOT NULL,
    broker_order_id TEXT,
    filled_qty REAL NOT NULL DEFAULT 0,
    filled_avg_price REAL,
    fee REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_bar ON orders (bar_time);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    bar_time TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class JournalOrder(OrderIntent):
    """One order row: the intent as journaled, and what became of it."""

    status: str
    broker_order_id: str | None
    filled_qty: float
    filled_avg_price: float | None
    fee: float
    reason: str
    updated_at: str


@dataclass(frozen=True)
class JournalBar:
    """One bar row (``cash``/``equity``/``positions`` are set once the bar is done)."""

    time: str
    status: str
    action: list[float] | None
    cash: float | None
    equity: float | None
    positions: dict[str, float]
    baselines: dict[str, float]
    broker_equity: float | None


class Journal:
    """The SQLite journal of one paper-trading session of one run.

    Args:
        path: The journal file (created with its folder); None keeps it in memory (``--dry-run``).
        read_only: Open an existing journal without writing (``paper status``).

    Raises:
        DataError: the file is not a readable SQLite database, or not a finrl-lite journal.
    """

    def __init__(self, path: str | Path | None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.label = str(self.path) if self.path is not None else "<in-memory journal>"
        if self.path is not None and read_only and not self.path.is_file():
            raise DataError(f"{self.path}: no such journal file")
        if self.path is not None and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = connect(self.path, read_only)
            self._db.row_factory = sqlite3.Row
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            if not read_only:
                self._db.executescript(_SCHEMA)
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise DataError(
                f"{self.label}: not a readable journal (corrupt or not SQLite: {exc}); move it away to start a new one"
            ) from exc
        missing = {"meta", "bars", "orders", "events"} - tables
        if missing:
            raise DataError(f"{self.label}: not a finrl-lite journal (tables {sorted(missing)} missing)")
        version = self.meta("schema")
        if version is not None and int(version) != SCHEMA_VERSION:
            raise DataError(f"{self.label}: journal schema {version}, this version of finrl-lite reads schema {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ plumbing

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One atomic, durable write (BEGIN IMMEDIATE ... COMMIT)."""
        return transaction(self._db)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def meta_json(self, key: str) -> Any:
        raw = self.meta(key)
        return None if raw is None else json.loads(raw)

    def initialise(self, values: dict[str, Any]) -> None:
        """Write the session's identity and starting point (once, in one transaction)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            for key, value in values.items():
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value if isinstance(value, str) else json.dumps(value))
                )

    def check_owner(self, run_id: str, run_dir: str) -> None:
        """Refuse a journal written by another run.

        Raises:
            ConfigError: naming both runs.
        """
        owner = self.meta("run_id")
        if owner is not None and owner != run_id:
            raise ConfigError(
                f"{self.label} is the journal of another run (run id {owner}, {self.meta('run_dir')}), "
                f"not of {run_dir} (run id {run_id}); pass another --journal, or move that file away"
            )

    @property
    def initialised(self) -> bool:
        return self.meta("run_id") is not None

    # ------------------------------------------------------------------ bars

    def bar(self, time: str) -> JournalBar | None:
        row = self._db.execute("SELECT * FROM bars WHERE time = ?", (time,)).fetchone()
        return None if row is None else _bar(row)

    def bars(self, status: str = "done") -> list[JournalBar]:
        rows = self._db.execute("SELECT * FROM bars WHERE status = ? ORDER BY time", (status,))
        return [_bar(r) for r in rows]

    def last_finished_bar(self) -> str | None:
        """The last bar the loop finished (traded or warm-up); the next session resumes after it."""
        row = self._db.execute("SELECT MAX(time) FROM bars WHERE status IN ('done', 'warmup')").fetchone()
        return row[0]

    def in_flight_bar(self) -> str | None:
        """A bar whose orders were decided but not all sent when the loop stopped."""
        row = self._db.execute("SELECT MAX(time) FROM bars WHERE status = 'decided'").fetchone()
        return row[0]

    def first_traded_bar(self) -> str | None:
        """The session's first traded bar (where its equity curve and the baselines start)."""
        return self._db.execute("SELECT MIN(time) FROM bars WHERE status IN ('done', 'decided')").fetchone()[0]

    def first_equity(self) -> float | None:
        """Equity at the session's first traded bar."""
        row = self._db.execute("SELECT equity FROM bars WHERE status = 'done' ORDER BY time LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def equity_before(self, time: str) -> float | None:
        """Equity at the last traded bar before ``time`` (a date gives the previous day's close)."""
        row = self._db.execute(
            "SELECT equity FROM bars WHERE status = 'done' AND time < ? ORDER BY time DESC LIMIT 1", (time,)
        ).fetchone()
        return None if row is None else float(row[0])

    def record_decision(self, time: str, action: list[float], intents: list[OrderIntent], blocked: dict[str, str]) -> None:
        """Write the bar's action and every order it asks for, before any is sent (one transaction).

        ``blocked`` maps a client order id to the risk rule that blocked it: that order is journaled
        ``blocked`` and never sent.
        """
        now = _now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO bars (time, status, action, updated_at) VALUES (?, 'decided', ?, ?)", (time, json.dumps(action), now)
            )
            for it in intents:
                reason = blocked.get(it.client_order_id, "")
                db.execute(
                    "INSERT INTO orders (client_order_id, bar_time, ticker, side, qty, ref_price, status, reason,"
                    " created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (it.client_order_id, it.bar_time, it.ticker, it.side, it.qty, it.ref_price,
                     "blocked" if reason else "intended", reason, now, now),
                )  # fmt: skip
                if reason:
                    db.execute(
                        "INSERT INTO events (at, bar_time, kind, detail) VALUES (?, ?, 'risk_block', ?)",
                        (now, time, f"{it.client_order_id} {it.side} {it.qty:g} {it.ticker}: {reason}"),
                    )

    def record_bar(
        self,
        time: str,
        status: str,
        cash: float,
        equity: float,
        positions: dict[str, float],
        baselines: dict[str, float] | None = None,
        broker_equity: float | None = None,
    ) -> None:
        """Mark a bar ``done`` (traded) or ``warmup`` (seen, not traded) with the account after it."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO bars (time, status, cash, equity, positions, baselines, broker_equity, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (time) DO UPDATE SET status = excluded.status,"
                " cash = excluded.cash, equity = excluded.equity, positions = excluded.positions,"
                " baselines = excluded.baselines, broker_equity = excluded.broker_equity, updated_at = excluded.updated_at",
                (time, status, cash, equity, json.dumps(positions), json.dumps(baselines or {}), broker_equity, _now()),
            )

    # ------------------------------------------------------------------ orders

    def orders(self, statuses: tuple[str, ...] | None = None, bar_time: str | None = None) -> list[JournalOrder]:
        sql, args = "SELECT * FROM orders WHERE 1 = 1", []
        if statuses is not None:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            args += list(statuses)
        if bar_time is not None:
            sql += " AND bar_time = ?"
            args.append(bar_time)
        return [_order(r) for r in self._db.execute(sql + " ORDER BY bar_time, client_order_id", args)]

    def order(self, client_order_id: str) -> JournalOrder | None:
        row = self._db.execute("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _order(row)

    def update_order(
        self,
        client_order_id: str,
        status: str,
        *,
        broker_order_id: str | None = None,
        filled_qty: float | None = None,
        filled_avg_price: float | None = None,
        fee: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Record what the broker said about an order (fields left None keep their value)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE orders SET status = ?, broker_order_id = COALESCE(?, broker_order_id),"
                " filled_qty = COALESCE(?, filled_qty), filled_avg_price = COALESCE(?, filled_avg_price),"
                " fee = COALESCE(?, fee), reason = COALESCE(?, reason), updated_at = ? WHERE client_order_id = ?",
                (status, broker_order_id, filled_qty, filled_avg_price, fee, reason, _now(), client_order_id),
            )

    def apply_broker_orders(self, orders: list[BrokerOrder]) -> list[str]:
        """Copy the broker's view of these orders into the journal (one transaction); returns the ids that changed."""
        changed = []
        with self.transaction() as db:
            for o in orders:
                row = db.execute(
                    "SELECT status, filled_qty, filled_avg_price, broker_order_id, fee FROM orders WHERE client_order_id = ?",
                    (o.client_order_id,),
                ).fetchone()
                if row is None or tuple(row) == (o.status, o.filled_qty, o.filled_avg_price, o.broker_order_id, o.fee):
                    continue
                db.execute(
                    "UPDATE orders SET status = ?, broker_order_id = ?, filled_qty = ?, filled_avg_price = ?, fee = ?,"
                    " reason = CASE WHEN ? != '' THEN ? ELSE reason END, updated_at = ? WHERE client_order_id = ?",
                    (
                        o.status,
                        o.broker_order_id,
                        o.filled_qty,
                        o.filled_avg_price,
                        o.fee,
                        o.reason,
                        o.reason,
                        _now(),
                        o.client_order_id,
                    ),
                )
                changed.append(o.client_order_id)
        return changed

    def fills_by_ticker(self) -> dict[str, float]:
        """Net shares filled per ticker over every journaled order."""
        rows = self._db.execute(
            "SELECT ticker, SUM(CASE side WHEN 'buy' THEN filled_qty ELSE -filled_qty END) FROM orders GROUP BY ticker"
        )
        return {r[0]: float(r[1]) for r in rows}

    # ------------------------------------------------------------------ events

    def event(self, kind: str, detail: str, bar_time: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO events (at, bar_time, kind, detail) VALUES (?, ?, ?, ?)", (_now(), bar_time, kind, detail))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events" + (" WHERE kind = ?" if kind else "") + " ORDER BY id"
        return [dict(r) for r in self._db.execute(sql, (kind,) if kind else ())]


def _bar(row: sqlite3.Row) -> JournalBar:
    return JournalBar(
        time=row["time"],
        status=row["status"],
        action=json.loads(row["action"]) if row["action"] else None,
        cash=row["cash"],
        equity=row["equity"],
        positions=json.loads(row["positions"]) if row["positions"] else {},
        baselines=json.loads(row["baselines"]) if row["baselines"] else {},
        broker_equity=row["broker_equity"],
    )


def _order(row: sqlite3.Row) -> JournalOrder:
    return JournalOrder(
        client_order_id=row["client_order_id"],
        bar_time=row["bar_time"],
        ticker=row["ticker"],
        side=row["side"],
        qty=float(row["qty"]),
        ref_price=float(row["ref_price"]),
        status=row["status"],
        broker_order_id=row["broker_order_id"],
        filled_qty=float(row["filled_qty"]),
        filled_avg_price=row["filled_avg_price"],
        fee=float(row["fee"]),
        reason=row["reason"],
        updated_at=row["updated_at"],
    )
