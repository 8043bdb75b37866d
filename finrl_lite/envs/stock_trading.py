"""Vectorized stock-trading environment: pure batched ``reset`` / ``step`` over named tensors, and a torch VecEnv.

``step`` never synchronises with the host: no ``.item()``, no Python branch on tensor values, no
data-dependent shapes. Python ``if`` statements only look at :class:`StockTradingParams` (static), so the
same function runs on CPU and CUDA and can be captured by CUDA graphs or ``torch.compile``.
"""

from __future__ import annotations

import logging

import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.actions import actions_to_orders, target_weights_to_orders
from finrl_lite.envs.base import BatchedEnv, same_step_autoreset, where_state
from finrl_lite.envs.fused_step import check_fused_supported, fused_step
from finrl_lite.envs.market import EnvMarket, draw_keys, episode_bounds, prepare_market
from finrl_lite.envs.observation import (
    attach_observation_table,
    stock_observation,
    stock_observation_names,
    stock_observation_size,
)
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.recycling import TensorRecycler
from finrl_lite.envs.rewards import compute_reward
from finrl_lite.envs.simulator import execute_orders
from finrl_lite.envs.stock_state import StepInfo, StockTradingState
from finrl_lite.errors import ConfigError

__all__ = [
    "StockTradingVecEnv",
    "make_stock_market",
    "reset",
    "step",
]

logger = logging.getLogger(__name__)


def make_stock_market(params: StockTradingParams, market: MarketData, device: str | torch.device = "cpu") -> EnvMarket:
    """Move ``market`` to ``device`` for the stock-trading core (once; every environment indexes into it)."""
    needs_risk = params.turbulence_threshold is not None or params.observe_risk
    prepared = prepare_market(
        market,
        features=params.features,
        risk_series=params.risk_series if needs_risk else None,
        episode_length=params.episode_length,
        random_start=params.random_start,
        device=device,
        dtype=params.dtype,
    )
    return attach_observation_table(params, prepared)


def _fresh(params: StockTradingParams, market: EnvMarket, key: torch.Tensor, episode: torch.Tensor) -> StockTradingState:
    """A new episode for every environment (start drawn from ``key`` and ``episode``)."""
    start, end = episode_bounds(market, key, episode, params.episode_length)
    b, n = key.shape[0], market.num_tickers
    zeros = torch.zeros(b, dtype=params.dtype, device=key.device)
    return StockTradingState(
        t=start,
        end=end,
        cash=torch.full((b,), params.initial_amount, dtype=params.dtype, device=key.device),
        holdings=torch.zeros(b, n, dtype=params.dtype, device=key.device),
        locked=torch.zeros(b, n, dtype=params.dtype, device=key.device),
        value=torch.full((b,), params.initial_amount, dtype=params.dtype, device=key.device),
        sharpe_a=zeros,
        sharpe_b=zeros,
        total_costs=zeros,
        steps=torch.zeros_like(start),
        episode=episode,
        key=key,
    )


