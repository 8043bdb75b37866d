"""Ray RLlib backend on the new API stack (RLModule / Learner / EnvRunner): PPO and DQN.

RLlib builds its own environments from a registered creator
(:func:`~finrl_lite.agents.rllib.envs.make_rllib_env`): the agent hands it the ``MarketData`` and
``StockTradingParams`` of the torch environment it is given (they pickle), and samples in the driver
process (``num_env_runners=0``, one learner in the driver too). Like SB3, RLlib copies every step to
numpy; the native agents are the fast path.

DQN acts on ``Discrete(2N + 1)`` (hold, or buy / sell one ticker by ``hmax``; see
:mod:`finrl_lite.envs.discrete_actions`) and :meth:`RLlibAgent.predict` maps its integers back to the
Box action space, so every backend's predictions feed the same environment.

Budget: one training iteration samples what the config asks (PPO: ``train_batch_size``, 4000 by default; DQN: at least
``min_sample_timesteps_per_iteration``, 1000), and ``learn`` runs whole iterations. The first :meth:`RLlibAgent.learn`
of a new agent sizes the iterations so that they add up to its budget (:func:`fit_to_budget`, logged at INFO): a smoke
budget of 4096 steps is two PPO iterations of 2048, not two of 4000.

The algorithm is built on first use (its first ``learn``, ``save`` or ``predict``). RLlib's ``Algorithm`` makes an
(empty) log folder under ``~/ray_results``; the agent removes it again when closed or garbage-collected.

A checkpoint is a directory: RLlib's own ``Algorithm.save_to_path`` layout (so
``Algorithm.from_checkpoint(path)`` works directly once :func:`register_rllib_env` has run), plus
``finrl_lite_agent.json`` naming the algorithm and its hyper-parameters. ``RLlibAgent.load(path)``
without an environment restores only the RLModule (no Ray cluster needed to predict).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finrl_lite.agents.base import ProgressCallback, TrainProgress
from finrl_lite.agents.rllib.envs import ENV_CONFIG_KEYS, make_rllib_env
from finrl_lite.envs.discrete_actions import discrete_to_box
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.errors import ConfigError, require

__all__ = ["RLLIB_ALGORITHMS", "RLLIB_ENV_NAME", "RLlibAgent", "check_hyperparameters", "fit_to_budget", "register_rllib_env"]

logger = logging.getLogger(__name__)

RLLIB_ALGORITHMS: dict[str, str] = {
    "ppo": "ray.rllib.algorithms.ppo:PPOConfig",
    "dqn": "ray.rllib.algorithms.dqn:DQNConfig",
}
"""Algorithm name -> its RLlib config class (imported lazily: ray is an optional extra)."""

_DISCRETE = ("dqn",)
RLLIB_ENV_NAME = "finrl_lite_rllib_stock_trading"
META_FILE = "finrl_lite_agent.json"
MODULE_ID = "default_policy"
MODULE_SUBPATH = Path("learner_group") / "learner" / "rl_module" / MODULE_ID
"""Where ``Algorithm.save_to_path`` puts the (learner's) RLModule of the single-agent policy."""

# Arguments of ``.training()`` that are deprecated, old-stack only or moved to ``.learners()``.
_EXCLUDED = {
    "self",
    "kwargs",
    "model",
    "optimizer",
    "num_sgd_iter",
    "max_requests_in_flight_per_sampler_worker",
    "num_aggregator_actors_per_learner",
    "max_requests_in_flight_per_aggregator_actor",
    "learner_class",
    "learner_connector",
    "add_default_connectors_to_learner_pipeline",
    "learner_config_dict",
    "vf_share_layers",
    "before_learn_on_batch",
}
# Accepted beside the ``.training()`` arguments, routed to the other config sections.
_MODULE_KEYS = ("model_config",)  # -> .rl_module(model_config=...): fcnet_hiddens, fcnet_activation...
_ENV_RUNNER_KEYS = ("rollout_fragment_length",)  # -> .env_runners(...)
_REPORTING_KEYS = ("min_sample_timesteps_per_iteration", "min_time_s_per_iteration")  # -> .reporting(...)


def _rllib() -> Any:
    return require("ray.rllib", "rllib", "the RLlib backend")


def _config_class(algo: str) -> type:
    if algo not in RLLIB_ALGORITHMS:
        raise ConfigError(f"unknown RLlib algorithm '{algo}'; known: {', '.join(RLLIB_ALGORITHMS)}")
    _rllib()
    import importlib

    module_name, _, class_name = RLLIB_ALGORITHMS[algo].partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def allowed_hyperparameters(algo: str) -> set[str]:
    """The ``params`` keys an RLlib algorithm takes: its ``.training()`` arguments plus a few routed ones."""
    config_class = _config_class(algo)
    names: set[str] = set()
    for klass in config_class.__mro__:  # the algorithm's own arguments and AlgorithmConfig's generic ones
        training = klass.__dict__.get("training")
        if training is not None:
            names |= {
                name
                for name, p in inspect.signature(training).parameters.items()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            }
    return (names - _EXCLUDED) | set(_MODULE_KEYS) | set(_ENV_RUNNER_KEYS) | set(_REPORTING_KEYS)


def check_hyperparameters(algo: str, params: Mapping[str, Any]) -> None:
    """Refuse hyper-parameters the RLlib algorithm does not take (the message lists the allowed ones)."""
    allowed = allowed_hyperparameters(algo)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"agent.params {unknown} are not RLlib {algo.upper()} hyper-parameters; allowed: {', '.join(sorted(allowed))}"
        )


