"""FinRL's rolling-window ensemble, done right (``finrl-lite ensemble``).

Windows are inclusive ranges of bar positions in the whole data; the last bar of a range only values the
decision taken on the bar before it. With ``a_k`` the first bar of trade window ``k`` and ``v_k = a_k -
validation_window``::

    train_k        [t_k, v_k]        t_k: the data's first bar, or v_k - train_window
    validation_k   [v_k, a_k]        validation_window decisions, all known when trade window k starts
    trade_k        [a_k, a_k+1]      a_0: the split's first bar after the warm-up; a_k+1 = a_k + rebalance_window,
                                     the last window ends on the split's last bar (it may be shorter)

In every window each candidate member (a candidate config and one of its seeds) is trained from scratch on
``train_k``, then validated from cash on ``validation_k`` and scored by ``ensemble.metric`` (the Sharpe ratio by
default, annualised from the bar interval). The window's policy, an
:class:`~finrl_lite.agents.ensemble.EnsembleAgent` over its members best first (``pick_best``: the best alone, as
FinRL), trades ``trade_k``. The trade windows chain into one out-of-sample account: window ``k+1``'s environment
continues from the state window ``k`` left (cash, holdings, T+1 locks and fees carry over; nothing is sold at
a boundary), as FinRL carries its last state over. Members train on each window independently of the trades,
so windows train in parallel (Ray tasks, one per member and window); the same seeds give the same numbers either way.

Turbulence (``ensemble.turbulence``): each window's validation and trading use a threshold from in-sample values
(the risk series on ``train_k`` after the warm-up, zeros left out). ``adaptive``: if the mean of the ``lookback``
bars up to ``v_k`` is above the in-sample ``quantile`` (turbulent), that quantile, else the ``calm_quantile`` (1.0:
the in-sample maximum). The training environments use ``env.turbulence_threshold`` as configured.

Where FinRL's ``DRLEnsembleAgent.run_ensemble_strategy`` (finrl/agents/stablebaselines3/models.py) differs:
its validation Sharpe is annualised with ``sqrt(4)``, a literal; it computes the adaptive threshold and then
overwrites it with the fixed in-sample 99% quantile; its in-sample period is the fixed first training period, not
the window's; its "best model retraining" up to the trade window is dead code (commented out, never run), so here
too the members trade as validated and the validation bars join the next window's training bars.

Run directory::

    RUN/
      config.yaml, run.json   the resolved config; data fingerprint and library versions
      ensemble.json           windows (bars, dates, threshold), every member's validation metrics, the picks
      picks.csv               one row per window: dates, threshold, picked member, every member's score
      windows/w<k>/           window k's policy: a saved EnsembleAgent (load_agent), its members inside
      model/                  the last window's policy: what `finrl-lite backtest` trades outside the span
      metrics.json            the out-of-sample span: agent and baselines, as `finrl-lite train` writes it
      equity_<split>.csv, report_<split>.png
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finrl_lite.agents.ensemble import EnsembleAgent, EnsembleMember, save_ensemble
from finrl_lite.agents.factory import load_agent, make_agent, save_agent
from finrl_lite.config import AgentConfig, AppConfig, EnsembleConfig, EnvConfig, dump_config
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.data_processors.processor import prepare_data
from finrl_lite.errors import ConfigError, FinrlLiteError
from finrl_lite.io import atomic_path, atomic_write_json, atomic_write_text
from finrl_lite.ray_runtime import local_ray
from finrl_lite.torch_threads import torch_threads
from finrl_lite.train.backtest import EquityCurve, run_agent, run_agent_schedule
from finrl_lite.train.environment import make_env
from finrl_lite.train.metrics import METRIC_NAMES
from finrl_lite.train.pipeline import (
    aggregate_metrics,
    baseline_curves,
    check_run_data,
    data_identity,
    library_versions,
    load_run_config,
    report_split,
    split_of,
    write_backtest,
)
from finrl_lite.train.run_lock import RunLock
from finrl_lite.train.run_log import run_log

__all__ = [
    "EnsembleHook",
    "EnsembleResult",
    "MemberJob",
    "Window",
    "backtest_ensemble_run",
    "ensemble_run",
    "is_ensemble_run",
    "local_ray",
    "member_jobs",
    "plan_windows",
    "train_member",
    "window_env",
]

logger = logging.getLogger(__name__)

_RECORD = "ensemble.json"

EnsembleHook = Callable[[int, int, str], None]
"""Called with (members trained, members in all, the member just finished as ``w<k>/<name>``); the CLI's progress."""


