"""Parameters of the stock-trading environment (plain frozen dataclasses, validated on construction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from finrl_lite.errors import ConfigError

__all__ = ["ActionMode", "NanActions", "ObservationScales", "StockTradingParams", "Execution", "RewardKind"]

Execution = Literal["next_open", "close"]
RewardKind = Literal["asset_change", "log_return", "differential_sharpe"]
ActionMode = Literal["shares", "target_weights"]
NanActions = Literal["error", "hold"]


@dataclass(frozen=True)
class ObservationScales:
    """Fixed factors that scale the observation (never statistics of the data, which would leak the future).

    Attributes:
        cash: Factor on cash; ``None`` means ``1 / initial_amount`` (cash observed as a fraction of the start).
        price: Factor on prices (currency per share).
        holdings: Factor on holdings (shares); ``None`` means ``1 / hmax``.
        features: Factor on every per-ticker feature (indicators are in their own units).
        risk: Factor on the risk series (turbulence / VIX) when it is observed.
    """

    cash: float | None = None
    price: float = 1.0
    holdings: float | None = None
    features: float = 1.0
    risk: float = 1.0

    @classmethod
    def identity(cls) -> ObservationScales:
        """No scaling at all: FinRL's raw state ``[cash, close, shares, indicators]``."""
        return cls(cash=1.0, price=1.0, holdings=1.0, features=1.0, risk=1.0)


