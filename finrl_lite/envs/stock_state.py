"""State and step diagnostics of the stock-trading environment, shared by the torch core
(:mod:`~finrl_lite.envs.stock_trading`) and the fused CPU step (:mod:`~finrl_lite.envs.fused_step`,
:mod:`~finrl_lite.envs.fused_kernel`), which import them from here rather than from each other."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["StepInfo", "StockTradingState"]


class StockTradingState(NamedTuple):
    """State of a batch of stock-trading environments; every tensor has the leading ``num_envs`` dimension.

    Attributes:
        t: ``[B]`` int64 bar the environment has observed (its close is known).
        end: ``[B]`` int64 last bar of the episode (reaching it truncates).
        cash: ``[B]`` cash (currency).
        holdings: ``[B, N]`` shares held.
        locked: ``[B, N]`` shares bought on the current trading day (T+1 rule).
        value: ``[B]`` total asset at bar ``t``'s close: ``cash + sum(holdings * close)``.
        sharpe_a: ``[B]`` differential-Sharpe first moment.
        sharpe_b: ``[B]`` differential-Sharpe second moment.
        total_costs: ``[B]`` fees paid since the episode start (currency).
        steps: ``[B]`` int64 steps taken in the episode.
        episode: ``[B]`` int64 episode counter (feeds the start-offset draw).
        key: ``[B]`` int64 per-environment random key.
    """

    t: torch.Tensor
    end: torch.Tensor
    cash: torch.Tensor
    holdings: torch.Tensor
    locked: torch.Tensor
    value: torch.Tensor
    sharpe_a: torch.Tensor
    sharpe_b: torch.Tensor
    total_costs: torch.Tensor
    steps: torch.Tensor
    episode: torch.Tensor
    key: torch.Tensor


class StepInfo(NamedTuple):
    """Per-step diagnostics of the stepped (pre-reset) state, as tensors.

    Attributes:
        portfolio_value: ``[B]`` total asset after the step (currency).
        cash: ``[B]`` cash after the step.
        holdings: ``[B, N]`` shares after the step.
        costs: ``[B]`` fees paid on this step.
        total_costs: ``[B]`` fees paid in the episode so far.
        turnover: ``[B]`` traded notional / total asset before the step.
        trades: ``[B]`` int64 executed orders on this step.
        turbulent: ``[B]`` bool, the turbulence rule fired on this step.
        final_obs: ``[B, D]`` observation of the stepped state (the last observation of an episode that
            just ended; the returned observation is already the next episode's first one).
    """

    portfolio_value: torch.Tensor
    cash: torch.Tensor
    holdings: torch.Tensor
    costs: torch.Tensor
    total_costs: torch.Tensor
    turnover: torch.Tensor
    trades: torch.Tensor
    turbulent: torch.Tensor
    final_obs: torch.Tensor