def _iteration_size(current: int, budget: int) -> int:
    """The largest iteration size <= ``current`` whose whole iterations cover ``budget`` with the least overshoot."""
    iterations = max(math.ceil(budget / current), 1)
    return min(current, math.ceil(budget / iterations))


def fit_to_budget(algo: str, params: Mapping[str, Any], budget: int) -> dict[str, Any]:
    """``params`` whose training iterations add up to ``budget`` environment steps (to less than one step per iteration).

    An iteration samples PPO's ``train_batch_size`` (4000 by default) or DQN's ``min_sample_timesteps_per_iteration``
    (1000); ``learn`` runs whole iterations. When the budget is not a multiple, the size is lowered to split it into
    equal iterations: a budget of 4096 steps is two PPO iterations of 2048 (not two of 4000), a budget smaller than one
    iteration is one iteration of the budget. PPO's ``minibatch_size`` is kept <= the batch.
    """
    fitted = dict(params)
    defaults = _config_class(algo)()
    if algo == "ppo":
        batch = fitted.get("train_batch_size_per_learner") or fitted.get("train_batch_size")
        batch = int(batch or defaults.train_batch_size_per_learner)
        size = _iteration_size(batch, budget)
        if size != batch:
            fitted.pop("train_batch_size", None)
            fitted["train_batch_size_per_learner"] = size
            fitted["minibatch_size"] = min(fitted.get("minibatch_size", defaults.minibatch_size), size)
            logger.info("RLlib PPO: train batch %d -> %d: whole iterations add up to the budget of %d steps", batch, size, budget)
    elif algo == "dqn":
        per_iteration = int(fitted.get("min_sample_timesteps_per_iteration", defaults.min_sample_timesteps_per_iteration))
        size = _iteration_size(per_iteration, budget)
        if size != per_iteration:
            fitted["min_sample_timesteps_per_iteration"] = size
            logger.info("RLlib DQN: %d -> %d steps per iteration for a budget of %d steps", per_iteration, size, budget)
        starts = fitted.get("num_steps_sampled_before_learning_starts", defaults.num_steps_sampled_before_learning_starts)
        if starts >= budget:
            logger.warning(
                "RLlib DQN learns only after %d sampled steps (num_steps_sampled_before_learning_starts): "
                "a budget of %d steps makes no update",
                starts,
                budget,
            )
    return fitted