def reset(
    params: StockTradingParams,
    market: EnvMarket,
    generator: torch.Generator | None = None,
    num_envs: int | None = None,
    *,
    keys: torch.Tensor | None = None,
    state: StockTradingState | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[StockTradingState, torch.Tensor]:
    """Start new episodes.

    Args:
        params: Environment parameters.
        market: Device market tensors (from :func:`make_stock_market`).
        generator: Draws one key per environment (ignored when ``keys`` is given).
        num_envs: Batch size (ignored when ``keys`` is given).
        keys: ``[B]`` int64 per-environment keys, instead of drawing them.
        state: With ``mask``, reset only some environments of this state.
        mask: ``[B]`` bool, environments to reset; the others keep their ``state``.

    Returns:
        ``(state, obs)`` with ``obs`` ``[B, D]``.
    """
    device = market.device
    if keys is None:
        if generator is None or num_envs is None:
            raise ConfigError("reset needs either keys, or a generator and num_envs")
        keys = draw_keys(generator, num_envs, device)
    fresh = _fresh(params, market, keys, torch.zeros_like(keys))
    if state is not None and mask is not None:
        fresh = where_state(mask, fresh._replace(episode=state.episode + 1), state)
    return fresh, stock_observation(params, market, fresh.t, fresh.cash, fresh.holdings)


def step(
    state: StockTradingState,
    action: torch.Tensor,
    params: StockTradingParams,
    market: EnvMarket,
    *,
    autoreset: bool = True,
    final_obs: bool = True,
) -> tuple[StockTradingState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, StepInfo]:
    """Advance every environment by one bar.

    With ``execution="next_open"`` the orders decided on bar ``t``'s close fill at bar ``t+1``'s open and
    the portfolio is valued at bar ``t+1``'s close; with ``execution="close"`` they fill at bar ``t``'s
    close (FinRL). The turbulence rule reads the risk series of bar ``t`` (known when deciding).

    Args:
        state: Current state.
        action: ``[B, N]`` actions: in ``[-1, 1]`` (clipped), in units of ``hmax`` shares; or target weights
            in ``[0, 1]`` with ``action_mode="target_weights"``. A NaN entry is no order for that ticker (as 0 in
            ``shares`` mode; in ``target_weights`` mode the ticker keeps its shares, so a NaN row holds); the
            environment refuses one unless ``params.nan_actions == "hold"``.
        params: Environment parameters.
        market: Device market tensors.
        autoreset: Reset finished environments in the same step (``torch.where``, branch-free); the
            returned observation is then the new episode's first one and ``info.final_obs`` the last.
        final_obs: Build ``info.final_obs`` (a second observation gather). Without it (and with
            ``autoreset``) ``info.final_obs`` is the returned observation, which is not the terminal one
            for the environments that just finished.

    Returns:
        ``(state, obs, reward, terminated, truncated, info)``; ``terminated`` is ruin (total asset at or
        below ``ruin_fraction * initial_amount``), ``truncated`` is the end of the data or episode length.
    """
    t = state.t
    last_bar = market.num_dates - 1
    t_next = (t + 1).clamp_max(last_bar)  # only reached without autoreset, stepping past the end
    fill_bar = t_next if params.execution == "next_open" else t
    price = (market.open if params.execution == "next_open" else market.close).index_select(0, fill_bar)
    tradable = market.data.valid.index_select(0, fill_bar) & (price > 0)
    if params.turbulence_threshold is not None:
        turbulent = market.risk.index_select(0, t) >= params.turbulence_threshold
    else:
        turbulent = torch.zeros_like(tradable[:, 0])
    locked = state.locked
    if params.t_plus_1:
        same_day = market.day.index_select(0, fill_bar) == market.day.index_select(0, (fill_bar - 1).clamp_min(0))
        locked = torch.where(same_day.unsqueeze(1), locked, torch.zeros_like(locked))

    if params.action_mode == "target_weights":
        orders = target_weights_to_orders(params, action.to(params.dtype), state.cash, state.holdings, price, tradable)
    else:
        orders = actions_to_orders(params, action.to(params.dtype))
    fills = execute_orders(params, state.cash, state.holdings, locked, orders, price, tradable, turbulent)

    value = fills.cash + (fills.holdings * market.close.index_select(0, t_next)).sum(dim=1)
    rew = compute_reward(
        params.reward,
        state.value,
        value,
        state.sharpe_a,
        state.sharpe_b,
        reward_scaling=params.reward_scaling,
        sharpe_eta=params.sharpe_eta,
    )
    terminated = value <= params.ruin_fraction * params.initial_amount
    truncated = (t_next >= state.end) & ~terminated
    stepped = StockTradingState(
        t=t_next,
        end=state.end,
        cash=fills.cash,
        holdings=fills.holdings,
        locked=fills.locked,
        value=value,
        sharpe_a=rew.sharpe_a,
        sharpe_b=rew.sharpe_b,
        total_costs=state.total_costs + fills.costs,
        steps=state.steps + 1,
        episode=state.episode,
        key=state.key,
    )
    new_state, obs, last_obs = same_step_autoreset(
        stepped,
        terminated | truncated,
        lambda s: _fresh(params, market, s.key, s.episode + 1),
        lambda s: stock_observation(params, market, s.t, s.cash, s.holdings),
        autoreset=autoreset,
        final_obs=final_obs,
    )
    info = StepInfo(
        portfolio_value=value,
        cash=fills.cash,
        holdings=fills.holdings,
        costs=fills.costs,
        total_costs=stepped.total_costs,
        turnover=fills.notional / state.value.clamp_min(1e-12),
        trades=fills.trades,
        turbulent=turbulent,
        final_obs=last_obs,
    )
    return new_state, obs, rew.reward, terminated, truncated, info


class StockTradingVecEnv(BatchedEnv):
    """A batch of stock-trading environments with a native torch API (tensors stay on ``device``).

    Example:
        >>> env = StockTradingVecEnv(market, num_envs=1024, seed=0)
        >>> obs, info = env.reset()
        >>> obs, reward, terminated, truncated, info = env.step(torch.zeros(1024, env.num_tickers))

    Finished environments reset in the same step (same-step autoreset): the returned observation is the
    new episode's first one and ``info["final_obs"]`` holds the last observation of the finished one.

    Args:
        market: Market panel (one split); moved to ``device`` once.
        params: Environment parameters (defaults: :class:`StockTradingParams`).
        num_envs: Number of environments.
        device: Torch device (``"cpu"``, ``"cuda"``).
        seed: Seed of the generator that draws the per-environment keys.
        step_mode: ``"auto"`` (the default: ``"fused"`` on a CPU with float64 accounting, else ``"eager"``);
            ``"eager"`` (the torch core); ``"compile"`` (``torch.compile`` of the step); ``"cuda_graph"``
            (CUDA only: the step captured once in a CUDA graph and replayed); ``"fused"`` (CPU only: the
            whole step in one compiled kernel, :mod:`finrl_lite.envs.fused_step`, equal to the torch core).
        autoreset: Reset finished environments inside ``step`` (same-step). Without it a finished
            environment stays on its last bar until :meth:`reset`.
        final_obs: Return the terminal observation in ``info["final_obs"]`` (costs a second observation
            gather per step; the SB3 and gymnasium adapters need it).
    """

    def __init__(
        self,
        market: MarketData,
        params: StockTradingParams | None = None,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        step_mode: str = "auto",
        autoreset: bool = True,
        final_obs: bool = True,
    ) -> None:
        self.params = params or StockTradingParams()
        super().__init__(num_envs, device, seed, step_mode, autoreset, final_obs)
        self.market_data = market
        self.market = make_stock_market(self.params, market, self.device)
        self.num_tickers = self.market.num_tickers
        self.action_size = self.num_tickers
        if self.params.action_mode == "target_weights":
            self.action_low = 0.0
        self.observation_size = stock_observation_size(self.params, self.market)
        self.observation_names = stock_observation_names(self.params, self.market)
        self.state: StockTradingState | None = None
        self._recycler = TensorRecycler()  # output memory of the fused step
        logger.debug(
            "StockTradingVecEnv: %d envs, %d tickers, obs %d, device %s, %s",
            num_envs,
            self.num_tickers,
            self.observation_size,
            self.device,
            step_mode,
        )

    @property
    def _nan_actions_hold(self) -> bool:
        return self.params.nan_actions == "hold"

    def _release(self) -> None:
        self.market = None  # type: ignore[assignment]
        self._recycler = TensorRecycler()

    def _reset_state(self, keys: torch.Tensor | None) -> tuple[StockTradingState, torch.Tensor, dict[str, torch.Tensor]]:
        state, obs = reset(self.params, self.market, self.generator, self.num_envs, keys=keys)
        return state, obs, {"portfolio_value": state.value, "cash": state.cash}

    def _core_step(
        self, state: StockTradingState, action: torch.Tensor
    ) -> tuple[StockTradingState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, StepInfo]:
        return step(state, action, self.params, self.market, autoreset=self.autoreset, final_obs=self.final_obs)

    def _check_fused(self) -> None:
        check_fused_supported(self.params, self.device)

    def _fused_step(
        self, state: StockTradingState, action: torch.Tensor
    ) -> tuple[StockTradingState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, StepInfo]:
        return fused_step(
            state, action, self.params, self.market, autoreset=self.autoreset, final_obs=self.final_obs, recycler=self._recycler
        )
