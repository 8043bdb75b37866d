"""`make_agent` / `save_agent` / `load_agent`: one entry point over every registered backend (:data:`BACKENDS`)
and composite agent (:data:`COMPOSITE_AGENTS`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finrl_lite.agents.backends import BACKENDS, COMPOSITE_AGENTS
from finrl_lite.agents.base import Agent
from finrl_lite.config import AgentConfig
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_text
from finrl_lite.registry import resolve

__all__ = ["make_agent", "load_agent", "save_agent", "save_composite_agent"]

_META = "agent.json"


def make_agent(config: Any, env: Any, seed: int = 0) -> Agent:
    """Build the agent an ``agent`` config section (or a whole ``AppConfig``) describes, on ``env``.

    Args:
        config: ``AgentConfig`` or ``AppConfig``.
        env: the torch vector environment (``TorchVecEnv``) to learn on.
        seed: seed of the agent (network initialisation, exploration).
    """
    cfg: AgentConfig = getattr(config, "agent", config)
    return BACKENDS.get(cfg.backend).make(cfg.algo, env, cfg.params, seed=seed)


def save_agent(agent: Agent, cfg: AgentConfig, directory: str | Path, training_state: bool = False) -> Path:
    """Save ``agent`` into ``directory`` with a small ``agent.json`` that :func:`load_agent` reads.

    ``training_state`` makes it a checkpoint: the agent also writes what continuing training exactly needs
    (replay buffer, current observation...; see each backend's ``save``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = BACKENDS.get(cfg.backend).file_name
    agent.save(directory / name, training_state=training_state)
    atomic_write_text(directory / _META, json.dumps({"backend": cfg.backend, "algo": cfg.algo, "file": name}))
    return directory


def save_composite_agent(agent: Agent, kind: str, directory: str | Path, training_state: bool = False) -> Path:
    """Save an agent composed of saved agents (a :data:`COMPOSITE_AGENTS` ``kind``, such as ``"ensemble"``) into
    ``directory`` with the ``agent.json`` that :func:`load_agent` reads; the agent writes its members beside its file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = COMPOSITE_AGENTS.get(kind).file_name
    agent.save(directory / name, training_state=training_state)
    atomic_write_text(directory / _META, json.dumps({"composite": kind, "file": name}))
    return directory


def load_agent(directory: str | Path, env: Any = None) -> Agent:
    """Load an agent saved by :func:`save_agent` or :func:`save_composite_agent` (attach ``env`` to continue training)."""
    directory = Path(directory)
    meta_path = directory / _META
    if not meta_path.is_file():
        raise ConfigError(f"{directory}: no saved agent here ({_META} missing)")
    meta = json.loads(meta_path.read_text())
    try:
        if "composite" in meta:
            agent_class = resolve(COMPOSITE_AGENTS.get(meta["composite"]).agent_class)
        else:
            agent_class = BACKENDS.get(meta["backend"]).agent_class(meta["algo"])
    except ConfigError as exc:
        raise ConfigError(f"{meta_path}: {exc}") from None
    return agent_class.load(directory / meta["file"], env=env)
