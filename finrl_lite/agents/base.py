"""The one interface every agent backend implements (SB3, RLlib, native, rule-based)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Agent", "TrainProgress", "ProgressCallback", "TunableAgent", "rollout_lengths"]


@dataclass
class TrainProgress:
    """What a training loop reports to its callback after each iteration.

    Attributes:
        steps: environment steps consumed so far (summed over environments).
        total_steps: the training budget in environment steps.
        steps_per_second: throughput since training started, learning included.
        episode_return: mean return of the episodes that ended recently (NaN before the first one).
        extra: backend-specific numbers (losses, epsilon...).
    """

    steps: int
    total_steps: int
    steps_per_second: float
    episode_return: float
    extra: dict[str, float]


ProgressCallback = Callable[[TrainProgress], "bool | None"]
"""Called after each iteration; returning ``False`` stops training early."""


def rollout_lengths(budget: int, num_envs: int, num_steps: int) -> list[int]:
    """Rollout lengths (batched steps) that learn ``budget`` environment steps on ``num_envs`` environments.

    Whole rollouts of ``num_steps`` while they fit, then one shorter rollout for the rest (all of a budget smaller
    than one rollout), so the steps learned are the budget rounded up to whole batched steps: an on-policy learner
    never runs a whole rollout past the budget it was asked for. ``rollout_lengths(4096, 128, 2048) == [32]``.
    """
    if budget <= 0:
        return []
    whole, rest = divmod(budget, num_envs * num_steps)
    return [num_steps] * whole + ([math.ceil(rest / num_envs)] if rest else [])


@runtime_checkable
class Agent(Protocol):
    """A trading agent.

    ``predict`` takes a batch of observations (numpy or torch, ``[B, D]``) and returns a batch of
    actions in the environment's action space, of the same array type.
    """

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> Agent: ...

    def predict(self, obs: Any, deterministic: bool = True) -> Any: ...

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """Write the model; ``training_state`` adds what only continuing training exactly needs (a checkpoint)."""
        ...

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> Agent: ...


@runtime_checkable
class TunableAgent(Agent, Protocol):
    """An agent whose hyper-parameters can change between :meth:`learn` calls (what population-based training needs).

    The names and ranges it accepts are its backend's ``hyperparameters`` for its algorithm
    (:class:`~finrl_lite.agents.backends.AgentBackend`).
    """

    def set_hyperparameters(self, values: Mapping[str, float]) -> None:
        """Apply new values from the next :meth:`learn` call on (unknown names and values out of range: ConfigError)."""
        ...