@dataclass(frozen=True)
class Window:
    """One rolling window: inclusive bar ranges of the whole data (see the module docstring).

    Attributes:
        index: position in the run, from 0.
        train: ``(first, last)`` bars the members train on.
        validation: ``(first, last)`` bars that score the members; ``last`` is ``trade[0]``.
        trade: ``(first, last)`` bars the window's policy trades; ``last`` is the next window's ``trade[0]``.
        turbulence_threshold: the threshold of validation and trading (``None``: none).
    """

    index: int
    train: tuple[int, int]
    validation: tuple[int, int]
    trade: tuple[int, int]
    turbulence_threshold: float | None

    @property
    def name(self) -> str:
        """Folder name: ``w000``, ``w001``..."""
        return f"w{self.index:03d}"


@dataclass(frozen=True)
class MemberJob:
    """Train one candidate member on one window and validate it (:func:`train_member`).

    Attributes:
        window: the window.
        name: the member's name (``<candidate>_s<seed>``), unique in the window.
        agent: its backend, algo and params.
        seed: its seed (agent and training environments).
        total_timesteps: its training budget.
        directory: where it is saved (``RUN/windows/w<k>/<name>``).
    """

    window: Window
    name: str
    agent: AgentConfig
    seed: int
    total_timesteps: int
    directory: str


@dataclass
class EnsembleResult:
    """What :func:`ensemble_run` produced (also written to the run directory).

    Attributes:
        metrics: the out-of-sample span's metrics, agent and baselines, as ``metrics.json`` of ``finrl-lite train``
            (``{split: {curve: {metric: {mean, low, high, n, values}}}}``, one sample).
        picks: one row per window (``picks.csv``).
        curves: the chained agent's equity curve, then the baselines'.
        windows: the windows.
        members: the candidate members' names (their validation scores are columns of ``picks``).
    """

    metrics: dict[str, Any]
    picks: pd.DataFrame
    curves: list[EquityCurve]
    windows: list[Window]
    members: list[str]


def _ensemble_section(cfg: AppConfig) -> EnsembleConfig:
    if cfg.ensemble is None:
        raise ConfigError("the config has no 'ensemble' section (see configs/ensemble.yaml)")
    return cfg.ensemble


def _date(market: MarketData, bar: int) -> str:
    return str(pd.Timestamp(market.dates[bar]).date()) if market.interval == "1d" else str(pd.Timestamp(market.dates[bar]))


