"""Risk limits checked before an order is sent: a breach blocks the whole order, it is never clipped.

Rules, in the order they are checked (the first that applies names the block):

1. kill switch: while the kill-switch file exists, every order is blocked;
2. daily loss stop: once equity is ``daily_loss_limit`` or more below the day's starting equity, buys are
   blocked for the rest of the day (sells, which reduce exposure, still go);
3. max order notional: ``qty x last close`` above the limit;
4. max position weight: a buy that would take the ticker above this weight of equity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finrl_lite.trade.config import RiskConfig
from finrl_lite.trade.orders import OrderIntent

__all__ = ["RiskState", "check_orders"]


@dataclass(frozen=True)
class RiskState:
    """What the limits look at when a bar's orders are decided.

    Attributes:
        equity: Current equity (cash + positions at the last close).
        day_start_equity: Equity at the end of the previous trading day (or the session start).
        positions: Shares held per ticker.
        kill_switch: The kill-switch file, if one is configured.
    """

    equity: float
    day_start_equity: float
    positions: dict[str, float]
    kill_switch: Path | None = None


def check_orders(limits: RiskConfig, intents: list[OrderIntent], state: RiskState) -> dict[str, str]:
    """The orders a limit blocks: client order id -> the rule and the numbers that breached it."""
    blocked: dict[str, str] = {}
    if state.kill_switch is not None and state.kill_switch.exists():
        return {it.client_order_id: f"kill switch: {state.kill_switch} exists" for it in intents}
    loss = 1.0 - state.equity / state.day_start_equity if state.day_start_equity > 0 else 0.0
    for it in intents:
        notional = it.qty * it.ref_price
        if limits.daily_loss_limit is not None and it.side == "buy" and loss >= limits.daily_loss_limit:
            blocked[it.client_order_id] = (
                f"daily loss stop: equity {state.equity:,.2f} is {100 * loss:.2f}% below the day's start "
                f"{state.day_start_equity:,.2f} (limit {100 * limits.daily_loss_limit:g}%); buys blocked until the next day"
            )
        elif limits.max_order_notional is not None and notional > limits.max_order_notional:
            blocked[it.client_order_id] = (
                f"max order notional: {it.qty:g} x {it.ref_price:,.2f} = {notional:,.2f} > {limits.max_order_notional:,.2f}"
            )
        elif limits.max_position_weight is not None and it.side == "buy" and state.equity > 0:
            after = (state.positions.get(it.ticker, 0.0) + it.qty) * it.ref_price / state.equity
            if after > limits.max_position_weight:
                blocked[it.client_order_id] = (
                    f"max position weight: {it.ticker} would be {100 * after:.2f}% of equity "
                    f"(limit {100 * limits.max_position_weight:g}%)"
                )
    return blocked
