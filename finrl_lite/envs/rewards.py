"""Rewards of the trading environments, as pure batched functions."""

from __future__ import annotations

from typing import NamedTuple

import torch

from finrl_lite.envs.params import RewardKind

__all__ = ["RewardOut", "compute_reward"]

_TINY = 1e-12


class RewardOut(NamedTuple):
    """Reward of one step and the updated differential-Sharpe moments.

    Attributes:
        reward: ``[B]`` reward.
        sharpe_a: ``[B]`` EMA of returns (first moment).
        sharpe_b: ``[B]`` EMA of squared returns (second moment).
    """

    reward: torch.Tensor
    sharpe_a: torch.Tensor
    sharpe_b: torch.Tensor


def compute_reward(
    kind: RewardKind,
    begin: torch.Tensor,
    end: torch.Tensor,
    sharpe_a: torch.Tensor,
    sharpe_b: torch.Tensor,
    *,
    reward_scaling: float,
    sharpe_eta: float,
) -> RewardOut:
    """Reward from the total asset before (``begin``) and after (``end``) a step.

    Args:
        kind: ``"asset_change"``: ``(end - begin) * reward_scaling`` (FinRL);
            ``"log_return"``: ``log(end / begin)``;
            ``"differential_sharpe"``: Moody & Saffell's differential Sharpe ratio of the simple return
            ``R = end / begin - 1``, with EMA moments ``A, B`` updated at rate ``sharpe_eta``:
            ``D = (B ΔA - A ΔB / 2) / (B - A^2)^{3/2}`` (0 while the variance estimate is ~0).
        begin: ``[B]`` total asset before the step (currency).
        end: ``[B]`` total asset after the step (currency).
        sharpe_a: ``[B]`` previous first moment.
        sharpe_b: ``[B]`` previous second moment.
        reward_scaling: Factor on ``asset_change``.
        sharpe_eta: EMA rate of the differential Sharpe ratio.
    """
    if kind == "asset_change":
        return RewardOut((end - begin) * reward_scaling, sharpe_a, sharpe_b)
    safe_begin = begin.clamp_min(_TINY)
    if kind == "log_return":
        return RewardOut(torch.log(end.clamp_min(_TINY) / safe_begin), sharpe_a, sharpe_b)
    ret = end / safe_begin - 1.0
    delta_a = ret - sharpe_a
    delta_b = ret * ret - sharpe_b
    var = sharpe_b - sharpe_a * sharpe_a
    ok = var > _TINY
    denom = torch.where(ok, var, torch.ones_like(var)).pow(1.5)
    reward = torch.where(ok, (sharpe_b * delta_a - 0.5 * sharpe_a * delta_b) / denom, torch.zeros_like(var))
    return RewardOut(reward, sharpe_a + sharpe_eta * delta_a, sharpe_b + sharpe_eta * delta_b)
