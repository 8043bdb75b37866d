"""Observation builder of the stock-trading environment: the one place the flat observation is laid out.

Layout (FinRL's state vector, then the optional blocks)::

    [cash, close x N, holdings x N, feature_1 x N, ..., feature_K x N, (risk), (valid x N)]

Every block is multiplied by its fixed factor from ``params.scales``. The blocks that depend only on the
bar (prices, features, risk, valid) are precomputed once per market in an ``[T, D]`` table, so building
the observation of a batch is one row gather plus two small writes (cash and holdings).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from finrl_lite.envs.market import EnvMarket
from finrl_lite.envs.params import StockTradingParams

__all__ = [
    "attach_observation_table",
    "stock_observation",
    "stock_observation_names",
    "stock_observation_size",
]


def _blocks(params: StockTradingParams, market: EnvMarket) -> dict[str, slice]:
    n, k = market.num_tickers, len(market.feature_names)
    bounds = {"cash": 1, "close": n, "holdings": n, "features": k * n}
    if params.observe_risk:
        bounds["risk"] = 1
    if params.observe_valid:
        bounds["valid"] = n
    out, start = {}, 0
    for name, width in bounds.items():
        out[name] = slice(start, start + width)
        start += width
    return out


def stock_observation_size(params: StockTradingParams, market: EnvMarket) -> int:
    """Length D of the flat observation."""
    return max(s.stop for s in _blocks(params, market).values())


def stock_observation_names(params: StockTradingParams, market: EnvMarket) -> list[str]:
    """Human-readable name of every observation entry, in order (for debugging and reports)."""
    tick = market.tickers
    names = ["cash"] + [f"close:{t}" for t in tick] + [f"holdings:{t}" for t in tick]
    names += [f"{f}:{t}" for f in market.feature_names for t in tick]
    if params.observe_risk:
        names.append(params.risk_series)
    if params.observe_valid:
        names += [f"valid:{t}" for t in tick]
    return names


def attach_observation_table(params: StockTradingParams, market: EnvMarket) -> EnvMarket:
    """Return ``market`` with the ``[T, D]`` table of the bar-dependent, scaled observation blocks."""
    blocks = _blocks(params, market)
    size = stock_observation_size(params, market)
    table = torch.zeros(market.num_dates, size, dtype=params.observation_dtype, device=market.device)
    table[:, blocks["close"]] = (market.close * params.scales.price).to(table.dtype)
    table[:, blocks["features"]] = (market.features * params.scales.features).to(table.dtype)
    if params.observe_risk:
        table[:, blocks["risk"]] = (market.risk * params.scales.risk).unsqueeze(1).to(table.dtype)
    if params.observe_valid:
        table[:, blocks["valid"]] = market.data.valid.to(table.dtype)
    return replace(market, obs_table=table)


def stock_observation(
    params: StockTradingParams,
    market: EnvMarket,
    t: torch.Tensor,
    cash: torch.Tensor,
    holdings: torch.Tensor,
) -> torch.Tensor:
    """Flat observation of every environment; only bar ``t`` (already closed) is read.

    Args:
        params: Environment parameters (scales, optional blocks).
        market: Device market tensors with the observation table (:func:`attach_observation_table`).
        t: ``[B]`` int64 bar each environment observes.
        cash: ``[B]`` cash.
        holdings: ``[B, N]`` shares.

    Returns:
        ``[B, D]`` observation in ``params.observation_dtype``.
    """
    if market.obs_table is None:
        raise ValueError("market has no observation table: build it with attach_observation_table")
    blocks = _blocks(params, market)
    obs = market.obs_table.index_select(0, t)
    obs[:, 0] = (cash * params.cash_scale).to(obs.dtype)
    obs[:, blocks["holdings"]] = (holdings * params.holdings_scale).to(obs.dtype)
    return obs
