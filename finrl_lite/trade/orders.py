"""From the agent's action to the orders a broker receives, with deterministic client order ids.

The action goes through the environment's own action mapper (:func:`~finrl_lite.envs.actions.actions_to_orders`).
Two rules of the environment apply before the order leaves (a broker must not receive a sale of shares the
account does not hold): without short selling a sell is at most the shares held, and when the turbulence
rule fires (risk series at or above the threshold on the decision bar) the orders are "sell everything".
The rest (fees, lots, cash-limited buys, T+1, untradable tickers) happens where the fill happens: in the
broker (:class:`~finrl_lite.trade.brokers.sim.SimBroker` runs the environment's
:func:`~finrl_lite.envs.simulator.execute_orders`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pandas as pd
import torch

from finrl_lite.envs.actions import actions_to_orders
from finrl_lite.envs.params import StockTradingParams

__all__ = ["OrderIntent", "bar_key", "client_order_id", "run_prefix", "target_orders"]


@dataclass(frozen=True)
class OrderIntent:
    """An order the loop means to send (journaled before it is sent).

    Attributes:
        client_order_id: Deterministic id: the same run, bar, ticker and side always give the same id.
        bar_time: The bar whose close the decision was made on (``bar_key`` text).
        ticker: Symbol.
        side: ``buy`` or ``sell``.
        qty: Shares (> 0).
        ref_price: The decision bar's close (for risk checks and the display; the fill price is the broker's).
    """

    client_order_id: str
    bar_time: str
    ticker: str
    side: str
    qty: float
    ref_price: float


def bar_key(time: object) -> str:
    """The text form of a bar time used in the journal and in order ids (``2019-11-01T00:00:00``)."""
    return pd.Timestamp(time).strftime("%Y-%m-%dT%H:%M:%S")


def run_prefix(run_id: str) -> str:
    """Prefix of every client order id of a run (to find the run's orders at the broker)."""
    return f"fl-{run_id[:12]}-"


def client_order_id(run_id: str, bar_time: object, ticker: str, side: str) -> str:
    """Deterministic client order id from (run, bar time, ticker, side); readable and at most ~70 characters.

    A short hash of the exact inputs keeps two tickers that differ only in punctuation (``BRK.B`` / ``BRK-B``)
    apart after the ticker is reduced to safe characters.
    """
    stamp = pd.Timestamp(bar_time).strftime("%Y%m%d%H%M")
    safe = re.sub(r"[^A-Za-z0-9]", "", ticker)[:16] or "X"
    digest = hashlib.sha256(f"{run_id}|{bar_key(bar_time)}|{ticker}|{side}".encode()).hexdigest()[:8]
    return f"{run_prefix(run_id)}{stamp}-{safe}-{side[0]}-{digest}"


def target_orders(params: StockTradingParams, action: torch.Tensor, holdings: torch.Tensor, turbulent: bool) -> torch.Tensor:
    """Signed share orders ``[N]`` to send for one decision (positive buys, negative sells).

    Args:
        params: The environment parameters of the run.
        action: ``[N]`` or ``[1, N]`` action of the agent.
        holdings: ``[N]`` shares held at the decision (the broker's positions).
        turbulent: The turbulence rule fires on this bar.
    """
    holdings = holdings.reshape(-1).to(params.dtype)
    if turbulent:
        return -holdings  # sell every long position (and cover shorts), buy nothing
    orders = actions_to_orders(params, action.reshape(1, -1).to(params.dtype)).reshape(-1)
    if not params.short_selling:
        orders = torch.where(orders < 0, torch.maximum(orders, -holdings.clamp_min(0.0)), orders)
    return orders
