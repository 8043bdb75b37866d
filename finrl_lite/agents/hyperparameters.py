"""The hyper-parameters an agent can change while it trains, with their valid ranges.

Population-based training (:mod:`finrl_lite.train.population`) mutates these between training intervals:
an exploited trial loads another trial's agent and applies its own new values with the agent's
``set_hyperparameters``. Each backend declares them per algorithm in its
:class:`~finrl_lite.agents.backends.AgentBackend` entry (``hyperparameters``); the config checks
``population.mutations`` against them when it loads. This module imports neither torch nor the agents.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finrl_lite.errors import ConfigError

__all__ = [
    "Hyperparameter",
    "NATIVE_PPO",
    "SB3_A2C",
    "SB3_OFF_POLICY",
    "SB3_PPO",
    "check_hyperparameters",
]


@dataclass(frozen=True)
class Hyperparameter:
    """The valid range of one hyper-parameter.

    Attributes:
        low: Lower bound.
        high: Upper bound (``inf``: none).
        integer: Only whole numbers.
        low_open: ``low`` itself is not allowed.
        high_open: ``high`` itself is not allowed.
    """

    low: float
    high: float = math.inf
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` is in the range (and whole, for an integer hyper-parameter)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            return False
        if self.integer and value != int(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """The range as text: ``(0, 1]``, ``integers >= 1``."""
        if self.integer and self.high == math.inf:
            return f"integers {'>' if self.low_open else '>='} {self.low:g}"
        kind = "integers in " if self.integer else ""
        return f"{kind}{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def check(self, name: str, value: Any, owner: str) -> int | float:
        """``value`` as the hyper-parameter's type, or a :class:`ConfigError` naming ``owner`` and the range."""
        if not self.contains(value):
            raise ConfigError(f"{owner}: {name}={value!r} is outside its valid range {self.describe()}")
        return int(value) if self.integer else float(value)


def check_hyperparameters(specs: Mapping[str, Hyperparameter], values: Mapping[str, Any], owner: str) -> dict[str, int | float]:
    """Check ``values`` against ``specs``: every name known, every value in its range.

    Args:
        specs: The hyper-parameters ``owner`` can change during training.
        values: Name -> new value.
        owner: The agent as messages name it (``"native ppo"``).

    Returns:
        The values as their hyper-parameters' types (int or float).

    Raises:
        ConfigError: An unknown name (the message lists the known ones) or a value out of range.
    """
    unknown = sorted(set(values) - set(specs))
    if unknown:
        allowed = ", ".join(sorted(specs)) or "none"
        raise ConfigError(f"{owner} cannot change {unknown} during training; it can change: {allowed}")
    return {name: specs[name].check(name, value, owner) for name, value in values.items()}


_POSITIVE = Hyperparameter(0.0, low_open=True)
_NON_NEGATIVE = Hyperparameter(0.0)
_COUNT = Hyperparameter(1, integer=True)
_DISCOUNT = Hyperparameter(0.0, 1.0, low_open=True)
_FRACTION = Hyperparameter(0.0, 1.0)

NATIVE_PPO: Mapping[str, Hyperparameter] = {
    "learning_rate": _POSITIVE,
    "ent_coef": _NON_NEGATIVE,
    "clip_coef": _POSITIVE,
    "gamma": _DISCOUNT,
    "gae_lambda": _FRACTION,
    "vf_coef": _NON_NEGATIVE,
    "max_grad_norm": _POSITIVE,
    "num_steps": _COUNT,
    "update_epochs": _COUNT,
    "num_minibatches": _COUNT,
}
"""Native PPO (:class:`~finrl_lite.agents.native.ppo.PPOConfig` fields); ``num_steps`` applies from the next rollout."""

SB3_A2C: Mapping[str, Hyperparameter] = {
    "learning_rate": _POSITIVE,
    "gamma": _DISCOUNT,
    "gae_lambda": _FRACTION,
    "ent_coef": _NON_NEGATIVE,
    "vf_coef": _NON_NEGATIVE,
    "max_grad_norm": _POSITIVE,
}
"""SB3 A2C (its constructor's names); ``n_steps`` is not here: it sizes SB3's rollout buffer."""

SB3_PPO: Mapping[str, Hyperparameter] = {**SB3_A2C, "clip_range": _POSITIVE}
"""SB3 PPO: A2C's plus ``clip_range``."""

SB3_OFF_POLICY: Mapping[str, Hyperparameter] = {
    "learning_rate": _POSITIVE,
    "gamma": _DISCOUNT,
    "tau": Hyperparameter(0.0, 1.0, low_open=True),
}
"""SB3 DQN, Double DQN, DDPG, TD3 and SAC."""