@dataclass(frozen=True)
class StockTradingParams:
    """Market rules, accounting and episode settings of :class:`~finrl_lite.envs.StockTradingVecEnv`.

    Attributes:
        hmax: Shares traded by an action of magnitude 1 (FinRL's ``hmax``).
        action_mode: ``"shares"``: actions in ``[-1, 1]`` are orders of ``action * hmax`` shares (FinRL);
            ``"target_weights"``: actions in ``[0, 1]`` are target portfolio weights (normalised when
            they sum above 1, the rest in cash).
        nan_actions: ``"error"`` (the default): an action with a NaN or infinite entry is an error naming the
            environment row; ``"hold"``: a NaN entry is no order for that ticker (in ``target_weights`` mode the
            ticker keeps its shares, so a NaN row holds the portfolio) and an infinite one is clipped. The baselines
            trade with ``"hold"``: their NaN rows mean "no rebalancing".
        initial_amount: Starting cash (currency).
        buy_cost_pct: Fee on the notional of a buy, as a fraction (0.001 = 10 bps).
        sell_cost_pct: Fee on the notional of a sell, as a fraction.
        min_cost: Minimum fee per executed order (currency); 0 disables it.
        slippage_bps: Adverse price move on every fill, in basis points (buys pay more, sells get less).
        lot_size: Shares are traded in multiples of this (1 by default, 100 for A-shares).
        fractional: Trade fractional shares (no rounding to ``lot_size``).
        short_selling: Allow holdings below zero. Off by default: holdings are never negative.
        t_plus_1: Shares bought on a trading day cannot be sold on the same day (China A-share rule).
        execution: ``"next_open"`` decides on bar t's close and fills at bar t+1's open (no look-ahead,
            the default); ``"close"`` fills at the close just observed (FinRL's behaviour).
        turbulence_threshold: At or above this value of the risk series everything is liquidated and buys
            are blocked; ``None`` disables the rule.
        risk_series: Name of the per-date market series the threshold is compared with
            (``"turbulence"`` or ``"vix"``).
        observe_risk: Append the risk series to the observation.
        observe_valid: Append the per-ticker ``valid`` mask (1.0/0.0) of the observed bar.
        features: Per-ticker features to observe; ``None`` means every non-OHLCV field of the data.
        reward: ``"asset_change"`` (change of total asset x ``reward_scaling``, FinRL), ``"log_return"`` or
            ``"differential_sharpe"`` (Moody & Saffell, with EMA rate ``sharpe_eta``).
        reward_scaling: Factor on the ``asset_change`` reward.
        sharpe_eta: EMA rate of the differential Sharpe ratio.
        episode_length: Steps per episode; ``None`` runs to the end of the data.
        random_start: Start each episode at a random bar after the warm-up (else at the warm-up bar).
        ruin_fraction: The episode terminates when total asset <= ``ruin_fraction * initial_amount``.
        scales: Observation scaling factors.
        dtype: Accounting dtype (float64 by default; float32 for speed runs).
        obs_dtype: Observation dtype: float32 by default (what SB3, RLlib and the native agents feed their
            networks; it halves the memory traffic of a step) while accounting stays in ``dtype``; ``None``
            means ``dtype`` (float64 observations, for exact comparisons).
    """

    hmax: float = 100.0
    action_mode: ActionMode = "shares"
    nan_actions: NanActions = "error"
    initial_amount: float = 1_000_000.0
    buy_cost_pct: float = 0.001
    sell_cost_pct: float = 0.001
    min_cost: float = 0.0
    slippage_bps: float = 0.0
    lot_size: int = 1
    fractional: bool = False
    short_selling: bool = False
    t_plus_1: bool = False
    execution: Execution = "next_open"
    turbulence_threshold: float | None = None
    risk_series: str = "turbulence"
    observe_risk: bool = False
    observe_valid: bool = False
    features: tuple[str, ...] | None = None
    reward: RewardKind = "asset_change"
    reward_scaling: float = 1e-4
    sharpe_eta: float = 0.01
    episode_length: int | None = None
    random_start: bool = True
    ruin_fraction: float = 0.0
    scales: ObservationScales = field(default_factory=ObservationScales)
    dtype: torch.dtype = torch.float64
    obs_dtype: torch.dtype | None = torch.float32

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.hmax > 0, "hmax must be > 0"),
            (self.initial_amount > 0, "initial_amount must be > 0"),
            (0 <= self.buy_cost_pct < 1, "buy_cost_pct must be in [0, 1)"),
            (0 <= self.sell_cost_pct < 1, "sell_cost_pct must be in [0, 1)"),
            (self.min_cost >= 0, "min_cost must be >= 0"),
            (0 <= self.slippage_bps < 10_000, "slippage_bps must be in [0, 10000)"),
            (self.lot_size >= 1, "lot_size must be >= 1"),
            (self.execution in ("next_open", "close"), "execution must be 'next_open' or 'close'"),
            (self.action_mode in ("shares", "target_weights"), "action_mode must be 'shares' or 'target_weights'"),
            (self.nan_actions in ("error", "hold"), "nan_actions must be 'error' or 'hold'"),
            (
                self.reward in ("asset_change", "log_return", "differential_sharpe"),
                "reward must be 'asset_change', 'log_return' or 'differential_sharpe'",
            ),
            (0 < self.sharpe_eta < 1, "sharpe_eta must be in (0, 1)"),
            (self.episode_length is None or self.episode_length >= 1, "episode_length must be >= 1 or None"),
            (0 <= self.ruin_fraction < 1, "ruin_fraction must be in [0, 1)"),
            (self.dtype in (torch.float32, torch.float64), "dtype must be torch.float32 or torch.float64"),
            (
                self.obs_dtype in (None, torch.float32, torch.float64),
                "obs_dtype must be None, torch.float32 or torch.float64",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"StockTradingParams: {message}")

    @property
    def observation_dtype(self) -> torch.dtype:
        """Resolved observation dtype."""
        return self.obs_dtype if self.obs_dtype is not None else self.dtype

    @property
    def cash_scale(self) -> float:
        """Resolved factor on cash in the observation."""
        return self.scales.cash if self.scales.cash is not None else 1.0 / self.initial_amount

    @property
    def holdings_scale(self) -> float:
        """Resolved factor on holdings in the observation."""
        return self.scales.holdings if self.scales.holdings is not None else 1.0 / self.hmax