def plan_windows(market: MarketData, cfg: AppConfig) -> list[Window]:
    """The rolling windows of ``cfg.ensemble`` over ``market`` (the whole prepared data), thresholds included.

    Raises:
        ConfigError: the split is unknown, or the windows do not fit the data: a rebalance window longer than the
            split, a first validation window that would start inside the indicator warm-up, too few training bars
            for ``env.episode_length``, a turbulence rule without a risk series or outside ``env.kind:
            stock_trading``.
    """
    ens = _ensemble_section(cfg)
    if market.splits is None or ens.split not in market.splits:
        known = sorted(market.splits or {})
        raise ConfigError(f"ensemble.split '{ens.split}' is not a data split (splits: {known}); define it in data.splits")
    span = market.splits.indices(ens.split, market.dates)
    first, last = max(int(span[0]), market.warmup), int(span[-1])
    decisions = last - first
    if ens.rebalance_window > decisions:
        raise ConfigError(
            f"ensemble.rebalance_window={ens.rebalance_window} does not fit: split '{ens.split}' has {decisions} trading "
            f"bars ({_date(market, first)}..{_date(market, last)})"
        )
    before = first - market.warmup
    if ens.validation_window > before:
        raise ConfigError(
            f"ensemble.validation_window={ens.validation_window} does not fit: split '{ens.split}' starts "
            f"{before} bars after the indicator warm-up ({market.warmup} bars), and the first validation window and "
            "the training bars must lie before it; start the split later or shorten the validation window"
        )
    need = max(cfg.env.episode_length or 0, 2)
    first_v = first - ens.validation_window
    available = first_v - max(_train_start(first_v, ens), market.warmup)
    if _train_start(first_v, ens) < 0 or available < max(need, ens.train_window or 0):
        wanted = f"train_window={ens.train_window}" if ens.train_window is not None else f"at least {need}"
        raise ConfigError(
            f"the first window does not fit: {available} training bars after the warm-up before its validation window "
            f"(which starts {_date(market, first_v)}), {wanted} needed"
            + (f" (env.episode_length={cfg.env.episode_length})" if cfg.env.episode_length else "")
            + f"; start split '{ens.split}' later, or shorten ensemble.validation_window / ensemble.train_window"
        )
    starts = list(range(first, last, ens.rebalance_window))
    risk = _risk_series(market, cfg)
    windows = []
    for k, a in enumerate(starts):
        v = a - ens.validation_window
        train = (_train_start(v, ens), v)
        threshold = _threshold(risk, market, train, ens, k) if risk is not None else _configured_threshold(cfg.env)
        windows.append(Window(k, train, (v, a), (a, starts[k + 1] if k + 1 < len(starts) else last), threshold))
    return windows


def _train_start(validation_start: int, ens: EnsembleConfig) -> int:
    """First training bar of a window: the data's first, or ``train_window`` bars before the validation window."""
    return validation_start - ens.train_window if ens.train_window is not None else 0


def _configured_threshold(env: EnvConfig) -> float | None:
    """``env.turbulence_threshold`` (``None`` for env kinds without one)."""
    return getattr(env, "turbulence_threshold", None)


def _risk_series(market: MarketData, cfg: AppConfig) -> np.ndarray | None:
    rule = _ensemble_section(cfg).turbulence
    if rule.mode == "none":
        return None
    if cfg.env.kind != "stock_trading":
        raise ConfigError(
            f"ensemble.turbulence.mode '{rule.mode}' needs env.kind 'stock_trading' (env.kind '{cfg.env.kind}' has no "
            "turbulence rule); set ensemble.turbulence.mode=none"
        )
    series = cfg.env.risk_series  # type: ignore[union-attr]
    if series not in market.market_fields:
        raise ConfigError(
            f"ensemble.turbulence.mode '{rule.mode}' reads the '{series}' series (env.risk_series), which the data "
            f"lacks (series: {list(market.market_fields)}); enable data.{series} or set ensemble.turbulence.mode=none"
        )
    return np.asarray(market.market(series), dtype=np.float64)


def _threshold(risk: np.ndarray, market: MarketData, train: tuple[int, int], ens: EnsembleConfig, k: int) -> float:
    rule = ens.turbulence
    sample = risk[max(train[0], market.warmup) : train[1] + 1]
    in_sample = sample[np.isfinite(sample) & (sample > 0)]
    if in_sample.size == 0:
        raise ConfigError(
            f"window {k}: no in-sample turbulence before {_date(market, train[1])} (the index needs "
            "data.turbulence_window bars); start the split later or set ensemble.turbulence.mode=none"
        )
    high = float(np.quantile(in_sample, rule.quantile))
    if rule.mode == "fixed":
        return high
    recent = risk[max(train[1] - rule.lookback + 1, 0) : train[1] + 1]
    return high if float(np.nanmean(recent)) > high else float(np.quantile(in_sample, rule.calm_quantile))


def window_env(env: EnvConfig, window: Window) -> EnvConfig:
    """The env config of ``window``'s validation and trading: ``env`` with the window's turbulence threshold."""
    if window.turbulence_threshold == _configured_threshold(env):
        return env
    return env.model_copy(update={"turbulence_threshold": window.turbulence_threshold})


