"""The train -> validate -> test pipeline and the run directory it writes.

Run directory::

    RUN/
      .lock                the pid of the process training or back-testing it (see run_lock.py)
      config.yaml          the resolved config
      run.json             data fingerprint, tickers and fields, seeds, library versions
      train.log            the log of every train (and resume) of the run
      metrics.json         per split and curve: mean and 95% CI over seeds of every metric
      seed_<k>/
        model/             the trained agent (agent.json says how to load it)
        checkpoint/        the latest periodic checkpoint (for --resume): the agent with its training
                           state, env.pt (the training environment's snapshot) and checkpoint.json
                           (its step count, written last: a checkpoint without it is incomplete)
        progress.json      steps learned, and whether training finished
        metrics.json       per split: metrics of the agent and of every baseline
        equity_<split>.csv equity curves; report_<split>.png plots

A run checks everything it can (config, agent parameters, data, device, memory) before it creates the directory,
and holds the directory's lock while it writes. A checkpoint is written beside the last one and swapped in by
renames; resuming after a crash anywhere in the swap continues from the newest complete checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from finrl_lite.agents.backends import BACKENDS
from finrl_lite.agents.base import Agent, TrainProgress
from finrl_lite.agents.baselines import make_baseline
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import AgentConfig, AppConfig, dump_config, load_config
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.errors import ConfigError, DataError, FinrlLiteError
from finrl_lite.io import atomic_write_json, atomic_write_text, swap_in_directory
from finrl_lite.train.backtest import EquityCurve, index_curve, run_agent, run_baseline
from finrl_lite.train.environment import make_env
from finrl_lite.train.metrics import METRIC_NAMES, mean_confidence_interval
from finrl_lite.train.report import plot_curves, write_curves_csv
from finrl_lite.train.run_lock import RunLock
from finrl_lite.train.run_log import run_log

__all__ = [
    "ProgressHook",
    "aggregate_metrics",
    "backtest_run",
    "baseline_curves",
    "check_run",
    "evaluate_split",
    "library_versions",
    "load_run_config",
    "report_split",
    "restore_env",
    "split_of",
    "train_run",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

_ENV_SNAPSHOT = "env.pt"
_CHECKPOINT_DONE = "checkpoint.json"
"""Written last into a checkpoint (with its step count): a checkpoint directory without it is incomplete."""
_CHECKPOINTS = ("checkpoint", "checkpoint.new", "checkpoint.old")
"""Where a checkpoint can be after a crash: in place, staged, or moved aside by an interrupted swap."""
_LOG_FILE = "train.log"

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


def split_of(market: MarketData, name: str) -> MarketData:
    """The bars of split ``name`` of ``market`` (a ConfigError naming the splits the config defines if it has none)."""
    if market.splits is None or name not in market.splits:
        known = sorted(market.splits or {})
        raise ConfigError(f"data.splits has no split '{name}' (splits: {known}); define it in the config")
    return market.slice(name)


def baseline_curves(market: MarketData, cfg: AppConfig, split: str | tuple[object, object]) -> list[EquityCurve]:
    """Equity curves of every configured baseline and of the data's index on one split (seed-independent).

    Args:
        market: The whole data: its bars before the split are the baselines' history, so they trade from the
            split's first bar, as the agent does.
        cfg: The run's config (baselines, market rules).
        split: Name of the evaluated split of ``market``, or its ``(first, last)`` dates.
    """
    part = market.slice(split) if isinstance(split, tuple) else split_of(market, split)
    curves = [run_baseline(make_baseline(name), part, cfg.env, market) for name in cfg.train.baselines]
    index = index_curve(part, cfg.env.initial_amount)
    return curves + ([index] if index is not None else [])


def evaluate_split(
    agent: Agent, market: MarketData, cfg: AppConfig, seed: int, baselines: list[EquityCurve]
) -> list[EquityCurve]:
    """The agent's equity curve on ``market`` (one split) followed by ``baselines`` (from :func:`baseline_curves`)."""
    return [run_agent(agent, market, cfg.env, "agent", seed), *baselines]


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
    progress = _read_progress(progress_path)
    train_env = make_env(cfg.env, split_of(market, cfg.train.train_split), seed=seed)
    try:
        done = progress["done"] and (directory / "model" / "agent.json").is_file()
        if progress["done"] and not done:
            logger.warning(
                "seed %d: %s says training finished, but %s holds no model: training the seed again from its last checkpoint",
                seed,
                progress_path,
                directory / "model",
            )
        if done:
            agent = _load(directory / "model", train_env, f"delete {directory / 'model'} and resume to train this seed again")
            logger.info("seed %d: training already finished, evaluating", seed)
        else:
            agent, resuming = _resume_or_start(cfg, train_env, seed, directory, progress)
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
            learned = _agent_steps(agent) or total  # the budget rounded up to whole batched steps (or iterations)
            logger.info("seed %d: learned from %d environment steps (budget %d)", seed, learned, total)
            atomic_write_json(progress_path, {"steps": learned, "done": True})
    except BaseException:
        with contextlib.suppress(FinrlLiteError):  # the error in flight says more than a late action check
            train_env.close()
        raise
    train_env.close()
    metrics = {}
    for split in cfg.train.eval_splits:
        part = split_of(market, split)
        metrics[split] = report_split(evaluate_split(agent, part, cfg, seed, baselines[split]), part, directory, split)
    atomic_write_json(directory / "metrics.json", metrics)
    return metrics


