"""Train the Dynamic M-ELO holding-period agent on :class:`~finrl_lite.envs.melo.env.MeloVecEnv`.

Two learners (``agent.learner``):

* ``one_action``: the published Double DQN, one action's reward per transition
  (:class:`~finrl_lite.agents.native.ddqn.DoubleDQN`);
* ``full_information``: the simulator matches every holding period of ``env.holding_grid_ms`` on the same
  order flow, and every transition carries every action's reward and next observation
  (:class:`~finrl_lite.agents.native.full_information.FullInformationDQN`). It needs a simulator: live logs
  show one holding period per period.

Both collect a whole day for every symbol, then update (the published schedule). A run folder holds
``model.pt``, ``config.yaml``, ``train_history.json``, ``regime_table.json`` (the non-clairvoyant reference
of the evaluation, fitted on the training days) and, while training, ``checkpoint/`` (every
``train.checkpoint_every_days`` days): the agent with its replay buffer, the simulator's snapshot and the
table's sums, from which :func:`train_melo` continues exactly.

Seeds: the training simulator uses seed ``2 * train.seed`` and evaluation uses ``2 * seed + 1``, so an
evaluation never replays a training day. Evaluation is in :mod:`finrl_lite.train.melo_eval`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from finrl_lite.agents.native.ddqn import DDQNConfig, DoubleDQN
from finrl_lite.agents.native.full_information import FullInformationDQN
from finrl_lite.envs.melo.env import MeloVecEnv
from finrl_lite.errors import ConfigError
from finrl_lite.io import atomic_write_json, swap_in_directory
from finrl_lite.melo_config import MeloConfig
from finrl_lite.train.melo_eval import evaluate_melo, plot_pareto, summarize_evaluations
from finrl_lite.train.melo_table import (
    RegimeTable,
    TableAccumulator,
    TableRecordingEnv,
    eval_env_seed,
    fit_regime_table,
    train_env_seed,
)

__all__ = [
    "MeloTraining",
    "TrainingInterrupted",
    "agent_class",
    "ddqn_config",
    "eval_env_seed",
    "evaluate_melo",
    "load_melo_agent",
    "make_melo_agent",
    "make_train_env",
    "plot_pareto",
    "regime_table_of",
    "summarize_evaluations",
    "train_env_seed",
    "train_melo",
]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


def ddqn_config(cfg: MeloConfig) -> DDQNConfig:
    """The generic Double DQN settings for the M-ELO schedule: collect a whole day for every symbol, then update."""
    a, day = cfg.agent, cfg.sim.periods_per_day
    return DDQNConfig(
        total_steps=cfg.train.days * day,
        hidden=tuple(a.hidden),
        learning_rate=a.learning_rate,
        learning_rate_final=a.learning_rate_final,
        gamma=a.gamma,
        buffer_size=a.buffer_size,
        batch_size=a.batch_size,
        tau=a.tau,
        target_update_interval=a.target_update_interval,
        eps_start=a.eps_start,
        eps_end=a.eps_end,
        eps_fraction=a.eps_fraction,
        learning_starts=0,
        train_frequency=day,
        gradient_steps=a.gradient_steps,
        max_grad_norm=a.max_grad_norm,
        huber=a.huber,
        seed=cfg.train.seed,
    )


def agent_class(cfg: MeloConfig) -> type[DoubleDQN]:
    """The agent class of ``agent.learner``."""
    return FullInformationDQN if cfg.agent.learner == "full_information" else DoubleDQN


def make_train_env(cfg: MeloConfig) -> MeloVecEnv:
    """The training simulator (full information for the ``full_information`` learner)."""
    full = cfg.agent.learner == "full_information"
    return MeloVecEnv(cfg.sim, cfg.env, seed=train_env_seed(cfg.train.seed), device=cfg.train.device, counterfactual=full)


def make_melo_agent(cfg: MeloConfig, env: MeloVecEnv) -> DoubleDQN:
    """A fresh agent of ``agent.learner`` for ``env``."""
    return agent_class(cfg)(env.observation_size, env.num_actions, ddqn_config(cfg), device=cfg.train.device)


def load_melo_agent(path: str | Path, cfg: MeloConfig) -> DoubleDQN:
    """Load an agent saved by :func:`train_melo` (the class follows ``agent.learner``)."""
    return agent_class(cfg).load(path, device=cfg.train.device)


class MeloTraining(NamedTuple):
    """What :func:`train_melo` returns.

    Attributes:
        agent: The trained agent.
        history: One summary per training day (``day``, ``step``, ``epsilon``, ``mean_reward``, ``loss``,
            ``seconds`` of wall-clock time and ``cpu_seconds`` of this process's CPU time, checkpoint included).
        table: The regime table fitted on the training days (full information; None for the one-action learner: see
            :func:`regime_table_of`).
    """

    agent: DoubleDQN
    history: list[dict[str, float]]
    table: RegimeTable | None


class TrainingInterrupted(Exception):
    """Training stopped at a day's end on request, after writing a checkpoint.

    Attributes:
        days: Training days done (and in the checkpoint).
        checkpoint: The checkpoint folder.
    """

    def __init__(self, days: int, checkpoint: Path) -> None:
        super().__init__(f"training stopped after day {days}; checkpoint in {checkpoint}")
        self.days, self.checkpoint = days, checkpoint


def _write_checkpoint(
    run_dir: Path, agent: DoubleDQN, env: MeloVecEnv, accumulator: TableAccumulator | None, history: list
) -> Path:
    """Replace ``run_dir/checkpoint`` with the agent (and its replay buffer), the simulator's snapshot, the table's
    sums and the history so far: written beside it, then swapped in."""
    staging = run_dir / f"{CHECKPOINT}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    agent.save(staging / "agent.pt", training_state=True)
    torch.save(env.state_dict(), staging / "env.pt")
    if accumulator is not None:
        torch.save(accumulator.state_dict(), staging / "table.pt")
    atomic_write_json(staging / "history.json", history)  # last: a checkpoint folder with it is complete
    final = swap_in_directory(staging, run_dir / CHECKPOINT)
    logger.info("checkpoint after day %d in %s", len(history), final)
    return final


def _recover_checkpoint(run_dir: Path) -> Path | None:
    """``run_dir/checkpoint`` after finishing a swap a crash interrupted (the newest complete one of the staged, the
    current and the moved-aside folder; complete: its ``history.json``, written last, is there); None when none is."""
    names = [f"{CHECKPOINT}.new", CHECKPOINT, f"{CHECKPOINT}.old"]  # newest first
    complete = [name for name in names if (run_dir / name / "history.json").is_file()]
    if not complete:
        return None
    final = run_dir / CHECKPOINT
    if complete[0] != CHECKPOINT:
        logger.warning("%s: resuming from %s (a checkpoint swap was interrupted)", run_dir, complete[0])
        shutil.rmtree(final, ignore_errors=True)
        (run_dir / complete[0]).rename(final)
    for name in names[::2]:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    return final


def _warm_start(agent: DoubleDQN, cfg: MeloConfig) -> None:
    """Regress the Q-network onto the regime table's mean rewards, fitted on the first ``agent.warm_start_days``
    training days (each action's target: the mean reward, in its cell, of the h the action leads to)."""
    env = make_train_env(cfg)
    accumulator = TableAccumulator(env, cfg)
    obs, _ = env.reset(seed=train_env_seed(cfg.train.seed))
    steps = cfg.agent.warm_start_days * cfg.sim.periods_per_day
    stride = max(1, math.ceil(steps * env.num_envs / 200_000))  # keep about 200k observations
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    action = torch.zeros(env.num_envs, dtype=torch.int64, device=env.device)
    for step in range(steps):
        state = env.state
        if step % stride == 0:
            kept.append((obs, accumulator.cells(state.belief), env.grid_index(env.holding_of_every_action(state))))
        obs, _, _, _, info = env.step(action)
        accumulator.add(state.belief, info["stats"])
    observations, cells, columns = (torch.cat(x) for x in zip(*kept, strict=True))
    targets = accumulator.mean_rewards()[cells].gather(1, columns).float()
    generator = torch.Generator(device=agent.device).manual_seed(cfg.train.seed)
    observations = observations.to(agent.device, torch.float32)
    for _ in range(cfg.agent.warm_start_steps):
        idx = torch.randint(0, observations.shape[0], (cfg.agent.batch_size,), generator=generator, device=agent.device)
        loss = torch.nn.functional.mse_loss(agent.q(observations[idx]), targets[idx])
        agent.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        agent.optimizer.step()
    agent.q_target.load_state_dict(agent.q.state_dict())
    logger.info("warm start from the regime table of %d days:\n%s", cfg.agent.warm_start_days, accumulator.table().markdown())


def train_melo(
    cfg: MeloConfig,
    callback: Callable[[dict[str, float]], None] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> MeloTraining:
    """Train the holding-period agent on simulated days.

    Args:
        cfg: The ``melo`` config section.
        callback: Called after each training day with its summary (``day``, ``days``, ``step``, ``epsilon``,
            ``mean_reward``, ``loss``, ``seconds``, ``cpu_seconds``, ``steps_per_second``).
        run_dir: Where ``checkpoint/`` is written every ``train.checkpoint_every_days`` days (None: no checkpoints).
        resume: Continue from ``run_dir/checkpoint`` (exactly: same agent, replay, simulator and table sums).
        should_stop: Checked after each day; when it returns True a checkpoint is written and
            :class:`TrainingInterrupted` raised.

    Returns:
        :class:`MeloTraining` (agent, per-day history, regime table).

    Raises:
        ConfigError: ``resume`` without a checkpoint in ``run_dir``.
        TrainingInterrupted: ``should_stop`` asked to stop (the checkpoint is written first).
    """
    full = cfg.agent.learner == "full_information"
    env = make_train_env(cfg)
    accumulator = TableAccumulator(env, cfg) if full else None
    day_steps, total_days = cfg.sim.periods_per_day, cfg.train.days
    run = Path(run_dir) if run_dir is not None else None
    history: list[dict[str, float]] = []
    if resume:
        checkpoint = _recover_checkpoint(run) if run is not None else None
        if checkpoint is None:
            raise ConfigError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT}/history.json missing)")
        agent = load_melo_agent(checkpoint / "agent.pt", cfg)
        env.load_state_dict(torch.load(checkpoint / "env.pt", map_location="cpu", weights_only=True))
        if accumulator is not None:
            accumulator.load_state_dict(torch.load(checkpoint / "table.pt", map_location="cpu", weights_only=True))
        history = json.loads((checkpoint / "history.json").read_text())
        logger.info("resuming after day %d of %d", agent.num_steps // day_steps, total_days)
    else:
        agent = make_melo_agent(cfg, env)
        if full and cfg.agent.warm_start_days > 0:
            _warm_start(agent, cfg)
    learn_env: Any = TableRecordingEnv(env, accumulator) if accumulator is not None else env
    every = cfg.train.checkpoint_every_days
    clock = [time.perf_counter(), time.process_time()]

    def on_day(summary: dict[str, float]) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        day = int(summary["step"]) // day_steps
        seconds, cpu_seconds = now - clock[0], cpu - clock[1]
        clock[0], clock[1] = now, cpu
        entry = {"day": float(day), "days": float(total_days), **summary, "seconds": seconds, "cpu_seconds": cpu_seconds}
        entry["steps_per_second"] = day_steps * env.num_envs / max(seconds, 1e-9)
        history.append(entry)
        logger.info(
            "day %d/%d mean reward %+.4f loss %.4f (%.1f s)", day, total_days, summary["mean_reward"], summary["loss"], seconds
        )
        if callback is not None:
            callback(entry)
        stop = should_stop is not None and should_stop()
        if run is not None and ((every and day % every == 0) or stop):
            path = _write_checkpoint(run, agent, env, accumulator, history)
            if stop:
                raise TrainingInterrupted(day, path)

    remaining = total_days * day_steps - agent.num_steps
    if remaining > 0:
        agent.learn(learn_env, seed=train_env_seed(cfg.train.seed), callback=on_day, total_steps=remaining)
    return MeloTraining(agent, history, accumulator.table() if accumulator is not None else None)


def regime_table_of(cfg: MeloConfig) -> RegimeTable:
    """The regime table of ``cfg``'s training days, fitted by a pass over them (what a full-information training
    returns for free; a one-action training, whose simulator matches no grid, does not fit it)."""
    logger.info("fitting the regime table on the %d training days", cfg.train.days)
    return fit_regime_table(cfg, train_env_seed(cfg.train.seed), cfg.train.days)
