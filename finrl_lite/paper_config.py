"""Typed configuration of paper trading (``finrl-lite paper``): broker, feed, risk limits, reconciliation.

It is the ``paper:`` section of a config file (``configs/paper_sim.yaml``, or a run's own config). This module
imports only pydantic, so :mod:`finrl_lite.config` can embed :class:`PaperConfig`; :mod:`finrl_lite.trade.config`
loads it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from finrl_lite.config_base import StrictModel

__all__ = ["AlpacaConfig", "PaperConfig", "ReconcileConfig", "ReplayConfig", "RiskConfig"]


class ReplayConfig(StrictModel):
    """Bars replayed from a file or from the run's own prepared data."""

    data: str | None = Field(None, description="Long-format csv/parquet file of raw bars; None: the run's own prepared data.")
    start: dt.date | dt.datetime | None = Field(None, description="First bar of the session; None: the run's trade split.")
    end: dt.date | dt.datetime | None = Field(None, description="Last bar of the session; None: the end of the data.")
    speed: float = Field(
        0.0, ge=0.0, description="Replay this many times faster than real time (86400: a daily bar per second); 0: no waiting."
    )


class AlpacaConfig(StrictModel):
    """Alpaca paper account and market data (keys only from APCA_API_KEY_ID / APCA_API_SECRET_KEY)."""

    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of every request to Alpaca.")
    retries: int = Field(4, ge=0, le=20, description="Retries of a read (and of an order refused with HTTP 429).")
    backoff_seconds: float = Field(0.5, ge=0, description="First wait before a retry; doubled each time.")
    feed: Literal["iex", "sip"] = Field("iex", description="Stock data feed; free accounts have iex.")
    crypto: bool = Field(False, description="Crypto symbols (BTC/USD...), traded 24/7.")
    history_bars: int = Field(400, ge=10, description="Bars of history downloaded at start for the indicators' warm-up.")
    poll_seconds: float = Field(15.0, gt=0.0, description="How often to ask for a new bar once one is due.")
    settle_seconds: float = Field(5.0, ge=0.0, description="Wait this long after a bar's end before asking for it.")


class RiskConfig(StrictModel):
    """Limits checked before every order; a breach blocks the order (logged and journaled), never clips it."""

    max_order_notional: float | None = Field(None, gt=0, description="Largest order value (shares x last close).")
    max_position_weight: float | None = Field(
        None, gt=0, le=1, description="Largest weight of one ticker in the portfolio after a buy."
    )
    daily_loss_limit: float | None = Field(
        None, gt=0, lt=1, description="Block buys for the rest of the day once equity fell this fraction below the day's start."
    )
    kill_switch_file: str | None = Field(
        None, description="While this file exists every order is blocked (relative paths: beside the journal)."
    )


class ReconcileConfig(StrictModel):
    """How far the journal and the broker may disagree on a position before the loop refuses to trade."""

    position_tolerance: float = Field(1e-6, ge=0, description="Shares.")


class PaperConfig(StrictModel):
    """A whole paper-trading config file."""

    broker: Literal["sim", "alpaca"] = Field("sim", description="sim (the environment's fills) or alpaca (paper account).")
    feed: Literal["replay", "alpaca"] = Field("replay", description="replay (stored bars) or alpaca (latest bars).")
    seed: int | None = Field(None, description="Which trained seed of the run trades; None: the run's first seed.")
    journal: str | None = Field(None, description="Journal file; None: RUN_DIR/paper/journal.sqlite.")
    max_bars: int | None = Field(None, ge=1, description="Stop after this many new bars.")
    dry_run: bool = Field(False, description="Decide and show orders, send nothing, write no journal.")
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    alpaca: AlpacaConfig = Field(default_factory=AlpacaConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
