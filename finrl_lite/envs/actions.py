"""Action mapper: policy actions in ``[-1, 1]^N`` to signed share orders."""

from __future__ import annotations

import torch

from finrl_lite.envs.params import StockTradingParams

__all__ = ["actions_to_orders", "target_weights_to_orders", "whole_lots"]


def whole_lots(params: StockTradingParams, shares: torch.Tensor, toward_zero: bool = True) -> torch.Tensor:
    """``shares`` in whole lots (unchanged with ``fractional``), rounded toward zero (orders: FinRL's
    ``astype(int)``) or down (``toward_zero=False``: what the cash affords)."""
    if params.fractional:
        return shares
    lots = shares / params.lot_size
    return (torch.trunc(lots) if toward_zero else torch.floor(lots)) * params.lot_size


def actions_to_orders(params: StockTradingParams, action: torch.Tensor) -> torch.Tensor:
    """Scale actions by ``hmax`` shares and round toward zero to whole lots (FinRL's ``astype(int)``).

    Args:
        params: Environment parameters (``hmax``, ``lot_size``, ``fractional``).
        action: ``[B, N]`` actions; values outside ``[-1, 1]`` are clipped, NaN is no order.

    Returns:
        ``[B, N]`` signed order sizes in shares (positive buys, negative sells), in ``action``'s dtype.
    """
    return whole_lots(params, action.nan_to_num(0.0).clamp(-1.0, 1.0) * params.hmax)


def target_weights_to_orders(
    params: StockTradingParams,
    action: torch.Tensor,
    cash: torch.Tensor,
    holdings: torch.Tensor,
    price: torch.Tensor,
    tradable: torch.Tensor,
) -> torch.Tensor:
    """Orders that move each ticker to a target weight of the portfolio value at the fill price.

    Actions are clipped to ``[0, 1]`` and divided by their sum when it exceeds 1 (the rest stays in cash);
    the order is ``target_shares - holdings`` rounded toward zero to whole lots. A NaN weight is no order:
    that ticker keeps its shares (a row of NaN holds the whole portfolio); it counts as 0 in the sum.
    Buys are still limited by the cash left after sells and fees (see
    :func:`~finrl_lite.envs.simulator.execute_orders`).

    Args:
        params: Environment parameters.
        action: ``[B, N]`` target weights; NaN keeps the ticker's holdings.
        cash: ``[B]`` cash.
        holdings: ``[B, N]`` shares.
        price: ``[B, N]`` fill prices.
        tradable: ``[B, N]`` bool; untradable tickers get no order.

    Returns:
        ``[B, N]`` signed order sizes in shares.
    """
    weights = action.nan_to_num(0.0).clamp(0.0, 1.0)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    value = cash + (holdings * price).sum(dim=1)
    safe_price = torch.where(tradable, price, torch.ones_like(price))
    trade = tradable & ~action.isnan()
    target = torch.where(trade, weights * value.unsqueeze(1) / safe_price, holdings)
    return whole_lots(params, target - holdings)