def register_rllib_env() -> str:
    """Register :func:`make_rllib_env` with ``ray.tune.registry`` (idempotent); returns its name."""
    _rllib()
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV_NAME, make_rllib_env)
    return RLLIB_ENV_NAME


def _init_ray(num_cpus: int) -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):  # the cluster the user points at (a KubeRay head, ``ray start``)
        ray.init(ignore_reinit_error=True, log_to_driver=False)
    else:  # a new, tiny, quiet local cluster, never another process's cluster found on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)


def _env_config_from(env: Any, env_config: Mapping[str, Any] | None, seed: int, discrete: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"device": "cpu", "seed": seed, "discrete": discrete}
    if env is not None:
        market, params = getattr(env, "market_data", None), getattr(env, "params", None)
        if market is None or not isinstance(params, StockTradingParams):
            raise ConfigError(
                "the RLlib backend rebuilds the environment from its MarketData and StockTradingParams: "
                f"{type(env).__name__} has no 'market_data' / 'params' of a stock-trading env"
            )
        config.update(market=market, params=params)
    config.update(dict(env_config or {}))
    unknown = sorted(set(config) - set(ENV_CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"RLlib env_config keys {unknown} are unknown; known: {', '.join(ENV_CONFIG_KEYS)}")
    if config.get("market") is None:
        raise ConfigError("RLlibAgent needs an environment (or env_config with 'market') to train")
    return config


def _build_algorithm(algo: str, params: Mapping[str, Any], seed: int, env_config: dict[str, Any]) -> Any:
    config_class = _config_class(algo)
    training = dict(params)
    model_config = training.pop("model_config", None)
    env_runner_kw = {k: training.pop(k) for k in _ENV_RUNNER_KEYS if k in training}
    reporting_kw = {k: training.pop(k) for k in _REPORTING_KEYS if k in training}
    config = (
        config_class()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .framework("torch")
        .environment(env=register_rllib_env(), env_config=env_config)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, **env_runner_kw)
        .learners(num_learners=0, num_gpus_per_learner=0)
        .debugging(seed=seed, log_level="ERROR")
        .training(**training)
    )
    if reporting_kw:
        config = config.reporting(**reporting_kw)
    if model_config is not None:
        config = config.rl_module(model_config=dict(model_config))
    return config.build_algo()


def _remove_if_empty(path: str) -> None:
    with contextlib.suppress(OSError):  # RLlib wrote into it: keep it
        os.rmdir(path)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst`` (a reader sees the old or the new one)."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def _scalars(tree: Any) -> dict[str, float]:
    if not isinstance(tree, Mapping):
        return {}
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | np.integer | np.floating):
            out[str(key)] = float(value)
    return out


