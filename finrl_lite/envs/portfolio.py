"""Vectorized portfolio-allocation environment: scores -> long-only weights, rebalanced with turnover costs.

Each step the policy's scores become target weights by a softmax over the tickers that can trade on the
fill bar (plus an optional cash weight); the portfolio is rebalanced to them at the execution price
(``next_open``: bar t+1's open, the default; ``close``: bar t's close), paying ``cost_pct`` on the traded
notional, and valued at bar t+1's close. Holdings are fractional shares. A ticker that cannot trade keeps
its shares (valued at its last price) and gets no new weight.

Observation (built in one place, :func:`portfolio_observation`)::

    [covariance of the trailing ``lookback`` daily returns (N x N, row-major), feature_1 x N, ...,
     feature_K x N, current weights (N tickers, then cash)]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.base import BatchedEnv, same_step_autoreset
from finrl_lite.envs.market import EnvMarket, draw_keys, episode_bounds, prepare_market
from finrl_lite.errors import ConfigError

__all__ = [
    "PortfolioInfo",
    "PortfolioParams",
    "PortfolioState",
    "PortfolioAllocationVecEnv",
    "make_portfolio_env",
    "make_portfolio_market",
    "make_portfolio_vec_env",
    "portfolio_first_start",
    "portfolio_observation",
    "portfolio_reset",
    "portfolio_step",
    "scores_to_weights",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortfolioParams:
    """Parameters of :class:`PortfolioAllocationVecEnv`.

    Attributes:
        initial_amount: Starting cash (currency).
        cost_pct: Fee on the traded notional of a rebalance, as a fraction (0.001 = 10 bps).
        cash_weight: Add a cash weight to the action (action size N + 1); otherwise fully invested.
        action_scale: Scores (clipped to ``[-1, 1]``) are multiplied by this before the softmax, so the
            largest possible weight ratio between two assets is ``exp(2 * action_scale)``.
        lookback: Bars in the trailing covariance window (returns of bars ``t - lookback + 1 .. t``).
        features: Per-ticker features to observe; ``None`` means every non-OHLCV field.
        execution: ``"next_open"`` (default) or ``"close"``.
        reward: ``"log_return"`` (default) or ``"value_change"`` (change of value x ``reward_scaling``).
        reward_scaling: Factor on ``value_change``.
        episode_length: Steps per episode; ``None`` runs to the end of the data.
        random_start: Start each episode at a random bar after the warm-up and the lookback.
        ruin_fraction: Terminate when the value <= ``ruin_fraction * initial_amount``.
        dtype: Accounting dtype.
    """

    initial_amount: float = 1_000_000.0
    cost_pct: float = 0.001
    cash_weight: bool = True
    action_scale: float = 5.0
    lookback: int = 20
    features: tuple[str, ...] | None = None
    execution: Literal["next_open", "close"] = "next_open"
    reward: Literal["log_return", "value_change"] = "log_return"
    reward_scaling: float = 1e-4
    episode_length: int | None = None
    random_start: bool = True
    ruin_fraction: float = 0.0
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        checks = [
            (self.initial_amount > 0, "initial_amount must be > 0"),
            (0 <= self.cost_pct < 1, "cost_pct must be in [0, 1)"),
            (self.action_scale > 0, "action_scale must be > 0"),
            (self.lookback >= 2, "lookback must be >= 2"),
            (self.execution in ("next_open", "close"), "execution must be 'next_open' or 'close'"),
            (self.reward in ("log_return", "value_change"), "reward must be 'log_return' or 'value_change'"),
            (self.episode_length is None or self.episode_length >= 1, "episode_length must be >= 1 or None"),
            (0 <= self.ruin_fraction < 1, "ruin_fraction must be in [0, 1)"),
            (self.dtype in (torch.float32, torch.float64), "dtype must be torch.float32 or torch.float64"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"PortfolioParams: {message}")


class PortfolioState(NamedTuple):
    """State of a batch of portfolio environments (leading ``num_envs`` dimension).

    Attributes:
        t: ``[B]`` int64 observed bar.
        end: ``[B]`` int64 last bar of the episode.
        cash: ``[B]`` cash (currency).
        holdings: ``[B, N]`` fractional shares.
        value: ``[B]`` total value at bar ``t``'s close.
        total_costs: ``[B]`` fees paid in the episode.
        steps: ``[B]`` int64 steps taken in the episode.
        episode: ``[B]`` int64 episode counter.
        key: ``[B]`` int64 per-environment random key.
    """

    t: torch.Tensor
    end: torch.Tensor
    cash: torch.Tensor
    holdings: torch.Tensor
    value: torch.Tensor
    total_costs: torch.Tensor
    steps: torch.Tensor
    episode: torch.Tensor
    key: torch.Tensor


class PortfolioInfo(NamedTuple):
    """Per-step diagnostics of the stepped (pre-reset) state.

    Attributes:
        portfolio_value: ``[B]`` value after the step.
        cash: ``[B]`` cash after the step.
        weights: ``[B, N + 1]`` target weights of the rebalance (tickers, then cash).
        costs: ``[B]`` fees of this step.
        total_costs: ``[B]`` fees in the episode so far.
        turnover: ``[B]`` traded notional / value at the fill prices.
        final_obs: ``[B, D]`` observation of the stepped state.
    """

    portfolio_value: torch.Tensor
    cash: torch.Tensor
    weights: torch.Tensor
    costs: torch.Tensor
    total_costs: torch.Tensor
    turnover: torch.Tensor
    final_obs: torch.Tensor


def portfolio_first_start(params: PortfolioParams, market: MarketData) -> int:
    """The first bar a portfolio episode can start on: after the warm-up and a full covariance ``lookback``."""
    return max(market.warmup, params.lookback)


def make_portfolio_market(params: PortfolioParams, market: MarketData, device: str | torch.device = "cpu") -> EnvMarket:
    """Device market with the per-bar observation table ``[cov (N*N), features (K*N)]`` precomputed once.

    The covariance at bar t uses the close-to-close returns of bars ``t - lookback + 1 .. t`` only (zero
    where a ticker has no price yet); episodes start no earlier than bar ``max(warmup, lookback)``.
    """
    market = replace(market, warmup=portfolio_first_start(params, market))
    prepared = prepare_market(
        market,
        features=params.features,
        risk_series=None,
        episode_length=params.episode_length,
        random_start=params.random_start,
        device=device,
        dtype=params.dtype,
    )
    close = prepared.close
    prev = torch.cat([close[:1], close[:-1]])
    ok = (prev > 0) & (close > 0)
    rets = torch.where(ok, close / torch.where(ok, prev, torch.ones_like(prev)) - 1.0, torch.zeros_like(close))
    t_len, n = close.shape
    windows = rets.unfold(0, params.lookback, 1)  # [T - L + 1, N, L]: window ending at bar i + L - 1
    centered = windows - windows.mean(dim=2, keepdim=True)
    cov = centered @ centered.transpose(1, 2) / (params.lookback - 1)  # [T - L + 1, N, N]
    cov_full = torch.zeros(t_len, n, n, dtype=close.dtype, device=close.device)
    cov_full[params.lookback - 1 :] = cov
    table = torch.cat([cov_full.reshape(t_len, n * n), prepared.features], dim=1)
    return replace(prepared, obs_table=table)


def scores_to_weights(params: PortfolioParams, scores: torch.Tensor, tradable: torch.Tensor) -> torch.Tensor:
    """Long-only weights ``[B, N + 1]`` (tickers, then cash) from scores ``[B, N (+1)]``.

    Softmax of ``clip(scores, -1, 1) * action_scale`` over the tradable tickers (and cash when
    ``cash_weight``); with nothing tradable and no cash weight, everything goes to cash.
    """
    b, n = tradable.shape
    s = scores.clamp(-1.0, 1.0) * params.action_scale
    neg_inf = torch.full((), float("-inf"), dtype=s.dtype, device=s.device)
    tick = torch.where(tradable, s[:, :n], neg_inf)
    if params.cash_weight:
        cash = s[:, n : n + 1]
    else:
        nothing = ~tradable.any(dim=1, keepdim=True)
        cash = torch.where(nothing, torch.zeros_like(s[:, :1]), neg_inf.expand(b, 1))
    return torch.softmax(torch.cat([tick, cash], dim=1), dim=1)


def portfolio_observation(
    params: PortfolioParams, market: EnvMarket, t: torch.Tensor, cash: torch.Tensor, holdings: torch.Tensor, value: torch.Tensor
) -> torch.Tensor:
    """``[cov, features, weights (N + cash)]`` of every environment at bar ``t`` (already closed)."""
    assert market.obs_table is not None
    safe = value.clamp_min(1e-12).unsqueeze(1)
    weights = torch.cat([holdings * market.close.index_select(0, t), cash.unsqueeze(1)], dim=1) / safe
    return torch.cat([market.obs_table.index_select(0, t), weights], dim=1)


def _fresh(params: PortfolioParams, market: EnvMarket, key: torch.Tensor, episode: torch.Tensor) -> PortfolioState:
    start, end = episode_bounds(market, key, episode, params.episode_length)
    b, n = key.shape[0], market.num_tickers
    amount = torch.full((b,), params.initial_amount, dtype=params.dtype, device=key.device)
    zeros = torch.zeros(b, dtype=params.dtype, device=key.device)
    return PortfolioState(
        t=start,
        end=end,
        cash=amount,
        holdings=torch.zeros(b, n, dtype=params.dtype, device=key.device),
        value=amount,
        total_costs=zeros,
        steps=torch.zeros_like(start),
        episode=episode,
        key=key,
    )


def portfolio_reset(
    params: PortfolioParams,
    market: EnvMarket,
    generator: torch.Generator | None = None,
    num_envs: int | None = None,
    *,
    keys: torch.Tensor | None = None,
) -> tuple[PortfolioState, torch.Tensor]:
    """New episodes: all cash. Keys drawn from ``generator`` unless given."""
    if keys is None:
        if generator is None or num_envs is None:
            raise ConfigError("portfolio_reset needs either keys, or a generator and num_envs")
        keys = draw_keys(generator, num_envs, market.device)
    state = _fresh(params, market, keys, torch.zeros_like(keys))
    return state, portfolio_observation(params, market, state.t, state.cash, state.holdings, state.value)


def portfolio_step(
    state: PortfolioState,
    action: torch.Tensor,
    params: PortfolioParams,
    market: EnvMarket,
    *,
    autoreset: bool = True,
    final_obs: bool = True,
) -> tuple[PortfolioState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, PortfolioInfo]:
    """Rebalance every environment to the weights of ``action`` and advance one bar (no host sync).

    Costs are ``cost_pct`` x the notional traded towards the targets computed from the pre-cost value;
    the targets are then scaled by ``(value - costs) / value`` so the money adds up exactly
    (``cash + sum(holdings * price) == value - costs`` at the fill).
    """
    t = state.t
    t_next = (t + 1).clamp_max(market.num_dates - 1)
    fill_bar = t_next if params.execution == "next_open" else t
    price = (market.open if params.execution == "next_open" else market.close).index_select(0, fill_bar)
    tradable = market.data.valid.index_select(0, fill_bar) & (price > 0)
    weights = scores_to_weights(params, action, tradable)
    current = state.holdings * price
    frozen = torch.where(tradable, torch.zeros_like(current), current).sum(dim=1)
    value_fill = state.cash + current.sum(dim=1)
    investable = value_fill - frozen
    target = weights[:, :-1] * investable.unsqueeze(1)
    traded = torch.where(tradable, (target - current).abs(), torch.zeros_like(current)).sum(dim=1)
    costs = traded * params.cost_pct
    shrink = ((investable - costs) / investable.clamp_min(1e-12)).clamp_min(0.0).unsqueeze(1)
    safe_price = torch.where(tradable, price, torch.ones_like(price))
    holdings = torch.where(tradable, target * shrink / safe_price, state.holdings)
    cash = weights[:, -1] * investable * shrink[:, 0]
    value = cash + (holdings * market.close.index_select(0, t_next)).sum(dim=1)
    if params.reward == "log_return":
        reward = torch.log(value.clamp_min(1e-12) / state.value.clamp_min(1e-12))
    else:
        reward = (value - state.value) * params.reward_scaling
    terminated = value <= params.ruin_fraction * params.initial_amount
    truncated = (t_next >= state.end) & ~terminated
    stepped = PortfolioState(
        t=t_next,
        end=state.end,
        cash=cash,
        holdings=holdings,
        value=value,
        total_costs=state.total_costs + costs,
        steps=state.steps + 1,
        episode=state.episode,
        key=state.key,
    )
    new_state, obs, last_obs = same_step_autoreset(
        stepped,
        terminated | truncated,
        lambda s: _fresh(params, market, s.key, s.episode + 1),
        lambda s: portfolio_observation(params, market, s.t, s.cash, s.holdings, s.value),
        autoreset=autoreset,
        final_obs=final_obs,
    )
    info = PortfolioInfo(
        portfolio_value=value,
        cash=cash,
        weights=weights,
        costs=costs,
        total_costs=stepped.total_costs,
        turnover=traded / value_fill.clamp_min(1e-12),
        final_obs=last_obs,
    )
    return new_state, obs, reward, terminated, truncated, info


class PortfolioAllocationVecEnv(BatchedEnv):
    """A batch of portfolio-allocation environments with a native torch API (same-step autoreset).

    Args:
        market: Market panel (one split); moved to ``device`` once.
        params: Environment parameters (defaults: :class:`PortfolioParams`).
        num_envs: Number of environments.
        device: Torch device.
        seed: Seed of the generator that draws the per-environment keys.
        step_mode: ``"eager"``, ``"compile"`` or ``"cuda_graph"`` (CUDA only).
        autoreset: Reset finished environments inside ``step``.
        final_obs: Return the terminal observation in ``info["final_obs"]``.
    """

    def __init__(
        self,
        market: MarketData,
        params: PortfolioParams | None = None,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        step_mode: str = "eager",
        autoreset: bool = True,
        final_obs: bool = True,
    ) -> None:
        super().__init__(num_envs, device, seed, step_mode, autoreset, final_obs)
        self.params = params or PortfolioParams()
        self.market_data = market
        self.market = make_portfolio_market(self.params, market, self.device)
        self.num_tickers = self.market.num_tickers
        self.action_size = self.num_tickers + int(self.params.cash_weight)
        n, k = self.num_tickers, len(self.market.feature_names)
        self.observation_size = n * n + k * n + n + 1
        self.state: PortfolioState | None = None
        logger.debug("PortfolioAllocationVecEnv: %d envs, %d tickers, device %s", num_envs, n, self.device)

    def _release(self) -> None:
        self.market = None  # type: ignore[assignment]

    def _reset_state(self, keys: torch.Tensor | None) -> tuple[PortfolioState, torch.Tensor, dict[str, torch.Tensor]]:
        state, obs = portfolio_reset(self.params, self.market, self.generator, self.num_envs, keys=keys)
        return state, obs, {"portfolio_value": state.value, "cash": state.cash}

    def _core_step(
        self, state: PortfolioState, action: torch.Tensor
    ) -> tuple[PortfolioState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, PortfolioInfo]:
        return portfolio_step(state, action, self.params, self.market, autoreset=self.autoreset, final_obs=self.final_obs)


def _portfolio_params(params: PortfolioParams | Mapping[str, Any] | None) -> PortfolioParams:
    if params is None or isinstance(params, PortfolioParams):
        return params or PortfolioParams()
    return PortfolioParams(**dict(params))


def make_portfolio_env(
    market: MarketData | None = None,
    params: PortfolioParams | Mapping[str, Any] | None = None,
    device: str = "cpu",
    seed: int | None = None,
    render_mode: str | None = None,
) -> Any:
    """One portfolio environment as a gymnasium ``Env`` (entry point of ``finrl_lite/PortfolioAllocation-v0``)."""
    from finrl_lite.envs.adapters import GymEnv
    from finrl_lite.envs.synthetic import default_market

    env = PortfolioAllocationVecEnv(
        market if market is not None else default_market(),
        _portfolio_params(params),
        num_envs=1,
        device=device,
        seed=seed,
        autoreset=False,
    )
    return GymEnv(env)


def make_portfolio_vec_env(
    num_envs: int = 1,
    market: MarketData | None = None,
    params: PortfolioParams | Mapping[str, Any] | None = None,
    device: str = "cpu",
    seed: int | None = None,
) -> Any:
    """``num_envs`` portfolio environments as a gymnasium ``VectorEnv`` (the ``vector_entry_point``)."""
    from finrl_lite.envs.adapters import GymVectorEnv
    from finrl_lite.envs.synthetic import default_market

    env = PortfolioAllocationVecEnv(
        market if market is not None else default_market(),
        _portfolio_params(params),
        num_envs=num_envs,
        device=device,
        seed=seed,
    )
    return GymVectorEnv(env)
