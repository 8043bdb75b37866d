"""Builds the native agents from ``agent.algo`` and ``agent.params`` (the ``build`` of the native backend entry)."""

from __future__ import annotations

import dataclasses
from typing import Any

from finrl_lite.agents.base import Agent
from finrl_lite.errors import ConfigError

__all__ = ["build_native_agent", "check_native_params", "dataclass_config"]


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


def _config(algo: str, params: dict[str, Any], seed: int) -> Any:
    if algo == "ddqn":
        from finrl_lite.agents.native.ddqn import DDQNConfig

        return dataclass_config(DDQNConfig, "native DDQN", params, seed, exclude={"seed", "total_steps"})
    if algo == "ppo":
        from finrl_lite.agents.native.ppo import PPOConfig

        return dataclass_config(PPOConfig, "native PPO", params, seed, exclude={"seed"})
    raise ConfigError(f"agent.algo '{algo}' is not a native algorithm; choose one of ppo, ddqn")


def check_native_params(algo: str, params: dict[str, Any]) -> None:
    """Refuse ``agent.params`` that native PPO or DDQN does not take (the ``check`` of the native backend entry)."""
    _config(algo, params, seed=0)


def build_native_agent(algo: str, env: Any, params: dict[str, Any], seed: int = 0) -> Agent:
    """Native PPO (``algo="ppo"``) or Double DQN (``algo="ddqn"``) on the torch vector environment ``env``."""
    config = _config(algo, params, seed)
    if algo == "ddqn":
        from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent

        return NativeDDQNAgent(env, config)
    from finrl_lite.agents.native.ppo import NativePPO

    return NativePPO(env, config)
