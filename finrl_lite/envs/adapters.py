"""Adapters from a native :class:`~finrl_lite.envs.base.TorchVecEnv` to gymnasium and Stable-Baselines3.

- :class:`GymVectorEnv`: a gymnasium ``VectorEnv`` (numpy in and out, same-step autoreset declared in
  ``metadata["autoreset_mode"]``, infos as a dict of arrays with gymnasium's ``final_obs`` / ``final_info``).
- :class:`SB3VecEnv`: a Stable-Baselines3 ``VecEnv`` (``terminal_observation`` and ``TimeLimit.truncated``
  in the per-environment infos).
- :class:`GymEnv`: one environment as a gymnasium ``Env`` (passes ``check_env`` of gymnasium and SB3).

Observations go out as float32 numpy arrays (what SB3 and RLlib policies expect); the accounting inside
stays in the torch env's dtype. The action space is a float32 ``Box``, or ``Discrete(num_actions)`` for an
environment with discrete actions (``TorchVecEnv.num_actions``, M-ELO). Infos carry the tensor entries of
the torch env's info as numpy arrays (structured entries, such as M-ELO's ``stats``, stay on the torch side).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from finrl_lite.envs.base import TorchVecEnv
from finrl_lite.errors import ConfigError

__all__ = ["GymEnv", "GymVectorEnv", "SB3VecEnv", "single_spaces"]

logger = logging.getLogger(__name__)


def single_spaces(env: TorchVecEnv) -> tuple[spaces.Box, spaces.Box | spaces.Discrete]:
    """``(observation_space, action_space)`` of one environment: a float32 box with finite bounds, and a
    float32 box or, when ``env.num_actions`` is set, ``Discrete(num_actions)``."""
    big = float(np.finfo(np.float32).max)
    obs = spaces.Box(-big, big, shape=(env.observation_size,), dtype=np.float32)
    if env.num_actions is not None:
        return obs, spaces.Discrete(env.num_actions)
    return obs, spaces.Box(env.action_low, env.action_high, shape=(env.action_size,), dtype=np.float32)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _obs_np(x: torch.Tensor) -> np.ndarray:
    return _np(x.to(torch.float32))


def _info_arrays(info: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: _np(v) for k, v in info.items() if k != "final_obs" and isinstance(v, torch.Tensor)}


def _require_final_obs(env: TorchVecEnv) -> None:
    if not getattr(env, "final_obs", True) or not getattr(env, "autoreset", True):
        raise ConfigError("vector adapters need a torch environment with autoreset=True and final_obs=True")


def _close(env: TorchVecEnv) -> None:
    close = getattr(env, "close", None)  # BatchedEnv has one; a minimal TorchVecEnv may hold nothing to release
    if close is not None:
        close()


def _seed_arg(seed: int | Sequence[int] | None) -> int | list[int] | None:
    if seed is None or isinstance(seed, int | np.integer):
        return None if seed is None else int(seed)
    return [int(s) for s in seed]


class GymVectorEnv(gymnasium.vector.VectorEnv):
    """Gymnasium ``VectorEnv`` over a torch vector environment (same-step autoreset).

    ``step`` returns, for the environments that just finished, the first observation of their next
    episode; ``infos["final_obs"]`` (object array, ``None`` elsewhere) and ``infos["final_info"]`` hold
    the finished episode's last observation and info, with the ``_final_obs`` / ``_final_info`` masks,
    exactly as gymnasium's ``SyncVectorEnv`` in ``AutoresetMode.SAME_STEP``.

    Args:
        env: The torch vector environment.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: TorchVecEnv) -> None:
        _require_final_obs(env)
        self.env = env
        self.num_envs = env.num_envs
        self.single_observation_space, self.single_action_space = single_spaces(env)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every environment (an int seed reseeds the key generator; a list seeds each environment)."""
        if seed is not None:
            self.single_action_space.seed(seed if isinstance(seed, int) else int(seed[0]))
        obs, info = self.env.reset(seed=_seed_arg(seed))
        return _obs_np(obs), _info_arrays(info)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step with ``actions [B, N]`` (``[B]`` indices for discrete actions); numpy out, infos as a dict of arrays."""
        obs, reward, terminated, truncated, info = self.env.step(torch.as_tensor(np.asarray(actions)))
        done = _np(terminated | truncated)
        infos = _info_arrays(info)
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            last = _obs_np(info["final_obs"])
            for i in np.flatnonzero(done):
                final_obs[i] = last[i]
            infos["final_obs"] = final_obs
            infos["_final_obs"] = done
            infos["final_info"] = {k: v.copy() for k, v in _info_arrays(info).items()}
            infos["final_info"].update({f"_{k}": done for k in list(infos["final_info"])})
            infos["_final_info"] = done
        return _obs_np(obs), _np(reward).astype(np.float64), _np(terminated), _np(truncated), infos

    def close_extras(self, **kwargs: Any) -> None:
        """Close the torch environment (its device memory)."""
        _close(self.env)


