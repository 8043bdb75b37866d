"""Environments built from the ``env`` config section, for training and for evaluation."""

from __future__ import annotations

from typing import Any

import torch

from finrl_lite.config import EnvConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.portfolio import PortfolioAllocationVecEnv, PortfolioParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv
from finrl_lite.errors import ConfigError

__all__ = ["env_params", "make_env"]

_PORTFOLIO_ONLY = {"cash_weight", "action_scale", "lookback"}
_EPISODE = {"episode_length", "random_start", "ruin_fraction", "execution", "reward", "reward_scaling", "initial_amount"}


def _dtype(cfg: EnvConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def env_params(cfg: EnvConfig, evaluation: bool = False) -> StockTradingParams | PortfolioParams:
    """The environment parameters of a config; evaluation runs one episode over the whole split from its first bar."""
    episode = {"episode_length": None, "random_start": False} if evaluation else {}
    features = tuple(cfg.features) if cfg.features is not None else None
    if cfg.kind == "portfolio":
        if cfg.reward not in ("log_return", "value_change"):
            raise ConfigError(f"env.reward '{cfg.reward}' is not a portfolio reward; use log_return or value_change")
        fields = cfg.model_dump(include=_EPISODE | _PORTFOLIO_ONLY)
        return PortfolioParams(**{**fields, **episode}, cost_pct=cfg.buy_cost_pct, features=features, dtype=_dtype(cfg))
    if cfg.reward == "value_change":
        raise ConfigError("env.reward 'value_change' is the portfolio reward; stock_trading uses asset_change")
    fields = cfg.model_dump(exclude={"kind", "num_envs", "device", "step_mode", "scales", "dtype", "features"} | _PORTFOLIO_ONLY)
    return StockTradingParams(
        **{**fields, **episode},
        features=features,
        scales=ObservationScales(**cfg.scales.model_dump()),
        dtype=_dtype(cfg),
    )


def make_env(cfg: EnvConfig, market: MarketData, seed: int = 0, evaluation: bool = False) -> Any:
    """The training batch (``cfg.num_envs`` environments) or a single evaluation environment."""
    params = env_params(cfg, evaluation)
    env_cls = PortfolioAllocationVecEnv if cfg.kind == "portfolio" else StockTradingVecEnv
    num_envs = 1 if evaluation else cfg.num_envs
    return env_cls(market, params, num_envs=num_envs, device=cfg.device, seed=seed, step_mode=cfg.step_mode)
