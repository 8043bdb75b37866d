"""Risk limits: a breach blocks the whole order, which is logged and journaled and never sent; nothing is clipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _paper_helpers import Session, broker_orders, journal_equity

from finrl_lite.trade.config import PaperConfig, RiskConfig
from finrl_lite.trade.orders import OrderIntent
from finrl_lite.trade.risk import RiskState, check_orders
from finrl_lite.trade.session import open_session, sim_broker_path


def _intent(ticker: str, side: str, qty: float, price: float) -> OrderIntent:
    return OrderIntent(f"id-{ticker}-{side}", "2019-11-01T00:00:00", ticker, side, qty, price)


def test_each_rule_names_the_numbers_that_breached_it(tmp_path: Path) -> None:
    state = RiskState(equity=100_000.0, day_start_equity=110_000.0, positions={"A": 100.0})
    buy_a, buy_b, sell_a = _intent("A", "buy", 200, 100.0), _intent("B", "buy", 10, 50.0), _intent("A", "sell", 50, 100.0)
    assert check_orders(RiskConfig(), [buy_a, buy_b, sell_a], state) == {}
    blocked = check_orders(RiskConfig(max_order_notional=10_000), [buy_a, buy_b, sell_a], state)
    assert blocked == {"id-A-buy": "max order notional: 200 x 100.00 = 20,000.00 > 10,000.00"}
    blocked = check_orders(RiskConfig(max_position_weight=0.25), [buy_a, buy_b, sell_a], state)
    assert blocked == {"id-A-buy": "max position weight: A would be 30.00% of equity (limit 25%)"}
    blocked = check_orders(RiskConfig(daily_loss_limit=0.05), [buy_a, buy_b, sell_a], state)
    assert set(blocked) == {"id-A-buy", "id-B-buy"}  # 9.09% down on the day: buys stop, the sell still goes
    assert blocked["id-B-buy"].startswith("daily loss stop: equity 100,000.00 is 9.09% below the day's start 110,000.00")
    switch = tmp_path / "STOP"
    switch.touch()
    blocked = check_orders(RiskConfig(), [buy_a, sell_a], RiskState(100_000.0, 100_000.0, {}, switch))
    assert blocked == {"id-A-buy": f"kill switch: {switch} exists", "id-A-sell": f"kill switch: {switch} exists"}


def test_blocked_orders_are_journaled_logged_and_never_sent(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "journal.sqlite"
    cfg = PaperConfig(journal=str(journal), max_bars=6, risk={"max_order_notional": 5000.0, "kill_switch_file": "STOP"})
    trader = open_session(tiny_run, cfg)
    trader.start()
    stop = tmp_path / "STOP"  # relative to the journal's folder
    seen = []

    def on_bar(report: object) -> None:
        seen.append(report)
        if len(seen) == 4:
            stop.touch()  # pull the kill switch after the fourth bar

    with caplog.at_level(logging.WARNING):
        trader.run(on_bar=on_bar)
    orders = trader.journal.orders()
    events = trader.journal.events("risk_block")
    trader.broker.close()
    trader.journal.close()
    blocked = [o for o in orders if o.status == "blocked"]
    notional = [o for o in blocked if o.reason.startswith("max order notional")]
    switched = [o for o in blocked if o.reason.startswith("kill switch")]
    assert notional and switched and len(blocked) == len(notional) + len(switched)
    assert all(o.qty * o.ref_price > 5000.0 for o in notional)  # blocked whole, never clipped to the limit
    assert {o.bar_time for o in switched} == {seen[4].time, seen[5].time}  # every order after the switch
    assert len(events) == len(blocked) and all(o.client_order_id in caplog.text for o in blocked)
    at_broker = broker_orders(sim_broker_path(journal))
    assert not set(at_broker) & {o.client_order_id for o in blocked}
    assert set(at_broker) == {o.client_order_id for o in orders if o.status != "blocked"} != set()


def test_daily_loss_stop_blocks_buys_for_the_day(tiny_run: Path, reference_session: Session, tmp_path: Path) -> None:
    (_, start), (_, second) = journal_equity(reference_session.journal)[:2]
    loss = 1.0 - second / start
    assert loss > 0, "the test needs the tiny agent's second bar to lose money"
    limit = loss / 2  # the second bar breaches it
    trader = open_session(tiny_run, PaperConfig(journal=str(tmp_path / "j.sqlite"), max_bars=3, risk={"daily_loss_limit": limit}))
    trader.start()
    reports: list = []
    trader.run(on_bar=reports.append)
    orders = trader.journal.orders()
    trader.broker.close()
    trader.journal.close()
    assert [r.equity for r in reports[:2]] == [start, second]  # the stop changes nothing before it acts
    for before, report in zip(reports, reports[1:], strict=False):
        day_loss = 1.0 - report.equity / before.equity
        buys = [o for o in orders if o.bar_time == report.time and o.side == "buy"]
        if day_loss >= limit:
            assert buys and all(
                o.status == "blocked"
                and o.reason.startswith(f"daily loss stop: equity {report.equity:,.2f} is {100 * day_loss:.2f}%")
                for o in buys
            )
        else:
            assert all(o.status != "blocked" for o in buys)
    assert all(o.status != "blocked" for o in orders if o.bar_time == reports[0].time or o.side == "sell")
