"""Population-based training (Ray Tune PBT / PB2) of finrl_lite agents, ranked on the validation split.

Every trial trains one agent (``agent:``, native PPO on the stock-trading env by default) on the train split for
``train.total_timesteps`` environment steps. Every ``population.perturbation_interval`` steps it back-tests its agent
on ``population.validation_split`` (never the training return) and reports the metrics with a checkpoint: the agent
with its training state, the training environment's snapshot and ``trial.json`` (whose checkpoint it is). PBT then
lets the bottom of the population copy a top trial's checkpoint and perturb its hyper-parameters: the exploited trial
restarts, loads that checkpoint (the donor's weights, optimizer, counters and environment) and applies its own new
hyper-parameters with the agent's ``set_hyperparameters``, then learns the rest of the budget.

Run directory (``finrl-lite pbt --out RUN``)::

    RUN/
      config.yaml          the resolved config
      run.json             data fingerprint, library versions
      population.json      the Ray Tune experiment's path, the ranking metric, the state; when done the top-k trials
      history.jsonl        every report as it reached the driver (the leaderboard's source)
      leaderboard.csv      every report of every trial, best trial first: hyper-parameters, validation metrics,
                           the node it ran on, and the parent trial (and its step) of each exploit
      pbt_global.txt       Ray's own PBT log of the exploits, kept across --resume (Ray restarts its copy)
      exploits.csv         that log as a table: target, donor, old and new values
      population.png       every trial's validation metric over its environment steps, exploits marked
      top_<r>/model/       the r-th best trial's final agent (load_agent reads it); top_<r>/trial.json
      ensemble/            the top-k ensemble (agents.ensemble) when population.ensemble is set
      metrics.json         per eval split: metrics of top_<r>, the ensemble and every baseline
      equity_<split>.csv, report_<split>.png
      ray_results/<experiment>/   Ray Tune's checkpoints and results (the default population.storage_path)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import Agent, TrainProgress, TunableAgent
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.agents.hyperparameters import Hyperparameter, check_hyperparameters
from finrl_lite.config import AppConfig, dump_config, load_config
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.errors import ConfigError, FinrlLiteError, require
from finrl_lite.io import atomic_write_json, atomic_write_text
from finrl_lite.population_config import PopulationConfig
from finrl_lite.train.backtest import EquityCurve, run_agent
from finrl_lite.train.environment import make_env
from finrl_lite.train.leaderboard import leaderboard_frame, merge_exploit_log, plot_population, read_exploits, read_history
from finrl_lite.train.pipeline import (
    aggregate_metrics,
    baseline_curves,
    check_run_data,
    data_identity,
    library_versions,
    report_split,
    restore_env,
    split_of,
    write_backtest,
    write_checkpoint,
)
from finrl_lite.train.run_lock import RunLock
from finrl_lite.train.run_log import run_log

__all__ = [
    "PopulationInterrupted",
    "TrialSetup",
    "backtest_population",
    "is_population_run",
    "load_population_config",
    "run_population",
    "run_trial",
    "trial_hyperparameters",
]

logger = logging.getLogger(__name__)

STATE_FILE = "population.json"
TRIAL_FILE = "trial.json"
HISTORY_FILE = "history.jsonl"
EXPLOIT_LOG = "pbt_global.txt"

Report = Callable[[dict[str, Any], Path], None]
"""``report(metrics, checkpoint_directory)``: ``tune.report`` with a checkpoint, or a test's recorder."""


class PopulationInterrupted(FinrlLiteError):
    """The population stopped before every trial learned its budget (Ctrl+C, a lost cluster); ``--resume`` continues."""


