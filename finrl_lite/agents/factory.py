"""`make_agent` / `load_agent`: one entry point over every backend."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from finrl_lite.agents.base import Agent
from finrl_lite.config import AgentConfig
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_text

__all__ = ["make_agent", "load_agent", "BACKEND_ALGOS"]

BACKEND_ALGOS: dict[str, tuple[str, ...]] = {
    "native": ("ppo", "ddqn"),
    "sb3": ("ppo", "a2c", "ddpg", "td3", "sac", "dqn", "ddqn"),
    "rllib": ("ppo", "dqn"),
}

_META = "agent.json"


def _check(cfg: AgentConfig) -> None:
    allowed = BACKEND_ALGOS[cfg.backend]
    if cfg.algo not in allowed:
        raise ConfigError(
            f"agent.algo '{cfg.algo}' is not available on backend '{cfg.backend}'; choose one of {', '.join(allowed)}"
        )


def _dataclass_config(cls: type, label: str, params: dict[str, Any], seed: int, exclude: set[str]) -> Any:
    """A native agent's config dataclass from ``agent.params`` (unknown keys are a clear error)."""
    names = {f.name for f in dataclasses.fields(cls)} - exclude
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"agent.params {unknown} are not {label} hyper-parameters; allowed: {', '.join(sorted(names))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls(**values, seed=seed)


def make_agent(config: Any, env: Any, seed: int = 0) -> Agent:
    """Build the agent an ``agent`` config section (or a whole ``AppConfig``) describes, on ``env``.

    Args:
        config: ``AgentConfig`` or ``AppConfig``.
        env: the torch vector environment (``TorchVecEnv``) to learn on.
        seed: seed of the agent (network initialisation, exploration).
    """
    cfg: AgentConfig = getattr(config, "agent", config)
    _check(cfg)
    if cfg.backend == "native" and cfg.algo == "ddqn":
        from finrl_lite.agents.native.ddqn import DDQNConfig
        from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent

        return NativeDDQNAgent(
            env, _dataclass_config(DDQNConfig, "native DDQN", cfg.params, seed, exclude={"seed", "total_steps"})
        )
    if cfg.backend == "native":
        from finrl_lite.agents.native.ppo import NativePPO, PPOConfig

        return NativePPO(env, _dataclass_config(PPOConfig, "native PPO", cfg.params, seed, exclude={"seed"}))
    if cfg.backend == "sb3":
        from finrl_lite.agents.sb3.agent import SB3Agent

        return SB3Agent(cfg.algo, env, cfg.params, seed=seed)
    from finrl_lite.agents.rllib.agent import RLlibAgent

    return RLlibAgent(cfg.algo, env, cfg.params, seed=seed)


def save_agent(agent: Agent, cfg: AgentConfig, directory: str | Path, training_state: bool = False) -> Path:
    """Save ``agent`` into ``directory`` with a small ``agent.json`` that :func:`load_agent` reads.

    ``training_state`` makes it a checkpoint: the agent also writes what continuing training exactly needs
    (replay buffer, current observation...; see each backend's ``save``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = {"native": "model.pt", "sb3": "model.zip", "rllib": "model"}[cfg.backend]
    agent.save(directory / name, training_state=training_state)
    atomic_write_text(directory / _META, json.dumps({"backend": cfg.backend, "algo": cfg.algo, "file": name}))
    return directory


def load_agent(directory: str | Path, env: Any = None) -> Agent:
    """Load an agent saved by :func:`save_agent` (attach ``env`` to continue training)."""
    directory = Path(directory)
    meta_path = directory / _META
    if not meta_path.is_file():
        raise ConfigError(f"{directory}: no saved agent here ({_META} missing)")
    meta = json.loads(meta_path.read_text())
    path = directory / meta["file"]
    if meta["backend"] == "native" and meta["algo"] == "ddqn":
        from finrl_lite.agents.native.trading_ddqn import NativeDDQNAgent

        return NativeDDQNAgent.load(path, env=env)
    if meta["backend"] == "native":
        from finrl_lite.agents.native.ppo import NativePPO

        return NativePPO.load(path, env=env)
    if meta["backend"] == "sb3":
        from finrl_lite.agents.sb3.agent import SB3Agent

        return SB3Agent.load(path, env=env)
    from finrl_lite.agents.rllib.agent import RLlibAgent

    return RLlibAgent.load(path, env=env)
