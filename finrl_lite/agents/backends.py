"""The agent backends ``agent.backend`` can name, each declared once as a :class:`AgentBackend` entry.

Entries point at their implementation by import path, so this module imports neither torch, SB3 nor Ray;
:mod:`finrl_lite.config` validates ``agent.backend`` and ``agent.algo`` against :data:`BACKENDS`, and
:mod:`finrl_lite.agents.factory` builds, saves and loads through it. Adding a backend is one module (its
agent class) plus one entry::

    from finrl_lite.agents.backends import BACKENDS, AgentBackend

    BACKENDS.register(AgentBackend(
        name="mylib",
        algos={"ppo": "mypkg.agent:MyAgent"},   # algo -> Agent class; MyAgent.load(path, env=) restores it
        build="mypkg.agent:MyAgent",            # called as build(algo, env, params, seed=seed)
        file_name="model.pt",
    ))

:data:`COMPOSITE_AGENTS` lists the saved agents composed of other saved agents (the ensemble policies of
:mod:`finrl_lite.agents.ensemble`): :func:`~finrl_lite.agents.factory.load_agent` reads them, a config cannot
name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from finrl_lite.agents.hyperparameters import NATIVE_PPO, SB3_A2C, SB3_OFF_POLICY, SB3_PPO, Hyperparameter
from finrl_lite.errors import ConfigError
from finrl_lite.registry import Registry, Target, resolve

__all__ = ["AgentBackend", "BACKENDS", "COMPOSITE_AGENTS", "CompositeAgent"]


@dataclass(frozen=True)
class AgentBackend:
    """One agent backend.

    Attributes:
        name: the ``agent.backend`` value.
        algos: ``agent.algo`` value -> the agent class (import path or class) implementing
            :class:`~finrl_lite.agents.base.Agent`; its classmethod ``load(path, env=)`` restores a saved agent.
        build: callable ``(algo, env, params, seed=) -> Agent`` that builds a new agent on a torch vector
            environment from ``agent.params`` (which it checks, naming the allowed keys).
        file_name: the model's file (or folder) name inside a saved agent directory.
        description: one line for messages and docs.
        hyperparameters: ``agent.algo`` value -> the hyper-parameters its agents can change while they train
            (``set_hyperparameters``; what population-based training mutates), with their valid ranges.
        discrete_algos: the algorithms whose ``predict`` returns the Box action of a discrete choice
            (:mod:`finrl_lite.envs.discrete_actions`: hold, or buy / sell ``hmax`` shares of one ticker); an
            ensemble can take a majority vote over those.
        check: callable ``(algo, params) -> None`` raising :class:`~finrl_lite.errors.ConfigError` for
            ``agent.params`` the algorithm does not take, without building anything (a run checks its config with it
            before it writes a file); None: ``build`` is the only check.
    """

    name: str
    algos: Mapping[str, Target]
    build: Target
    file_name: str
    description: str = ""
    hyperparameters: Mapping[str, Mapping[str, Hyperparameter]] = field(default_factory=dict)
    discrete_algos: frozenset[str] = frozenset()
    check: Target | None = None

    def __post_init__(self) -> None:
        if not self.algos:
            raise ConfigError(f"agent backend '{self.name}' declares no algorithm")
        if not self.file_name or Path(self.file_name).name != self.file_name:
            raise ConfigError(f"agent backend '{self.name}': file_name must be a plain file name, got {self.file_name!r}")
        unknown = set(self.discrete_algos) - set(self.algos)
        if unknown:
            raise ConfigError(f"agent backend '{self.name}': discrete_algos {sorted(unknown)} are not among its algos")
        object.__setattr__(self, "algos", MappingProxyType(dict(self.algos)))
        object.__setattr__(self, "hyperparameters", MappingProxyType(dict(self.hyperparameters)))
        undeclared = sorted(set(self.hyperparameters) - set(self.algos))
        if undeclared:
            raise ConfigError(f"agent backend '{self.name}': hyperparameters of {undeclared}, which are not among its algos")
        object.__setattr__(self, "discrete_algos", frozenset(self.discrete_algos))

    def make(self, algo: str, env: Any, params: Mapping[str, Any], seed: int = 0) -> Any:
        """A new agent of ``algo`` on ``env`` (the implementation is imported now)."""
        self._require(algo)
        return resolve(self.build)(algo, env, dict(params), seed=seed)

    def check_params(self, algo: str, params: Mapping[str, Any]) -> None:
        """Refuse an algorithm the backend does not declare, or ``params`` it does not take (cheap: builds nothing)."""
        self._require(algo)
        if self.check is not None:
            resolve(self.check)(algo, dict(params))

    def agent_class(self, algo: str) -> Any:
        """The agent class of ``algo`` (imported now)."""
        self._require(algo)
        return resolve(self.algos[algo])

    def _require(self, algo: str) -> None:
        if algo not in self.algos:
            raise ConfigError(
                f"agent.algo '{algo}' is not available on backend '{self.name}'; choose one of {', '.join(self.algos)}"
            )

    def tunable(self, algo: str) -> Mapping[str, Hyperparameter]:
        """The hyper-parameters agents of ``algo`` can change while they train (empty: none)."""
        return self.hyperparameters.get(algo, MappingProxyType({}))


_SB3_AGENT = "finrl_lite.agents.sb3.agent:SB3Agent"
_RLLIB_AGENT = "finrl_lite.agents.rllib.agent:RLlibAgent"

BACKENDS: Registry[AgentBackend] = Registry(
    "agent backend",
    [
        AgentBackend(
            name="native",
            algos={
                "ppo": "finrl_lite.agents.native.ppo:NativePPO",
                "ddqn": "finrl_lite.agents.native.trading_ddqn:NativeDDQNAgent",
            },
            build="finrl_lite.agents.native.build:build_native_agent",
            file_name="model.pt",
            check="finrl_lite.agents.native.build:check_native_params",
            description="on-device torch agents that read the batched environment's tensors directly",
            hyperparameters={"ppo": NATIVE_PPO},
            discrete_algos=frozenset({"ddqn"}),
        ),
        AgentBackend(
            name="sb3",
            algos=dict.fromkeys(("ppo", "a2c", "ddpg", "td3", "sac", "dqn", "ddqn"), _SB3_AGENT),
            build=_SB3_AGENT,
            file_name="model.zip",
            check="finrl_lite.agents.sb3.agent:check_hyperparameters",
            description="stable-baselines3 algorithms through the SB3 vector-env adapter",
            hyperparameters={
                "ppo": SB3_PPO,
                "a2c": SB3_A2C,
                **dict.fromkeys(("ddpg", "td3", "sac", "dqn", "ddqn"), SB3_OFF_POLICY),
            },
            discrete_algos=frozenset({"dqn", "ddqn"}),
        ),
        AgentBackend(
            name="rllib",
            algos=dict.fromkeys(("ppo", "dqn"), _RLLIB_AGENT),
            build=_RLLIB_AGENT,
            file_name="model",
            check="finrl_lite.agents.rllib.agent:check_hyperparameters",
            description="Ray RLlib (new API stack); needs the rllib extra",
            discrete_algos=frozenset({"dqn"}),
        ),
    ],
)
"""Every agent backend, by name."""


@dataclass(frozen=True)
class CompositeAgent:
    """A kind of saved agent composed of other saved agents (an ensemble), which :func:`~finrl_lite.agents.factory.load_agent`
    reads but ``agent.backend`` cannot name: it is assembled from trained agents, not built from one config.

    Attributes:
        name: the ``composite`` value in the saved directory's ``agent.json``.
        agent_class: the class (import path or class); its classmethod ``load(path, env=)`` restores a saved one.
        file_name: the file its ``save`` writes inside the saved agent directory (its members go beside it).
        description: one line for messages and docs.
    """

    name: str
    agent_class: Target
    file_name: str
    description: str = ""

    def __post_init__(self) -> None:
        if not self.file_name or Path(self.file_name).name != self.file_name:
            raise ConfigError(f"composite agent '{self.name}': file_name must be a plain file name, got {self.file_name!r}")


COMPOSITE_AGENTS: Registry[CompositeAgent] = Registry(
    "composite agent",
    [
        CompositeAgent(
            name="ensemble",
            agent_class="finrl_lite.agents.ensemble:EnsembleAgent",
            file_name="ensemble.json",
            description="pick-best, mean-action or majority-vote policy over trained agents",
        )
    ],
)
"""Every composite agent kind, by name (loader entries only: not ``agent.backend`` choices)."""
