"""Builds the native agents from ``agent.algo`` and ``agent.params`` (the ``build`` of the native backend entry)."""

from __future__ import annotations

import dataclasses
from typing import Any

from finrl_lite.agents.base import Agent
from finrl_lite.errors import ConfigError

__all__ = ["build_native_agent", "dataclass_config"]


def dataclass_config(cls: type, label: str, params: dict[str, Any], seed: int, exclude: set[str]) -> Any:
    """A native agent's config dataclass from ``agent.params`` (unknown keys are a clear error).

    Args:
        cls: the config dataclass (``PPOConfig``, ``DDQNConfig``).
        label: the algorithm as messages name it.
        params: ``agent.params``; lists become tuples.
        seed: the run's seed (not a hyper-parameter).
        exclude: fields ``params`` may not set (set by the agent itself).
    """
    names = {f.name for f in dataclasses.fields(cls)} - exclude
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"agent.params {unknown} are not {label} hyper-parameters; allowed: {', '.join(sorted(names))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls(**values, seed=seed)


def build_native_agent(algo: str, env: Any, params: dict[str, Any], seed: int = 0) -> Agent:
    """Native PPO (``algo="ppo"``) or Double DQN (``algo="ddqn"``) on the torch vector environment ``env``."""
    if algo == "ddqn":
        from finrl_lite.agents.native.ddqn import DDQNConfig
        from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent

        return NativeDDQNAgent(env, dataclass_config(DDQNConfig, "native DDQN", params, seed, exclude={"seed", "total_steps"}))
    if algo == "ppo":
        from finrl_lite.agents.native.ppo import NativePPO, PPOConfig

        return NativePPO(env, dataclass_config(PPOConfig, "native PPO", params, seed, exclude={"seed"}))
    raise ConfigError(f"agent.algo '{algo}' is not a native algorithm; choose one of ppo, ddqn")
