"""Training stops at the first loss or weight that is not finite, with an error that says when and what to try.

The checks ride on host reads the training loops make anyway (once per PPO iteration, once per DDQN round, once per
SB3 update), so a device never synchronises for them: :func:`all_finite` reduces on the device, and
:func:`check_diverged` looks at numbers already on the host.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from finrl_lite.errors import TrainingError

__all__ = ["all_finite", "check_diverged"]


def all_finite(module: nn.Module) -> torch.Tensor:
    """0-d bool tensor on the module's device: every parameter and floating buffer is finite (no host sync)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return torch.stack([torch.isfinite(t).all() for t in tensors]).all()


def check_diverged(agent: str, step: int, losses: Mapping[str, float], weights_finite: bool) -> None:
    """Raise when a loss or the weights are not finite.

    Args:
        agent: the agent, as the message names it (``"native PPO"``).
        step: environment steps learned so far.
        losses: the latest losses (host numbers).
        weights_finite: whether every network weight is finite.

    Raises:
        TrainingError: naming the step, the losses that are not finite, and what to try.
    """
    bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
    if not bad and weights_finite:
        return
    what = ", ".join(f"{name} {value}" for name, value in bad.items())
    weights = "the network weights are not finite" if not weights_finite else "the weights are still finite"
    what += ("; " if what else "") + weights
    raise TrainingError(
        f"{agent}: training diverged at step {step} ({what}); this model is not saved (the last checkpoint, if any, is "
        f"from before). Lower agent.params.learning_rate, scale the reward down (env.reward_scaling), or look for absurd "
        f"values in the data"
    )
