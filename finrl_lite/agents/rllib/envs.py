"""The gymnasium environments RLlib samples from (built in the process of each EnvRunner).

RLlib's new API stack creates its environments itself from a registered creator and an ``env_config``
(a dict that travels to every EnvRunner, pickled). :func:`make_rllib_env` is that creator: it builds
one finrl_lite stock-trading environment (:class:`~finrl_lite.envs.adapters.GymEnv`) from the
``MarketData`` and ``StockTradingParams`` in the config, with ``Discrete(2N + 1)`` actions for DQN
(:class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` through the same adapter). Nothing here imports ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium

from finrl_lite.envs.registration import make_stock_trading_env
from finrl_lite.errors import ConfigError

__all__ = ["make_rllib_env", "ENV_CONFIG_KEYS"]

ENV_CONFIG_KEYS = ("market", "params", "device", "seed", "discrete")
"""Keys of the ``env_config`` that :func:`make_rllib_env` reads."""


def make_rllib_env(env_config: Mapping[str, Any]) -> gymnasium.Env:
    """Creator registered with ``ray.tune.registry.register_env``.

    ``env_config`` keys: ``market`` (MarketData, required), ``params`` (StockTradingParams or a dict of
    its fields), ``device`` (default ``"cpu"``), ``seed`` (base seed; each EnvRunner / sub-env gets
    ``seed + 1000 * worker_index + vector_index``), ``discrete`` (``Discrete(2N + 1)`` actions).
    """
    if env_config.get("market") is None:
        raise ConfigError("the RLlib env_config needs 'market' (a MarketData)")
    seed = env_config.get("seed")
    if seed is not None:
        # RLlib passes an EnvContext (a dict with worker_index / vector_index attributes).
        seed = int(seed) + 1000 * int(getattr(env_config, "worker_index", 0)) + int(getattr(env_config, "vector_index", 0))
    return make_stock_trading_env(
        env_config["market"],
        env_config.get("params"),
        device=env_config.get("device", "cpu"),
        seed=seed,
        discrete=bool(env_config.get("discrete", False)),
    )
