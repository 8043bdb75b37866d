"""`make_agent` / `save_agent` / `load_agent`: one entry point over every registered backend (:data:`BACKENDS`)
and composite agent (:data:`COMPOSITE_AGENTS`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finrl_lite.agents.backends import BACKENDS, COMPOSITE_AGENTS
from finrl_lite.agents.base import Agent
from finrl_lite.config import AgentConfig
from finrl_lite.errors import ConfigError, FinrlLiteError
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
    """Load an agent saved by :func:`save_agent` or :func:`save_composite_agent` (attach ``env`` to continue training).

    Raises:
        ConfigError: no ``agent.json``, or a file of the saved agent that cannot be read (truncated, corrupt, of
            another format), naming the file.
    """
    directory = Path(directory)
    meta_path = directory / _META
    if not meta_path.is_file():
        raise ConfigError(f"{directory}: no saved agent here ({_META} missing)")
    try:
        meta = json.loads(meta_path.read_text())
        name = str(meta["file"])
        composite = meta.get("composite")
        backend, algo = (None, None) if composite is not None else (str(meta["backend"]), str(meta["algo"]))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{meta_path}: unreadable ({type(exc).__name__}: {exc}); the file is truncated or corrupt") from None
    try:
        if composite is not None:
            agent_class = resolve(COMPOSITE_AGENTS.get(str(composite)).agent_class)
        else:
            agent_class = BACKENDS.get(backend).agent_class(algo)
    except ConfigError as exc:
        raise ConfigError(f"{meta_path}: {exc}") from None
    model = directory / name
    try:
        return agent_class.load(model, env=env)  # type: ignore[no-any-return]
    except FinrlLiteError:
        raise
    except Exception as exc:  # torch, zipfile, pickle and json each fail their own way on a damaged file
        raise ConfigError(
            f"{model}: cannot load the saved agent ({type(exc).__name__}: {exc}); the file is truncated or corrupt"
        ) from exc
