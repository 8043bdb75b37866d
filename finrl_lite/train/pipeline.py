"""The train -> validate -> test pipeline and the run directory it writes.

Run directory::

    RUN/
      config.yaml          the resolved config
      run.json             data fingerprint, seeds, library versions
      metrics.json         per split and curve: mean and 95% CI over seeds of every metric
      seed_<k>/
        model/             the trained agent (agent.json says how to load it)
        checkpoint/        the latest periodic checkpoint (for --resume): the agent with its training
                           state and env.pt, the training environment's snapshot
        progress.json      steps learned, and whether training finished
        metrics.json       per split: metrics of the agent and of every baseline
        equity_<split>.csv equity curves; report_<split>.png plots
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from finrl_lite.agents.base import Agent, TrainProgress
from finrl_lite.agents.baselines import make_baseline
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import AgentConfig, AppConfig, dump_config, load_config
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_text
from finrl_lite.train.backtest import EquityCurve, index_curve, run_agent, run_baseline
from finrl_lite.train.environment import make_env
from finrl_lite.train.metrics import METRIC_NAMES, mean_confidence_interval
from finrl_lite.train.report import plot_curves, write_curves_csv

__all__ = [
    "ProgressHook",
    "aggregate_metrics",
    "backtest_run",
    "baseline_curves",
    "evaluate_split",
    "library_versions",
    "report_split",
    "restore_env",
    "split_of",
    "train_run",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

_ENV_SNAPSHOT = "env.pt"

ProgressHook = Callable[[int, TrainProgress], None]
"""Called with (seed, progress) after each training iteration; the CLI draws its progress bar from it."""


def library_versions() -> dict[str, str]:
    """Versions of finrl_lite, Python and the libraries a run's numbers depend on (for run.json)."""
    import gymnasium
    import numpy
    import pandas
    import stable_baselines3
    import torch

    from finrl_lite import __version__

    return {
        "finrl_lite": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


def _write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, default=str))


def split_of(market: MarketData, name: str) -> MarketData:
    """The bars of split ``name`` of ``market`` (a ConfigError naming the splits the config defines if it has none)."""
    if market.splits is None or name not in market.splits:
        known = sorted(market.splits or {})
        raise ConfigError(f"data.splits has no split '{name}' (splits: {known}); define it in the config")
    return market.slice(name)


def baseline_curves(market: MarketData, cfg: AppConfig, split: str | None = None) -> list[EquityCurve]:
    """Equity curves of every configured baseline and of the data's index on one split (seed-independent).

    Args:
        market: The whole data when ``split`` is given (its bars before the split are the baselines' history,
            so they trade from the split's first bar, as the agent does); else the evaluated bars themselves.
        cfg: The run's config (baselines, market rules).
        split: Name of the evaluated split of ``market``.
    """
    part = split_of(market, split) if split is not None else market
    history = market if split is not None else None
    curves = [run_baseline(make_baseline(name), part, cfg.env, history) for name in cfg.train.baselines]
    index = index_curve(part, cfg.env.initial_amount)
    return curves + ([index] if index is not None else [])


def evaluate_split(
    agent: Agent | None, market: MarketData, cfg: AppConfig, seed: int = 0, baselines: list[EquityCurve] | None = None
) -> list[EquityCurve]:
    """The agent's equity curve on ``market`` (one split; if given) followed by the baselines'.

    Pass ``baselines=baseline_curves(data, cfg, split)`` to give them the bars before the split as history;
    computed here they only see ``market``.
    """
    curves = [run_agent(agent, market, cfg.env, "agent", seed)] if agent is not None else []
    return curves + (baselines if baselines is not None else baseline_curves(market, cfg))


def report_split(curves: list[EquityCurve], market: MarketData, directory: Path, split: str) -> dict[str, dict[str, float]]:
    """Write ``equity_<split>.csv`` and ``report_<split>.png`` of ``curves`` into ``directory``; their metrics by name."""
    write_curves_csv(curves, directory / f"equity_{split}.csv")
    plot_curves(curves, directory / f"report_{split}.png", f"{split}: {market.date_range_text()}")
    return {c.name: c.metrics(market.interval, market.calendar) for c in curves}


def _train_seed(
    cfg: AppConfig,
    market: MarketData,
    seed: int,
    directory: Path,
    hook: ProgressHook | None,
    baselines: dict[str, list[EquityCurve]],
) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    progress_path = directory / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {"steps": 0, "done": False}
    train_env = make_env(cfg.env, split_of(market, cfg.train.train_split), seed=seed)
    if progress["done"]:
        agent = load_agent(directory / "model", env=train_env)
        logger.info("seed %d: training already finished, evaluating", seed)
    else:
        checkpoint = directory / "checkpoint"
        resuming = progress["steps"] > 0 and (checkpoint / "agent.json").is_file()
        if resuming:
            restore_env(train_env, checkpoint)
            agent = load_agent(checkpoint, env=train_env)
            logger.info("seed %d: resuming after %d steps", seed, _agent_steps(agent))
        else:
            agent = make_agent(cfg, train_env, seed=seed)
        total, every = cfg.train.total_timesteps, cfg.train.checkpoint_every
        remaining = total - _agent_steps(agent)
        last_checkpoint = [_agent_steps(agent)]

        def on_iteration(p: TrainProgress) -> None:  # p.steps counts every step the agent ever learned from
            if every and p.steps // every > last_checkpoint[0] // every:  # passed a multiple of checkpoint_every
                _checkpoint(agent, train_env, cfg, directory, p.steps)
                last_checkpoint[0] = p.steps
            if hook is not None:
                hook(seed, TrainProgress(p.steps, total, p.steps_per_second, p.episode_return, p.extra))

        if hook is not None and resuming:  # the progress bar starts where the checkpoint stands
            hook(seed, TrainProgress(_agent_steps(agent), total, 0.0, float("nan"), {}))
        if remaining > 0:
            agent.learn(remaining, callback=on_iteration)
        save_agent(agent, cfg.agent, directory / "model")
        _write_json(progress_path, {"steps": cfg.train.total_timesteps, "done": True})
    metrics = {}
    for split in cfg.train.eval_splits:
        part = split_of(market, split)
        metrics[split] = report_split(evaluate_split(agent, part, cfg, seed, baselines[split]), part, directory, split)
    _write_json(directory / "metrics.json", metrics)
    return metrics