def member_jobs(cfg: AppConfig, windows: Sequence[Window], run_dir: str | Path) -> list[MemberJob]:
    """Every (window, candidate member) training job, window by window in candidate order."""
    ens = _ensemble_section(cfg)
    jobs = []
    for window in windows:
        for candidate in ens.candidates:
            agent = candidate.agent_config()
            budget = candidate.total_timesteps or cfg.train.total_timesteps
            for name, seed in zip(candidate.member_names(), candidate.seeds, strict=True):
                directory = Path(run_dir) / "windows" / window.name / name
                jobs.append(MemberJob(window, name, agent, seed, budget, str(directory)))
    return jobs


def train_member(job: MemberJob, market: MarketData, cfg: AppConfig) -> dict[str, float]:
    """Train ``job``'s member on its window's training bars, save it, and validate it from cash.

    Runs on one torch thread (as a Ray task does), so a Ray run and a sequential one give the same numbers.

    Returns:
        Every metric of the member's validation curve (:data:`~finrl_lite.train.metrics.METRIC_NAMES`); a member
        ruined before its second validation bar scores ``-inf`` on every metric.
    """
    train, validation = job.window.train, job.window.validation
    with torch_threads(1):
        env = make_env(cfg.env, market.bars(train[0], train[1] + 1), seed=job.seed)
        agent = make_agent(job.agent, env, seed=job.seed)
        agent.learn(job.total_timesteps)
        save_agent(agent, job.agent, job.directory)
        bars = market.bars(validation[0], validation[1] + 1)
        curve = run_agent(agent, bars, window_env(cfg.env, job.window), job.name, job.seed)
    if curve.values.size < 2:
        return dict.fromkeys(METRIC_NAMES, -math.inf)
    return curve.metrics(market.interval, market.calendar)


def _check_candidates(cfg: AppConfig, market: MarketData, window: Window) -> None:
    """Build every candidate on the first window's training bars, so a bad one fails before any training."""
    for i, candidate in enumerate(_ensemble_section(cfg).candidates):
        try:
            env = make_env(cfg.env, market.bars(window.train[0], window.train[1] + 1), seed=candidate.seeds[0])
            make_agent(candidate.agent_config(), env)
        except FinrlLiteError as exc:
            raise ConfigError(f"ensemble.candidates[{i}] ({candidate.member_names()[0]}): {exc}") from None


def _parallel_mode(ens: EnsembleConfig) -> str:
    if ens.parallel != "auto":
        return ens.parallel
    try:
        import ray  # noqa: F401
    except ImportError:
        return "none"
    return "ray"


def _run_jobs(jobs: Sequence[MemberJob], market: MarketData, cfg: AppConfig, hook: EnsembleHook | None) -> list[dict[str, float]]:
    mode = _parallel_mode(_ensemble_section(cfg))
    label = [f"{job.window.name}/{job.name}" for job in jobs]
    if mode == "none":
        results = []
        for k, job in enumerate(jobs):
            results.append(train_member(job, market, cfg))
            logger.info("trained %s", label[k])
            if hook is not None:
                hook(k + 1, len(jobs), label[k])
        return results
    store = max(256 * 2**20, 4 * (market.values.nbytes + market.market_values.nbytes))
    with local_ray(_ensemble_section(cfg).num_cpus, object_store_bytes=store) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(train_member)
        market_ref, cfg_ref = ray.put(market), ray.put(cfg)
        refs = [task.remote(job, market_ref, cfg_ref) for job in jobs]
        index = {ref: k for k, ref in enumerate(refs)}
        pending, finished = list(refs), 0
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                ray.get(ready)  # raises a failed task's error now
                finished += 1
                logger.info("trained %s", label[index[ready[0]]])
                if hook is not None:
                    hook(finished, len(jobs), label[index[ready[0]]])
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            if isinstance(exc.cause, FinrlLiteError):
                raise exc.cause from None
            raise