class RLlibAgent:
    """An RLlib (new API stack) algorithm on a finrl_lite stock-trading environment.

    Args:
        algo: ``"ppo"`` or ``"dqn"`` (:data:`RLLIB_ALGORITHMS`).
        env: torch vector environment (``StockTradingVecEnv``) whose market and parameters RLlib's own
            single environments are rebuilt from; None when loading only to predict.
        params: hyper-parameters: the arguments of the algorithm config's ``.training()`` (checked
            against its signature), plus ``model_config`` (RLModule network: ``fcnet_hiddens``...),
            ``rollout_fragment_length``, ``min_sample_timesteps_per_iteration`` and
            ``min_time_s_per_iteration``.
        seed: seed of RLlib (network initialisation, exploration) and of the environments.
        num_cpus: CPUs of the local Ray cluster started when Ray is not initialised yet.
        env_config: overrides of the env_config handed to RLlib (``market``, ``params``, ``device``,
            ``seed``, ``discrete``); with ``env=None`` it may carry ``market`` / ``params`` itself.
    """

    def __init__(
        self,
        algo: str,
        env: Any = None,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        num_cpus: int = 1,
        env_config: Mapping[str, Any] | None = None,
        module: Any = None,
    ) -> None:
        """``module`` (internal, from :meth:`load`): a restored RLModule for a prediction-only agent."""
        params = dict(params or {})
        check_hyperparameters(algo, params)
        self.algo = algo
        self.params = params
        self.seed = seed
        self.num_cpus = num_cpus
        self._algorithm: Any = None
        self.env_config: dict[str, Any] | None = None
        self._module = module
        if module is None:
            self.env_config = _env_config_from(env, env_config, seed, algo in _DISCRETE)
            _init_ray(num_cpus)

    @property
    def algorithm(self) -> Any:
        """The RLlib ``Algorithm``, built on first use; None for an agent loaded to predict only."""
        if self._algorithm is None and self._module is None:
            self._algorithm = _build_algorithm(self.algo, self.params, self.seed, self.env_config or {})
            weakref.finalize(self, _remove_if_empty, self._algorithm.logdir)  # Trainable's ~/ray_results/<run>
        return self._algorithm

    # -- training -------------------------------------------------------------------------------

    def _require_algorithm(self) -> Any:
        if self.algorithm is None:
            raise ConfigError("this RLlib agent was loaded without an environment: load(path, env) to train it")
        return self.algorithm

    @property
    def num_timesteps(self) -> int:
        """Environment steps sampled over the algorithm's lifetime (restored with a checkpoint)."""
        if self._algorithm is None:
            return 0
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

        return int(self._algorithm.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))

    def learn(self, total_timesteps: int, callback: ProgressCallback | None = None) -> RLlibAgent:
        """Call ``Algorithm.train()`` until ``total_timesteps`` more environment steps have been sampled.

        One iteration samples what the algorithm's config asks (PPO: ``train_batch_size``; DQN: at
        least ``min_sample_timesteps_per_iteration``), so the budget can be overshot by one iteration; the first
        call on a new agent first fits an iteration to the budget (:func:`fit_to_budget`).
        """
        from ray.rllib.utils.metrics import (
            ENV_RUNNER_RESULTS,
            EPISODE_RETURN_MEAN,
            LEARNER_RESULTS,
            NUM_ENV_STEPS_SAMPLED_LIFETIME,
        )

        if self._algorithm is None and self._module is None:  # not built yet: size its iterations to the budget
            self.params = fit_to_budget(self.algo, self.params, int(total_timesteps))
        algorithm = self._require_algorithm()
        start_steps = steps = self.num_timesteps
        target = start_steps + int(total_timesteps)
        start = time.perf_counter()
        stalled = 0
        while steps < target:
            result = algorithm.train()
            runner = result.get(ENV_RUNNER_RESULTS, {})
            new_steps = int(runner.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, steps))
            stalled = stalled + 1 if new_steps <= steps else 0
            if stalled >= 100:
                raise RuntimeError(f"RLlib {self.algo.upper()} sampled no environment steps in 100 iterations")
            steps = new_steps
            if callback is None:
                continue
            ret = runner.get(EPISODE_RETURN_MEAN, float("nan"))
            extra = _scalars(result.get(LEARNER_RESULTS, {}).get(MODULE_ID, {}))
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress = TrainProgress(
                steps, target, (steps - start_steps) / elapsed, float(ret) if ret is not None else math.nan, extra
            )
            if callback(progress) is False:
                break
        return self

    # -- inference ------------------------------------------------------------------------------

    @property
    def module(self) -> Any:
        """The RLModule used for predictions (the local EnvRunner's, synced after every update)."""
        if self.algorithm is not None:
            return self.algorithm.get_module(MODULE_ID)
        return self._module

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Box actions ``[B, N]`` for observations ``[B, D]`` (numpy or torch in, same type out).

        PPO: the module's ``forward_inference`` outputs feed its inference action distribution (its
        ``to_deterministic()`` when ``deterministic``), then RLlib's action normalisation maps
        ``[-1, 1]`` to the Box bounds and clips. DQN: greedy actions (epsilon-greedy exploration when
        not ``deterministic``), mapped to Box actions with ``discrete_to_box``.
        """
        from gymnasium import spaces
        from ray.rllib.core.columns import Columns

        is_torch = isinstance(obs, torch.Tensor)
        x = obs.detach().to("cpu", torch.float32) if is_torch else torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if x.ndim == 1:
            x = x.unsqueeze(0)
        module = self.module
        batch = {Columns.OBS: x}
        with torch.no_grad():
            if self.algo in _DISCRETE and not deterministic:
                out = module.forward_exploration(batch, t=self.num_timesteps)
            else:
                out = module.forward_inference(batch)
            if Columns.ACTION_DIST_INPUTS in out:
                dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
                action = (dist.to_deterministic() if deterministic else dist).sample()
            else:
                action = out[Columns.ACTIONS]
        space = module.action_space
        if isinstance(space, spaces.Discrete):
            box = discrete_to_box(action, (int(space.n) - 1) // 2).numpy()
        else:
            low, high = space.low.astype(np.float64), space.high.astype(np.float64)
            box = np.clip(low + (action.numpy().astype(np.float64) + 1.0) * (high - low) / 2.0, low, high)
        return torch.as_tensor(box, device=obs.device) if is_torch else box

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path, training_state: bool = False) -> Path:
        """A checkpoint directory at ``path`` (written beside it, then renamed over it).

        ``training_state`` changes nothing: the checkpoint of a whole algorithm already holds its training state.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            if self.algorithm is not None:
                self.algorithm.save_to_path(tmp.resolve())
            else:
                self._module.save_to_path((tmp / MODULE_SUBPATH).resolve())
            meta = {
                "backend": "rllib",
                "algo": self.algo,
                "params": self.params,
                "seed": self.seed,
                "module_only": self.algorithm is None,
            }
            (tmp / META_FILE).write_text(json.dumps(meta, default=str, indent=1))
            _replace_dir(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(
        cls, path: str | Path, env: Any = None, num_cpus: int = 1, env_config: Mapping[str, Any] | None = None
    ) -> RLlibAgent:
        """Restore a checkpoint of :meth:`save`.

        Without ``env`` (and ``env_config``) only the RLModule is restored (enough to predict; no Ray
        cluster is started). With one, the algorithm is rebuilt on it and its whole state (networks,
        optimiser, counters) restored, ready to train further.
        """
        path = Path(path)
        meta_file = path / META_FILE
        if not meta_file.is_file():
            raise ConfigError(f"{path} is not an RLlib agent checkpoint (no {META_FILE})")
        meta = json.loads(meta_file.read_text())
        _rllib()
        from ray.rllib.core.rl_module.rl_module import RLModule

        module_path = (path / MODULE_SUBPATH).resolve()
        if env is None and env_config is None:
            module = RLModule.from_checkpoint(module_path)
            return cls(meta["algo"], None, meta.get("params", {}), seed=meta.get("seed", 0), num_cpus=num_cpus, module=module)
        agent = cls(meta["algo"], env, meta.get("params", {}), seed=meta.get("seed", 0), num_cpus=num_cpus, env_config=env_config)
        if meta.get("module_only"):
            agent.algorithm.restore_from_path(module_path, component=str(MODULE_SUBPATH))
        else:
            agent.algorithm.restore_from_path(path.resolve())
        return agent

    def close(self) -> None:
        """Stop the algorithm (its EnvRunners and learners) and remove its empty log folder; Ray itself stays up."""
        if self._algorithm is not None:
            self._algorithm.stop()
            _remove_if_empty(self._algorithm.logdir)