def _read_progress(path: Path) -> dict[str, Any]:
    """``progress.json`` (``{"steps": 0, "done": False}`` when absent), or an error naming it and what to do."""
    if not path.is_file():
        return {"steps": 0, "done": False}
    try:
        progress = json.loads(path.read_text())
        return {"steps": int(progress["steps"]), "done": bool(progress["done"])}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: unreadable ({type(exc).__name__}: {exc}); delete it and run `finrl-lite train --resume "
            f"{path.parent.parent}`: the seed then continues from its newest complete checkpoint"
        ) from None


def _load(directory: Path, env: Any, advice: str) -> Agent:
    """:func:`load_agent`, with what to do when a file of it is damaged."""
    try:
        return load_agent(directory, env=env)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {advice} (`finrl-lite train --resume {directory.parent.parent}`)") from exc


def _resume_or_start(cfg: AppConfig, env: Any, seed: int, directory: Path, progress: dict[str, Any]) -> tuple[Agent, bool]:
    """The agent continued from the seed's newest complete checkpoint (its env restored), or a new one."""
    checkpoint = _latest_checkpoint(directory, progress["steps"])
    if checkpoint is None:
        return make_agent(cfg, env, seed=seed), False
    advice = f"delete {checkpoint} to resume from an older checkpoint or train this seed from the start"
    restore_env(env, checkpoint, advice)
    agent = _load(checkpoint, env, advice)
    logger.info("seed %d: resuming after %d steps", seed, _agent_steps(agent))
    return agent, True


def _agent_steps(agent: Agent) -> int:
    return int(getattr(agent, "num_timesteps", 0))


def _checkpoint(agent: Agent, env: Any, cfg: AppConfig, directory: Path, steps: int) -> None:
    """Replace ``checkpoint/`` with the agent and its training state, and the training environment's snapshot
    (``env.pt``), written beside it first (``checkpoint.new``, marked complete last), then swapped in: together they
    continue training exactly. A crash at any point leaves a complete checkpoint that :func:`_latest_checkpoint` finds."""
    staging = directory / "checkpoint.new"
    shutil.rmtree(staging, ignore_errors=True)
    write_checkpoint(agent, env, cfg.agent, staging)
    atomic_write_text(staging / _CHECKPOINT_DONE, json.dumps({"steps": steps}))
    swap_in_directory(staging, directory / "checkpoint")
    atomic_write_json(directory / "progress.json", {"steps": steps, "done": False})
    logger.info("checkpoint at %d steps", steps)


