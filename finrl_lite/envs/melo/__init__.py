"""Nasdaq Dynamic M-ELO: a batched torch midpoint holding-period simulator, environment and adapters.

Public names are imported lazily, so ``import finrl_lite.envs.melo.config`` stays light.

* :mod:`~finrl_lite.envs.melo.calibration`: midpoint-process constants fitted on LOBSTER data.
* :mod:`~finrl_lite.envs.melo.simulator`: order flow and matching, one 30-second period at a time.
* :mod:`~finrl_lite.envs.melo.env`: :class:`MeloVecEnv` (native torch API).
* :mod:`~finrl_lite.envs.melo.gym_adapter`: :class:`MeloGymVectorEnv` (gymnasium ``VectorEnv``).
* :mod:`~finrl_lite.envs.melo.registration`: :func:`register_melo` (``finrl_lite/Melo-v0``).
* :mod:`~finrl_lite.envs.melo.training`: Double DQN training and evaluation against static holding periods.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_CALIBRATION",
    "MELO_ID",
    "MeloCalibration",
    "MeloConfig",
    "MeloGymVectorEnv",
    "MeloVecEnv",
    "calibrate_lobster",
    "evaluate_melo",
    "plot_pareto",
    "register_melo",
    "train_melo",
]

_LAZY = {
    "DEFAULT_CALIBRATION": "calibration",
    "MeloCalibration": "calibration",
    "calibrate_lobster": "calibration",
    "MeloConfig": "config",
    "MeloVecEnv": "env",
    "MeloGymVectorEnv": "gym_adapter",
    "MELO_ID": "registration",
    "register_melo": "registration",
    "evaluate_melo": "training",
    "plot_pareto": "training",
    "train_melo": "training",
}

if TYPE_CHECKING:
    from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration, calibrate_lobster
    from finrl_lite.envs.melo.config import MeloConfig
    from finrl_lite.envs.melo.env import MeloVecEnv
    from finrl_lite.envs.melo.gym_adapter import MeloGymVectorEnv
    from finrl_lite.envs.melo.registration import MELO_ID, register_melo
    from finrl_lite.envs.melo.training import evaluate_melo, plot_pareto, train_melo


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"finrl_lite.envs.melo.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'finrl_lite.envs.melo' has no attribute '{name}'")
