"""The paper-trading loop: every new bar -> the training pipeline's processing -> the agent -> orders -> the broker.

One bar, in order::

    check the bar (order, gaps)  ->  process everything seen so far (process_frame)
    ->  sim broker: fill the open orders at this bar's open  ->  ask the broker about open orders
    ->  observation (stock_observation, cash and positions from the broker)  ->  agent.predict
    ->  orders (actions_to_orders, the turbulence rule)  ->  risk limits
    ->  journal the decision and every order (one transaction)  ->  send each order  ->  journal the bar done

The decision on bar t fills at bar t+1's open: that is the environment's ``execution="next_open"``, and it is
why the loop with :class:`~finrl_lite.trade.brokers.sim.SimBroker` ends where ``finrl-lite backtest`` ends.

After a crash the journal says where the loop stopped: finished bars are only replayed into the history,
a bar whose orders were decided but not all sent is finished from the journal (never decided again), and
:func:`~finrl_lite.trade.reconcile.reconcile` has already brought the journal up to the broker's state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.splits import DateRange
from finrl_lite.envs.market import EnvMarket
from finrl_lite.envs.observation import stock_observation
from finrl_lite.envs.stock_trading import make_stock_market
from finrl_lite.trade.brokers.base import Broker, DuplicateClientOrderId, OrderRejected, SubmitUncertain
from finrl_lite.trade.brokers.sim import MarketBar, SimBroker
from finrl_lite.trade.config import PaperConfig
from finrl_lite.trade.errors import ReconciliationError
from finrl_lite.trade.feeds.base import Feed, check_next_bar, check_on_calendar
from finrl_lite.trade.journal import Journal, JournalOrder
from finrl_lite.trade.orders import OrderIntent, bar_key, client_order_id, run_prefix, target_orders
from finrl_lite.trade.processing import LiveMarket
from finrl_lite.trade.reconcile import ReconcileReport, reconcile, sync_open_orders
from finrl_lite.trade.risk import RiskState, check_orders
from finrl_lite.trade.run import ObservationLayout, TradingRun
from finrl_lite.train.pipeline import baseline_curves

__all__ = ["BarReport", "PaperTrader", "SessionSummary"]

logger = logging.getLogger(__name__)


@dataclass
class BarReport:
    """What happened on one bar (the CLI draws its live display from these).

    Attributes:
        time: Bar time.
        kind: ``traded``, ``warmup`` (indicators not ready, nothing traded) or ``resumed`` (finished from the
            journal after a restart).
        equity: Cash + positions at the bar's close.
        cash: Cash after the fills on this bar's open.
        positions: Shares per ticker.
        orders: The bar's orders as journaled (status after sending).
        filled: Orders of earlier bars that filled on this bar.
    """

    time: str
    kind: str
    equity: float
    cash: float
    positions: dict[str, float]
    orders: list[JournalOrder] = field(default_factory=list)
    filled: int = 0


NOT_SENT = ("blocked", "dry_run", "intended", "not_received")
"""Order statuses of a bar that never reached the broker."""


@dataclass
class SessionSummary:
    """Totals of one run of the loop."""

    bars: int = 0
    traded: int = 0
    sent: int = 0
    blocked: int = 0
    rejected: int = 0
    first_equity: float | None = None
    last_equity: float | None = None
    last_bar: str | None = None

    def add(self, report: BarReport) -> None:
        """Count one traded bar's report."""
        self.bars += 1
        self.traded += report.kind != "warmup"
        self.sent += sum(o.status not in NOT_SENT for o in report.orders)
        self.blocked += sum(o.status == "blocked" for o in report.orders)
        self.rejected += sum(o.status == "rejected" for o in report.orders)
        self.first_equity = report.equity if self.first_equity is None else self.first_equity
        self.last_equity, self.last_bar = report.equity, report.time


