"""`MeloVecEnv`: Dynamic M-ELO holding-period control, batched in torch over (environment x symbol).

One step is one 30-second period for every row (row ``r`` = environment ``r // num_symbols``, symbol
``r % num_symbols``). The holding period h applies to the orders that arrive in that period. Actions:

* ``action_mode="delta"`` (the published design): an action picks a change of h from ``action_deltas_ms``
  (default {-0.5, -0.25, 0, +0.25, +0.5} ms); h is clipped to ``[h_min_ms, h_max_ms]``.
* ``action_mode="grid"``: an action picks h itself among ``holding_grid_ms``.

The same period's order flow is matched under the agent's h and under the static baseline ``h0`` (common
random numbers), and the reward compares them like with like: ``reward = score(agent) - score(h0)`` with
the score of a column (``reward_mode``)::

    published:       -lambda * MO / markout_scale_bps + (1 - lambda) * FR / fill_rate_scale
    share_weighted:  -lambda * (c - markout_ref_bps * n) / (fills_ref * markout_scale_bps) + (1 - lambda) * FR / fill_rate_scale
    pooled:          -lambda * (c - markout_ref_bps * n) / (fills_ref * markout_scale_bps)
                     + (1 - lambda) * filled / (submitted_ref * fill_rate_scale)

with MO the period's mean markout cost of the uninformed fills (bps, positive = adverse; by default without
the background midpoint moves, a zero-mean control variate, see ``reward_background_noise``), FR the period's
fill rate, c the period's markout cost summed over its ``n`` uninformed fills, and ``submitted_ref`` the
orders submitted in an average period. ``pooled`` scores each period by its first-order contribution to the
day's share-weighted fill rate and markout, which is what the evaluation measures. When the agent's h equals
h0 both columns are the same and the reward is exactly 0. With ``instability_threshold`` set (default 1.5),
a period with that many times its expected midpoint moves runs the next period at ``h_max_ms`` (the
instability jump): delta actions then step from there, and a grid action is overridden for that period.

Full information (``counterfactual=True``): every h of ``holding_grid_ms`` is matched on the period's flow, and
``info`` adds ``action_rewards [B, A]`` (the reward each action would have earned) and ``action_next_values
[B, A]`` (the value observation entry :attr:`action_obs_column` would take next after each action). With
``observe_stats_at="baseline"`` nothing else in the next observation depends on the action, so each transition
tells the outcome of every action. Every h an action can reach must then be on the grid.

Observation (built in :meth:`MeloVecEnv._observe` only): ``[h scaled to [0, 1] (grid actions, which pick h
afresh: 1 where the instability jump forces the period to h_max, else 0), time of day in [0, 1],
(observe_regime) the previous period's calm / normal / volatile probabilities from a Bayes filter of the move
counts (:mod:`~finrl_lite.envs.melo.regime`), (observe_symbol) the symbol one-hot over the calibrated symbols,
then for each of the last `history` periods (newest first): log1p(midpoint moves) / 5, midpoint moves
over their expected number for the symbol and time of day in the normal regime, realised
volatility (bps) / 5, spread (bps) / 10, log1p(buy arrivals) / 3, log1p(sell arrivals) / 3, imbalance,
cancel share, fill rate, 1 s markout / 1 bps, 5 s markout / 1 bps]``; the last four are measured at the
agent's h or at h0 (``observe_stats_at``).

A day is ``periods_per_day`` (780) periods; at its end every row is ``truncated`` and the env resets
itself in the same step (the returned observation is the new day's first; ``info["final_obs"]`` holds
the last one). Nothing is ``terminated``. :class:`MeloVecEnv` is a :class:`~finrl_lite.envs.base.BatchedEnv`
with a discrete action space (``num_actions``), so it is a :class:`~finrl_lite.envs.base.TorchVecEnv` like
the trading environments and goes through the same gymnasium and SB3 adapters.

The matched holding periods are deduplicated: when every h the agent can reach is a static column (the
baseline, an ``extra_holding_ms`` or the grid), the agent's statistics are gathered from that column, which
gives the same numbers as matching it again (identical columns match bit-identically).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from finrl_lite.envs.base import STEP_WORKING_SETS, BatchedEnv, same_step_autoreset
from finrl_lite.envs.melo.calibration import DEFAULT_CALIBRATION, MeloCalibration
from finrl_lite.envs.melo.config import MeloEnvConfig, MeloSimConfig
from finrl_lite.envs.melo.regime import regime_shares, stationary_belief, update_regime
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

__all__ = ["MeloEnvState", "MeloStepInfo", "MeloVecEnv", "NUM_STAT_FEATURES", "STAT_FEATURES", "column_scores"]

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
_MAX_REACHABLE = 4096  # holding periods explored when checking that delta actions stay on the matched columns


class MeloEnvState(NamedTuple):
    """State of every row.

    Attributes:
        h_ms: ``[B]`` holding period in force (ms).
        period: ``[B]`` next period of the day to simulate (0-based).
        regime: ``[B]`` regime of the last simulated period.
        history: ``[B, history, NUM_STAT_FEATURES]`` scaled statistics of the last periods, newest first.
        belief: ``[B, 3]`` posterior regime probabilities of the last simulated period (the Bayes filter).
        jumped: ``[B]`` the last period triggered the instability jump (the next one runs at h_max).
    """

    h_ms: Tensor
    period: Tensor
    regime: Tensor
    history: Tensor
    belief: Tensor
    jumped: Tensor


class MeloStepInfo(NamedTuple):
    """Diagnostics of one step (``[B]`` tensors unless noted).

    Attributes:
        h_ms: Holding period used this period (the action applied; before any instability jump).
        regime: Regime of the period (0 calm, 1 normal, 2 volatile).
        belief: ``[B, 3]`` the filter's posterior regime probabilities of the period.
        fill_rate: The agent's fill rate.
        markout_1s_bps: The agent's mean 1 s markout cost of the uninformed fills (bps).
        markout_5s_bps: Same at 5 s.
        baseline_fill_rate: Fill rate of the static baseline ``h0`` on the same flow.
        baseline_markout_1s_bps: Its mean 1 s markout cost (bps).
        stats: :class:`PeriodStats` ``[B, 2 + E (+ G)]`` of every column: the agent, the baseline, the
            ``extra_holding_ms``, then (full information) the ``holding_grid_ms``.
        flow: The period's order flow (:class:`PeriodFlow`).
        final_obs: ``[B, D]`` observation of the stepped state (the day's last where ``truncated``).
        action_rewards: ``[B, A]`` (full information, else None) the reward each action would have earned.
        action_next_values: ``[B, A]`` (full information, else None) observation entry ``action_obs_column`` of the
            next state after each action.
    """

    h_ms: Tensor
    regime: Tensor
    belief: Tensor
    fill_rate: Tensor
    markout_1s_bps: Tensor
    markout_5s_bps: Tensor
    baseline_fill_rate: Tensor
    baseline_markout_1s_bps: Tensor
    stats: PeriodStats
    flow: PeriodFlow
    final_obs: Tensor
    action_rewards: Tensor | None
    action_next_values: Tensor | None


def column_scores(stats: PeriodStats, cfg: MeloEnvConfig, submitted_ref: float, mode: str | None = None) -> Tensor:
    """``[B, H]`` score of every column of ``stats`` (the module docstring's formulas).

    Args:
        stats: Period statistics of ``H`` holding periods.
        cfg: Reward settings (lambda, scales, references, horizon, background noise).
        submitted_ref: Orders submitted in an average period (the pooled fill term's unit).
        mode: ``published``, ``share_weighted`` or ``pooled`` (default ``cfg.reward_mode``).
    """
    mode = mode or cfg.reward_mode
    if cfg.reward_background_noise:
        mo = stats.markout_1s if cfg.reward_markout == "1s" else stats.markout_5s
    else:
        mo = stats.signal_1s if cfg.reward_markout == "1s" else stats.signal_5s
    if mode == "published":
        mo_term = -mo / cfg.markout_scale_bps
    else:
        n = stats.uninformed_fills
        mo_term = -(mo * n.clamp(min=1.0) - cfg.markout_ref_bps * n) / (cfg.fills_ref * cfg.markout_scale_bps)
    if mode == "pooled":
        fr_term = stats.filled / (submitted_ref * cfg.fill_rate_scale)
    else:
        fr_term = stats.fill_rate / cfg.fill_rate_scale
    return cfg.reward_lambda * mo_term + (1.0 - cfg.reward_lambda) * fr_term


class MeloVecEnv(BatchedEnv):
    """Batched Dynamic M-ELO environment on a torch device (a :class:`~finrl_lite.envs.base.TorchVecEnv`).

    Actions are ``[B]`` indices into ``action_deltas_ms`` (delta mode) or ``holding_grid_ms`` (grid mode);
    ``num_actions`` of them. ``reset(seed)`` returns ``(obs, info)``; ``step`` returns ``(obs, reward,
    terminated, truncated, info)`` with the fields of :class:`MeloStepInfo` in ``info``. The state of the
    batch is :attr:`state` and :attr:`generator` (every row draws its order flow from that one generator).

    Args:
        sim: Order-flow model and batch shape (``num_envs x num_symbols`` rows).
        env: Actions, reward and observation settings.
        seed: Seed of the environment's ``torch.Generator``.
        device: torch device.
        calibration: Midpoint-process constants (defaults: the LOBSTER fit).
        extra_holding_ms: Static holding periods also matched every step on the same flow (evaluation);
            their statistics are columns ``2 ...`` of ``info["stats"]``.
        autoreset: Start a new day inside ``step`` when a day ends (same-step); without it a finished
            row keeps counting periods past the day's end until :meth:`reset`.
        final_obs: Return the day's last observation in ``info["final_obs"]``.
        counterfactual: Match every h of ``holding_grid_ms`` each period and report the reward and next h of
            every action (full-information training).

    Raises:
        ConfigError: ``counterfactual`` with an action that can reach an h off ``holding_grid_ms``.
    """

    action_obs_column = 0
    """The observation entry (the scaled h) through which an action changes the next observation."""

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
        counterfactual: bool = False,
    ) -> None:
        self.sim = sim or MeloSimConfig()
        self.cfg = env or MeloEnvConfig()
        super().__init__(self.sim.num_envs * self.sim.num_symbols, device, seed, "eager", autoreset, final_obs)
        cfg = self.cfg
        self.dtype = torch.float32 if self.sim.dtype == "float32" else torch.float64
        self.grid_mode = cfg.action_mode == "grid"
        self.num_actions = len(cfg.holding_grid_ms) if self.grid_mode else len(cfg.action_deltas_ms)
        self.action_size, self.action_low, self.action_high = 1, 0.0, float(self.num_actions - 1)
        self.num_symbol_features = len(calibration.symbols) if cfg.observe_symbol else 0
        self.observation_size = 2 + 3 * cfg.observe_regime + self.num_symbol_features + cfg.history * NUM_STAT_FEATURES
        self.calibration = calibration
        self.tables = make_tables(self.sim, self.num_envs, self.device, calibration)
        self._symbol_features = (  # constant: built once, not every step
            torch.nn.functional.one_hot(self.tables.symbol, self.num_symbol_features).to(self.dtype)
            if self.num_symbol_features
            else None
        )
        self.deltas = torch.tensor(cfg.action_deltas_ms, dtype=self.dtype, device=self.device)
        self.grid = torch.tensor(cfg.holding_grid_ms, dtype=self.dtype, device=self.device)
        self.counterfactual = counterfactual
        extra = list(extra_holding_ms or [])
        self.num_extra = len(extra)
        # The matched static columns, deduplicated; the output columns of info["stats"] gather from them.
        wanted = [cfg.baseline_h_ms, *extra, *(cfg.holding_grid_ms if counterfactual else [])]
        static = self._as_dtype(wanted)
        unique: list[float] = []
        for h in static:
            if h not in unique:
                unique.append(h)
        self._static_h = torch.tensor(unique, dtype=self.dtype, device=self.device)
        reachable = self._reachable_h()
        if counterfactual and (reachable is None or not reachable <= set(self._as_dtype(cfg.holding_grid_ms))):
            raise ConfigError(
                "full-information training matches the holding periods of env.holding_grid_ms "
                f"({cfg.holding_grid_ms}), but the actions reach holding periods off that grid "
                f"({'unbounded' if reachable is None else sorted(reachable - set(self._as_dtype(cfg.holding_grid_ms)))}): "
                "put every h that h_init_ms, h_min_ms, h_max_ms and action_deltas_ms reach on the grid"
            )
        self._agent_gathered = reachable is not None and reachable <= set(unique)
        shift = 0 if self._agent_gathered else 1  # a matched agent column comes first
        outputs = self._as_dtype([cfg.baseline_h_ms, *extra])
        grid = self._as_dtype(cfg.holding_grid_ms) if counterfactual else []
        # the matched columns gathered into info["stats"] after the agent's: the outputs, then (full information) the grid
        self._static_columns = torch.tensor(
            [shift + unique.index(h) for h in [*outputs, *grid]], dtype=torch.int64, device=self.device
        ).expand(self.num_envs, -1)
        self.submitted_ref = float(
            self.sim.uninformed_per_period
            + float((regime_shares(self.tables).double().cpu() * torch.tensor(self.sim.informed_short_per_period)).sum())
            + self.sim.informed_slow_per_period
        )
        """Orders submitted in an average period (the daily-mean intensity and regime law): the pooled fill term's unit."""
        self.check_memory()
        # The first day is drawn here, as it always was: step works before reset, and a seed gives the same days.
        self.state: MeloEnvState = self._fresh_state()

    # ------------------------------------------------------------------ columns

    def _as_dtype(self, values: list[float]) -> list[float]:
        """The values as the env's float type holds them (exact comparisons with its tensors)."""
        return [float(x) for x in torch.tensor(values, dtype=self.dtype)]

    def _reachable_h(self) -> set[float] | None:
        """Every holding period an action can apply (host-side search); None if more than a few thousand."""
        cfg = self.cfg
        jump = self._as_dtype([cfg.h_max_ms]) if cfg.instability_threshold is not None else []
        if self.grid_mode:
            return set(self._as_dtype(cfg.holding_grid_ms)) | set(jump)
        seen: set[float] = set()
        frontier = set(self._as_dtype([cfg.h_init_ms])) | set(jump)  # h in force at a day's start or after a jump
        while frontier:
            h = torch.tensor(sorted(frontier), dtype=self.dtype).unsqueeze(1)
            applied = {float(x) for x in (h + self.deltas.cpu().unsqueeze(0)).clamp(cfg.h_min_ms, cfg.h_max_ms).flatten()}
            frontier = applied - seen
            seen |= applied
            if len(seen) > _MAX_REACHABLE:
                return None
        return seen

    # ------------------------------------------------------------------ core

    def _fresh_state(self) -> MeloEnvState:
        B = self.num_envs
        return MeloEnvState(
            h_ms=torch.full((B,), self.cfg.h_init_ms, dtype=self.dtype, device=self.device),
            period=torch.zeros(B, dtype=torch.int64, device=self.device),
            regime=draw_regime(self.tables, (B,), self.generator),
            history=torch.zeros(B, self.cfg.history, NUM_STAT_FEATURES, dtype=self.dtype, device=self.device),
            belief=stationary_belief(self.tables, B),
            jumped=torch.zeros(B, dtype=torch.bool, device=self.device),
        )

    def _next_day(self, stepped: MeloEnvState) -> MeloEnvState:
        """The next day's first state of every row (the regime and the filter carry over; nothing is drawn)."""
        return MeloEnvState(
            h_ms=torch.full_like(stepped.h_ms, self.cfg.h_init_ms),
            period=torch.zeros_like(stepped.period),
            regime=stepped.regime,
            history=torch.zeros_like(stepped.history),
            belief=stepped.belief,
            jumped=torch.zeros_like(stepped.jumped),
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
        self.tables = self.deltas = self._static_h = self._symbol_features = None  # type: ignore[assignment]

    def _reset_state(self, keys: Tensor | None) -> tuple[MeloEnvState, Tensor, dict[str, Tensor]]:
        state = self._fresh_state()
        return state, self._observe(state), {"h_ms": state.h_ms, "regime": state.regime}

    def action_entry(self, h_ms: Tensor, jumped: Tensor) -> Tensor:
        """Observation entry :attr:`action_obs_column`: h scaled to [0, 1] over ``[h_min_ms, h_max_ms]`` (delta actions
        step from it); with grid actions, which pick h afresh, 1 where the instability jump forces the period to
        ``h_max_ms``, else 0."""
        if self.grid_mode:
            return jumped.to(self.dtype)
        cfg = self.cfg
        return (h_ms - cfg.h_min_ms) / max(cfg.h_max_ms - cfg.h_min_ms, 1e-9)

    def _observe(self, state: MeloEnvState) -> Tensor:
        period = (state.period.to(self.dtype) / self.sim.periods_per_day).unsqueeze(1)
        parts = [self.action_entry(state.h_ms, state.jumped).unsqueeze(1), period]
        if self.cfg.observe_regime:
            parts.append(state.belief.to(self.dtype))
        if self.num_symbol_features:
            parts.append(self._symbol_features)
        parts.append(state.history.flatten(1))
        return torch.cat(parts, dim=1)

    def _features(self, flow: PeriodFlow, stats: PeriodStats, period: Tensor) -> Tensor:
        """Scaled statistics of the period just simulated (matching statistics of the agent's h or of h0)."""
        c = 0 if self.cfg.observe_stats_at == "agent" else 1
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
                stats.cancels[:, c] / n,
                stats.fill_rate[:, c],
                stats.markout_1s[:, c],
                stats.markout_5s[:, c],
            ],
            dim=1,
        )

    def column_scores(self, stats: PeriodStats) -> Tensor:
        """``[B, H]`` score of every column of ``stats`` under ``reward_mode`` (the reward is a difference of two)."""
        return column_scores(stats, self.cfg, self.submitted_ref)

    def apply_action(self, state: MeloEnvState, action: Tensor) -> Tensor:
        """Holding period of the period to come: ``clip(h + delta[action], h_min, h_max)`` (delta mode) or
        ``grid[action]`` (grid mode; ``h_max`` after an instability jump)."""
        if self.grid_mode:
            return torch.where(state.jumped, torch.full_like(state.h_ms, self.cfg.h_max_ms), self.grid[action])
        return (state.h_ms + self.deltas[action]).clamp(self.cfg.h_min_ms, self.cfg.h_max_ms)

    def holding_of_every_action(self, state: MeloEnvState) -> Tensor:
        """``[B, A]`` the holding period each action would apply."""
        actions = torch.arange(self.num_actions, device=self.device)
        expanded = MeloEnvState(*(x.unsqueeze(1).expand(x.shape[0], self.num_actions, *x.shape[1:]) for x in state))
        return self.apply_action(expanded, actions.unsqueeze(0).expand(self.num_envs, -1))

    def grid_index(self, h_ms: Tensor) -> Tensor:
        """Index in ``holding_grid_ms`` of every holding period of ``h_ms`` (which must be on the grid)."""
        return (h_ms.unsqueeze(-1) == self.grid).to(torch.int64).argmax(-1)

    def _match(self, flow: PeriodFlow, h: Tensor) -> PeriodStats:
        """Output stats ``[B, 2 + E (+ G)]`` of the agent's h and the static columns."""
        static = self._static_h.unsqueeze(0).expand(self.num_envs, -1)
        if self._agent_gathered:
            matched = match_period(flow, static)
            agent = (h.unsqueeze(1) == static).to(torch.int64).argmax(1, keepdim=True)
        else:
            matched = match_period(flow, torch.cat([h.unsqueeze(1), static], dim=1))
            agent = torch.zeros_like(self._static_columns[:, :1])  # the agent matched first
        columns = torch.cat([agent, self._static_columns], dim=1)
        return PeriodStats(*(x.gather(1, columns) for x in matched))

    def _core_step(
        self, state: MeloEnvState, action: Tensor
    ) -> tuple[MeloEnvState, Tensor, Tensor, Tensor, Tensor, MeloStepInfo]:
        """Simulate one 30-second period for every row (``action``: ``[B]`` int64 indices)."""
        cfg = self.cfg
        h = self.apply_action(state, action)
        flow = sample_period(self.sim, self.tables, state.period, state.regime, self.generator)
        stats = self._match(flow, h)
        scores = self.column_scores(stats)
        reward = scores[:, 0] - scores[:, 1]
        history = torch.cat([self._features(flow, stats, state.period).unsqueeze(1), state.history], dim=1)[:, : cfg.history]
        h_max = torch.full_like(h, cfg.h_max_ms)
        unstable = torch.zeros_like(state.jumped)
        if cfg.instability_threshold is not None:
            unstable = flow.moves > cfg.instability_threshold * expected_moves(self.sim, self.tables, state.period)
        h_next = torch.where(unstable, h_max, h)
        belief = update_regime(state.belief, flow.moves, self.tables, state.period, self.sim.periods_per_day)
        stepped = MeloEnvState(
            h_ms=h_next, period=state.period + 1, regime=flow.regime, history=history, belief=belief, jumped=unstable
        )
        truncated = stepped.period >= self.sim.periods_per_day
        terminated = torch.zeros_like(truncated)
        new_state, obs, final_obs = same_step_autoreset(
            stepped, truncated, self._next_day, self._observe, autoreset=self.autoreset, final_obs=self.final_obs
        )
        action_rewards = action_next_values = None
        if self.counterfactual:
            h_all = self.holding_of_every_action(state)  # [B, A], on the grid
            on_grid = self.grid_index(h_all)
            action_rewards = scores[:, 2 + self.num_extra :].gather(1, on_grid) - scores[:, 1:2]
            jumped_all = unstable.unsqueeze(1).expand_as(h_all)
            action_next_values = self.action_entry(torch.where(jumped_all, h_max.unsqueeze(1), h_all), jumped_all)
        info = MeloStepInfo(
            h_ms=h,
            regime=flow.regime,
            belief=belief,
            fill_rate=stats.fill_rate[:, 0],
            markout_1s_bps=stats.markout_1s[:, 0],
            markout_5s_bps=stats.markout_5s[:, 0],
            baseline_fill_rate=stats.fill_rate[:, 1],
            baseline_markout_1s_bps=stats.markout_1s[:, 1],
            stats=stats,
            flow=flow,
            final_obs=final_obs,
            action_rewards=action_rewards,
            action_next_values=action_next_values,
        )
        return new_state, obs, reward, terminated, truncated, info
