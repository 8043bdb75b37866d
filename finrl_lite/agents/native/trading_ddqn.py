"""The native Double DQN on the trading environments, behind the `Agent` interface.

The Q-network acts on :class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` (hold, or buy /
sell ``hmax`` shares of one ticker: ``2N + 1`` actions); :meth:`NativeDDQNAgent.predict` returns the
matching Box actions, so the agent drives the same environment and back-test as every other one.
Everything stays on the environment's device.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finrl_lite.agents.base import ProgressCallback, TrainProgress
from finrl_lite.agents.native.ddqn import DDQNConfig, DoubleDQN
from finrl_lite.envs.discrete_actions import DiscreteTradeActions, discrete_to_box

__all__ = ["NativeDDQNAgent"]


class NativeDDQNAgent:
    """Double DQN (online argmax, target-network score) on a torch trading environment.

    Args:
        env: torch vector environment (``TorchVecEnv``); None when loading only to predict.
        config: hyper-parameters; ``total_steps`` is set by :meth:`learn` from its budget.
    """

    def __init__(
        self, env: Any, config: DDQNConfig | None = None, *, obs_size: int | None = None, num_tickers: int | None = None
    ) -> None:
        self.env = DiscreteTradeActions(env) if env is not None else None
        self.num_tickers = num_tickers or env.num_tickers
        device = env.device if env is not None else "cpu"
        self.ddqn = DoubleDQN(obs_size or env.observation_size, 2 * self.num_tickers + 1, config, device=device)
        self.num_timesteps = 0

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> NativeDDQNAgent:
        """Learn from ``total_timesteps`` environment steps (rounded up to whole batched steps)."""
        env = self.env
        batched = max(math.ceil(total_timesteps / env.num_envs), 1)
        self.ddqn.cfg = dataclasses.replace(self.ddqn.cfg, total_steps=batched)
        start_steps, returns = self.num_timesteps, []

        def report(summary: dict[str, float]) -> None:
            returns.append(summary["mean_reward"])
            if callback is not None:
                steps = start_steps + int(summary["step"]) * env.num_envs
                progress = TrainProgress(
                    steps, start_steps + batched * env.num_envs, float("nan"), float(np.mean(returns[-100:])), summary
                )
                if callback(progress) is False:
                    raise _Stop

        try:
            self.ddqn.learn(env, seed=self.ddqn.cfg.seed, callback=report)
        except _Stop:
            pass
        self.num_timesteps = start_steps + batched * env.num_envs
        return self

    @torch.no_grad()
    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Box actions ``[B, N]`` (numpy in, numpy out; torch in, torch out)."""
        is_numpy = isinstance(obs, np.ndarray)
        x = torch.as_tensor(obs, device=self.ddqn.device)
        x = x.unsqueeze(0) if x.dim() == 1 else x
        index = self.ddqn.act(x, epsilon=0.0 if deterministic else self.ddqn.cfg.eps_end)
        box = discrete_to_box(index, self.num_tickers)
        return box.cpu().numpy() if is_numpy else box

    def save(self, path: str | Path) -> Path:
        self.ddqn.save(path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> NativeDDQNAgent:
        device = env.device if env is not None else "cpu"
        ddqn = DoubleDQN.load(path, device=device)
        agent = cls(env, ddqn.cfg, obs_size=ddqn.obs_size, num_tickers=(ddqn.num_actions - 1) // 2)
        agent.ddqn = ddqn
        return agent


class _Stop(Exception):
    """Raised from the progress callback to end training early."""