class PaperTrader:
    """A restart-safe paper-trading session of one trained run.

    Args:
        run: The loaded run.
        broker: Where orders go (:class:`SimBroker`, :class:`~finrl_lite.trade.brokers.alpaca.AlpacaBroker`).
        feed: Where bars come from.
        journal: The session's journal.
        config: Risk limits, reconciliation tolerance, dry run.
        kill_switch: The kill-switch file, if any.
    """

    def __init__(
        self,
        run: TradingRun,
        broker: Broker,
        feed: Feed,
        journal: Journal,
        config: PaperConfig,
        kill_switch: Path | None = None,
    ) -> None:
        self.run_ = run
        self.broker = broker
        self.feed = feed
        self.journal = journal
        self.config = config
        self.kill_switch = kill_switch
        self.params = run.params
        self.prefix = run_prefix(run.run_id)
        self._column = {t: i for i, t in enumerate(run.tickers)}
        self._reconciled: ReconcileReport | None = None
        self._previous: pd.Timestamp | None = None

    # ------------------------------------------------------------------ start

    def start(self) -> ReconcileReport:
        """Check the journal belongs to this run, write the starting point of a new one, reconcile with the broker.

        Raises:
            ConfigError: the journal belongs to another run.
            ReconciliationError: the journal and the broker disagree (fail closed).
        """
        self.journal.check_owner(self.run_.run_id, str(self.run_.directory))
        if not self.journal.initialised:
            account = self.broker.account()
            positions = {t: q for t, q in self.broker.positions().items() if t in self._column}
            self.journal.initialise(
                {
                    "run_id": self.run_.run_id,
                    "run_dir": str(self.run_.directory.resolve()),
                    "seed": self.run_.seed,
                    "broker": self.broker.name,
                    "feed": self.feed.origin,
                    "layout": list(self.run_.layout.names),
                    "tickers": list(self.run_.tickers),
                    "interval": self.run_.market.interval,
                    "calendar": self.run_.market.calendar,
                    "start_cash": account.cash,
                    "start_positions": positions,
                }
            )
            self.journal.event("start", f"new journal for run {self.run_.run_id} on broker {self.broker.name}")
        self._reconciled = reconcile(
            self.journal, self.broker, self.prefix, self.run_.tickers, self.config.reconcile.position_tolerance
        )
        return self._reconciled

    # ------------------------------------------------------------------ the loop

    def run(self, on_bar: Callable[[BarReport], None] | None = None) -> SessionSummary:
        """Trade every bar the feed releases until it ends (or ``max_bars`` new bars).

        Returns:
            The session's totals.
        """
        if self._reconciled is None:
            self.start()
        summary = SessionSummary()
        resume_after = self.journal.last_finished_bar()
        history = self.feed.history()
        if not history.empty:
            self._previous = pd.Timestamp(history["date"].max())
        live = LiveMarket(
            self.run_.config.data,
            self.run_.market.calendar,
            history,
            self.feed.series(),
            uses_vix=self.params.risk_series == "vix"
            and (self.params.observe_risk or self.params.turbulence_threshold is not None),
            origin=self.feed.origin,
        )
        checked_layout = False
        for bar in self.feed.bars(resume_after=resume_after):
            t = check_next_bar(self.feed.origin, self._previous, bar)
            previous, self._previous = self._previous, t
            live.append(bar)
            key = bar_key(t)
            if resume_after is not None and key <= resume_after:
                continue
            market = live.market()
            check_on_calendar(self.feed.origin, market.dates, previous, t, market.calendar)
            env_market = make_stock_market(self.params, market)
            if not checked_layout:
                self.run_.layout.check_same(
                    ObservationLayout.of(self.params, env_market), str(self.run_.directory), self.feed.origin
                )
                checked_layout = True
            report = self._trade_bar(key, market, env_market)
            summary.add(report)
            if on_bar is not None:
                on_bar(report)
            if self.config.max_bars is not None and summary.bars >= self.config.max_bars:
                break
        if summary.bars == 0 and resume_after is None:
            logger.warning("%s released no bar", self.feed.origin)
        return summary

    # ------------------------------------------------------------------ one bar

    def _trade_bar(self, key: str, market: MarketData, env_market: EnvMarket) -> BarReport:
        params, row = self.params, market.num_dates - 1
        if isinstance(self.broker, SimBroker):
            self.broker.advance(
                MarketBar(
                    time=key,
                    day=int(market.dates[row].astype("datetime64[D]").astype(np.int64)),
                    open=market.field("open")[row],
                    close=market.field("close")[row],
                    valid=market.valid[row],
                )
            )
        filled = sync_open_orders(self.journal, self.broker)
        account = self.broker.account()
        positions = {t: q for t, q in self.broker.positions().items() if t in self._column}
        holdings = torch.zeros(1, len(self._column), dtype=params.dtype)
        for ticker, qty in positions.items():
            holdings[0, self._column[ticker]] = qty
        cash = torch.tensor([account.cash], dtype=params.dtype)
        close = env_market.close[row : row + 1]
        equity = float((cash + (holdings * close).sum(dim=1))[0])  # the environment's valuation, op for op
        if row < env_market.first_start:
            self.journal.record_bar(key, "warmup", account.cash, equity, positions, broker_equity=account.equity)
            return BarReport(key, "warmup", equity, account.cash, positions, filled=len(filled))
        existing = self.journal.bar(key)
        kind = "resumed" if existing is not None and existing.status == "decided" else "traded"
        if kind == "traded":
            self._decide(key, row, env_market, cash, holdings, equity, positions)
        for order in self.journal.orders(("intended", "not_received"), bar_time=key):
            self._send(order)
        baselines = self._baselines(market, key, equity)
        self.journal.record_bar(key, "done", account.cash, equity, positions, baselines, account.equity)
        return BarReport(key, kind, equity, account.cash, positions, self.journal.orders(bar_time=key), len(filled))

    def _decide(
        self,
        key: str,
        row: int,
        env_market: EnvMarket,
        cash: torch.Tensor,
        holdings: torch.Tensor,
        equity: float,
        positions: dict[str, float],
    ) -> None:
        params = self.params
        obs = stock_observation(params, env_market, torch.tensor([row]), cash, holdings)
        with torch.no_grad():
            action = torch.as_tensor(self.run_.agent.predict(obs, deterministic=True))
        risk = float(env_market.risk[row])
        turbulent = params.turbulence_threshold is not None and risk >= params.turbulence_threshold
        orders = target_orders(params, action, holdings[0], turbulent).tolist()
        close = env_market.close[row].tolist()
        intents = []
        for j, ticker in enumerate(self.run_.tickers):
            if orders[j] != 0:
                side = "buy" if orders[j] > 0 else "sell"
                cid = client_order_id(self.run_.run_id, key, ticker, side)
                intents.append(OrderIntent(cid, key, ticker, side, abs(orders[j]), close[j]))
        state = RiskState(equity, self._day_start_equity(key, equity), positions, self.kill_switch)
        blocked = check_orders(self.config.risk, intents, state)
        for cid, reason in blocked.items():
            logger.warning("risk limit blocked %s: %s", cid, reason)
        if turbulent:
            logger.warning("%s: turbulence %.4g >= %.4g: selling everything", key, risk, params.turbulence_threshold)
        self.journal.record_decision(key, action.reshape(-1).tolist(), intents, blocked)

    def _send(self, row: JournalOrder) -> None:
        if self.config.dry_run:
            self.journal.update_order(row.client_order_id, "dry_run", reason="--dry-run: not sent")
            return
        if row.status == "not_received":
            self.journal.event("resend", f"{row.client_order_id}: the broker never received it; sending it now", row.bar_time)
        for attempt in range(2):
            try:
                order = self.broker.submit(row)  # a journaled order is the intent it was journaled from
            except DuplicateClientOrderId:
                order = self.broker.get_order(row.client_order_id)
                if order is None:
                    raise ReconciliationError(
                        f"the broker refuses {row.client_order_id} as a duplicate but has no order with that id"
                    ) from None
            except OrderRejected as exc:
                logger.warning("order %s (%s %g %s) rejected: %s", row.client_order_id, row.side, row.qty, row.ticker, exc)
                self.journal.update_order(row.client_order_id, "rejected", reason=str(exc))
                return
            except SubmitUncertain as exc:
                logger.warning("submit of %s uncertain (%s): looking it up", row.client_order_id, exc)
                order = self.broker.get_order(row.client_order_id)
                if order is None and attempt == 0:
                    logger.info("%s is not at the broker: sending it again under the same id", row.client_order_id)
                    continue
                if order is None:
                    self.journal.event("uncertain", f"{row.client_order_id}: outcome unknown after two attempts", row.bar_time)
                    return
            self.journal.apply_broker_orders([order])
            return

    # ------------------------------------------------------------------ helpers

    def _day_start_equity(self, key: str, equity: float) -> float:
        before = self.journal.equity_before(key[:10])
        return before if before is not None else self.journal.first_equity() or equity

    def _baselines(self, market: MarketData, key: str, equity: float) -> dict[str, float]:
        """Equity of every baseline over the session's bars so far (``finrl-lite backtest``'s baselines on those bars,
        with the bars before the session as their history), scaled to the session's first equity."""
        first = self.journal.first_traded_bar() or key
        span = (pd.Timestamp(first), pd.Timestamp(key))
        session_bars = np.count_nonzero(DateRange.parse("session", *span).mask(market.dates))  # no copy of the bars
        start_equity = self.journal.first_equity() or equity
        names = [*self.run_.config.train.baselines, *(["index"] if "index" in market.market_fields else [])]
        if session_bars < 2:
            return dict.fromkeys(names, start_equity)
        scale = start_equity / self.run_.config.env.initial_amount
        return {c.name: float(c.values[-1]) * scale for c in baseline_curves(market, self.run_.config, span)}
