"""Vectorized torch environments (CPU or GPU) and their gymnasium / SB3 adapters.

The cores are pure batched functions over named tensors (:func:`~finrl_lite.envs.stock_trading.reset`,
:func:`~finrl_lite.envs.stock_trading.step`); :class:`StockTradingVecEnv`, :class:`PortfolioAllocationVecEnv`
and :class:`~finrl_lite.envs.melo.env.MeloVecEnv` hold the state and keep one native torch contract
(:class:`TorchVecEnv`). Importing this package registers ``finrl_lite/StockTrading-v0``,
``finrl_lite/PortfolioAllocation-v0`` and ``finrl_lite/Melo-v0`` with gymnasium.
"""

from finrl_lite.envs.adapters import GymEnv, GymVectorEnv, SB3VecEnv
from finrl_lite.envs.base import BatchedEnv, TorchVecEnv
from finrl_lite.envs.melo.registration import MELO_ID, register_melo
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.portfolio import (
    PortfolioAllocationVecEnv,
    PortfolioParams,
    PortfolioState,
    make_portfolio_env,
    make_portfolio_vec_env,
)
from finrl_lite.envs.registration import (
    PORTFOLIO_ID,
    STOCK_TRADING_ID,
    make_stock_trading_env,
    make_stock_trading_vec_env,
    register_envs,
)
from finrl_lite.envs.stock_state import StepInfo, StockTradingState
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.envs.synthetic import default_market

register_envs()

__all__ = [
    "BatchedEnv",
    "GymEnv",
    "GymVectorEnv",
    "MELO_ID",
    "ObservationScales",
    "PORTFOLIO_ID",
    "PortfolioAllocationVecEnv",
    "PortfolioParams",
    "PortfolioState",
    "SB3VecEnv",
    "STOCK_TRADING_ID",
    "StepInfo",
    "StockTradingParams",
    "StockTradingState",
    "StockTradingVecEnv",
    "TorchVecEnv",
    "default_market",
    "make_portfolio_env",
    "make_portfolio_vec_env",
    "make_stock_trading_env",
    "make_stock_trading_vec_env",
    "register_envs",
    "register_melo",
]
