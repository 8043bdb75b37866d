"""A discretisation of the Box action space for DQN-family agents.

``DiscreteTradeActions`` turns one integer per environment into the Box action of the wrapped
environment: ``0`` holds everything; ``1..N`` buys ticker ``k-1`` with the full action (``+1``, i.e.
``hmax`` shares); ``N+1..2N`` sells ticker ``k-N-1`` (``-1``). One trade per step keeps the Q-network's
output small (``2N + 1`` values) while letting the agent reach every position over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from finrl_lite.errors import ConfigError

__all__ = ["DiscreteTradeActions", "discrete_to_box"]


def discrete_to_box(index: torch.Tensor, num_tickers: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[B]`` integer actions -> ``[B, N]`` Box actions in ``{-1, 0, 1}`` (see the module docstring)."""
    index = index.long().view(-1)
    b = index.shape[0]
    eye = torch.zeros(b, 2 * num_tickers + 1, dtype=dtype, device=index.device)
    eye.scatter_(1, index.unsqueeze(1), 1.0)
    return eye[:, 1 : num_tickers + 1] - eye[:, num_tickers + 1 :]


class DiscreteTradeActions:
    """A Box-action torch vector env seen as a discrete one (a ``TorchVecEnv`` with ``num_actions = 2N + 1``):
    ``step`` takes ``[B]`` integer actions in ``[0, 2N]``.

    Args:
        env: A trading ``TorchVecEnv`` with a Box action per ticker (``num_tickers``).
    """

    def __init__(self, env: Any) -> None:
        if env.num_actions is not None:
            raise ConfigError(f"DiscreteTradeActions needs a Box-action environment; {type(env).__name__} is already discrete")
        self.env = env
        self.num_envs = env.num_envs
        self.observation_size = env.observation_size
        self.num_tickers = env.num_tickers
        self.device = env.device
        self.num_actions = 2 * env.num_tickers + 1
        self.action_size, self.action_low, self.action_high = 1, 0.0, float(self.num_actions - 1)

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.env.reset(seed=seed)

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        action = torch.as_tensor(action, device=self.device)
        if tuple(action.shape) != (self.num_envs,):
            raise ConfigError(f"action has shape {tuple(action.shape)}; expected (num_envs,) action indices = ({self.num_envs},)")
        return self.env.step(discrete_to_box(action, self.num_tickers))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)
