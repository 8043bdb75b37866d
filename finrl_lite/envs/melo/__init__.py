"""Nasdaq Dynamic M-ELO: a batched torch midpoint holding-period simulator and environment.

Public names are imported lazily, so ``import finrl_lite.envs.melo.config`` stays light.

* :mod:`~finrl_lite.envs.melo.calibration`: midpoint-process constants fitted on LOBSTER data.
* :mod:`~finrl_lite.envs.melo.simulator`: order flow and matching, one 30-second period at a time.
* :mod:`~finrl_lite.envs.melo.regime`: the Bayes filter of the hidden regime from the move counts.
* :mod:`~finrl_lite.envs.melo.env`: :class:`MeloVecEnv` (a ``TorchVecEnv`` with discrete actions: +-delta steps
  or the holding period itself; one action's outcome per step, or every action's with ``counterfactual=True``).
* :mod:`~finrl_lite.envs.melo.registration`: :func:`register_melo` (``finrl_lite/Melo-v0`` through the
  shared gymnasium adapters of :mod:`finrl_lite.envs.adapters`).

Training (:mod:`finrl_lite.train.melo`), the regime table (:mod:`finrl_lite.train.melo_table`) and the evaluation
against static holding periods (:mod:`finrl_lite.train.melo_eval`) live in ``finrl_lite.train``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finrl_lite.lazy import lazy_exports

__all__ = [
    "DEFAULT_CALIBRATION",
    "MELO_ID",
    "MeloCalibration",
    "MeloConfig",
    "MeloVecEnv",
    "calibrate_lobster",
    "make_melo_env",
    "make_melo_vec_env",
    "register_melo",
]

if TYPE_CHECKING:
    from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration, calibrate_lobster
    from finrl_lite.envs.melo.config import MeloConfig
    from finrl_lite.envs.melo.env import MeloVecEnv
    from finrl_lite.envs.melo.registration import MELO_ID, make_melo_env, make_melo_vec_env, register_melo


__getattr__ = lazy_exports(
    __name__,
    {
        "DEFAULT_CALIBRATION": ".calibration",
        "MeloCalibration": ".calibration",
        "calibrate_lobster": ".calibration",
        "MeloConfig": ".config",
        "MeloVecEnv": ".env",
        "MELO_ID": ".registration",
        "make_melo_env": ".registration",
        "make_melo_vec_env": ".registration",
        "register_melo": ".registration",
    },
)
