"""stable-baselines3 backend: PPO, A2C, DDPG, TD3, SAC, DQN and Double DQN behind the `Agent` interface.

The torch environment is wrapped in :class:`~finrl_lite.envs.adapters.SB3VecEnv` (SB3 copies every
step to numpy; that is SB3's design). DQN-family agents act on
:class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` (hold, or buy / sell one ticker by
``hmax``), and :meth:`SB3Agent.predict` maps their integer actions back to the Box action space so
every agent's predictions feed the same environment.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from finrl_lite.agents.base import ProgressCallback, TrainProgress
from finrl_lite.agents.sb3.double_dqn import DoubleDQN
from finrl_lite.envs.adapters import SB3VecEnv
from finrl_lite.envs.discrete_actions import DiscreteTradeActions, discrete_to_box
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_path, atomic_write_text

__all__ = ["SB3_ALGORITHMS", "SB3Agent"]

logger = logging.getLogger(__name__)

SB3_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "ddpg": DDPG,
    "td3": TD3,
    "sac": SAC,
    "dqn": DQN,
    "ddqn": DoubleDQN,
}
_DISCRETE = ("dqn", "ddqn")
_RESERVED = {"self", "policy", "env", "seed", "device", "verbose", "_init_setup_model"}


def check_hyperparameters(algo: str, params: dict[str, Any]) -> None:
    """Refuse hyper-parameters the SB3 algorithm does not take (the message lists the allowed ones)."""
    if algo not in SB3_ALGORITHMS:
        raise ConfigError(f"unknown SB3 algorithm '{algo}'; known: {', '.join(SB3_ALGORITHMS)}")
    allowed = set(inspect.signature(SB3_ALGORITHMS[algo].__init__).parameters) - _RESERVED
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"agent.params {unknown} are not {algo.upper()} hyper-parameters; allowed: {', '.join(sorted(allowed))}"
        )


class _ProgressAdapter(BaseCallback):
    """Calls a finrl_lite progress callback at the end of every rollout."""

    def __init__(self, callback: ProgressCallback, total: int) -> None:
        super().__init__()
        self.user_callback, self.total = callback, total
        self.start = time.perf_counter()
        self.start_steps = 0
        self._stop = False

    def _on_training_start(self) -> None:
        self.start, self.start_steps = time.perf_counter(), self.num_timesteps

    def _on_step(self) -> bool:
        return not self._stop

    def _on_rollout_end(self) -> None:
        buf = self.model.ep_info_buffer
        ret = float(np.mean([e["r"] for e in buf])) if buf else float("nan")
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        progress = TrainProgress(self.num_timesteps, self.total, (self.num_timesteps - self.start_steps) / elapsed, ret, {})
        self._stop = self.user_callback(progress) is False


class SB3Agent:
    """An SB3 algorithm on a finrl_lite torch vector environment.

    Args:
        algo: one of :data:`SB3_ALGORITHMS`.
        env: torch vector environment (``TorchVecEnv``); None when loading only to predict.
        params: the algorithm's own hyper-parameters (checked against its signature).
        seed: seed of SB3 (network initialisation, exploration).
        device: torch device of the networks.
    """

    def __init__(
        self,
        algo: str,
        env: Any,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        device: str = "cpu",
        model: BaseAlgorithm | None = None,
    ) -> None:
        params = dict(params or {})
        check_hyperparameters(algo, params)
        self.algo = algo
        self.params = params
        self.seed = seed
        self.num_tickers = env.num_tickers if env is not None else None
        self.vec_env = self._wrap(env) if env is not None else None
        self.model = model or SB3_ALGORITHMS[algo]("MlpPolicy", self.vec_env, seed=seed, device=device, verbose=0, **params)
        if model is not None and self.vec_env is not None:
            self.model.set_env(self.vec_env)

    def _wrap(self, env: Any) -> SB3VecEnv:
        if self.algo not in _DISCRETE:
            return SB3VecEnv(env)
        vec = SB3VecEnv(DiscreteTradeActions(env))
        vec.action_space = spaces.Discrete(2 * env.num_tickers + 1)
        return vec

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> SB3Agent:
        sb3_callback = _ProgressAdapter(callback, total_timesteps) if callback is not None else None
        self.model.learn(total_timesteps, callback=sb3_callback, reset_num_timesteps=False)
        return self

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Box actions ``[B, N]`` for observations ``[B, D]`` (numpy or torch in, same type out)."""
        is_torch = isinstance(obs, torch.Tensor)
        x = obs.detach().cpu().numpy().astype(np.float32) if is_torch else np.asarray(obs, dtype=np.float32)
        action, _ = self.model.predict(x, deterministic=deterministic)
        if self.algo in _DISCRETE:
            n = (self.model.action_space.n - 1) // 2  # type: ignore[attr-defined]
            action = discrete_to_box(torch.as_tensor(action), n).numpy()
        action = np.asarray(action, dtype=np.float64)
        return torch.as_tensor(action, device=obs.device) if is_torch else action

    def save(self, path: str | Path) -> Path:
        """``path`` (SB3 zip) plus ``path.json`` naming the algorithm (so load needs no other input)."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            self.model.save(handle)
        atomic_write_text(
            path.with_suffix(".json"), json.dumps({"backend": "sb3", "algo": self.algo, "params": self.params}, default=str)
        )
        return path

    @classmethod
    def load(cls, path: str | Path, env: Any = None, device: str = "cpu") -> SB3Agent:
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        model = SB3_ALGORITHMS[meta["algo"]].load(path, device=device)
        return cls(meta["algo"], env, meta.get("params", {}), model=model)