def _policies(
    cfg: AppConfig, windows: Sequence[Window], jobs: Sequence[MemberJob], scores: Sequence[float]
) -> list[EnsembleAgent]:
    """Each window's members, loaded from disk, best first (ties: candidate order), as its policy."""
    ens = _ensemble_section(cfg)
    policies = []
    for window in windows:
        ranked = sorted(
            ((job, score) for job, score in zip(jobs, scores, strict=True) if job.window == window),
            key=lambda pair: -pair[1] if not math.isnan(pair[1]) else math.inf,
        )
        members = [EnsembleMember(job.name, load_agent(job.directory), job.agent, score) for job, score in ranked]
        policies.append(EnsembleAgent(members, mode=ens.policy))
    return policies


def _trade(
    market: MarketData, cfg: AppConfig, windows: Sequence[Window], policies: Sequence[Any]
) -> tuple[MarketData, EquityCurve]:
    """The chained out-of-sample curve: one account over the span, each window's policy and threshold in turn."""
    span = market.splits.indices(_ensemble_section(cfg).split, market.dates)  # type: ignore[union-attr]
    lo = int(span[0])
    bars = market.bars(lo, int(span[-1]) + 1)
    schedule = [(w.trade[0] - lo, policy, window_env(cfg.env, w)) for w, policy in zip(windows, policies, strict=True)]
    return bars, run_agent_schedule(schedule, bars, "agent")


def _picks_frame(
    market: MarketData, windows: Sequence[Window], names: Sequence[str], scores: np.ndarray, picked: list[str]
) -> pd.DataFrame:
    rows = []
    for w, row, pick in zip(windows, scores, picked, strict=True):
        rows.append(
            {
                "window": w.index,
                "train_start": _date(market, w.train[0]),
                "train_end": _date(market, w.train[1]),
                "validation_start": _date(market, w.validation[0]),
                "validation_end": _date(market, w.validation[1]),
                "trade_start": _date(market, w.trade[0]),
                "trade_end": _date(market, w.trade[1]),
                "turbulence_threshold": w.turbulence_threshold,
                "picked": pick,
                **dict(zip(names, row.tolist(), strict=True)),
            }
        )
    return pd.DataFrame(rows)


