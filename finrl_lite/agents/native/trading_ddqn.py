"""The native Double DQN on the trading environments, behind the `Agent` interface.

The Q-network acts on :class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` (hold, or buy /
sell ``hmax`` shares of one ticker: ``2N + 1`` actions); :meth:`NativeDDQNAgent.predict` returns the
matching Box actions, so the agent drives the same environment and back-test as every other one.
Everything stays on the environment's device.
"""

from __future__ import annotations

import math
import time
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
        config: hyper-parameters; the budget of a :meth:`learn` call replaces ``total_steps``.
    """

    def __init__(
        self, env: Any, config: DDQNConfig | None = None, *, obs_size: int | None = None, num_tickers: int | None = None
    ) -> None:
        self.env = DiscreteTradeActions(env) if env is not None else None
        self.num_tickers = num_tickers or env.num_tickers
        device = env.device if env is not None else "cpu"
        self.ddqn = DoubleDQN(obs_size or env.observation_size, 2 * self.num_tickers + 1, config, device=device)
        self.recent_rewards: list[float] = []

    @property
    def num_timesteps(self) -> int:
        """Environment steps learned from (transitions collected), over every :meth:`learn` call."""
        return self.ddqn.num_transitions

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> NativeDDQNAgent:
        """Learn from ``total_timesteps`` more environment steps (rounded up to whole batched steps).

        Epsilon follows the global step over this call's budget (see :meth:`DoubleDQN.learn`), so learning the
        rest of an interrupted budget from a checkpoint continues the same schedule.
        """
        env = self.env
        batched = max(math.ceil(total_timesteps / env.num_envs), 1)
        start_time, start_steps = time.perf_counter(), self.num_timesteps
        total = start_steps + batched * env.num_envs

        def report(summary: dict[str, float]) -> None:
            self.recent_rewards = (self.recent_rewards + [summary["mean_reward"]])[-100:]
            if callback is not None:
                elapsed = max(time.perf_counter() - start_time, 1e-9)
                speed = (self.num_timesteps - start_steps) / elapsed
                progress = TrainProgress(self.num_timesteps, total, speed, float(np.mean(self.recent_rewards)), summary)
                if callback(progress) is False:
                    raise _Stop

        try:
            self.ddqn.learn(env, seed=self.ddqn.cfg.seed, callback=report, total_steps=batched)
        except _Stop:
            pass
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

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """Write the agent (see :meth:`DoubleDQN.save`; ``training_state`` adds the replay buffer)."""
        self.ddqn.save(path, training_state=training_state)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> NativeDDQNAgent:
        """Load an agent written by :meth:`save` (attach ``env`` to continue training)."""
        device = env.device if env is not None else "cpu"
        ddqn = DoubleDQN.load(path, device=device)
        agent = cls(env, ddqn.cfg, obs_size=ddqn.obs_size, num_tickers=(ddqn.num_actions - 1) // 2)
        agent.ddqn = ddqn
        return agent


class _Stop(Exception):
    """Raised from the progress callback to end training early."""
