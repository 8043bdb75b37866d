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
the last one). Nothing is ``terminated``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

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

__all__ = ["MeloEnvState", "MeloVecEnv", "NUM_STAT_FEATURES", "STAT_FEATURES"]

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


class MeloVecEnv:
    """Batched Dynamic M-ELO environment on a torch device (the native API our agents use).

    Args:
        sim: Order-flow model and batch shape (``num_envs x num_symbols`` rows).
        env: Actions, reward and observation settings.
        seed: Seed of the environment's ``torch.Generator``.
        device: torch device.
        calibration: Midpoint-process constants (defaults: the LOBSTER fit).
        extra_holding_ms: Static holding periods also matched every step on the same flow (evaluation);
            their statistics are returned in ``info["extra"]`` with shape ``[B, len(extra_holding_ms)]``.
    """

    def __init__(
        self,
        sim: MeloSimConfig | None = None,
        env: MeloEnvConfig | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        calibration: MeloCalibration = DEFAULT_CALIBRATION,
        extra_holding_ms: list[float] | None = None,
    ) -> None:
        self.sim = sim or MeloSimConfig()
        self.cfg = env or MeloEnvConfig()
        self.device = torch.device(device)
        self.num_envs = self.sim.num_envs * self.sim.num_symbols
        self.num_actions = len(self.cfg.action_deltas_ms)
        self.observation_size = 2 + self.cfg.history * NUM_STAT_FEATURES
        self.dtype = torch.float32 if self.sim.dtype == "float32" else torch.float64
        self.tables = make_tables(self.sim, self.num_envs, self.device, calibration)
        self.deltas = torch.tensor(self.cfg.action_deltas_ms, dtype=self.dtype, device=self.device)
        extra = list(extra_holding_ms or [])
        self.num_extra = len(extra)
        self._static_h = torch.tensor([self.cfg.baseline_h_ms, *extra], dtype=self.dtype, device=self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.state = self._fresh_state()
        self.last_flow: PeriodFlow | None = None

    # ------------------------------------------------------------------ core

    def _fresh_state(self) -> MeloEnvState:
        B = self.num_envs
        return MeloEnvState(
            h_ms=torch.full((B,), self.cfg.h_init_ms, dtype=self.dtype, device=self.device),
            period=torch.zeros(B, dtype=torch.int64, device=self.device),
            regime=draw_regime(self.tables, (B,), self.generator),
            history=torch.zeros(B, self.cfg.history, NUM_STAT_FEATURES, dtype=self.dtype, device=self.device),
        )

    def reset(self, seed: int | None = None) -> Tensor:
        """Start a new day for every row (re-seeding the generator when ``seed`` is given); returns the observation."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = self._fresh_state()
        return self._observe(self.state)

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

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, object]]:
        """Simulate one 30-second period for every row.

        Args:
            action: ``[B]`` int64 action indices.

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info`` holds ``stats`` (:class:`PeriodStats`,
            columns: agent, baseline, then ``extra_holding_ms``), ``h_ms`` (the h used this period),
            ``regime``, ``final_obs`` and ``extra`` (the extra columns only, or None).
        """
        st = self.state
        h = self.apply_action(st.h_ms, action.to(self.device))
        flow = sample_period(self.sim, self.tables, st.period, st.regime, self.generator)
        h_cols = torch.cat([h.unsqueeze(1), self._static_h.unsqueeze(0).expand(self.num_envs, -1)], dim=1)
        stats = match_period(flow, h_cols)
        reward = self.reward(stats)
        history = torch.cat([self._features(flow, stats, st.period).unsqueeze(1), st.history[:, :-1]], dim=1)
        h_next = h
        if self.cfg.instability_threshold is not None:
            unstable = flow.moves > self.cfg.instability_threshold * expected_moves(self.sim, self.tables, st.period)
            h_next = torch.where(unstable, torch.full_like(h, self.cfg.h_max_ms), h)
        period = st.period + 1
        stepped = MeloEnvState(h_ms=h_next, period=period, regime=flow.regime, history=history)
        final_obs = self._observe(stepped)
        truncated = period >= self.sim.periods_per_day
        terminated = torch.zeros_like(truncated)
        # Branch-free same-step autoreset (all rows end their day together, but nothing relies on it).
        fresh_h = torch.full_like(h_next, self.cfg.h_init_ms)
        self.state = MeloEnvState(
            h_ms=torch.where(truncated, fresh_h, h_next),
            period=torch.where(truncated, torch.zeros_like(period), period),
            regime=flow.regime,
            history=torch.where(truncated.view(-1, 1, 1), torch.zeros_like(history), history),
        )
        self.last_flow = flow
        obs = self._observe(self.state)
        extra = PeriodStats(*(x[:, 2:] for x in stats)) if self.num_extra else None
        info: dict[str, object] = {"stats": stats, "h_ms": h, "regime": flow.regime, "final_obs": final_obs, "extra": extra}
        return obs, reward, terminated, truncated, info
