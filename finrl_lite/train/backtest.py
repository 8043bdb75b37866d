"""Back-tests: an agent, or a baseline's target weights, through the evaluation environment.

Both produce an :class:`EquityCurve` over the same bars: the value at the close of every bar from the bar
the agent's evaluation episode starts on to the split's last bar. Baselines trade through
:class:`~finrl_lite.envs.StockTradingVecEnv` in ``target_weights`` mode (:func:`baseline_env`), so the
fills, fees, slippage, minimum fee, lot sizes and T+1 rule are the agent's own environment core.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from finrl_lite.agents.baselines import WeightStrategy
from finrl_lite.config import EnvConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.base import BatchedEnv
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.portfolio import PortfolioParams, portfolio_first_start
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError, DataError
from finrl_lite.train.environment import env_params, make_env
from finrl_lite.train.metrics import compute_metrics

__all__ = [
    "EquityCurve",
    "baseline_env",
    "index_curve",
    "run_agent",
    "run_agent_schedule",
    "run_baseline",
    "run_target_weights",
]

logger = logging.getLogger(__name__)


@dataclass
class EquityCurve:
    """Portfolio value per bar, with the fees paid and the notional traded on each bar (currency)."""

    name: str
    dates: np.ndarray
    values: np.ndarray
    costs: np.ndarray
    traded: np.ndarray

    def metrics(self, interval: str = "1d", calendar: str = "XNYS") -> dict[str, float]:
        return compute_metrics(self.values, interval, calendar, traded_value=self.traded, costs=self.costs)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"date": self.dates, "value": self.values, "costs": self.costs, "traded": self.traded})


def _run_episode(
    env: BatchedEnv,
    market: MarketData,
    name: str,
    act: Callable[[int, torch.Tensor], torch.Tensor],
    seed: int = 0,
    handovers: Mapping[int, BatchedEnv] | None = None,
) -> EquityCurve:
    """One evaluation episode of a single environment, from its first bar to the end of ``market``.

    ``act(t, obs)`` gives the ``[1, A]`` action decided on bar ``t``. The step outputs are copied into a
    device buffer (no host sync per step) and the curve is cut after the first finished step (ruin).
    ``handovers`` maps a bar to an environment over the same bars and observation (other market rules) that
    takes over there from the current state (its snapshot): one account whose rules change on that bar.
    """
    obs, info = env.reset(seed=seed)
    start = int(env.state.t[0])
    steps = market.num_dates - 1 - start
    out = torch.zeros(4, steps + 1, dtype=torch.float64, device=env.device)  # value, costs, turnover, done
    out[0, 0] = info["portfolio_value"][0]
    for k in range(steps):
        if handovers and start + k in handovers:
            successor = handovers[start + k]
            successor.load_state_dict(env.state_dict())
            env = successor
        obs, _, terminated, truncated, step_info = env.step(act(start + k, obs))
        out[0, k + 1] = step_info["portfolio_value"][0]
        out[1, k + 1] = step_info["costs"][0]
        out[2, k + 1] = step_info["turnover"][0]
        out[3, k + 1] = (terminated | truncated)[0]
    value, costs, turnover, done = out.cpu().numpy()
    if done.any():
        steps = int(np.argmax(done))
    traded = np.concatenate([[0.0], turnover[1 : steps + 1] * value[:steps]])  # turnover: notional / value before
    return EquityCurve(name, market.dates[start : start + steps + 1], value[: steps + 1], costs[: steps + 1], traded)


def run_agent(agent: object, market: MarketData, cfg: EnvConfig, name: str = "agent", seed: int = 0) -> EquityCurve:
    """Run ``agent`` deterministically over the whole of ``market`` (one split) in one environment."""
    with make_env(cfg, market, seed=seed, evaluation=True) as env:

        def act(t: int, obs: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.as_tensor(agent.predict(obs, deterministic=True), device=env.device)  # type: ignore[attr-defined]

        return _run_episode(env, market, name, act, seed)


def run_agent_schedule(
    schedule: Sequence[tuple[int, object, EnvConfig]], market: MarketData, name: str = "agent", seed: int = 0
) -> EquityCurve:
    """One account over ``market`` (one split) traded by agents that take turns, each under its own market rules.

    Segment ``(bar, agent, cfg)`` decides from bar ``bar`` of ``market`` until the next segment's bar; its
    environment (``cfg``, which may differ from the others only in ``turbulence_threshold``) continues from the
    state the previous segment left: cash, holdings, T+1 locks and fees carry over, nothing is liquidated at a
    boundary. With one segment this is :func:`run_agent`.

    Args:
        schedule: Segments in order; the first starts on the episode's first bar (the split's first bar after
            the warm-up).
        market: The bars traded.
        name: Name of the curve.
        seed: Seed of the evaluation environments.

    Raises:
        ConfigError: segments out of order, a first segment that does not start the episode, or segments whose env
            configs differ in more than ``turbulence_threshold``.
    """
    if not schedule:
        raise ConfigError("an agent schedule needs at least one segment")
    bars = [bar for bar, _, _ in schedule]
    if bars != sorted(set(bars)):
        raise ConfigError(f"schedule segments must start on increasing bars, got {bars}")
    rules = [cfg.model_dump(exclude={"turbulence_threshold"}) for _, _, cfg in schedule]
    if any(r != rules[0] for r in rules[1:]):
        raise ConfigError("schedule segments may differ only in env.turbulence_threshold")
    envs = [make_env(cfg, market, seed=seed, evaluation=True) for _, _, cfg in schedule]
    envs[0].reset(seed=seed)
    first = int(envs[0].state.t[0])
    if bars[0] != first:
        raise ConfigError(f"the first segment must start on the episode's first bar {first}, got {bars[0]}")
    agents = [agent for _, agent, _ in schedule]

    def act(t: int, obs: torch.Tensor) -> torch.Tensor:
        agent = agents[bisect.bisect_right(bars, t) - 1]
        with torch.no_grad():
            return torch.as_tensor(agent.predict(obs, deterministic=True), device=obs.device)  # type: ignore[attr-defined]

    return _run_episode(envs[0], market, name, act, seed, handovers=dict(zip(bars[1:], envs[1:], strict=True)))


def baseline_env(cfg: EnvConfig, market: MarketData) -> StockTradingVecEnv:
    """The single environment a baseline trades through: the run's market rules in ``target_weights`` mode.

    It starts on the bar the agent's evaluation episode starts on, so both curves cover the same dates, and it reads a
    NaN weight as "no order" (``nan_actions="hold"``): a strategy's NaN rows hold the portfolio.

    * ``stock_trading`` configs: every rule of the agent's environment (fees, minimum fee, slippage, lot size,
      fractional shares, short selling, T+1, execution, ruin), except the turbulence liquidation, which is the
      agent's risk overlay and not a rule of the market: a baseline is the strategy its name says.
    * ``portfolio`` configs: the portfolio environment's rules, which are fractional shares and its cost
      (``cost_pct``) on the traded notional of both sides, at its execution price; no minimum fee, slippage,
      lots or T+1 (the portfolio environment has none). The start is the portfolio's first bar: the warm-up and
      its covariance ``lookback``.
    """
    params = env_params(cfg, evaluation=True)
    if isinstance(params, PortfolioParams):
        start = portfolio_first_start(params, market)  # no device market: only its first bar is needed
        rules = StockTradingParams(
            action_mode="target_weights",
            initial_amount=params.initial_amount,
            buy_cost_pct=params.cost_pct,
            sell_cost_pct=params.cost_pct,
            fractional=True,
            execution=params.execution,
            episode_length=None,
            random_start=False,
            ruin_fraction=params.ruin_fraction,
            dtype=params.dtype,
            nan_actions="hold",
        )
    else:
        start = market.warmup
        rules = replace(params, action_mode="target_weights", turbulence_threshold=None, nan_actions="hold")
    return StockTradingVecEnv(replace(market, warmup=start), rules, num_envs=1, device=cfg.device, step_mode=cfg.step_mode)


def _trade(env: StockTradingVecEnv, weights: np.ndarray, market: MarketData, name: str) -> EquityCurve:
    """Trade ``weights`` through ``env`` (closed afterwards)."""
    if weights.shape != (market.num_dates, market.num_tickers):
        raise DataError(f"{name}: target weights have shape {weights.shape}, expected {(market.num_dates, market.num_tickers)}")
    rows = torch.as_tensor(weights, dtype=env.params.dtype).to(env.device)
    with env:
        return _run_episode(env, market, name, lambda t, obs: rows[t : t + 1])


def run_target_weights(weights: np.ndarray, market: MarketData, cfg: EnvConfig, name: str) -> EquityCurve:
    """Trade target ``weights [T, N]`` of ``market`` (one split) through :func:`baseline_env`.

    Row ``t`` is decided on bar ``t``'s close and filled under ``cfg.execution``; ``1 - sum(row)`` stays in
    cash; a NaN weight keeps that ticker's shares (a NaN row holds the portfolio). Rows before the agent's
    first bar are not used.
    """
    return _trade(baseline_env(cfg, market), weights, market, name)


def _bars_before(history: MarketData, market: MarketData) -> int:
    """Position in ``history`` of ``market``'s first bar (``market`` must be a run of ``history``'s bars)."""
    offset = int(np.searchsorted(history.dates, market.dates[0]))
    stop = offset + market.num_dates
    if (
        history.tickers != market.tickers
        or stop > history.num_dates
        or not np.array_equal(history.dates[offset:stop], market.dates)
    ):
        raise DataError(
            f"history ({history.date_range_text()}, {history.num_tickers} tickers) does not hold the bars of the "
            f"evaluated data ({market.date_range_text()}, {market.num_tickers} tickers); pass the data it was sliced from"
        )
    return offset


def run_baseline(strategy: WeightStrategy, market: MarketData, cfg: EnvConfig, history: MarketData | None = None) -> EquityCurve:
    """Trade a baseline over ``market`` (one split) through :func:`baseline_env`, from the agent's first bar.

    Args:
        strategy: The baseline.
        market: The evaluated bars.
        cfg: The run's environment config (market rules, execution, initial amount).
        history: The data ``market`` was sliced from: its bars before ``market`` are the strategy's history
            (covariance window, moving averages), so it trades from the first bar; its bars after ``market``
            are never read. ``None``: ``market`` alone, a strategy that needs history waits for it inside.

    Returns:
        The baseline's equity curve, named after the strategy.
    """
    env = baseline_env(cfg, market)
    start = env.market.first_start
    if history is None:
        weights = strategy.target_weights(market, start)
    else:
        offset = _bars_before(history, market)
        stop = offset + market.num_dates
        known = replace(
            history,
            dates=history.dates[:stop],
            values=history.values[:stop],
            valid=history.valid[:stop],
            market_values=history.market_values[:stop],
            splits=None,
        )
        weights = strategy.target_weights(known, offset + start)[offset:]
    return _trade(env, weights, market, strategy.name)


def index_curve(market: MarketData, initial_amount: float) -> EquityCurve | None:
    """The data's own index series scaled to the initial amount (not tradable: no fees), if it has one."""
    if "index" not in market.market_fields:
        return None
    start = min(market.warmup, market.num_dates - 2)
    level = market.market("index")[start:]
    zeros = np.zeros(level.size)
    return EquityCurve("index", market.dates[start:], initial_amount * level / level[0], zeros, zeros)
