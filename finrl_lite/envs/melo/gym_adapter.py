"""Gymnasium adapters of :class:`~finrl_lite.envs.melo.env.MeloVecEnv` (numpy in and out).

:class:`MeloGymVectorEnv` is a ``gymnasium.vector.VectorEnv`` whose sub-environments are the
(environment x symbol) rows; it autoresets in the same step (``AutoresetMode.SAME_STEP``: the finished
day's last observation is in ``infos["final_obs"]``). :class:`MeloGymEnv` is one row as a plain
``gymnasium.Env`` (for ``check_env`` and single-env libraries).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration
from finrl_lite.envs.melo.config import MeloConfig
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.errors import ConfigError

__all__ = ["MeloGymEnv", "MeloGymVectorEnv"]


def _spaces(env: MeloVecEnv) -> tuple[spaces.Box, spaces.Discrete]:
    obs = spaces.Box(-1e4, 1e4, shape=(env.observation_size,), dtype=np.float32)  # features are scaled to O(1)
    return obs, spaces.Discrete(env.num_actions)


def _build(
    config: MeloConfig | dict[str, Any] | None,
    rows: int,
    num_symbols: int,
    seed: int,
    device: str,
    calibration: MeloCalibration = DEFAULT_CALIBRATION,
) -> MeloVecEnv:
    cfg = MeloConfig.model_validate(config) if isinstance(config, dict) else (config or MeloConfig())
    if rows % num_symbols:
        raise ConfigError(f"num_envs ({rows}) must be a multiple of num_symbols ({num_symbols})")
    sim = cfg.sim.model_copy(update={"num_envs": rows // num_symbols, "num_symbols": num_symbols})
    return MeloVecEnv(sim, cfg.env, seed=seed, device=device, calibration=calibration)


def _stats_info(info: dict[str, Any]) -> dict[str, np.ndarray]:
    s = info["stats"]
    return {
        "fill_rate": s.fill_rate[:, 0].cpu().numpy().astype(np.float64),
        "markout_1s_bps": s.markout_1s[:, 0].cpu().numpy().astype(np.float64),
        "markout_5s_bps": s.markout_5s[:, 0].cpu().numpy().astype(np.float64),
        "baseline_fill_rate": s.fill_rate[:, 1].cpu().numpy().astype(np.float64),
        "baseline_markout_1s_bps": s.markout_1s[:, 1].cpu().numpy().astype(np.float64),
        "h_ms": info["h_ms"].cpu().numpy().astype(np.float64),
        "regime": info["regime"].cpu().numpy(),
    }


class MeloGymVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` M-ELO symbol streams as a gymnasium ``VectorEnv`` (the ``vector_entry_point`` of ``finrl_lite/Melo-v0``).

    Args:
        num_envs: Sub-environments = (market x symbol) rows.
        config: The ``melo`` section (a :class:`MeloConfig` or a dict); its ``sim.num_envs`` / ``num_symbols`` are replaced.
        num_symbols: Symbols per market (``num_envs`` must be a multiple); rows cycle the calibrated symbols.
        seed: Seed of the simulator.
        device: torch device of the core.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        config: MeloConfig | dict[str, Any] | None = None,
        num_symbols: int = 1,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.env = _build(config, num_envs, num_symbols, seed, device)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = None

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new day for every row (an int seed, or the first of a list, reseeds the simulator)."""
        s = seed if seed is None or isinstance(seed, int) else int(seed[0])
        if s is not None:
            self.single_action_space.seed(s)
        obs = self.env.reset(seed=s)
        return obs.cpu().numpy().astype(np.float32), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One 30-second period for every row; ``actions [num_envs]`` ints."""
        obs, reward, terminated, truncated, info = self.env.step(torch.as_tensor(np.asarray(actions), dtype=torch.int64))
        infos: dict[str, Any] = _stats_info(info)
        done = (terminated | truncated).cpu().numpy()
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            last = info["final_obs"].cpu().numpy().astype(np.float32)  # type: ignore[union-attr]
            for i in np.flatnonzero(done):
                final_obs[i] = last[i]
            infos["final_obs"] = final_obs
            infos["_final_obs"] = done
            infos["final_info"] = {k: v.copy() for k, v in _stats_info(info).items()}
            infos["_final_info"] = done
        return (
            obs.cpu().numpy().astype(np.float32),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            infos,
        )


class MeloGymEnv(gymnasium.Env[np.ndarray, int]):
    """One M-ELO symbol stream as a gymnasium ``Env`` (the ``entry_point`` of ``finrl_lite/Melo-v0``).

    Args:
        config: The ``melo`` section (a :class:`MeloConfig` or a dict).
        symbol: Index of the calibrated symbol to simulate (0 AAPL, 1 AMZN, 2 GOOG).
        seed: Default simulator seed.
        device: torch device of the core.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, config: MeloConfig | dict[str, Any] | None = None, symbol: int = 0, seed: int = 0, device: str = "cpu"
    ) -> None:
        syms = DEFAULT_CALIBRATION.symbols
        one = dataclasses.replace(DEFAULT_CALIBRATION, symbols=(syms[symbol % len(syms)],))
        self.env = _build(config, 1, 1, seed, device, calibration=one)
        self.observation_space, self.action_space = _spaces(self.env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new day."""
        super().reset(seed=seed)
        obs = self.env.reset(seed=seed)
        return obs[0].cpu().numpy().astype(np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One 30-second period."""
        obs, reward, terminated, truncated, info = self.env.step(torch.tensor([int(action)], dtype=torch.int64))
        r = 0
        out = info["final_obs"] if bool(truncated[r]) else obs
        infos = {k: v[r].item() for k, v in _stats_info(info).items()}
        return out[r].cpu().numpy().astype(np.float32), float(reward[r]), bool(terminated[r]), bool(truncated[r]), infos  # type: ignore[index]
