"""stable-baselines3 backend: PPO, A2C, DDPG, TD3, SAC, DQN and Double DQN behind the `Agent` interface.

The torch environment is wrapped in :class:`~finrl_lite.envs.adapters.SB3VecEnv` (SB3 copies every
step to numpy; that is SB3's design). DQN-family agents act on
:class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions` (hold, or buy / sell one ticker by
``hmax``), and :meth:`SB3Agent.predict` maps their integer actions back to the Box action space so
every agent's predictions feed the same environment.

Resume: ``learn`` never resets SB3's timestep count (its learning-rate and exploration schedules run over
``num_timesteps`` at the call + the budget), progress is reported after each update (so a checkpoint taken
there holds the weights that went with its step count), and ``save(path, training_state=True)`` adds what
SB3's zip leaves out: the global random states SB3 samples from (python, numpy, torch), the action
space's generator and, for off-policy algorithms, the replay buffer. Loaded with an environment restored to
its snapshot, training then continues exactly.

Budget: ``learn(n)`` learns from ``n`` environment steps, rounded up to whole batched steps (``num_envs``). PPO and
A2C learn in whole rollouts of ``n_steps x num_envs``; the part of the budget that does not fill one (all of a budget
smaller than a rollout) is learned in one shorter rollout, instead of a whole rollout past the budget.

SB3's own logger writes nowhere (SB3's default makes an empty ``SB3-<time>`` folder in the temp directory per
``learn``); give ``tensorboard_log`` in the params to keep its logs.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import pickle
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import FloatSchedule

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import ProgressCallback, TrainProgress, rollout_lengths
from finrl_lite.agents.divergence import all_finite, check_diverged
from finrl_lite.agents.hyperparameters import check_hyperparameters as check_tunable
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
    """Calls a finrl_lite progress callback after every update.

    SB3 trains after ``on_rollout_end``, so the report is made when the next rollout starts and when training
    ends: a checkpoint taken from the callback then holds the weights updated on every step it counts. One adapter
    spans the SB3 ``learn`` calls of one :meth:`SB3Agent.learn` (whole rollouts, then the shorter last one).
    """

    def __init__(self, callback: ProgressCallback, start_steps: int, target: int) -> None:
        super().__init__()
        self.user_callback, self.start_steps, self.target = callback, start_steps, target
        self.start = time.perf_counter()
        self.reported = start_steps
        self.stopped = False

    def _on_step(self) -> bool:
        return not self.stopped

    def _on_rollout_start(self) -> None:
        self._report()

    def _on_training_end(self) -> None:
        self._report()

    def _report(self) -> None:
        if self.num_timesteps == self.reported:
            return
        self.reported = self.num_timesteps
        buf = self.model.ep_info_buffer
        ret = float(np.mean([e["r"] for e in buf])) if buf else float("nan")
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        speed = (self.num_timesteps - self.start_steps) / elapsed
        progress = TrainProgress(self.num_timesteps, self.target, speed, ret, {})
        self.stopped = self.user_callback(progress) is False


class _DivergenceCheck(BaseCallback):
    """Stops training with a :class:`~finrl_lite.errors.TrainingError` after the first update whose losses or policy
    weights are not finite.

    SB3 updates after ``on_rollout_end``; the check runs when the next rollout starts and when training ends (one pass
    over the weights per update, on SB3's own host schedule), before :class:`_ProgressAdapter` reports, so no
    checkpoint of a diverged model is written.
    """

    def __init__(self, algo: str) -> None:
        super().__init__()
        self.algo = algo

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self._check()

    def _on_training_end(self) -> None:
        self._check()

    def _check(self) -> None:
        losses = {
            key: float(value)
            for key, value in self.model.logger.name_to_value.items()
            if key.startswith("train/") and "loss" in key and isinstance(value, int | float | np.floating)
        }
        finite = bool(all_finite(self.model.policy))
        check_diverged(f"SB3 {self.algo.upper()}", self.num_timesteps, losses, finite)


class SB3Agent:
    """An SB3 algorithm on a finrl_lite torch vector environment.

    Args:
        algo: one of :data:`SB3_ALGORITHMS`.
        env: torch vector environment (``TorchVecEnv``); None when loading only to predict.
        params: the algorithm's own hyper-parameters (checked against its signature).
        seed: seed of SB3 (network initialisation, exploration).
        device: torch device of the networks.
        model: an SB3 model to wrap (a loaded one) instead of building one.
        reset_env: with ``model``: make SB3 reset ``env`` before training (False: ``env`` is where the model's
            last observation came from, restored from a snapshot).
    """

    def __init__(
        self,
        algo: str,
        env: Any,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        device: str = "cpu",
        model: BaseAlgorithm | None = None,
        reset_env: bool = True,
    ) -> None:
        params = dict(params or {})
        check_hyperparameters(algo, params)
        self.algo = algo
        self.params = params
        self.seed = seed
        self.num_tickers = env.num_tickers if env is not None else None
        self.vec_env = self._wrap(env) if env is not None else None
        self.model = model or SB3_ALGORITHMS[algo]("MlpPolicy", self.vec_env, seed=seed, device=device, verbose=0, **params)
        if self.model.tensorboard_log is None:  # SB3's default logger would make an empty folder per learn
            self.model.set_logger(Logger(folder=None, output_formats=[]))
        if model is not None and self.vec_env is not None:
            self.model.set_env(self.vec_env, force_reset=reset_env)

    def _wrap(self, env: Any) -> SB3VecEnv:
        return SB3VecEnv(DiscreteTradeActions(env) if self.algo in _DISCRETE else env)

    @property
    def num_timesteps(self) -> int:
        """Environment steps learned from, over every :meth:`learn` call (SB3's counter)."""
        return int(self.model.num_timesteps)

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> SB3Agent:
        """Learn from ``total_timesteps`` more environment steps (SB3's ``reset_num_timesteps=False``).

        PPO and A2C: whole rollouts while they fit the budget, then one shorter rollout for the rest, so the steps
        learned are the budget rounded up to whole batched steps (see the module docstring).

        Raises:
            TrainingError: after the first update whose losses or policy weights are not finite.
        """
        start = self.num_timesteps
        adapter = _ProgressAdapter(callback, start, start + int(total_timesteps)) if callback is not None else None
        callbacks: list[BaseCallback] = [_DivergenceCheck(self.algo), *([adapter] if adapter is not None else [])]
        for steps, n_steps in self._plan(int(total_timesteps)):
            with self._rollout_length(n_steps):
                self.model.learn(steps, callback=callbacks, reset_num_timesteps=False)
            if adapter is not None and adapter.stopped:
                break
        return self

    def _plan(self, budget: int) -> list[tuple[int, int | None]]:
        """(steps, rollout length or None for the configured one) of each SB3 ``learn`` call of a budget."""
        model = self.model
        if not isinstance(model, OnPolicyAlgorithm):
            return [(budget, None)] if budget > 0 else []
        rollout = model.n_steps * model.n_envs
        whole = budget // rollout * rollout
        plan: list[tuple[int, int | None]] = [(whole, None)] if whole else []
        if whole < budget:
            lengths = rollout_lengths(budget, model.n_envs, model.n_steps)
            logger.info(
                "%s: the last %d steps of the budget are learned in one rollout of %d x %d envs (configured: n_steps %d)",
                self.algo.upper(),
                budget - whole,
                lengths[-1],
                model.n_envs,
                model.n_steps,
            )
            plan.append((budget - whole, lengths[-1]))
        return plan

    @contextlib.contextmanager
    def _rollout_length(self, n_steps: int | None) -> Iterator[None]:
        """Collect rollouts of ``n_steps`` per environment inside the block (a rollout buffer of that size)."""
        model = self.model
        if n_steps is None or not isinstance(model, OnPolicyAlgorithm) or n_steps == model.n_steps:
            yield
            return
        saved = model.n_steps, model.rollout_buffer
        model.n_steps = n_steps
        model.rollout_buffer = model.rollout_buffer_class(
            n_steps,
            model.observation_space,
            model.action_space,
            device=model.device,
            gamma=model.gamma,
            gae_lambda=model.gae_lambda,
            n_envs=model.n_envs,
            **model.rollout_buffer_kwargs,
        )
        try:
            yield
        finally:
            model.n_steps, model.rollout_buffer = saved

    def set_hyperparameters(self, values: Mapping[str, float]) -> None:
        """Change the hyper-parameters the sb3 backend declares for this algorithm (``BACKENDS``) from the next
        :meth:`learn` call on: the learning-rate and clip-range schedules become constants of the new values, and
        ``gamma`` / ``gae_lambda`` reach the rollout or replay buffer too. Weights and optimizer moments are kept."""
        checked = check_tunable(BACKENDS.get("sb3").tunable(self.algo), values, f"sb3 {self.algo}")
        model = self.model
        for name, value in checked.items():
            if name == "learning_rate":
                model.learning_rate = value
                model.lr_schedule = FloatSchedule(value)
            elif name == "clip_range":
                model.clip_range = FloatSchedule(value)
            else:
                setattr(model, name, value)
            for buffer in (getattr(model, "rollout_buffer", None), getattr(model, "replay_buffer", None)):
                if name in ("gamma", "gae_lambda") and hasattr(buffer, name):
                    setattr(buffer, name, value)
        self.params.update(checked)

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

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """``path`` (SB3 zip) plus ``path.json`` naming the algorithm (so load needs no other input).

        Args:
            path: the zip to write.
            training_state: also write ``<path>.state.pkl``: the global random states, the action space's
                generator and the replay buffer (off-policy), which continuing training exactly needs.
        """
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            self.model.save(handle)
        if training_state:
            with atomic_path(_state_path(path)) as tmp, open(tmp, "wb") as handle:
                pickle.dump(self._training_state(), handle)
        else:  # a stale one would make load continue from another run's random states and buffer
            _state_path(path).unlink(missing_ok=True)
        atomic_write_text(
            path.with_suffix(".json"), json.dumps({"backend": "sb3", "algo": self.algo, "params": self.params}, default=str)
        )
        return path

    @classmethod
    def load(cls, path: str | Path, env: Any = None, device: str = "cpu") -> SB3Agent:
        """Load a model of :meth:`save`. With ``env`` and a saved training state, the model continues from its last
        observation (``env`` must be restored to the snapshot taken with the checkpoint) and the global random
        states are set to the saved ones (SB3 reseeds them on load anyway); otherwise SB3 resets ``env``."""
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        model = SB3_ALGORITHMS[meta["algo"]].load(path, device=device)
        state_file = _state_path(path)
        resume = env is not None and state_file.is_file()
        agent = cls(meta["algo"], env, meta.get("params", {}), model=model, reset_env=not resume)
        if resume:
            with open(state_file, "rb") as handle:
                agent._load_training_state(pickle.load(handle))  # noqa: S301 (our own checkpoint file)
        return agent

    def _training_state(self) -> dict[str, Any]:
        model = self.model
        return {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "action_space": model.action_space.np_random.bit_generator.state,
            "replay_buffer": getattr(model, "replay_buffer", None),
        }

    def _load_training_state(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        self.model.action_space.np_random.bit_generator.state = state["action_space"]
        if state["replay_buffer"] is not None:
            self.model.replay_buffer = state["replay_buffer"]
            self.model.replay_buffer.device = self.model.device


def _state_path(path: Path) -> Path:
    return path.with_suffix(".state.pkl")
