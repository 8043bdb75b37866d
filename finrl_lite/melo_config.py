"""Typed configuration of the Dynamic M-ELO environment, its Double DQN agent and evaluation.

This module imports only pydantic, so :mod:`finrl_lite.config` can embed :class:`MeloConfig` without
importing torch or the environment packages; :mod:`finrl_lite.envs.melo.config` re-exports it.

Units are in the field names: ``_ms`` milliseconds, ``_s`` seconds, ``_bps`` basis points of the
midpoint. Counts "per period" are per 30-second period and symbol at the daily-mean intensity (the
intraday U-shape scales them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from finrl_lite.config_base import StrictModel

__all__ = ["MeloAgentConfig", "MeloConfig", "MeloEnvConfig", "MeloEvalConfig", "MeloSimConfig", "MeloTrainConfig"]


class MeloSimConfig(StrictModel):
    """The M-ELO order flow (assumptions: M-ELO orders are not in public data) and the batch shape.

    The midpoint process (move rates, move size, U-shape, regimes, spreads) comes from
    :data:`~finrl_lite.envs.melo.calibration.DEFAULT_CALIBRATION`, fitted on LOBSTER data.
    """

    num_envs: int = Field(8, ge=1, le=100_000, description="Independent simulated markets (batch rows per symbol).")
    num_symbols: int = Field(3, ge=1, le=10_000, description="Symbols per market; they cycle through the calibrated symbols.")
    periods_per_day: int = Field(780, ge=1, le=100_000, description="30-second periods per day (780 = 6.5 hours).")
    uninformed_per_period: float = Field(6.0, ge=0.0, le=1000.0, description="Uninformed M-ELO orders per period (both sides).")
    uninformed_short_share: float = Field(0.6, ge=0.0, le=1.0, description="Share of uninformed orders that are short-lived.")
    short_life_ms: float = Field(
        2.0, gt=0.0, le=10_000.0, description="Mean lifetime of a short-lived uninformed order (exponential)."
    )
    long_life_s: float = Field(
        8.0, gt=0.0, le=3600.0, description="Mean lifetime of a long-lived uninformed order (exponential)."
    )
    informed_short_per_period: tuple[float, float, float] = Field(
        (0.3, 1.0, 3.0), description="Short-horizon informed orders per period in the calm, normal, volatile regime."
    )
    informed_lead_ms: tuple[float, float, float] = Field(
        (0.5, 0.6, 0.7),
        description="Mean lead time L (exponential) of a short-horizon informed order before its move, per regime.",
    )
    informed_slow_per_period: float = Field(
        0.5, ge=0.0, le=1000.0, description="Slow informed orders per period (edge lasting seconds)."
    )
    slow_lead_s: float = Field(2.0, gt=0.0, le=30.0, description="Mean lead time of a slow informed order before its move.")
    uninformed_slots: int = Field(
        16, ge=1, le=512, description="Padded capacity for uninformed orders per period (Poisson counts are capped)."
    )
    informed_slots: int = Field(8, ge=0, le=512, description="Padded capacity for short-horizon informed orders per period.")
    slow_slots: int = Field(2, ge=0, le=512, description="Padded capacity for slow informed orders per period.")
    noise_events: int = Field(4, ge=1, le=512, description="Background-markout draws per period and row (fill events).")
    spread_noise: float = Field(0.1, ge=0.0, le=2.0, description="Log-normal noise of the period's quoted spread.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Float type of times and statistics.")


class MeloEnvConfig(StrictModel):
    """The decision problem: holding-period actions, observation and reward."""

    h_init_ms: float = Field(1.0, gt=0.0, description="Holding period at the start of each day.")
    h_min_ms: float = Field(0.25, gt=0.0, description="Lower clip of the holding period.")
    h_max_ms: float = Field(2.5, gt=0.0, description="Upper clip of the holding period.")
    action_mode: Literal["delta", "grid"] = Field(
        "delta",
        description="delta: an action changes h by one of action_deltas_ms (the published design); grid: an action "
        "picks the holding period itself among holding_grid_ms.",
    )
    action_deltas_ms: list[float] = Field([-0.5, -0.25, 0.0, 0.25, 0.5], min_length=1, description="Change of h per action.")
    holding_grid_ms: list[float] = Field(
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5],
        min_length=1,
        description="The holding periods of grid actions, of full-information training (every one is matched each period) "
        "and of the regime table.",
    )
    baseline_h_ms: float = Field(1.0, gt=0.0, description="Static h0 of the common-random-numbers baseline in the reward.")
    reward_mode: Literal["published", "share_weighted", "pooled"] = Field(
        "published",
        description="published: lambda * (MO_base - MO_agent) / markout_scale + (1 - lambda) * (FR_agent - FR_base) / "
        "fill_rate_scale with MO and FR the period's own mean markout and fill rate. share_weighted: the markout term is "
        "the period's contribution to the day's share-weighted markout, ((c_base - c_agent) - markout_ref_bps * (n_base - "
        "n_agent)) / fills_ref (c: markout cost sum, n: uninformed fills). pooled: both terms are the period's "
        "contribution to what the evaluation measures, the markout term as share_weighted and the fill term "
        "(filled_agent - filled_base) / (orders submitted in an average period).",
    )
    reward_lambda: float = Field(0.6, ge=0.0, le=1.0, description="Weight of the markout term (1 - lambda: fill-rate term).")
    markout_scale_bps: float = Field(0.01, gt=0.0, description="Markout difference that counts as one reward unit.")
    fill_rate_scale: float = Field(0.05, gt=0.0, description="Fill-rate difference that counts as one reward unit.")
    reward_markout: Literal["1s", "5s"] = Field("1s", description="Markout horizon used in the reward.")
    reward_background_noise: bool = Field(
        False,
        description="Include the background midpoint moves in the reward's markouts. Off: they are removed as a "
        "control variate (independent of h, mean zero: same expected reward, far less noise). Reports always include them.",
    )
    markout_ref_bps: float = Field(
        0.022, ge=0.0, description="Reference markout of the share_weighted and pooled rewards (bps; about the day's markout)."
    )
    fills_ref: float = Field(
        1.2, gt=0.0, description="Reference uninformed fills per period of the share_weighted and pooled rewards."
    )
    history: int = Field(4, ge=0, le=64, description="Number of past periods whose statistics are observed.")
    observe_regime: bool = Field(
        False,
        description="Add the previous period's estimated regime to the observation: the calm / normal / volatile "
        "probabilities of a Bayes filter on the midpoint-move counts (calibrated rates and switch law).",
    )
    observe_symbol: bool = Field(False, description="Add the symbol (one-hot over the calibrated symbols) to the observation.")
    observe_stats_at: Literal["agent", "baseline"] = Field(
        "agent",
        description="Holding period whose fill rate, markouts and cancels the observation shows: the agent's own (the "
        "published design) or the static baseline h0's, so that only h in the observation depends on the actions.",
    )
    instability_threshold: float | None = Field(
        1.5,
        gt=0.0,
        description="Instability jump: a period with more than this many times its expected midpoint moves (normal "
        "regime, same symbol and time of day) runs the next period at h_max (delta actions then step from there; a grid "
        "action is overridden for that period); None disables it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict) and "reward_markout_mode" in data and "reward_mode" not in data:  # configs before 0.x
            data = dict(data)
            old = data.pop("reward_markout_mode")
            data["reward_mode"] = "published" if old == "period" else old
        return data

    @model_validator(mode="after")
    def _check(self) -> MeloEnvConfig:
        if not self.h_min_ms <= self.h_init_ms <= self.h_max_ms:
            raise ValueError(f"need h_min_ms <= h_init_ms <= h_max_ms, got {self.h_min_ms}, {self.h_init_ms}, {self.h_max_ms}")
        if any(h <= 0.0 for h in self.holding_grid_ms) or sorted(set(self.holding_grid_ms)) != self.holding_grid_ms:
            raise ValueError(f"holding_grid_ms must be positive, increasing and without repeats, got {self.holding_grid_ms}")
        return self


class MeloAgentConfig(StrictModel):
    """Double DQN hyper-parameters (see :class:`finrl_lite.agents.native.ddqn.DDQNConfig`) and the learner."""

    learner: Literal["one_action", "full_information"] = Field(
        "one_action",
        description="one_action: each transition carries the reward of the action taken (the published Double DQN). "
        "full_information: the simulator matches every holding period of env.holding_grid_ms on the same order flow, so "
        "each transition carries the reward (and next observation) of every action and the Q-function is fitted to all "
        "of them. Needs a simulator: live logs show one holding period per period.",
    )
    warm_start_days: int = Field(
        0,
        ge=0,
        description="full_information only: before training, fit the regime x symbol table on the first this many "
        "training days and regress the Q-network onto it (0: start from random weights).",
    )
    warm_start_steps: int = Field(2000, ge=1, description="Gradient steps of the warm start.")

    hidden: list[int] = Field([128, 128], min_length=1, description="Hidden layer widths of the Q-network.")
    learning_rate: float = Field(5e-4, gt=0.0, description="Adam learning rate.")
    learning_rate_final: float | None = Field(
        None, gt=0.0, description="Learning rate reached linearly by the last training day (None: constant)."
    )
    gamma: float = Field(0.5, ge=0.0, lt=1.0, description="Discount per 30-second period.")
    buffer_size: int = Field(500_000, ge=1, description="Replay capacity in transitions (symbol-periods).")
    batch_size: int = Field(512, ge=1, description="Transitions per gradient step.")
    tau: float = Field(0.01, gt=0.0, le=1.0, description="Soft target update rate (1.0: hard copy).")
    target_update_interval: int = Field(1, ge=1, description="Gradient steps between target updates.")
    eps_start: float = Field(1.0, ge=0.0, le=1.0, description="Initial exploration rate.")
    eps_end: float = Field(0.05, ge=0.0, le=1.0, description="Final exploration rate.")
    eps_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Fraction of training over which epsilon decays linearly.")
    gradient_steps: int = Field(600, ge=0, description="Gradient steps after each collected day.")
    max_grad_norm: float = Field(10.0, gt=0.0, description="Gradient-norm clip.")
    huber: bool = Field(
        False,
        description="Huber loss; off by default: per-period markouts are skewed (rare large costs) and a Huber fit "
        "underweights them, steering the agent to holding periods that are too short.",
    )


class MeloTrainConfig(StrictModel):
    """Training budget."""

    days: int = Field(20, ge=1, description="Simulated training days (each: collect every symbol's 780 periods, then update).")
    seed: int = Field(0, ge=0, description="Seed of training (simulator and agent).")
    device: str = Field("cpu", description="torch device.")
    checkpoint_every_days: int = Field(
        1, ge=0, description="Write a checkpoint (agent, replay buffer, simulator state) every this many days; 0: never."
    )


class MeloEvalConfig(StrictModel):
    """Evaluation defaults (the CLI's --days/--seed override them)."""

    days: int = Field(2, ge=1, description="Simulated evaluation days.")
    seed: int = Field(1, ge=0, description="Evaluation seed; the simulator seed is offset so it never equals a training seed.")
    static_grid_ms: list[float] = Field(
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5], min_length=1, description="Static holding periods compared."
    )
    legacy_ms: float = Field(10.0, gt=0.0, description="The legacy M-ELO holding period.")
    target_gap_bps: float = Field(
        0.001, ge=0.0, description="Target: markout at least this far below the static frontier, at the agent's fill rate."
    )
    target_days_share: float = Field(0.9, ge=0.0, le=1.0, description="Target: share of days on which the gap target holds.")
    target_fill_gain: float = Field(0.20, description="Target: relative fill-rate gain over the legacy holding period.")
    target_markout_cut: float = Field(
        0.11, description="Target: relative markout-cost reduction against the legacy holding period."
    )


class MeloConfig(StrictModel):
    """The ``melo`` section of a finrl-lite config."""

    sim: MeloSimConfig = Field(default_factory=MeloSimConfig)
    env: MeloEnvConfig = Field(default_factory=MeloEnvConfig)
    agent: MeloAgentConfig = Field(default_factory=MeloAgentConfig)
    train: MeloTrainConfig = Field(default_factory=MeloTrainConfig)
    evaluate: MeloEvalConfig = Field(default_factory=MeloEvalConfig)
