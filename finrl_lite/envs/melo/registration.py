"""Gymnasium registration of the M-ELO environment as ``finrl_lite/Melo-v0``, through the shared adapters.

After :func:`register_melo`::

    gymnasium.make("finrl_lite/Melo-v0")                                          # one symbol stream
    gymnasium.make_vec("finrl_lite/Melo-v0", num_envs=64, vectorization_mode="vector_entry_point")

:func:`make_melo_env` wraps one row of :class:`~finrl_lite.envs.melo.env.MeloVecEnv` in
:class:`~finrl_lite.envs.adapters.GymEnv`; :func:`make_melo_vec_env` wraps ``num_envs`` rows (environment x
symbol) in :class:`~finrl_lite.envs.adapters.GymVectorEnv` (same-step autoreset, the finished day's last
observation in ``infos["final_obs"]``). Both take ``config``: the ``melo`` section (a :class:`MeloConfig`
or a dict of its fields), whose ``sim.num_envs`` / ``num_symbols`` they replace.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from finrl_lite.envs.adapters import GymEnv, GymVectorEnv
from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration
from finrl_lite.envs.melo.config import MeloConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.errors import ConfigError
from finrl_lite.gym_envs import MELO_ID, register_gym_envs

__all__ = ["MELO_ID", "make_melo_env", "make_melo_vec_env", "register_melo"]


def _build(
    config: MeloConfig | dict[str, Any] | None,
    rows: int,
    num_symbols: int,
    seed: int,
    device: str,
    calibration: MeloCalibration = DEFAULT_CALIBRATION,
    autoreset: bool = True,
) -> MeloVecEnv:
    cfg = MeloConfig.model_validate(config) if isinstance(config, dict) else (config or MeloConfig())
    if rows % num_symbols:
        raise ConfigError(f"num_envs ({rows}) must be a multiple of num_symbols ({num_symbols})")
    sim = cfg.sim.model_copy(update={"num_envs": rows // num_symbols, "num_symbols": num_symbols})
    return MeloVecEnv(sim, cfg.env, seed=seed, device=device, calibration=calibration, autoreset=autoreset)


def make_melo_env(
    config: MeloConfig | dict[str, Any] | None = None,
    symbol: int = 0,
    seed: int = 0,
    device: str = "cpu",
    render_mode: str | None = None,
) -> GymEnv:
    """One M-ELO symbol stream as a gymnasium ``Env`` (the ``entry_point`` of ``finrl_lite/Melo-v0``).

    Args:
        config: The ``melo`` section (a :class:`MeloConfig` or a dict).
        symbol: Index of the calibrated symbol to simulate (0 AAPL, 1 AMZN, 2 GOOG).
        seed: Default simulator seed.
        device: torch device of the core.
        render_mode: Unused (no rendering); accepted as gymnasium passes it.
    """
    symbols = DEFAULT_CALIBRATION.symbols
    one = dataclasses.replace(DEFAULT_CALIBRATION, symbols=(symbols[symbol % len(symbols)],))
    return GymEnv(_build(config, 1, 1, seed, device, calibration=one, autoreset=False))


def make_melo_vec_env(
    num_envs: int = 1,
    config: MeloConfig | dict[str, Any] | None = None,
    num_symbols: int = 1,
    seed: int = 0,
    device: str = "cpu",
) -> GymVectorEnv:
    """``num_envs`` M-ELO symbol streams as a gymnasium ``VectorEnv`` (the ``vector_entry_point``).

    Args:
        num_envs: Sub-environments = (market x symbol) rows.
        config: The ``melo`` section (a :class:`MeloConfig` or a dict).
        num_symbols: Symbols per market (``num_envs`` must be a multiple); rows cycle the calibrated symbols.
        seed: Seed of the simulator.
        device: torch device of the core.
    """
    return GymVectorEnv(_build(config, num_envs, num_symbols, seed, device))


def register_melo() -> None:
    """Register ``finrl_lite/Melo-v0`` with gymnasium (idempotent; ``import finrl_lite`` has done it already)."""
    register_gym_envs()
