"""The Ray Tune side of population-based training: the cluster, the scheduler, the trainable and the progress callback.

:mod:`finrl_lite.train.population` decides what a trial does and what a run writes; this module puts it on Ray
(``ray[tune]``, the ``population`` extra), which it imports at the top: import it only to run a population.

* :func:`ray_session` starts an embedded local Ray (``ray.init(num_cpus=...)``, no dashboard) or joins a cluster
  (``--address auto`` or a head's ``host:port``); an address nobody answers on is refused within seconds. Ray Client
  (``ray://``) is refused: it would run Tune's driver, and with it the live view and the run's history, on the cluster.
* :func:`check_trial_resources` refuses a per-trial request that no node can hold (instead of a hang).
* :func:`make_scheduler` builds ``PopulationBasedTraining`` or ``PB2`` from ``population:``; PBT's perturbations are
  clipped back into the configured ranges (Ray multiplies by 0.8 / 1.2 without bounds: gamma 0.99 * 1.2 > 1).
* :func:`make_tuner` / :func:`restore_tuner` wire the function trainable :func:`tune_trial`, which restores
  ``tune.get_checkpoint()`` and reports with ``tune.report(metrics, checkpoint=...)``.
* :class:`PopulationCallback` records every report on the driver and hands a :class:`PopulationProgress` to the
  caller's hook (both through :data:`DRIVER_SINK`).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.search.basic_variant import BasicVariantGenerator

from finrl_lite.agents.hyperparameters import Hyperparameter
from finrl_lite.errors import ConfigError, require
from finrl_lite.population_config import MutationConfig, PopulationConfig, TrialResources
from finrl_lite.ray_runtime import local_ray

__all__ = [
    "DRIVER_SINK",
    "DriverSink",
    "PopulationCallback",
    "PopulationProgress",
    "check_address",
    "check_trial_resources",
    "make_scheduler",
    "make_tuner",
    "ray_session",
    "restore_tuner",
    "tune_trial",
]

logger = logging.getLogger(__name__)

TIME_ATTR = "training_iteration"
"""PBT's clock: one report per ``population.perturbation_interval`` environment steps, so every report is a
perturbation point (``perturbation_interval=1`` in these units)."""

_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PopulationProgress:
    """The population as the driver sees it after a report.

    Attributes:
        trials: Trials in the population.
        alive: Trials running now.
        finished: Trials that learned their whole budget.
        failed: Trials that failed beyond ``max_failures``.
        best_trial: Trial with the best latest validation metric ("" before the first report).
        best_value: That metric (NaN before the first report).
        env_steps: Environment steps learned, summed over the trials' latest reports.
        steps_per_second: Learning throughput summed over the trials running now.
        metric: The ranking metric's result key.
    """

    trials: int
    alive: int
    finished: int
    failed: int
    best_trial: str
    best_value: float
    env_steps: int
    steps_per_second: float
    metric: str


PopulationHook = Callable[[PopulationProgress], None]


@dataclass(frozen=True)
class DriverSink:
    """Where :class:`PopulationCallback` sends what it sees: the history file and the caller's progress hook."""

    history_path: Path
    hook: PopulationHook | None = None


DRIVER_SINK: ContextVar[DriverSink | None] = ContextVar("finrl_lite_population_sink", default=None)
"""Set by :func:`~finrl_lite.train.population.run_population` around ``Tuner.fit``. Ray pickles the callback with the
experiment and restores that copy on ``--resume``, so the callback holds neither the caller's display nor a path of
the run directory (which may have moved); it finds them here, on the driver thread that runs ``fit``."""