@dataclass(frozen=True)
class TrialSetup:
    """What every trial needs, shipped once through Ray's object store (``tune.with_parameters``).

    Attributes:
        config: The run's config (with its ``population`` section).
        market: The prepared data, splits included.
    """

    config: AppConfig
    market: MarketData

    def run(
        self,
        trial_config: Mapping[str, Any],
        checkpoint: Path | None,
        report: Report,
        trial_id: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """:func:`run_trial` with this setup (what Ray's trainable calls: the setup travels, this module stays above it)."""
        run_trial(self, trial_config, checkpoint, report, trial_id, extra)


def _population(cfg: AppConfig) -> PopulationConfig:
    if cfg.population is None:
        raise ConfigError("the config has no population: section; see configs/pbt.yaml")
    return cfg.population


def _tunable(cfg: AppConfig) -> Mapping[str, Hyperparameter]:
    return BACKENDS.get(cfg.agent.backend).tunable(cfg.agent.algo)


def trial_hyperparameters(cfg: AppConfig, trial_config: Mapping[str, Any]) -> dict[str, int | float]:
    """The mutated hyper-parameters of a trial's Ray config, as the agent takes them.

    Integer hyper-parameters are rounded (PB2 proposes floats); values are checked against the backend's ranges.
    """
    tunable = _tunable(cfg)
    values = {}
    for name in _population(cfg).mutations:
        value = trial_config[name]
        values[name] = int(round(value)) if tunable[name].integer else value
    return check_hyperparameters(tunable, values, f"agent {cfg.agent.backend} {cfg.agent.algo}")


# ---------------------------------------------------------------------------------------------------- one trial


def run_trial(
    setup: TrialSetup,
    trial_config: Mapping[str, Any],
    checkpoint: Path | None,
    report: Report,
    trial_id: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Train one trial, reporting validation metrics with a checkpoint every ``population.perturbation_interval`` steps.

    Args:
        setup: The config and the data.
        trial_config: The trial's Ray config: ``seed`` and the mutated hyper-parameters.
        checkpoint: A checkpoint of :func:`run_trial` to continue from (the trial's own after a restart or a pause,
            another trial's after PBT's exploit), or None to start a new agent.
        report: Called with the metrics and a checkpoint directory (valid during the call only).
        trial_id: This trial's id (recorded in its checkpoints, so an exploit names its parent).
        extra: Fields added to every report (the node it runs on).

    Reports hold ``env_steps``, ``validation_<metric>`` for every metric of :mod:`finrl_lite.train.metrics`,
    ``hp_<name>`` of each mutated hyper-parameter, ``checkpoint_id`` (of the checkpoint reported with it), where the
    run started on its first report (:func:`_start_fields`: new, the trial's own checkpoint, or an exploit's donor),
    ``steps_per_second`` and ``train_return``.
    """
    cfg, market = setup.config, setup.market
    population = _population(cfg)
    values = trial_hyperparameters(cfg, trial_config)
    seed = int(trial_config["seed"])
    train_env = make_env(cfg.env, split_of(market, cfg.train.train_split), seed=seed)
    validation = split_of(market, population.validation_split)
    origin: dict[str, Any] = {}
    if checkpoint is not None:
        restore_env(train_env, checkpoint)
        agent = load_agent(checkpoint, env=train_env)
        origin = json.loads((checkpoint / TRIAL_FILE).read_text())
        _tunable_agent(agent, cfg).set_hyperparameters(values)
    else:
        agent = make_agent(cfg.agent.model_copy(update={"params": {**cfg.agent.params, **values}}), train_env, seed=seed)
    start = _start_fields(origin, trial_id)
    if start["parent_trial"]:
        logger.info(
            "trial %s continues from trial %s at %d steps with %s",
            trial_id,
            start["parent_trial"],
            start["parent_env_steps"],
            values,
        )
    total, interval = cfg.train.total_timesteps, population.perturbation_interval
    last_report = [int(getattr(agent, "num_timesteps", 0))]

    def send(progress: TrainProgress) -> None:
        curve = run_agent(agent, validation, cfg.env, "agent")
        metrics = curve.metrics(validation.interval, validation.calendar)
        checkpoint_id = uuid.uuid4().hex
        result: dict[str, Any] = {
            "env_steps": progress.steps,
            **{f"validation_{name}": value for name, value in metrics.items()},
            **{f"hp_{name}": value for name, value in values.items()},
            **start,
            "checkpoint_id": checkpoint_id,
            "steps_per_second": progress.steps_per_second,
            "train_return": progress.episode_return,
            **(extra or {}),
        }
        start.update(_start_fields(None, trial_id))  # only the first report of this run says where it started
        last_report[0] = progress.steps
        with tempfile.TemporaryDirectory(prefix="finrl_lite_trial_") as name:
            directory = Path(name)
            write_checkpoint(agent, train_env, cfg.agent, directory)
            mine = {"trial_id": trial_id, "env_steps": progress.steps, "checkpoint_id": checkpoint_id, "hyperparameters": values}
            atomic_write_text(directory / TRIAL_FILE, json.dumps({**mine, "seed": seed}))
            report(result, directory)

    def on_iteration(progress: TrainProgress) -> None:
        if progress.steps >= total or progress.steps // interval > last_report[0] // interval:
            send(progress)

    remaining = total - last_report[0]
    if remaining > 0:
        agent.learn(remaining, callback=on_iteration)
    steps = int(getattr(agent, "num_timesteps", 0))
    if steps > last_report[0] or start["parent_trial"]:  # the budget ended between reports, or a finished donor was copied
        send(TrainProgress(steps, total, 0.0, math.nan, {}))


def _start_fields(origin: Mapping[str, Any] | None, trial_id: str) -> dict[str, Any]:
    """Where a trial's run started, for its first report: ``origin`` is the ``trial.json`` of the checkpoint it loaded
    ({} for a new agent; None: not a first report, every field empty).

    ``started_from`` is ``"new"`` or the loaded checkpoint's id; ``parent_trial`` / ``parent_env_steps`` /
    ``parent_checkpoint`` name another trial's checkpoint (PBT's exploit). A run that started new or from the trial's
    own checkpoint after earlier reports of the trial is a restart (a pause, a failure, an interruption): those earlier
    reports made after its starting point are work that was lost and redone.
    """
    donor = bool(origin) and origin["trial_id"] != trial_id
    return {
        "started_from": "" if origin is None else origin.get("checkpoint_id", "new"),
        "parent_trial": origin["trial_id"] if donor else "",
        "parent_env_steps": int(origin["env_steps"]) if donor else -1,
        "parent_checkpoint": origin["checkpoint_id"] if donor else "",
    }


def _tunable_agent(agent: Agent, cfg: AppConfig) -> TunableAgent:
    if not isinstance(agent, TunableAgent):
        raise ConfigError(
            f"agent {cfg.agent.backend} {cfg.agent.algo} ({type(agent).__name__}) cannot change its hyper-parameters "
            "while training (no set_hyperparameters), so a population cannot mutate it"
        )
    return agent


def _check_trial(cfg: AppConfig, market: MarketData) -> None:
    """Build one trial's environment and agent here (on the CPU) and apply both ends of every mutation: a config the
    trials would fail on fails now, before a cluster starts."""
    population = _population(cfg)
    for split in {cfg.train.train_split, population.validation_split, *cfg.train.eval_splits}:
        split_of(market, split)
    env_cfg = cfg.env.model_copy(update={"device": "cpu"})  # the driver (a cluster's head) may have no GPU
    env = make_env(env_cfg, split_of(market, cfg.train.train_split), seed=population.seed)
    agent = _tunable_agent(make_agent(cfg, env, seed=population.seed), cfg)
    for end in (0, -1):
        agent.set_hyperparameters({name: m.candidates()[end] for name, m in population.mutations.items()})


# ---------------------------------------------------------------------------------------------------- the run


def is_population_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` was written by :func:`run_population`."""
    return (Path(run_dir) / STATE_FILE).is_file()


def load_population_config(run_dir: str | Path) -> AppConfig:
    """The config stored in a population run directory.

    Raises:
        ConfigError: ``run_dir`` is not a population run.
    """
    run = Path(run_dir)
    if not is_population_run(run):
        raise ConfigError(
            f"{run}: not a population run ({STATE_FILE} missing); start one with `finrl-lite pbt --config ... --out {run}`"
        )
    return load_config(run / "config.yaml")


def _storage_path(population: PopulationConfig, out: Path) -> str:
    if population.storage_path is None:
        return str((out / "ray_results").resolve())
    return population.storage_path if "://" in population.storage_path else str(Path(population.storage_path).resolve())


def run_population(
    cfg: AppConfig | None,
    out_dir: str | Path,
    address: str | None = None,
    resume: bool = False,
    hook: Callable[[Any], None] | None = None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """Run (or continue) a population, then rank it, save the top-k agents and evaluate them against the baselines.

    Args:
        cfg: The config (its ``population`` section); None with ``resume``: the run directory's own.
        out_dir: The run directory (see the module docstring).
        address: None: an embedded local Ray; ``"auto"`` or a head's ``host:port``: join that cluster (Ray Client's
            ``ray://`` is refused: Tune's driver has to run here).
        resume: Continue the interrupted population of ``out_dir`` (``Tuner.restore``); ``cfg``, when given, must be
            the stored one.
        hook: Called on the driver after every report with a
            :class:`~finrl_lite.train.population_tune.PopulationProgress` (the CLI's display).
        use_cache: Read and write the data cache.

    Returns:
        The metrics of every eval split (``train.eval_splits``): per curve (``top_<r>``, ``ensemble``, baselines),
        per metric, a mean / CI record as :func:`~finrl_lite.train.pipeline.aggregate_metrics` gives (n = 1).

    Raises:
        ConfigError: Bad config, a directory that is (or, with ``resume``, is not) a population run or that another
            process holds, an unreachable ``address``, a per-trial resource request no node can hold.
        PopulationInterrupted: The population stopped before every trial finished (continue with ``resume``).
    """
    out = Path(out_dir)
    with run_log(out, "pbt.log") as start_log:
        if resume:
            stored = load_population_config(out)
            if cfg is not None and dump_config(cfg) != dump_config(stored):
                raise ConfigError(
                    f"{out}: --resume continues the population with its stored config ({out / 'config.yaml'}), "
                    "and the given --config/--set differ from it; drop them or start a new --out"
                )
            cfg = stored
            state = json.loads((out / STATE_FILE).read_text())
        else:
            if cfg is None:
                raise ConfigError("a new population needs a config")
            if is_population_run(out):
                raise ConfigError(f"{out} already holds a population run; add --resume to continue it, or choose a new --out")
            if (out / "config.yaml").exists():
                raise ConfigError(f"{out} holds another run (its config.yaml would be replaced); choose a new --out")
            state = {}
        population = _population(cfg)
        require("ray.tune", "population", "finrl-lite pbt (Ray Tune)")
        from finrl_lite.train import population_tune as pt

        pt.check_address(address)
        market = prepare_data(cfg, use_cache=use_cache).market
        _check_trial(cfg, market)
        with RunLock(out):  # taken before the first write: no other process trains or back-tests this directory
            start_log()
            if not resume:
                out.mkdir(parents=True, exist_ok=True)
                name = f"{out.resolve().name}_{dt.datetime.now():%Y%m%d-%H%M%S}"
                state = {"experiment": f"{_storage_path(population, out).rstrip('/')}/{name}", "state": "running"}
                atomic_write_text(out / "config.yaml", dump_config(cfg))
                atomic_write_json(out / "run.json", {**data_identity(market), "versions": library_versions()})
                atomic_write_json(out / STATE_FILE, state)
            setup = TrialSetup(cfg, market)
            experiment = state["experiment"]
            with pt.ray_session(address, population) as embedded:
                pt.check_trial_resources(population.resources_per_trial, 0.0 if embedded else population.wait_for_resources_s)
                if resume:
                    tuner = pt.restore_tuner(setup, experiment)
                    merge_exploit_log(experiment, out / EXPLOIT_LOG)  # before Ray starts the experiment's copy afresh
                else:
                    storage, name = experiment.rsplit("/", 1)
                    tuner = pt.make_tuner(setup, _tunable(cfg), storage, name)
                token = pt.DRIVER_SINK.set(pt.DriverSink(out / HISTORY_FILE, hook))
                try:
                    results = tuner.fit()
                finally:
                    pt.DRIVER_SINK.reset(token)
            finals = _final_checkpoints(results, cfg)
            return _finish(cfg, market, out, state, finals)


@dataclass(frozen=True)
class _Final:
    trial_id: str
    value: float
    checkpoint: Any


def _final_checkpoints(results: Any, cfg: AppConfig) -> list[_Final]:
    """Every trial that learned its budget, with its last validation metric and checkpoint; an interruption raises."""
    population = _population(cfg)
    key = f"validation_{population.metric}"
    finals, unfinished, failed = [], [], []
    for result in results:
        metrics = result.metrics or {}
        trial = metrics.get("trial_id", "?")
        if result.error is not None:
            failed.append(f"{trial}: {type(result.error).__name__}: {result.error}")
        elif metrics.get("env_steps", 0) < cfg.train.total_timesteps:
            unfinished.append(trial)
        else:
            finals.append(_Final(trial, float(metrics[key]), result.checkpoint))
    if unfinished:
        raise PopulationInterrupted(
            f"the population stopped before trials {', '.join(unfinished)} learned their budget; "
            "continue it with `finrl-lite pbt --out RUN --resume`"
        )
    for line in failed:
        logger.warning("trial failed beyond population.max_failures: %s", line)
    if len(finals) < population.top_k:
        raise FinrlLiteError(
            f"only {len(finals)} of {population.num_samples} trials finished (top_k is {population.top_k}); failures:\n"
            + "\n".join(failed)
        )
    return sorted(finals, key=lambda f: -population.score(f.value) if not math.isnan(f.value) else math.inf)


def _finish(cfg: AppConfig, market: MarketData, out: Path, state: dict[str, Any], finals: list[_Final]) -> dict[str, Any]:
    """Leaderboard, exploits, plot, the top-k agents and the ensemble, and their evaluation on the eval splits."""
    population = _population(cfg)
    history = read_history(out / HISTORY_FILE)
    board = leaderboard_frame(history, population, [f.trial_id for f in finals])
    board.to_csv(out / "leaderboard.csv", index=False)
    merge_exploit_log(state["experiment"], out / EXPLOIT_LOG)
    exploits = read_exploits(out / EXPLOIT_LOG, sorted(set(history["trial_id"])), list(population.mutations))
    if exploits is not None:
        exploits.to_csv(out / "exploits.csv", index=False)
    plot_population(board, f"validation_{population.metric}", out / "population.png", population.validation_split)
    top, members = [], []
    for rank, final in enumerate(finals[: population.top_k], start=1):
        with final.checkpoint.as_directory() as directory:
            agent = load_agent(directory)
            origin = json.loads((Path(directory) / TRIAL_FILE).read_text())
        save_agent(agent, cfg.agent, out / f"top_{rank}" / "model")
        entry = {"rank": rank, "trial_id": final.trial_id, population.metric: final.value, **origin}
        atomic_write_json(out / f"top_{rank}" / TRIAL_FILE, entry)
        top.append(entry)
        members.append((f"top_{rank}", agent))
    if population.ensemble is not None:
        members.append(("ensemble", _save_ensemble(cfg, out, top, [agent for _, agent in members])))
    metrics = _evaluate(cfg, market, members, cfg.train.eval_splits, out)
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_json(out / STATE_FILE, {**state, "state": "done", "metric": population.metric, "top": top})
    return metrics


def _save_ensemble(cfg: AppConfig, out: Path, top: list[dict[str, Any]], agents: list[Agent]) -> Agent:
    """The ensemble of the top-k ``agents`` (in ``top``'s order), saved into ``out/ensemble``."""
    from finrl_lite.agents.ensemble import EnsembleAgent, EnsembleMember, save_ensemble

    population = _population(cfg)
    members = [
        EnsembleMember(f"top_{e['rank']}", agent, cfg.agent, population.score(e[population.metric]))
        for e, agent in zip(top, agents, strict=True)
    ]
    assert population.ensemble is not None
    ensemble = EnsembleAgent(members, mode=population.ensemble)
    save_ensemble(ensemble, out / "ensemble")
    return ensemble


def _members(run: Path, cfg: AppConfig) -> list[tuple[str, Agent]]:
    population = _population(cfg)
    names = [f"top_{r}" for r in range(1, population.top_k + 1)]
    members = []
    for name in names:
        model = run / name / "model"
        if not (model / "agent.json").is_file():
            raise ConfigError(f"{run}: {name} has no saved agent; the population has not finished (finrl-lite pbt --resume)")
        members.append((name, load_agent(model)))
    if population.ensemble is not None:
        members.append(("ensemble", load_agent(run / "ensemble")))
    return members


def _evaluate(
    cfg: AppConfig, market: MarketData, members: list[tuple[str, Agent]], splits: list[str], directory: Path
) -> dict[str, Any]:
    per_split = {}
    for split in splits:
        part = split_of(market, split)
        curves: list[EquityCurve] = [run_agent(agent, part, cfg.env, name) for name, agent in members]
        curves += baseline_curves(market, cfg, split)
        per_split[split] = report_split(curves, part, directory, split)
    return aggregate_metrics({0: per_split})


def backtest_population(
    run_dir: str | Path, split: str = "test", use_cache: bool = True, allow_data_change: bool = False
) -> dict[str, Any]:
    """Evaluate the top-k agents of a finished population run, their ensemble and the baselines on ``split``;
    writes ``backtest_<split>/`` (curves, plot, backtest.json) and ``backtest_<split>.json`` as ``finrl-lite backtest``
    does for a training run, on the run's own data (checked as :func:`~finrl_lite.train.pipeline.backtest_run` does)."""
    run = Path(run_dir)
    cfg = load_population_config(run)
    with RunLock(run):
        market = prepare_data(cfg, use_cache=use_cache).market
        check_run_data(run, market, allow_data_change)
        result = _evaluate(cfg, market, _members(run, cfg), [split], run / f"backtest_{split}")
        write_backtest(run, split, result)
    return result
