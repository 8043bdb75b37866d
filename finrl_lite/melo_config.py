"""Typed configuration of the Dynamic M-ELO environment, its Double DQN agent and evaluation.

This module imports only pydantic, so :mod:`finrl_lite.config` can embed :class:`MeloConfig` without
importing torch or the environment packages; :mod:`finrl_lite.envs.melo.config` re-exports it.

Units are in the field names: ``_ms`` milliseconds, ``_s`` seconds, ``_bps`` basis points of the
midpoint. Counts "per period" are per 30-second period and symbol at the daily-mean intensity (the
intraday U-shape scales them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MeloAgentConfig", "MeloConfig", "MeloEnvConfig", "MeloEvalConfig", "MeloSimConfig", "MeloTrainConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MeloSimConfig(_Strict):
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


class MeloEnvConfig(_Strict):
    """The decision problem: holding-period actions, observation history and reward."""

    h_init_ms: float = Field(1.0, gt=0.0, description="Holding period at the start of each day.")
    h_min_ms: float = Field(0.25, gt=0.0, description="Lower clip of the holding period.")
    h_max_ms: float = Field(2.5, gt=0.0, description="Upper clip of the holding period.")
    action_deltas_ms: list[float] = Field([-0.5, -0.25, 0.0, 0.25, 0.5], min_length=1, description="Change of h per action.")
    baseline_h_ms: float = Field(1.0, gt=0.0, description="Static h0 of the common-random-numbers baseline in the reward.")
    reward_lambda: float = Field(0.6, ge=0.0, le=1.0, description="Weight of the markout term (1 - lambda: fill-rate term).")
    markout_scale_bps: float = Field(0.01, gt=0.0, description="Markout difference that counts as one reward unit.")
    fill_rate_scale: float = Field(0.05, gt=0.0, description="Fill-rate difference that counts as one reward unit.")
    reward_markout: Literal["1s", "5s"] = Field("1s", description="Markout horizon used in the reward.")
    reward_background_noise: bool = Field(
        False,
        description="Include the background midpoint moves in the reward's markouts. Off: they are removed as a "
        "control variate (independent of h, mean zero: same expected reward, far less noise). Reports always include them.",
    )
    reward_markout_mode: Literal["period", "share_weighted"] = Field(
        "period",
        description="period: MO is each period's mean markout of the uninformed fills (the published formula). "
        "share_weighted: the first-order change of the day's share-weighted markout, "
        "((c_base - c_agent) - markout_ref_bps * (n_base - n_agent)) / fills_ref, with c the period's markout cost sum "
        "and n its uninformed fills; it sums over periods to what the evaluation measures.",
    )
    markout_ref_bps: float = Field(0.025, ge=0.0, description="Reference markout of the share_weighted reward (bps).")
    fills_ref: float = Field(0.8, gt=0.0, description="Reference uninformed fills per period of the share_weighted reward.")
    history: int = Field(4, ge=1, le=64, description="Number of past periods whose statistics are observed.")
    instability_threshold: float | None = Field(
        1.5,
        gt=0.0,
        description="Instability jump: a period with more than this many times its expected midpoint moves (normal "
        "regime, same symbol and time of day) sets the next h to h_max; None disables it.",
    )

    @model_validator(mode="after")
    def _check(self) -> MeloEnvConfig:
        if not self.h_min_ms <= self.h_init_ms <= self.h_max_ms:
            raise ValueError(f"need h_min_ms <= h_init_ms <= h_max_ms, got {self.h_min_ms}, {self.h_init_ms}, {self.h_max_ms}")
        return self


class MeloAgentConfig(_Strict):
    """Double DQN hyper-parameters (see :class:`finrl_lite.agents.native.ddqn.DDQNConfig`)."""

    hidden: list[int] = Field([128, 128], min_length=1, description="Hidden layer widths of the Q-network.")
    learning_rate: float = Field(5e-4, gt=0.0, description="Adam learning rate.")
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


class MeloTrainConfig(_Strict):
    """Training budget."""

    days: int = Field(20, ge=1, description="Simulated training days (each: collect every symbol's 780 periods, then update).")
    seed: int = Field(0, ge=0, description="Seed of training (simulator and agent).")
    device: str = Field("cpu", description="torch device.")


class MeloEvalConfig(_Strict):
    """Evaluation defaults (the CLI's --days/--seed override them)."""

    days: int = Field(2, ge=1, description="Simulated evaluation days.")
    seed: int = Field(1, ge=0, description="Evaluation seed; the simulator seed is offset so it never equals a training seed.")
    static_grid_ms: list[float] = Field(
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5], min_length=1, description="Static holding periods compared."
    )
    legacy_ms: float = Field(10.0, gt=0.0, description="The legacy M-ELO holding period.")


class MeloConfig(_Strict):
    """The ``melo`` section of a finrl-lite config."""

    sim: MeloSimConfig = Field(default_factory=MeloSimConfig)
    env: MeloEnvConfig = Field(default_factory=MeloEnvConfig)
    agent: MeloAgentConfig = Field(default_factory=MeloAgentConfig)
    train: MeloTrainConfig = Field(default_factory=MeloTrainConfig)
    evaluate: MeloEvalConfig = Field(default_factory=MeloEvalConfig)