# ---------------------------------------------------------------------------------------------------- cluster


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith("ray://"):
        raise ConfigError(
            f"--address '{address}': Ray Client runs Ray Tune's driver on the cluster, away from the run directory; run "
            "`finrl-lite pbt ... --address auto` on the cluster (a KubeRay RayJob does: deploy/kuberay, or `ray job submit "
            "-- finrl-lite pbt ... --address auto`), or join with the head's host:port (its GCS port, 6379 by default)"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address '{address}': expected auto or host:port (a Ray head's GCS address)")
    return host, int(port)


def _check_reachable(address: str) -> None:
    """Refuse an address where no server accepts a TCP connection within a few seconds (ray.init would retry for long)."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address '{address}': no Ray cluster answers at {host}:{port} ({exc.strerror or exc}); start one with "
            "`ray start --head`, check the address, or drop --address to run on an embedded local Ray"
        ) from None


def check_address(address: str | None) -> None:
    """Refuse a malformed ``--address`` or one where nothing answers (``auto`` and None are checked by ``ray.init``)."""
    if address is not None and address != "auto":
        _check_reachable(address)


@contextmanager
def ray_session(address: str | None, population: PopulationConfig) -> Iterator[bool]:
    """Connect to Ray for the duration of the block; yields whether the cluster is an embedded one started here.

    Args:
        address: None: start an embedded local Ray with ``population.num_cpus`` / ``num_gpus`` (no dashboard) and
            stop it at the end, or use the Ray this process is already connected to (a notebook's). ``"auto"``, a
            head's ``host:port``: join that cluster.
        population: The population settings (embedded Ray's resources and temp folder).

    Raises:
        ConfigError: Nothing answers at ``address``, or ``auto`` finds no running cluster.
    """
    if address is None and ray.is_initialized():
        logger.info("using the Ray this process is connected to")
        yield False
        return
    if address is None:
        with local_ray(
            population.num_cpus,
            num_gpus=population.num_gpus,
            temp_dir=population.ray_temp_dir,
            extra="population",
            purpose="finrl-lite pbt",
        ):
            yield True
        return
    check_address(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as exc:
        raise ConfigError(f"--address '{address}': cannot join a Ray cluster ({exc})") from None
    try:
        yield False
    finally:
        ray.shutdown()


def _fits(node: Mapping[str, Any], resources: TrialResources) -> bool:
    have = node.get("Resources", {})
    return have.get("CPU", 0.0) >= resources.cpu and have.get("GPU", 0.0) >= resources.gpu


def check_trial_resources(resources: TrialResources, wait_s: float = 0.0) -> None:
    """Refuse a per-trial request that fits on no node of the connected cluster.

    Args:
        resources: ``population.resources_per_trial``.
        wait_s: How long to wait for such a node to join (a cluster whose workers are still starting).

    Raises:
        ConfigError: No alive node has the CPUs and GPUs one trial asks for, after ``wait_s`` seconds.
    """
    deadline = time.monotonic() + wait_s
    while True:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if any(_fits(n, resources) for n in nodes):
            return
        if time.monotonic() >= deadline:
            break
        logger.info("waiting for a Ray node with %s CPU and %s GPU for one trial", resources.cpu, resources.gpu)
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.0)))
    have = ", ".join(f"{n['Resources'].get('CPU', 0.0):g} CPU / {n['Resources'].get('GPU', 0.0):g} GPU" for n in nodes)
    raise ConfigError(
        f"population.resources_per_trial asks for {resources.cpu:g} CPU and {resources.gpu:g} GPU per trial, which no "
        f"node of the Ray cluster has (nodes: {have or 'none'}); lower it (e.g. --set population.resources_per_trial.gpu=0) "
        "or join a cluster that has them (--address)"
    )


# ---------------------------------------------------------------------------------------------------- scheduler


def _domain(mutation: MutationConfig, spec: Hyperparameter) -> Any:
    """The search space of one mutation: a list (PBT moves to neighbours) or a Tune domain."""
    if mutation.values is not None:
        return list(mutation.values)
    low, high = mutation.bounds()
    if spec.integer:
        return tune.lograndint(int(low), int(high) + 1) if mutation.log else tune.randint(int(low), int(high) + 1)
    return tune.loguniform(low, high) if mutation.log else tune.uniform(low, high)


@dataclass(frozen=True)
class ClipToRanges:
    """PBT's ``custom_explore_fn``: clip perturbed values back into their configured ranges (round integers).

    Ray multiplies a range value by a perturbation factor without bounds; without this, gamma 0.99 * 1.2
    would reach the agent as 1.188.
    """

    bounds: Mapping[str, tuple[float, float]]
    integers: frozenset[str]

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for name, (low, high) in self.bounds.items():
            value = min(max(config[name], low), high)
            config[name] = int(round(value)) if name in self.integers else value
        return config


def make_scheduler(population: PopulationConfig, tunable: Mapping[str, Hyperparameter]) -> Any:
    """``PopulationBasedTraining`` (or ``PB2``) ranking ``validation_<metric>`` at every report.

    Args:
        population: The ``population:`` section.
        tunable: The agent's tunable hyper-parameters (the config has checked the mutations against them).
    """
    metric = f"validation_{population.metric}"
    mode = population.ranking_mode()
    integers = frozenset(name for name in population.mutations if tunable[name].integer)
    clip = ClipToRanges({name: m.bounds() for name, m in population.mutations.items()}, integers)
    if population.scheduler == "pb2":
        require("sklearn", "population", "population.scheduler: pb2 (PB2's Gaussian process)")
        from ray.tune.schedulers.pb2 import PB2

        return PB2(
            time_attr=TIME_ATTR,
            metric=metric,
            mode=mode,
            perturbation_interval=1,
            hyperparam_bounds={name: list(m.bounds()) for name, m in population.mutations.items()},
            quantile_fraction=population.quantile_fraction,
            custom_explore_fn=clip,
            synch=population.synch,
        )
    return PopulationBasedTraining(
        time_attr=TIME_ATTR,
        metric=metric,
        mode=mode,
        perturbation_interval=1,
        hyperparam_mutations={name: _domain(m, tunable[name]) for name, m in population.mutations.items()},
        quantile_fraction=population.quantile_fraction,
        resample_probability=population.resample_probability,
        perturbation_factors=population.perturbation_factors,
        custom_explore_fn=clip,
        synch=population.synch,
    )


# ---------------------------------------------------------------------------------------------------- trainable


def tune_trial(config: dict[str, Any], setup: Any) -> None:
    """The function trainable: restore ``tune.get_checkpoint()`` if there is one, learn, report with checkpoints.

    ``setup`` is a :class:`~finrl_lite.train.population.TrialSetup` (``tune.with_parameters`` ships it once
    through the object store); the work is :func:`~finrl_lite.train.population.run_trial`, through ``setup.run``.
    """

    def report(metrics: dict[str, Any], directory: Path) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))

    trial_id = tune.get_context().get_trial_id()
    node = {"node_id": ray.get_runtime_context().get_node_id()}
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        setup.run(config, None, report, trial_id, node)
        return
    with checkpoint.as_directory() as directory:
        setup.run(config, Path(directory), report, trial_id, node)


def _trainable(setup: Any) -> Any:
    resources = setup.config.population.resources_per_trial
    return tune.with_resources(tune.with_parameters(tune_trial, setup=setup), {"cpu": resources.cpu, "gpu": resources.gpu})


def make_tuner(setup: Any, tunable: Mapping[str, Hyperparameter], storage_path: str, name: str) -> tune.Tuner:
    """A new population: one trial per seed (``population.seed + i``), first hyper-parameters sampled from the
    mutations (seeded by ``population.seed``), checkpoints and results under ``storage_path/name``."""
    population: PopulationConfig = setup.config.population
    param_space: dict[str, Any] = {
        "seed": tune.grid_search([population.seed + i for i in range(population.num_samples)]),
        **{hp: _domain(m, tunable[hp]) for hp, m in population.mutations.items()},
    }
    for key, value in param_space.items():  # lists are PBT's neighbour moves; the first generation samples one
        if isinstance(value, list):
            param_space[key] = tune.choice(value)
    return tune.Tuner(
        _trainable(setup),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            scheduler=make_scheduler(population, tunable),
            search_alg=BasicVariantGenerator(random_state=population.seed),
            num_samples=1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=population.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=population.checkpoints_to_keep),
            callbacks=[PopulationCallback(f"validation_{population.metric}", population.ranking_mode())],
            stop={"env_steps": setup.config.train.total_timesteps},  # a finished trial is never paused or exploited
            verbose=0,
        ),
    )


def restore_tuner(setup: Any, experiment: str) -> tune.Tuner:
    """The interrupted population at ``experiment`` (``Tuner.restore``): unfinished trials continue from their last
    checkpoints, failed ones from theirs too.

    Raises:
        ConfigError: ``experiment`` holds no restorable Ray Tune experiment.
    """
    if not tune.Tuner.can_restore(experiment):
        raise ConfigError(f"{experiment}: no restorable Ray Tune experiment here (experiment state missing)")
    return tune.Tuner.restore(experiment, _trainable(setup), resume_unfinished=True, resume_errored=True)


# ---------------------------------------------------------------------------------------------------- progress


class PopulationCallback(tune.Callback):
    """Appends every report to the JSON-lines history of :data:`DRIVER_SINK` (the leaderboard's source) and reports
    progress to its hook.

    The history is written on the driver, in the order the reports arrive, so it holds every trial's reports wherever
    the trials ran and whatever the storage.

    Args:
        metric: The ranking metric's result key.
        mode: ``"max"`` or ``"min"``.
    """

    def __init__(self, metric: str, mode: str) -> None:
        self.metric, self.mode = metric, mode
        self.latest: dict[str, dict[str, float]] = {}
        self.finished: set[str] = set()
        self.failed: set[str] = set()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        sink = DRIVER_SINK.get()
        if sink is not None:
            row = {k: v for k, v in result.items() if _recordable(k, v)}
            with open(sink.history_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        self.latest[trial.trial_id] = {
            "value": float(result.get(self.metric, math.nan)),
            "env_steps": float(result.get("env_steps", 0)),
            "steps_per_second": float(result.get("steps_per_second", 0.0)),
        }
        logger.info(
            "trial %s: %d env steps, %s %.4g",
            trial.trial_id,
            result.get("env_steps", 0),
            self.metric,
            self.latest[trial.trial_id]["value"],
        )
        self._progress(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.finished.add(trial.trial_id)
        self._progress(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.failed.add(trial.trial_id)
        logger.warning("trial %s failed", trial.trial_id)
        self._progress(trials)

    def _progress(self, trials: list[Any]) -> None:
        sink = DRIVER_SINK.get()
        if sink is None or sink.hook is None:
            return
        sign = 1.0 if self.mode == "max" else -1.0
        scored = {t: s["value"] for t, s in self.latest.items() if not math.isnan(s["value"])}
        best = max(scored, key=lambda t: sign * scored[t]) if scored else ""
        running = [t for t in trials if t.status == "RUNNING"]
        sink.hook(
            PopulationProgress(
                trials=len(trials),
                alive=len(running),
                finished=len(self.finished),
                failed=len(self.failed),
                best_trial=best,
                best_value=scored.get(best, math.nan),
                env_steps=int(sum(s["env_steps"] for s in self.latest.values())),
                steps_per_second=sum(self.latest.get(t.trial_id, {}).get("steps_per_second", 0.0) for t in running),
                metric=self.metric,
            )
        )


def _recordable(key: str, value: Any) -> bool:
    return key != "config" and (isinstance(value, (str, int, float, bool)) or value is None)