def _checkpoint_steps(path: Path, progress_steps: int) -> int | None:
    """Steps of a complete checkpoint directory; None when it is missing or incomplete.

    ``checkpoint/`` written before checkpoints were marked complete counts as complete at ``progress_steps``
    when it holds an agent.
    """
    marker = path / _CHECKPOINT_DONE
    if marker.is_file():
        try:
            return int(json.loads(marker.read_text())["steps"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            return None
    if path.name == "checkpoint" and (path / "agent.json").is_file() and progress_steps > 0:
        return progress_steps
    return None


def _latest_checkpoint(directory: Path, progress_steps: int) -> Path | None:
    """``directory/checkpoint`` holding the seed's newest complete checkpoint, after finishing a swap that a crash
    interrupted (``checkpoint.new`` complete, ``checkpoint/`` moved to ``checkpoint.old``...); None when there is none,
    which is logged as a warning when the seed had learned something (it starts over)."""
    found = {name: _checkpoint_steps(directory / name, progress_steps) for name in _CHECKPOINTS}
    complete = {name: steps for name, steps in found.items() if steps is not None}
    final = directory / "checkpoint"
    if not complete:
        leftovers = [name for name in _CHECKPOINTS if (directory / name).exists()]
        if progress_steps > 0 or leftovers:
            logger.warning(
                "%s: no complete checkpoint (progress.json: %d steps; incomplete: %s): this seed starts over from step 0",
                directory,
                progress_steps,
                ", ".join(leftovers) or "none",
            )
        for name in leftovers:
            shutil.rmtree(directory / name, ignore_errors=True)
        return None
    best = max(complete, key=lambda name: (complete[name], -_CHECKPOINTS.index(name)))
    if best != "checkpoint":
        logger.warning("%s: resuming from %s at %d steps (a checkpoint swap was interrupted)", directory, best, complete[best])
        shutil.rmtree(final, ignore_errors=True)  # older or incomplete; the best one is safe beside it
        (directory / best).rename(final)
    for name in _CHECKPOINTS[1:]:
        shutil.rmtree(directory / name, ignore_errors=True)
    return final


def write_checkpoint(agent: Agent, env: Any, cfg: AgentConfig, directory: Path) -> Path:
    """Write into ``directory`` what continuing training exactly needs: the agent with its training state and
    ``env.pt``, the training environment's snapshot (:func:`restore_env` and ``load_agent`` read them back)."""
    save_agent(agent, cfg, directory, training_state=True)
    torch.save(env.state_dict(), directory / _ENV_SNAPSHOT)
    return directory


def restore_env(env: Any, checkpoint: Path, advice: str | None = None) -> None:
    """Load the training environment's snapshot of a checkpoint written by :func:`write_checkpoint` into ``env``.

    Raises:
        ConfigError: the snapshot is missing or unreadable (``advice`` says what to do about an unreadable one).
    """
    advice = advice or f"delete {checkpoint} to train from the start"
    path = checkpoint / _ENV_SNAPSHOT
    if not path.is_file():
        raise ConfigError(
            f"{checkpoint}: no {_ENV_SNAPSHOT} (the training environment's snapshot), so training cannot continue "
            f"exactly; delete {checkpoint} and {checkpoint.parent / 'progress.json'} to train this seed from the start"
        )
    try:
        snapshot = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and pickle fail their own ways on a damaged file
        raise ConfigError(f"{path}: unreadable ({type(exc).__name__}: {exc}); {advice}") from exc
    env.load_state_dict(snapshot)


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


def check_run(cfg: AppConfig, use_cache: bool = True) -> MarketData:
    """Everything a run can check before it writes a file; returns the prepared data.

    Checks the agent's parameters (the backend's check, which builds nothing), the baselines, the splits the run
    trains and evaluates on, the data (source, file, cleaning), and the training environment on its device (that
    the device exists and the batch fits in memory).

    Raises:
        ConfigError, DataError, MissingDependencyError: the first problem found.
    """
    BACKENDS.get(cfg.agent.backend).check_params(cfg.agent.algo, cfg.agent.params)
    for name in cfg.train.baselines:
        make_baseline(name)
    for name in [cfg.train.train_split, *cfg.train.eval_splits]:
        if name not in cfg.data.splits:
            raise ConfigError(
                f"data.splits has no split '{name}', which train.train_split or train.eval_splits names "
                f"(splits: {sorted(cfg.data.splits)}); define it in the config"
            )
    market = prepare_data(cfg, use_cache=use_cache).market
    with make_env(cfg.env, split_of(market, cfg.train.train_split), seed=cfg.train.seeds[0]) as env:
        env.check_memory()
    return market


def _config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _config_differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def _check_same_config(out: Path, cfg: AppConfig) -> None:
    """Refuse to write a run into a directory that holds a run of another config (which would mix the two)."""
    path = out / "config.yaml"
    if not path.is_file():
        return
    try:
        stored = load_config(path).model_dump(mode="json")  # through the model: defaults of newer fields filled in
    except ConfigError as exc:
        raise ConfigError(f"{exc}\n(this run directory's config; use another --out)") from None
    differences = _config_differences(stored, cfg.model_dump(mode="json"))
    if differences:
        shown = "; ".join(differences[:5]) + (f" and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise ConfigError(
            f"{out} already holds a run of another config ({shown}); use another --out, or `finrl-lite train --resume "
            f"{out}` to continue that run"
        )


def train_run(cfg: AppConfig, out_dir: str | Path, hook: ProgressHook | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Train and evaluate every seed of ``cfg`` into ``out_dir``; returns the aggregated metrics.

    Everything :func:`check_run` checks is checked before the directory is created; the directory is then locked
    (a second process fails fast) and ``train.log`` records the run. Calling it again on the same directory with the
    same config resumes: finished seeds are only re-evaluated, interrupted ones continue from their newest complete
    checkpoint.

    Raises:
        ConfigError: a check failed, the directory is in use, or it holds a run of another config.
    """
    out = Path(out_dir)
    with run_log(out, _LOG_FILE) as start_log:
        market = check_run(cfg, use_cache)
        with RunLock(out):
            _check_same_config(out, cfg)
            start_log()
            atomic_write_text(out / "config.yaml", dump_config(cfg))
            atomic_write_json(
                out / "run.json", {"seeds": cfg.train.seeds, **data_identity(market), "versions": library_versions()}
            )
            baselines = {split: baseline_curves(market, cfg, split) for split in cfg.train.eval_splits}
            per_seed = {seed: _train_seed(cfg, market, seed, out / f"seed_{seed}", hook, baselines) for seed in cfg.train.seeds}
            metrics = aggregate_metrics(per_seed)
            atomic_write_json(out / "metrics.json", metrics)
    return metrics


def data_identity(market: MarketData) -> dict[str, Any]:
    """What run.json records of the data: its fingerprint, and what the models' observations are made of."""
    return {
        "data_fingerprint": market.fingerprint(),
        "tickers": list(market.tickers),
        "fields": list(market.fields),
        "market_fields": list(market.market_fields),
        "data_range": market.date_range_text(),
    }


def check_run_data(run: Path, market: MarketData, allow_data_change: bool) -> None:
    """Compare the data with run.json's: other tickers or fields are an error; other values an error unless allowed."""
    path = run / "run.json"
    try:
        stored = json.loads(path.read_text())
        fingerprint = str(stored["data_fingerprint"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: unreadable ({type(exc).__name__}: {exc}); the run cannot tell what data it was trained on"
        ) from None
    now = data_identity(market)
    for key, what in (("tickers", "tickers"), ("fields", "per-ticker fields"), ("market_fields", "market series")):
        if key in stored and stored[key] != now[key]:
            added = [x for x in now[key] if x not in stored[key]]
            removed = [x for x in stored[key] if x not in now[key]]
            change = f"added {added}, removed {removed}" if added or removed else "the same names in another order"
            raise DataError(
                f"{run}: the data's {what} differ from the ones the run was trained on ({change}); the models observe "
                f"exactly those, so no back-test can run on this data"
            )
    if now["data_fingerprint"] != fingerprint:
        text = (
            f"{run}: the data differ from what the run was trained on (data fingerprint changed: {fingerprint[:12]} in {path}, "
            f"now {now['data_fingerprint'][:12]}; range {stored.get('data_range', '?')} then, {now['data_range']} now): "
            f"the source or the file changed"
        )
        if not allow_data_change:
            raise DataError(f"{text}. Pass --allow-data-change to back-test on the data as it is now")
        logger.warning("%s; back-testing on the data as it is now (--allow-data-change)", text)


def load_run_config(run_dir: str | Path) -> AppConfig:
    """The resolved config stored in a run directory."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (config.yaml missing)")
    return load_config(path)


def backtest_run(
    run_dir: str | Path, split: str = "test", use_cache: bool = True, allow_data_change: bool = False
) -> dict[str, Any]:
    """Evaluate every trained seed of a run, and the baselines, on ``split``; writes ``backtest_<split>/``.

    The run directory is locked while it runs (not during a training of it). The data must be what the run was
    trained on (run.json's fingerprint); with ``allow_data_change`` other values are a warning, but other tickers or
    fields are always an error. Every model is loaded before anything is written.

    A run of another kind (`finrl-lite ensemble`) is back-tested through :func:`finrl_lite.train.runs.backtest`.

    Raises:
        ConfigError, DataError: not a run directory, in use, a seed without a readable model, or other data.
    """
    run = Path(run_dir)
    cfg = load_run_config(run)
    with RunLock(run):
        market = prepare_data(cfg, use_cache=use_cache).market
        check_run_data(run, market, allow_data_change)
        part = split_of(market, split)
        agents = {}
        for seed in cfg.train.seeds:
            model_dir = run / f"seed_{seed}" / "model"
            if not (model_dir / "agent.json").is_file():
                raise ConfigError(
                    f"{run}: seed {seed} has no trained model ({model_dir} missing); run `finrl-lite train --resume {run}`: "
                    f"it trains that seed (from its last checkpoint, if any) and keeps the finished ones"
                )
            agents[seed] = _load(model_dir, None, f"delete {model_dir} and train the seed again")
        directory = run / f"backtest_{split}"
        baselines = baseline_curves(market, cfg, split)
        per_seed = {}
        for seed, agent in agents.items():
            curves = evaluate_split(agent, part, cfg, seed, baselines)
            per_seed[seed] = {split: report_split(curves, part, directory / f"seed_{seed}", split)}
        result = aggregate_metrics(per_seed)
        write_backtest(run, split, result)
    return result


def write_backtest(run: Path, split: str, result: dict[str, Any]) -> None:
    """The back-test's metrics in ``backtest_<split>/backtest.json`` and, for the latest one, ``backtest_<split>.json``."""
    atomic_write_json(run / f"backtest_{split}" / "backtest.json", result)
    atomic_write_json(run / f"backtest_{split}.json", result)