def _agent_steps(agent: Agent) -> int:
    return int(getattr(agent, "num_timesteps", 0))


def _checkpoint(agent: Agent, env: Any, cfg: AppConfig, directory: Path, steps: int) -> None:
    """Replace ``checkpoint/`` with the agent and its training state, and the training environment's snapshot
    (``env.pt``), written beside it first, then swapped in: together they continue training exactly."""
    staging = directory / "checkpoint.new"
    shutil.rmtree(staging, ignore_errors=True)
    write_checkpoint(agent, env, cfg.agent, staging)
    final = directory / "checkpoint"
    old = directory / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    _write_json(directory / "progress.json", {"steps": steps, "done": False})
    logger.info("checkpoint at %d steps", steps)


def write_checkpoint(agent: Agent, env: Any, cfg: AgentConfig, directory: Path) -> Path:
    """Write into ``directory`` what continuing training exactly needs: the agent with its training state and
    ``env.pt``, the training environment's snapshot (:func:`restore_env` and ``load_agent`` read them back)."""
    save_agent(agent, cfg, directory, training_state=True)
    torch.save(env.state_dict(), directory / _ENV_SNAPSHOT)
    return directory


def restore_env(env: Any, checkpoint: Path) -> None:
    """Load the training environment's snapshot of a checkpoint written by :func:`write_checkpoint` into ``env``."""
    path = checkpoint / _ENV_SNAPSHOT
    if not path.is_file():
        raise ConfigError(
            f"{checkpoint}: no {_ENV_SNAPSHOT} (the training environment's snapshot), so training cannot continue "
            f"exactly; delete {checkpoint} and {checkpoint.parent / 'progress.json'} to train this seed from the start"
        )
    env.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def aggregate_metrics(per_seed: dict[int, dict[str, dict[str, dict[str, float]]]]) -> dict[str, Any]:
    """Mean and 95% confidence interval over seeds of every metric of every curve and split."""
    out: dict[str, Any] = {}
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    for split, curves in first.items():
        out[split] = {}
        for curve in curves:
            out[split][curve] = {
                m: {
                    **mean_confidence_interval([per_seed[s][split][curve][m] for s in seeds]),
                    "values": [per_seed[s][split][curve][m] for s in seeds],
                }
                for m in METRIC_NAMES
            }
    return out


def train_run(cfg: AppConfig, out_dir: str | Path, hook: ProgressHook | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Train and evaluate every seed of ``cfg`` into ``out_dir``; returns the aggregated metrics.

    Calling it again on the same directory resumes: finished seeds are only re-evaluated, interrupted
    ones continue from their last checkpoint.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    market = prepare_data(cfg, use_cache=use_cache).market
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    _write_json(
        out / "run.json", {"seeds": cfg.train.seeds, "data_fingerprint": market.fingerprint(), "versions": library_versions()}
    )
    baselines = {split: baseline_curves(market, cfg, split) for split in cfg.train.eval_splits}
    per_seed = {seed: _train_seed(cfg, market, seed, out / f"seed_{seed}", hook, baselines) for seed in cfg.train.seeds}
    metrics = aggregate_metrics(per_seed)
    _write_json(out / "metrics.json", metrics)
    return metrics


def load_run_config(run_dir: str | Path) -> AppConfig:
    """The resolved config stored in a run directory."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (config.yaml missing)")
    return load_config(path)


def backtest_run(run_dir: str | Path, split: str = "test", use_cache: bool = True) -> dict[str, Any]:
    """Evaluate every trained seed of a run, and the baselines, on ``split``; writes ``backtest_<split>/``.

    A population run (``finrl-lite pbt``) evaluates its top-k agents and their ensemble; a run of `finrl-lite
    ensemble` is back-tested by :func:`finrl_lite.train.ensemble.backtest_ensemble_run`.
    """
    run = Path(run_dir)
    from finrl_lite.train import ensemble, population  # imported here: they build on this module

    if population.is_population_run(run):
        return population.backtest_population(run, split, use_cache=use_cache)
    if ensemble.is_ensemble_run(run):
        return ensemble.backtest_ensemble_run(run, split, use_cache=use_cache)
    cfg = load_run_config(run)
    market = prepare_data(cfg, use_cache=use_cache).market
    part = split_of(market, split)
    directory = run / f"backtest_{split}"
    baselines = baseline_curves(market, cfg, split)
    per_seed = {}
    for seed in cfg.train.seeds:
        model_dir = run / f"seed_{seed}" / "model"
        if not (model_dir / "agent.json").is_file():
            raise ConfigError(f"{run}: seed {seed} has no trained model; run `finrl-lite train --resume {run}` first")
        agent = load_agent(model_dir, env=None)
        curves = evaluate_split(agent, part, cfg, seed, baselines)
        per_seed[seed] = {split: report_split(curves, part, directory / f"seed_{seed}", split)}
    result = aggregate_metrics(per_seed)
    _write_json(directory / "backtest.json", result)
    _write_json(run / f"backtest_{split}.json", result)
    return result
