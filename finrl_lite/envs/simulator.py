"""Simulator: fills, fees, cash and holdings for a batch of share orders (sells before buys)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from finrl_lite.envs.actions import whole_lots
from finrl_lite.envs.params import StockTradingParams

__all__ = ["Fills", "execute_orders"]


class Fills(NamedTuple):
    """Result of executing one bar's orders.

    Attributes:
        cash: ``[B]`` cash after the fills (currency).
        holdings: ``[B, N]`` shares after the fills.
        locked: ``[B, N]`` shares bought on the current trading day (not sellable under T+1).
        sold: ``[B, N]`` shares sold (>= 0).
        bought: ``[B, N]`` shares bought (>= 0).
        costs: ``[B]`` fees paid on this bar (currency, >= 0).
        notional: ``[B]`` traded notional at the fill prices (currency).
        trades: ``[B]`` number of executed orders (a ticker with a non-zero fill counts once per side).
    """

    cash: torch.Tensor
    holdings: torch.Tensor
    locked: torch.Tensor
    sold: torch.Tensor
    bought: torch.Tensor
    costs: torch.Tensor
    notional: torch.Tensor
    trades: torch.Tensor


def execute_orders(
    params: StockTradingParams,
    cash: torch.Tensor,
    holdings: torch.Tensor,
    locked: torch.Tensor,
    orders: torch.Tensor,
    price: torch.Tensor,
    tradable: torch.Tensor,
    liquidate: torch.Tensor,
) -> Fills:
    """Execute signed share orders at ``price`` with FinRL's ordering rules, for every environment at once.

    Sells run first, all at once (each is limited by the shares held, or by the shares not bought today
    under T+1). Buys then run in descending order of the order size; each is limited by the cash left
    after the previous buys and their fees (``cash // (price * (1 + buy_cost_pct))`` whole lots), so cash
    can run out for later tickers. That sequential dependency is a loop over the N tickers in sorted
    order; every step of it is elementwise over the batch. When ``liquidate`` is set for an environment
    (turbulence at or above the threshold) it sells every sellable share and buys nothing.

    Args:
        params: Environment parameters (fees, slippage, lots, shorting, T+1).
        cash: ``[B]`` cash before the fills.
        holdings: ``[B, N]`` shares before the fills.
        locked: ``[B, N]`` shares already bought today (only used with ``t_plus_1``).
        orders: ``[B, N]`` signed order sizes in shares (already rounded to lots).
        price: ``[B, N]`` reference fill price per share (before slippage).
        tradable: ``[B, N]`` bool; orders on non-tradable tickers are dropped.
        liquidate: ``[B]`` bool; sell everything and block buys.

    Returns:
        The :class:`Fills`.
    """
    zero = torch.zeros((), dtype=cash.dtype, device=cash.device)
    slip = params.slippage_bps * 1e-4
    sell_px = price * (1.0 - slip) if slip else price
    buy_px = price * (1.0 + slip) if slip else price
    liq = liquidate.unsqueeze(1)
    orders = torch.where(tradable, orders, zero)

    # ---- sells
    sellable = holdings - locked if params.t_plus_1 else holdings
    sellable = sellable.clamp_min(0.0)
    want_sell = (-orders).clamp_min(0.0)
    sold = want_sell if params.short_selling else torch.minimum(want_sell, sellable)
    sold = torch.where(liq, torch.where(tradable, sellable, zero), sold)
    sell_value = sell_px * sold
    if params.min_cost > 0:
        sell_fee = torch.where(
            sold > 0, torch.clamp(torch.clamp_min(sell_value * params.sell_cost_pct, params.min_cost), max=sell_value), zero
        )
        proceeds = sell_value - sell_fee
    else:
        sell_fee = sell_value * params.sell_cost_pct
        proceeds = sell_value * (1.0 - params.sell_cost_pct)
    cash = cash + proceeds.sum(dim=1)
    holdings = holdings - sold

    # ---- buys, in descending order of the order size (ties: higher column first, as numpy's flipped argsort)
    want_buy = torch.where(liq, zero, orders.clamp_min(0.0))
    order_idx = torch.argsort(orders, dim=1, stable=True).flip(1)
    # [N, B] in priority order: row k holds every environment's k-th buy, contiguous for the loop
    want_s = want_buy.gather(1, order_idx).T.contiguous()
    px_s = buy_px.gather(1, order_idx).T.contiguous()
    unit_cost = px_s * (1.0 + params.buy_cost_pct)
    safe_unit = torch.where(unit_cost > 0, unit_cost, torch.ones_like(unit_cost))
    safe_px = torch.where(px_s > 0, px_s, torch.ones_like(px_s)) if params.min_cost > 0 else px_s
    bought_rows = []
    fee_total = sell_fee.sum(dim=1)
    for k in range(orders.shape[1]):
        spendable = cash.clamp_min(0.0)  # cash is negative only after covering shorts; then nothing is bought
        if params.fractional:
            avail = spendable / safe_unit[k]
        else:
            avail = torch.div(spendable, safe_unit[k], rounding_mode="floor")  # Python's // (FinRL), whole shares
        if params.min_cost > 0:
            avail = torch.minimum(avail, ((cash - params.min_cost) / safe_px[k]).clamp_min(0.0))
        if params.lot_size > 1 or params.min_cost > 0:
            avail = whole_lots(params, avail, toward_zero=False)
        n = torch.minimum(avail, want_s[k])
        value = px_s[k] * n
        if params.min_cost > 0:
            fee = torch.where(n > 0, torch.clamp_min(value * params.buy_cost_pct, params.min_cost), zero)
            cash = cash - (value + fee)
            fee_total = fee_total + fee
        else:
            cash = cash - value * (1.0 + params.buy_cost_pct)
        if params.fractional:
            # a cash-limited fractional buy spends the cash exactly (no one-ulp residue, no dust buys after it)
            cash = torch.where(n > 0, torch.where(avail < want_s[k], zero, cash.clamp_min(0.0)), cash)
        bought_rows.append(n)
    bought = torch.empty_like(holdings).scatter_(1, order_idx, torch.stack(bought_rows, dim=1))
    holdings = holdings + bought
    buy_value = buy_px * bought
    if params.min_cost <= 0:
        fee_total = fee_total + buy_value.sum(dim=1) * params.buy_cost_pct

    if params.short_selling:
        # Liquidation also covers short positions, whatever the cash (the ruin floor bounds the damage).
        cover = torch.where(liq & tradable, (-holdings).clamp_min(0.0), zero)
        cover_value = buy_px * cover
        cover_fee = cover_value * params.buy_cost_pct
        cash = cash - (cover_value + cover_fee).sum(dim=1)
        fee_total = fee_total + cover_fee.sum(dim=1)
        holdings = holdings + cover
        bought = bought + cover
        buy_value = buy_value + cover_value

    locked = locked + bought if params.t_plus_1 else locked
    trades = (sold > 0).sum(dim=1) + (bought > 0).sum(dim=1)
    notional = sell_value.sum(dim=1) + buy_value.sum(dim=1)
    return Fills(
        cash=cash,
        holdings=holdings,
        locked=locked,
        sold=sold,
        bought=bought,
        costs=fee_total,
        notional=notional,
        trades=trades,
    )
