"""The gymnasium environments RLlib samples from (built in the process of each EnvRunner).

RLlib's new API stack creates its environments itself from a registered creator and an ``env_config``
(a dict that travels to every EnvRunner, pickled). :func:`make_rllib_env` is that creator: it builds
one finrl_lite stock-trading environment (:class:`~finrl_lite.envs.adapters.GymEnv`) from the
``MarketData`` and ``StockTradingParams`` in the config, and wraps it in :class:`DiscreteGymEnv` for
DQN. Nothing here imports ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from finrl_lite.envs.discrete_actions import discrete_to_box
from finrl_lite.envs.registration import make_stock_trading_env
from finrl_lite.errors import ConfigError

__all__ = ["DiscreteGymEnv", "make_rllib_env", "ENV_CONFIG_KEYS"]

ENV_CONFIG_KEYS = ("market", "params", "device", "seed", "discrete")
"""Keys of the ``env_config`` that :func:`make_rllib_env` reads."""


class DiscreteGymEnv(gymnasium.ActionWrapper[np.ndarray, np.int64, np.ndarray]):
    """A Box-action finrl_lite env seen through ``spaces.Discrete(2N + 1)`` (hold / buy one / sell one).

    The integer is mapped with :func:`~finrl_lite.envs.discrete_actions.discrete_to_box`, exactly as
    :class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` does for the torch vector env.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        box = env.action_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise ConfigError(f"DiscreteGymEnv needs a 1-D Box action space, got {box}")
        self.num_tickers = int(box.shape[0])
        self.action_space = spaces.Discrete(2 * self.num_tickers + 1)

    def action(self, action: Any) -> np.ndarray:
        index = torch.as_tensor(np.asarray(action, dtype=np.int64).reshape(1))
        return discrete_to_box(index, self.num_tickers).numpy()[0]


def make_rllib_env(env_config: Mapping[str, Any]) -> gymnasium.Env:
    """Creator registered with ``ray.tune.registry.register_env``.

    ``env_config`` keys: ``market`` (MarketData, required), ``params`` (StockTradingParams or a dict of
    its fields), ``device`` (default ``"cpu"``), ``seed`` (base seed; each EnvRunner / sub-env gets
    ``seed + 1000 * worker_index + vector_index``), ``discrete`` (wrap in :class:`DiscreteGymEnv`).
    """
    if env_config.get("market") is None:
        raise ConfigError("the RLlib env_config needs 'market' (a MarketData)")
    seed = env_config.get("seed")
    if seed is not None:
        # RLlib passes an EnvContext (a dict with worker_index / vector_index attributes).
        seed = int(seed) + 1000 * int(getattr(env_config, "worker_index", 0)) + int(getattr(env_config, "vector_index", 0))
    env: gymnasium.Env = make_stock_trading_env(
        env_config["market"], env_config.get("params"), device=env_config.get("device", "cpu"), seed=seed
    )
    return DiscreteGymEnv(env) if env_config.get("discrete", False) else env
