"""Back-tests: an agent through the evaluation environment, a baseline through its target weights.

Both produce an :class:`EquityCurve` over the same bars: the value at the close of every bar from the
split's first tradable bar to its last, under the same execution rule and the same fees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from finrl_lite.config import EnvConfig, PortfolioEnvConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.train.environment import make_env
from finrl_lite.train.metrics import compute_metrics

__all__ = ["EquityCurve", "run_agent", "run_weights", "index_curve"]

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


def run_agent(agent: object, market: MarketData, cfg: EnvConfig, name: str = "agent", seed: int = 0) -> EquityCurve:
    """Run ``agent`` deterministically over the whole of ``market`` (one split) in one environment."""
    env = make_env(cfg, market, seed=seed, evaluation=True)
    obs, info = env.reset(seed=seed)
    start = int(env.state.t[0]) if env.state is not None else 0
    values, costs, traded = [float(info["portfolio_value"][0])], [0.0], [0.0]
    for _ in range(market.num_dates - 1 - start):
        with torch.no_grad():
            action = agent.predict(obs, deterministic=True)  # type: ignore[attr-defined]
        obs, _, terminated, truncated, step_info = env.step(torch.as_tensor(action, device=env.device))
        values.append(float(step_info["portfolio_value"][0]))
        costs.append(float(step_info["costs"][0]))
        traded.append(float(step_info["turnover"][0]) * values[-2])
        if bool(terminated[0] | truncated[0]):
            break
    return EquityCurve(name, market.dates[start : start + len(values)], np.array(values), np.array(costs), np.array(traded))


def run_weights(weights: np.ndarray, market: MarketData, cfg: EnvConfig, name: str) -> EquityCurve:
    """Rebalance to target ``weights [T, N]`` (row t decided at bar t's close) with the env's fees.

    A NaN row keeps the holdings (no trade).

    Fills follow ``cfg.execution`` (bar t+1's open, or bar t's close); fractional shares; tickers that
    are not valid on the fill bar are not traded (their holdings are kept and valued at the last price).
    """
    # A portfolio config has one fee on the traded notional, both ways.
    if isinstance(cfg, PortfolioEnvConfig):
        buy_cost_pct = sell_cost_pct = cfg.cost_pct
    else:
        buy_cost_pct, sell_cost_pct = cfg.buy_cost_pct, cfg.sell_cost_pct
    close = np.nan_to_num(market.field("close"))
    fill = np.nan_to_num(market.field("open")) if cfg.execution == "next_open" else close
    start = min(market.warmup, market.num_dates - 2)
    cash, holdings = cfg.initial_amount, np.zeros(market.num_tickers)
    values, costs, traded = [cash], [0.0], [0.0]
    for t in range(start, market.num_dates - 1):
        bar = t + 1 if cfg.execution == "next_open" else t
        price = fill[bar]
        tradable = market.valid[bar] & (price > 0)
        value = cash + holdings @ price
        rebalance = tradable & np.isfinite(weights[t])
        target = np.where(rebalance, np.nan_to_num(weights[t]) * value / np.where(tradable, price, 1.0), holdings)
        delta = target - holdings
        fee = buy_cost_pct * price @ np.maximum(delta, 0) + sell_cost_pct * price @ np.maximum(-delta, 0)
        buys = price @ np.maximum(delta, 0)
        budget = cash + price @ np.maximum(-delta, 0) * (1 - sell_cost_pct)
        if buys > 0 and buys * (1 + buy_cost_pct) > budget:  # scale buys down so that cash stays >= 0
            scale = max(budget, 0.0) / (buys * (1 + buy_cost_pct))
            delta = np.where(delta > 0, delta * scale, delta)
            fee = buy_cost_pct * price @ np.maximum(delta, 0) + sell_cost_pct * price @ np.maximum(-delta, 0)
        cash -= price @ delta + fee
        holdings = holdings + delta
        values.append(cash + holdings @ close[t + 1])
        costs.append(fee)
        traded.append(price @ np.abs(delta))
    return EquityCurve(name, market.dates[start:], np.array(values), np.array(costs), np.array(traded))


def index_curve(market: MarketData, initial_amount: float) -> EquityCurve | None:
    """The data's own index series scaled to the initial amount (not tradable: no fees), if it has one."""
    if "index" not in market.market_fields:
        return None
    start = min(market.warmup, market.num_dates - 2)
    level = market.market("index")[start:]
    zeros = np.zeros(level.size)
    return EquityCurve("index", market.dates[start:], initial_amount * level / level[0], zeros, zeros)
