"""Reconciliation: the journal against the broker's orders (by client order id) and positions, before trading.

The broker is authoritative. What it says about an order the journal knows is copied into the journal. An
order the journal intended but the broker never received is resolved explicitly: it becomes
``not_received`` (and is sent again only if its bar is traded again). Anything that cannot be explained
(an order of this run at the broker that the journal never intended, an order the broker acknowledged and
then lost, positions that differ beyond the tolerance) stops the loop with a clear message: it fails closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from finrl_lite.trade.brokers.base import Broker
from finrl_lite.trade.errors import ReconciliationError
from finrl_lite.trade.journal import OPEN_STATUSES, Journal

__all__ = ["ReconcileReport", "expected_positions", "reconcile", "sync_open_orders"]

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What reconciliation found and did.

    Attributes:
        orders_checked: Journal orders compared with the broker.
        updated: Orders whose journal row was brought up to the broker's state.
        not_received: Intended orders the broker never received.
        positions: Per ticker, (journal's expected, broker's) shares.
    """

    orders_checked: int = 0
    updated: list[str] = field(default_factory=list)
    not_received: list[str] = field(default_factory=list)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"reconciled {self.orders_checked} order(s): {len(self.updated)} updated from the broker, "
            f"{len(self.not_received)} never received; {len(self.positions)} position(s) agree"
        )


def sync_open_orders(journal: Journal, broker: Broker) -> list[str]:
    """Ask the broker about every order the journal has sent and not seen finish; returns those that changed.

    Orders still ``intended`` (a submit whose outcome stayed unknown) are looked up too: found, they are
    synced; not found, they stay as they are until the next reconciliation resolves them.
    """
    seen = []
    for row in journal.orders(("intended", "accepted", "partially_filled")):
        order = broker.get_order(row.client_order_id)
        if order is None and row.status == "intended":
            continue
        if order is None:
            raise ReconciliationError(
                f"the broker no longer knows order {row.client_order_id} ({row.side} {row.qty:g} {row.ticker}, "
                f"journaled {row.status}); refusing to trade until the journal ({journal.label}) and the account agree"
            )
        seen.append(order)
    return journal.apply_broker_orders(seen) if seen else []


def expected_positions(journal: Journal) -> dict[str, float]:
    """Positions the journal accounts for: the session's starting positions plus every journaled fill."""
    out = {k: float(v) for k, v in (journal.meta_json("start_positions") or {}).items()}
    for ticker, qty in journal.fills_by_ticker().items():
        out[ticker] = out.get(ticker, 0.0) + qty
    return {k: v for k, v in out.items() if v != 0}


def reconcile(journal: Journal, broker: Broker, prefix: str, tickers: tuple[str, ...], tolerance: float) -> ReconcileReport:
    """Bring the journal up to the broker's state, or fail closed.

    Args:
        journal: The session's journal.
        broker: The broker.
        prefix: Client-order-id prefix of the run (:func:`~finrl_lite.trade.orders.run_prefix`).
        tickers: The run's tickers (positions in other symbols are not the run's and are left alone).
        tolerance: Largest difference in shares between the journal's and the broker's positions.

    Raises:
        ReconciliationError: an unexplained order or a position difference beyond ``tolerance``.
    """
    report = ReconcileReport()
    at_broker = {o.client_order_id: o for o in broker.list_orders(prefix)}
    rows = journal.orders()
    known = {o.client_order_id for o in rows}
    strangers = sorted(set(at_broker) - known)
    if strangers:
        listed = "; ".join(f"{c} ({at_broker[c].side} {at_broker[c].qty:g} {at_broker[c].ticker})" for c in strangers[:5])
        raise ReconciliationError(
            f"the broker has {len(strangers)} order(s) of this run that the journal {journal.label} never intended: {listed}. "
            "Another process may be trading this run, or the journal was replaced; refusing to trade"
        )
    found = []
    for row in rows:
        if row.status in ("blocked", "dry_run"):
            continue
        report.orders_checked += 1
        order = at_broker.get(row.client_order_id)
        if order is None and row.status in OPEN_STATUSES:
            order = broker.get_order(row.client_order_id)  # listings can be truncated; ask for this one
        if order is not None:
            found.append(order)
            continue
        if row.status in ("intended", "not_received"):
            if row.status == "intended":
                journal.update_order(row.client_order_id, "not_received", reason="the broker never received it")
                journal.event(
                    "reconcile",
                    f"{row.client_order_id} ({row.side} {row.qty:g} {row.ticker}): intended, never received by the broker",
                    row.bar_time,
                )
                logger.warning("reconcile: %s was intended but never reached the broker", row.client_order_id)
            report.not_received.append(row.client_order_id)
            continue
        if row.status == "rejected":
            continue  # the broker refused it; some brokers keep no record of refused orders
        raise ReconciliationError(
            f"the journal has order {row.client_order_id} ({row.side} {row.qty:g} {row.ticker}) as {row.status}, "
            f"but the broker has no such order; refusing to trade until the journal and the account agree"
        )
    report.updated = journal.apply_broker_orders(found) if found else []
    expected = expected_positions(journal)
    actual = {t: q for t, q in broker.positions().items() if t in tickers}
    diffs = []
    for ticker in sorted(set(expected) | set(actual)):
        j, b = expected.get(ticker, 0.0), actual.get(ticker, 0.0)
        report.positions[ticker] = (j, b)
        if abs(j - b) > tolerance:
            diffs.append(f"{ticker}: journal {j:g}, broker {b:g}")
    if diffs:
        raise ReconciliationError(
            f"positions disagree beyond the tolerance of {tolerance:g} shares ({'; '.join(diffs)}); the broker is "
            f"authoritative and the journal {journal.label} cannot explain the difference: refusing to trade on a guess. "
            "Check the account for trades made elsewhere, then start a new journal"
        )
    journal.event("reconcile", report.summary())
    logger.info("%s", report.summary())
    return report
