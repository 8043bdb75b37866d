"""Restarts at each dangerous point of a bar (deterministic), and reconciliation that fails closed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _paper_helpers import Session, broker_orders, journal_equity, journal_orders

from finrl_lite.trade.brokers.sim import SimBroker
from finrl_lite.trade.config import PaperConfig
from finrl_lite.trade.errors import ReconciliationError
from finrl_lite.trade.journal import Journal
from finrl_lite.trade.session import open_session, sim_broker_path


class Died(BaseException):
    """Stands for the process dying at that instant (nothing after it runs)."""


class DyingSim(SimBroker):
    """The sim broker, but the process dies at the ``at``-th call of one of its steps."""

    point = ""
    at = 0
    calls = 0

    def _tick(self, point: str) -> None:
        if point == self.point:
            DyingSim.calls += 1
            if DyingSim.calls == self.at:
                raise Died(point)

    def submit(self, intent: Any) -> Any:
        self._tick("before_submit")
        order = super().submit(intent)
        self._tick("after_submit")
        return order

    def advance(self, bar: Any) -> None:
        super().advance(bar)
        self._tick("after_fills")


def _trader(run: Path, journal: Path, dying: tuple[str, int] | None = None) -> Any:
    trader = open_session(run, PaperConfig(journal=str(journal)))
    if dying is not None:
        trader.broker.close()
        DyingSim.point, DyingSim.at, DyingSim.calls = dying[0], dying[1], 0
        trader.broker = DyingSim(sim_broker_path(journal), trader.params, trader.run_.tickers, 50000.0, trader.run_.run_id)
    return trader


def _close(trader: Any) -> None:
    trader.broker.close()
    trader.journal.close()


@pytest.mark.parametrize(
    ("point", "at"),
    [
        ("before_submit", 31),  # decision journaled, the broker never got the order: resolved, then sent again
        ("after_submit", 44),  # the broker has it, the journal still says intended: found by its id
        ("after_fills", 17),  # fills at the open happened, the journal has not seen them
        ("before_done", 25),  # every order sent, the bar not marked done
    ],
)
def test_restart_after_dying_mid_bar_ends_like_the_uninterrupted_session(
    tiny_run: Path, reference_session: Session, tmp_path: Path, point: str, at: int
) -> None:
    journal = tmp_path / "journal.sqlite"
    trader = _trader(tiny_run, journal, None if point == "before_done" else (point, at))
    if point == "before_done":
        calls = {"n": 0}
        original = trader._baselines

        def dying_baselines(*args: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == at:
                raise Died(point)
            return original(*args)

        trader._baselines = dying_baselines
    trader.start()
    with pytest.raises(Died):
        trader.run()
    _close(trader)

    again = _trader(tiny_run, journal)
    report = again.start()
    if point == "before_submit":
        assert len(report.not_received) >= 1  # resolved explicitly, then sent again when its bar is replayed
    if point in ("after_submit", "after_fills"):
        assert report.updated  # the journal learned from the broker what happened
    again.run()
    _close(again)
    assert broker_orders(sim_broker_path(journal)) == broker_orders(reference_session.broker)
    assert {c: v for c, v in journal_orders(journal).items() if v[3] != "not_received"} == broker_orders(sim_broker_path(journal))
    assert journal_equity(journal) == journal_equity(reference_session.journal)


def _finished_copy(reference: Session, tmp_path: Path) -> Path:
    journal = tmp_path / "journal.sqlite"
    shutil.copy(reference.journal, journal)
    shutil.copy(reference.broker, sim_broker_path(journal))
    return journal


def _sql(path: Path, statement: str, *params: object) -> None:
    db = sqlite3.connect(path)
    db.execute(statement, params)
    db.commit()
    db.close()


def _first(path: Path, query: str) -> str:
    db = sqlite3.connect(path)
    value = db.execute(query).fetchone()[0]
    db.close()
    return value


def _refuses(run: Path, journal: Path, pattern: str) -> None:
    """Starting the loop on ``journal`` raises a ReconciliationError matching ``pattern`` (the trader closed anyway)."""
    trader = _trader(run, journal)
    try:
        with pytest.raises(ReconciliationError, match=pattern):
            trader.start()
    finally:
        _close(trader)


def test_positions_that_disagree_stop_the_loop(tiny_run: Path, reference_session: Session, tmp_path: Path) -> None:
    journal = _finished_copy(reference_session, tmp_path)
    broker = sim_broker_path(journal)
    ticker = _first(broker, "SELECT ticker FROM positions WHERE qty > 0 ORDER BY ticker LIMIT 1")
    held = float(_first(broker, f"SELECT qty FROM positions WHERE ticker = '{ticker}'"))
    _sql(broker, "UPDATE positions SET qty = qty + 5 WHERE ticker = ?", ticker)  # a trade made elsewhere
    _refuses(tiny_run, journal, rf"positions disagree.*{ticker}: journal {held:g}, broker {held + 5:g}")


def test_an_order_the_journal_never_intended_stops_the_loop(tiny_run: Path, reference_session: Session, tmp_path: Path) -> None:
    journal = _finished_copy(reference_session, tmp_path)
    last = _first(journal, "SELECT client_order_id FROM orders ORDER BY bar_time DESC LIMIT 1")
    _sql(journal, "DELETE FROM orders WHERE client_order_id = ?", last)  # as if the journal had lost it
    _refuses(tiny_run, journal, "never intended: " + last)


def test_a_new_journal_on_an_account_with_orders_stops_the_loop(
    tiny_run: Path, reference_session: Session, tmp_path: Path
) -> None:
    journal = _finished_copy(reference_session, tmp_path)
    journal.unlink()  # the journal is gone; the broker's account still holds the run's orders
    held = int(_first(sim_broker_path(journal), "SELECT COUNT(*) FROM orders"))
    assert held > 0
    _refuses(tiny_run, journal, rf"{held} order\(s\) of this run that the journal .* never intended")


def test_an_acknowledged_order_the_broker_lost_stops_the_loop(tiny_run: Path, reference_session: Session, tmp_path: Path) -> None:
    journal = _finished_copy(reference_session, tmp_path)
    open_id = _first(sim_broker_path(journal), "SELECT client_order_id FROM orders WHERE status = 'accepted' LIMIT 1")
    _sql(sim_broker_path(journal), "DELETE FROM orders WHERE client_order_id = ?", open_id)
    _refuses(tiny_run, journal, f"{open_id}.*as accepted, but the broker has no such order")
    j = Journal(journal, read_only=True)
    assert j.order(open_id).status == "accepted"  # nothing was rewritten on a guess
    j.close()