def ensemble_run(cfg: AppConfig, out_dir: str | Path, hook: EnsembleHook | None = None, use_cache: bool = True) -> EnsembleResult:
    """Run the rolling-window ensemble of ``cfg.ensemble`` into ``out_dir`` (see the module docstring).

    Everything that can be checked is checked before the first member trains: the windows against the data,
    the turbulence rule, and every candidate (built once on the first window's training bars).

    Args:
        cfg: The config; its ``ensemble`` section says the windows, candidates, metric and policy.
        out_dir: The run directory (created; files of an earlier run there are replaced; locked while the run writes).
        hook: Progress, called after each member trains.
        use_cache: Read and write the data cache.

    Returns:
        The out-of-sample metrics, the picks, the curves and the windows.

    Raises:
        ConfigError: a check failed, or another process holds the directory.
    """
    ens = _ensemble_section(cfg)
    out = Path(out_dir)
    with run_log(out, "ensemble.log") as start_log:
        market = prepare_data(cfg, use_cache=use_cache).market
        windows = plan_windows(market, cfg)
        _check_candidates(cfg, market, windows[0])
        with RunLock(out):  # no other process trains or back-tests this directory meanwhile
            start_log()
            out.mkdir(parents=True, exist_ok=True)
            (out / _RECORD).unlink(missing_ok=True)  # an earlier run's record must not describe this one
            atomic_write_text(out / "config.yaml", dump_config(cfg))
            atomic_write_json(out / "run.json", {"kind": "ensemble", **data_identity(market), "versions": library_versions()})
            jobs = member_jobs(cfg, windows, out)
            logger.info(
                "ensemble: %d windows x %d members, parallel=%s", len(windows), len(jobs) // len(windows), _parallel_mode(ens)
            )
            validation = _run_jobs(jobs, market, cfg, hook)
            scores = [float(v[ens.metric]) for v in validation]
            policies = _policies(cfg, windows, jobs, scores)
            for window, policy in zip(windows, policies, strict=True):
                save_ensemble(policy, out / "windows" / window.name)
            save_ensemble(policies[-1], out / "model")

            bars, curve = _trade(market, cfg, windows, policies)
            curves = [curve, *baseline_curves(market, cfg, ens.split)]
            metrics = aggregate_metrics({0: {ens.split: report_split(curves, bars, out, ens.split)}})
            atomic_write_json(out / "metrics.json", metrics)

            names = [job.name for job in jobs[: len(jobs) // len(windows)]]
            table = np.asarray(scores).reshape(len(windows), len(names))
            picked = [p.members[p.best].name for p in policies]
            picks = _picks_frame(market, windows, names, table, picked)
            with atomic_path(out / "picks.csv") as tmp:
                picks.to_csv(tmp, index=False)
            record = {
                "split": ens.split,
                "metric": ens.metric,
                "policy": ens.policy,
                "members": names,
                "windows": [
                    {
                        **asdict(w),
                        "dates": {
                            part: [_date(market, b) for b in getattr(w, part)] for part in ("train", "validation", "trade")
                        },
                        "validation_metrics": {job.name: v for job, v in zip(jobs, validation, strict=True) if job.window == w},
                        "picked": pick,
                    }
                    for w, pick in zip(windows, picked, strict=True)
                ],
            }
            atomic_write_json(out / _RECORD, record)  # written last: its presence marks a finished ensemble run
            return EnsembleResult(metrics, picks, curves, windows, names)


def is_ensemble_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished ``finrl-lite ensemble`` run."""
    return (Path(run_dir) / _RECORD).is_file()


def _load_windows(run: Path) -> tuple[dict[str, Any], list[Window]]:
    record = json.loads((run / _RECORD).read_text())
    windows = [
        Window(w["index"], tuple(w["train"]), tuple(w["validation"]), tuple(w["trade"]), w["turbulence_threshold"])
        for w in record["windows"]
    ]
    return record, windows


def backtest_ensemble_run(
    run_dir: str | Path, split: str = "test", use_cache: bool = True, allow_data_change: bool = False
) -> dict[str, Any]:
    """Back-test an ensemble run on ``split``, against the baselines; writes ``backtest_<split>/`` and ``backtest_<split>.json``.

    On the run's own span (``ensemble.split``) the agent is the chained rolling-window agent, each window's saved
    policy trading its window: the run's out-of-sample curve again. On any other split it is the last window's
    policy (``model/``), the one a user would deploy, under the last window's turbulence threshold; a split that
    reaches into bars it trained or validated on is in-sample, and logged as such.

    Returns:
        ``{split: {curve: {metric: {mean, low, high, n, values}}}}`` as :func:`~finrl_lite.train.pipeline.backtest_run`.

    Raises:
        ConfigError: not an ensemble run, or an unknown split.
        DataError: the data prepared now is not the data of the run (as :func:`~finrl_lite.train.pipeline.backtest_run`:
            other tickers or fields, or other values unless ``allow_data_change``).
    """
    run = Path(run_dir)
    if not is_ensemble_run(run):
        raise ConfigError(f"{run}: not a finished ensemble run ({_RECORD} missing)")
    cfg = load_run_config(run)
    with RunLock(run):
        record, windows = _load_windows(run)
        market = prepare_data(cfg, use_cache=use_cache).market
        check_run_data(run, market, allow_data_change)
        bars = split_of(market, split)
        if split == record["split"]:
            policies = [load_agent(run / "windows" / w.name) for w in windows]
            bars, curve = _trade(market, cfg, windows, policies)
        else:
            last = windows[-1]
            first_bar = int(market.splits.indices(split, market.dates)[0])
            if first_bar < last.trade[0]:
                logger.warning(
                    "split '%s' starts before the last policy's trade window (%s): part of it is in-sample",
                    split,
                    _date(market, last.trade[0]),
                )
            curve = run_agent(load_agent(run / "model"), bars, window_env(cfg.env, last), "agent")
        curves = [curve, *baseline_curves(market, cfg, split)]
        directory = run / f"backtest_{split}"
        result = aggregate_metrics({0: {split: report_split(curves, bars, directory, split)}})
        write_backtest(run, split, result)
    return result
