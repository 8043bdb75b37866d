"""Gymnasium registration of the finrl_lite environments and their factory functions.

``import finrl_lite`` registers (:mod:`finrl_lite.gym_envs`):

- ``finrl_lite/StockTrading-v0``
- ``finrl_lite/PortfolioAllocation-v0``

so that ``gymnasium.make(id, ...)`` gives one environment and
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", ...)`` gives the batched torch
core behind a gymnasium ``VectorEnv``. Both accept ``market`` (a :class:`MarketData`; a small synthetic
market when omitted), ``params`` (the parameter dataclass, or a dict of its fields), ``device`` and ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.adapters import GymEnv, GymVectorEnv
from finrl_lite.envs.discrete_actions import DiscreteTradeActions
from finrl_lite.envs.params import StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.envs.synthetic import default_market
from finrl_lite.gym_envs import PORTFOLIO_ID, STOCK_TRADING_ID, register_gym_envs

__all__ = [
    "STOCK_TRADING_ID",
    "PORTFOLIO_ID",
    "make_stock_trading_env",
    "make_stock_trading_vec_env",
    "register_envs",
]


def _stock_params(params: StockTradingParams | Mapping[str, Any] | None) -> StockTradingParams:
    if params is None or isinstance(params, StockTradingParams):
        return params or StockTradingParams()
    return StockTradingParams(**dict(params))


def make_stock_trading_env(
    market: MarketData | None = None,
    params: StockTradingParams | Mapping[str, Any] | None = None,
    device: str = "cpu",
    seed: int | None = None,
    render_mode: str | None = None,
    discrete: bool = False,
) -> GymEnv:
    """One stock-trading environment as a gymnasium ``Env`` (the ``entry_point`` of the registration).

    ``discrete=True`` gives DQN-family agents ``Discrete(2N + 1)`` actions (hold, or buy / sell ``hmax`` shares of one
    ticker; :class:`~finrl_lite.envs.discrete_actions.DiscreteTradeActions`).
    """
    env = StockTradingVecEnv(
        market if market is not None else default_market(),
        _stock_params(params),
        num_envs=1,
        device=device,
        seed=seed,
        autoreset=False,
    )
    return GymEnv(DiscreteTradeActions(env) if discrete else env)


def make_stock_trading_vec_env(
    num_envs: int = 1,
    market: MarketData | None = None,
    params: StockTradingParams | Mapping[str, Any] | None = None,
    device: str = "cpu",
    seed: int | None = None,
) -> GymVectorEnv:
    """``num_envs`` stock-trading environments as a gymnasium ``VectorEnv`` (the ``vector_entry_point``)."""
    env = StockTradingVecEnv(
        market if market is not None else default_market(),
        _stock_params(params),
        num_envs=num_envs,
        device=device,
        seed=seed,
    )
    return GymVectorEnv(env)


def register_envs() -> None:
    """Register the environments with gymnasium (idempotent; ``import finrl_lite`` has done it already)."""
    register_gym_envs()