class SB3VecEnv(VecEnv):
    """Stable-Baselines3 ``VecEnv`` over a torch vector environment.

    Finished environments are reset in the same step, as SB3 expects: their infos carry
    ``terminal_observation`` and ``TimeLimit.truncated`` (True when the episode was cut by the end of the
    data or the episode length rather than by ruin).

    Args:
        env: The torch vector environment.
    """

    def __init__(self, env: TorchVecEnv) -> None:
        _require_final_obs(env)
        self.env = env
        self.render_mode = None
        obs_space, act_space = single_spaces(env)
        super().__init__(env.num_envs, obs_space, act_space)
        self._actions: torch.Tensor | None = None

    def reset(self) -> np.ndarray:
        seeds = self._seeds
        seed: int | list[int] | None = None
        if all(s is not None for s in seeds):
            seed = [int(s) for s in seeds]  # type: ignore[arg-type]
        obs, info = self.env.reset(seed=seed)
        arrays = _info_arrays(info)
        self.reset_infos = [{k: v[i] for k, v in arrays.items()} for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return _obs_np(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(np.asarray(actions))

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise ConfigError("step_async must be called before step_wait")
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        term, trunc = _np(terminated), _np(truncated)
        dones = term | trunc
        arrays = _info_arrays(info)
        final = _obs_np(info["final_obs"])
        infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            item: dict[str, Any] = {k: v[i] for k, v in arrays.items()}
            if dones[i]:
                item["terminal_observation"] = final[i]
                item["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            infos.append(item)
        return _obs_np(obs), _np(reward).astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the torch environment (its device memory)."""
        _close(self.env)

    def _targets(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attributes of the shared torch environment (the same value for every index)."""
        source = self if attr_name == "render_mode" else self.env
        return [getattr(source, attr_name) for _ in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        """Calls the method once on the shared torch environment and repeats the result per index."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._targets(indices)]


class GymEnv(gymnasium.Env[np.ndarray, Any]):
    """One environment of a torch vector environment as a gymnasium ``Env`` (no autoreset).

    Args:
        env: A torch vector environment with ``num_envs == 1`` and ``autoreset=False``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env: TorchVecEnv) -> None:
        if env.num_envs != 1:
            raise ConfigError(f"GymEnv wraps exactly one environment, got num_envs={env.num_envs}")
        if getattr(env, "autoreset", False):
            raise ConfigError("GymEnv needs a torch environment built with autoreset=False")
        self.env = env
        self.observation_space, self.action_space = single_spaces(env)
        self.render_mode = None
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed)
        self._done = False
        return _obs_np(obs)[0], {k: v[0] for k, v in _info_arrays(info).items()}

    def close(self) -> None:
        """Close the torch environment (its device memory)."""
        _close(self.env)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise ConfigError("the episode has ended: call reset() before step()")
        if self.env.num_actions is not None:
            act = torch.as_tensor(np.asarray(action, dtype=np.int64).reshape(1))
        else:
            act = torch.as_tensor(np.asarray(action, dtype=np.float64).reshape(1, -1))
        obs, reward, terminated, truncated, info = self.env.step(act)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._done = term or trunc
        return _obs_np(obs)[0], float(reward[0]), term, trunc, {k: v[0] for k, v in _info_arrays(info).items()}
