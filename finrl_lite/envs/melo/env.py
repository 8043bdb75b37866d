"""`MeloVecEnv`: Dynamic M-ELO holding-period control, batched in torch over (environment x symbol).

One step is one 30-second period for every row (row ``r`` = environment ``r // num_symbols``, symbol
``r % num_symbols``). The action of a row picks a change of its holding period from
``action_deltas_ms`` (default {-0.5, -0.25, 0, +0.25, +0.5} ms); h is clipped to
``[h_min_ms, h_max_ms]`` and applies to the orders that arrive in that period. The same period's order
flow is matched under the agent's h and under the static baseline ``h0`` (common random numbers), and
the reward compares them like with like::

    reward = lambda * (MO_base - MO_agent) / markout_scale_bps + (1 - lambda) * (FR_agent - FR_base) / fill_rate_scale

with MO the mean markout cost of the uninformed fills (bps, positive = adverse; by default without the
background midpoint moves, a zero-mean control variate, see ``reward_background_noise``) and FR the fill rate.
When the agent's h equals h0 both columns see the same flow and the reward is exactly 0.
``reward_markout_mode="share_weighted"`` replaces the markout term by the first-order change of the
day's share-weighted markout (what the evaluation measures). With ``instability_threshold`` set
(default 1.5), a period with that many times its expected midpoint moves sends the next h to
``h_max_ms`` (the instability jump), whatever the action.

Observation (built in :meth:`MeloVecEnv._observe` only): ``[h scaled to [0, 1], time of day in [0, 1],
then for each of the last `history` periods (newest first): log1p(midpoint moves) / 5, midpoint moves
over their expected number for the symbol and time of day in the normal regime, realised
volatility (bps) / 5, spread (bps) / 10, log1p(buy arrivals) / 3, log1p(sell arrivals) / 3, imbalance,
cancel share, fill rate, 1 s markout / 1 bps, 5 s markout / 1 bps]``.

A day is ``periods_per_day`` (780) periods; at its end every row is ``truncated`` and the env resets
itself in the same step (the returned observation is the new day's first; ``info["final_obs"]`` holds
the last one). Nothing is ``terminated``. :class:`MeloVecEnv` is a :class:`~finrl_lite.envs.base.BatchedEnv`
with a discrete action space (``num_actions``), so it is a :class:`~finrl_lite.envs.base.TorchVecEnv` like
the trading environments and goes through the same gymnasium and SB3 adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from finrl_lite.envs.base import STEP_WORKING_SETS, BatchedEnv, same_step_autoreset
from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration
from finrl_lite.envs.melo.config import MeloEnvConfig, MeloSimConfig
from finrl_lite.envs.melo.simulator import (
    PeriodFlow,
    PeriodStats,
    draw_regime,
    expected_moves,
    make_tables,
    match_period,
    realised_vol_bps,
    sample_period,
)
from finrl_lite.errors import ConfigError

__all__ = ["MeloEnvState", "MeloStepInfo", "MeloVecEnv", "NUM_STAT_FEATURES", "STAT_FEATURES"]

STAT_FEATURES = (
    "moves",
    "relative_activity",
    "realised_vol",
    "spread",
    "arrivals_buy",
    "arrivals_sell",
    "imbalance",
    "cancel_share",
    "fill_rate",
    "markout_1s",
    "markout_5s",
)
NUM_STAT_FEATURES = len(STAT_FEATURES)


class MeloEnvState(NamedTuple):
    """State of every row.

    Attributes:
        h_ms: ``[B]`` holding period in force (ms).
        period: ``[B]`` next period of the day to simulate (0-based).
        regime: ``[B]`` regime of the last simulated period.
        history: ``[B, history, NUM_STAT_FEATURES]`` scaled statistics of the last periods, newest first.
    """

    h_ms: Tensor
    period: Tensor
    regime: Tensor
    history: Tensor


class MeloStepInfo(NamedTuple):
    """Diagnostics of one step (``[B]`` tensors unless noted).

    Attributes:
        h_ms: Holding period used this period (the action applied; before any instability jump).
        regime: Regime of the period (0 calm, 1 normal, 2 volatile).
        fill_rate: The agent's fill rate.
        markout_1s_bps: The agent's mean 1 s markout cost of the uninformed fills (bps).
        markout_5s_bps: Same at 5 s.
        baseline_fill_rate: Fill rate of the static baseline ``h0`` on the same flow.
        baseline_markout_1s_bps: Its mean 1 s markout cost (bps).
        stats: :class:`PeriodStats` ``[B, 2 + E]`` of every matched column: the agent, the baseline, then
            the ``extra_holding_ms``.
        flow: The period's order flow (:class:`PeriodFlow`).
        final_obs: ``[B, D]`` observation of the stepped state (the day's last where ``truncated``).
    """

    h_ms: Tensor
    regime: Tensor
    fill_rate: Tensor
    markout_1s_bps: Tensor
    markout_5s_bps: Tensor
    baseline_fill_rate: Tensor
    baseline_markout_1s_bps: Tensor
    stats: PeriodStats
    flow: PeriodFlow
    final_obs: Tensor


class MeloVecEnv(BatchedEnv):
    """Batched Dynamic M-ELO environment on a torch device (a :class:`~finrl_lite.envs.base.TorchVecEnv`).

    Actions are ``[B]`` indices into ``action_deltas_ms`` (``num_actions`` of them). ``reset(seed)``
    returns ``(obs, info)``; ``step`` returns ``(obs, reward, terminated, truncated, info)`` with the
    fields of :class:`MeloStepInfo` in ``info``. The state of the batch is :attr:`state` and
    :attr:`generator` (every row draws its order flow from that one generator).

    Args:
        sim: Order-flow model and batch shape (``num_envs x num_symbols`` rows).
        env: Actions, reward and observation settings.
        seed: Seed of the environment's ``torch.Generator``.
        device: torch device.
        calibration: Midpoint-process constants (defaults: the LOBSTER fit).
        extra_holding_ms: Static holding periods also matched every step on the same flow (evaluation);
            their statistics are the last columns of ``info["stats"]``.
        autoreset: Start a new day inside ``step`` when a day ends (same-step); without it a finished
            row keeps counting periods past the day's end until :meth:`reset`.
        final_obs: Return the day's last observation in ``info["final_obs"]``.
    """

    def __init__(
        self,
        sim: MeloSimConfig | None = None,
        env: MeloEnvConfig | None = None,
        seed: int | None = 0,
        device: torch.device | str = "cpu",
        calibration: MeloCalibration = DEFAULT_CALIBRATION,
        extra_holding_ms: list[float] | None = None,
        autoreset: bool = True,
        final_obs: bool = True,
    ) -> None:
        self.sim = sim or MeloSimConfig()
        self.cfg = env or MeloEnvConfig()
        super().__init__(self.sim.num_envs * self.sim.num_symbols, device, seed, "eager", autoreset, final_obs)
        self.num_actions = len(self.cfg.action_deltas_ms)
        self.action_size, self.action_low, self.action_high = 1, 0.0, float(self.num_actions - 1)
        self.observation_size = 2 + self.cfg.history * NUM_STAT_FEATURES
        self.dtype = torch.float32 if self.sim.dtype == "float32" else torch.float64
        self.tables = make_tables(self.sim, self.num_envs, self.device, calibration)
        self.deltas = torch.tensor(self.cfg.action_deltas_ms, dtype=self.dtype, device=self.device)
        extra = list(extra_holding_ms or [])
        self.num_extra = len(extra)
        self._static_h = torch.tensor([self.cfg.baseline_h_ms, *extra], dtype=self.dtype, device=self.device)
        self.check_memory()
        # The first day is drawn here, as it always was: step works before reset, and a seed gives the same days.
        self.state: MeloEnvState = self._fresh_state()

    # ------------------------------------------------------------------ core

    def _fresh_state(self) -> MeloEnvState:
        B = self.num_envs
        return MeloEnvState(
            h_ms=torch.full((B,), self.cfg.h_init_ms, dtype=self.dtype, device=self.device),
            period=torch.zeros(B, dtype=torch.int64, device=self.device),
            regime=draw_regime(self.tables, (B,), self.generator),
            history=torch.zeros(B, self.cfg.history, NUM_STAT_FEATURES, dtype=self.dtype, device=self.device),
        )

    def _next_day(self, stepped: MeloEnvState) -> MeloEnvState:
        """The next day's first state of every row (the regime carries over; nothing is drawn)."""
        return MeloEnvState(
            h_ms=torch.full_like(stepped.h_ms, self.cfg.h_init_ms),
            period=torch.zeros_like(stepped.period),
            regime=stepped.regime,
            history=torch.zeros_like(stepped.history),
        )

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Start a new day for every row.

        Args:
            seed: An int reseeds the generator. Every row draws from that one generator, so a sequence (one
                seed per row, as SB3 and gymnasium pass them) needs ``num_envs`` entries and its first
                reseeds the generator.

        Returns:
            ``(obs [B, D], info)`` with ``info`` holding ``h_ms`` and ``regime``.
        """
        if isinstance(seed, Sequence):
            if len(seed) != self.num_envs:
                raise ConfigError(f"got {len(seed)} seeds for {self.num_envs} environments")
            seed = int(seed[0])
        return super().reset(seed)

    def memory_estimate(self) -> int:
        """Bytes a step holds (as :meth:`BatchedEnv.memory_estimate`), from the row's state and observation sizes (a
        reset here would draw from the generator)."""
        stats = self.cfg.history * NUM_STAT_FEATURES
        per_row = (1 + stats + self.observation_size) * self.dtype.itemsize + 2 * 8  # h, history, obs; period, regime
        return per_row * self.num_envs * STEP_WORKING_SETS

    def _release(self) -> None:
        self.tables = self.deltas = self._static_h = None  # type: ignore[assignment]

    def _reset_state(self, keys: Tensor | None) -> tuple[MeloEnvState, Tensor, dict[str, Tensor]]:
        state = self._fresh_state()
        return state, self._observe(state), {"h_ms": state.h_ms, "regime": state.regime}

    def _observe(self, state: MeloEnvState) -> Tensor:
        cfg = self.cfg
        h = (state.h_ms - cfg.h_min_ms) / max(cfg.h_max_ms - cfg.h_min_ms, 1e-9)
        tod = state.period.to(self.dtype) / self.sim.periods_per_day
        return torch.cat([h.unsqueeze(1), tod.unsqueeze(1), state.history.flatten(1)], dim=1)

    def _features(self, flow: PeriodFlow, stats: PeriodStats, period: Tensor) -> Tensor:
        """Scaled statistics of the period just simulated under the agent's h (column 0)."""
        buys = (flow.valid & (flow.side > 0)).sum(1).to(self.dtype)
        sells = (flow.valid & (flow.side < 0)).sum(1).to(self.dtype)
        n = (buys + sells).clamp(min=1.0)
        return torch.stack(
            [
                torch.log1p(flow.moves) / 5.0,
                flow.moves / expected_moves(self.sim, self.tables, period),
                realised_vol_bps(flow) / 5.0,
                flow.spread_bps / 10.0,
                torch.log1p(buys) / 3.0,
                torch.log1p(sells) / 3.0,
                (buys - sells) / n,
                stats.cancels[:, 0] / n,
                stats.fill_rate[:, 0],
                stats.markout_1s[:, 0],
                stats.markout_5s[:, 0],
            ],
            dim=1,
        )

    def reward(self, stats: PeriodStats) -> Tensor:
        """Reward of column 0 (agent) against column 1 (baseline h0) of ``stats``."""
        cfg = self.cfg
        if cfg.reward_background_noise:
            mo = stats.markout_1s if cfg.reward_markout == "1s" else stats.markout_5s
        else:
            mo = stats.signal_1s if cfg.reward_markout == "1s" else stats.signal_5s
        if cfg.reward_markout_mode == "period":
            mo_gain = mo[:, 1] - mo[:, 0]
        else:
            n = stats.uninformed_fills
            cost = mo * n.clamp(min=1.0)
            mo_gain = ((cost[:, 1] - cost[:, 0]) - cfg.markout_ref_bps * (n[:, 1] - n[:, 0])) / cfg.fills_ref
        fr_gain = stats.fill_rate[:, 0] - stats.fill_rate[:, 1]
        return cfg.reward_lambda * mo_gain / cfg.markout_scale_bps + (1.0 - cfg.reward_lambda) * fr_gain / cfg.fill_rate_scale

    def apply_action(self, h_ms: Tensor, action: Tensor) -> Tensor:
        """New holding period: ``clip(h + delta[action], h_min, h_max)``."""
        return (h_ms + self.deltas[action]).clamp(self.cfg.h_min_ms, self.cfg.h_max_ms)

    def _core_step(
        self, state: MeloEnvState, action: Tensor
    ) -> tuple[MeloEnvState, Tensor, Tensor, Tensor, Tensor, MeloStepInfo]:
        """Simulate one 30-second period for every row (``action``: ``[B]`` int64 indices)."""
        h = self.apply_action(state.h_ms, action)
        flow = sample_period(self.sim, self.tables, state.period, state.regime, self.generator)
        h_cols = torch.cat([h.unsqueeze(1), self._static_h.unsqueeze(0).expand(self.num_envs, -1)], dim=1)
        stats = match_period(flow, h_cols)
        reward = self.reward(stats)
        history = torch.cat([self._features(flow, stats, state.period).unsqueeze(1), state.history[:, :-1]], dim=1)
        h_next = h
        if self.cfg.instability_threshold is not None:
            unstable = flow.moves > self.cfg.instability_threshold * expected_moves(self.sim, self.tables, state.period)
            h_next = torch.where(unstable, torch.full_like(h, self.cfg.h_max_ms), h)
        stepped = MeloEnvState(h_ms=h_next, period=state.period + 1, regime=flow.regime, history=history)
        truncated = stepped.period >= self.sim.periods_per_day
        terminated = torch.zeros_like(truncated)
        new_state, obs, final_obs = same_step_autoreset(
            stepped, truncated, self._next_day, self._observe, autoreset=self.autoreset, final_obs=self.final_obs
        )
        info = MeloStepInfo(
            h_ms=h,
            regime=flow.regime,
            fill_rate=stats.fill_rate[:, 0],
            markout_1s_bps=stats.markout_1s[:, 0],
            markout_5s_bps=stats.markout_5s[:, 0],
            baseline_fill_rate=stats.fill_rate[:, 1],
            baseline_markout_1s_bps=stats.markout_1s[:, 1],
            stats=stats,
            flow=flow,
            final_obs=final_obs,
        )
        return new_state, obs, reward, terminated, truncated, info
