"""Environments built from the ``env`` config section, for training and for evaluation."""

from __future__ import annotations

import torch

from finrl_lite.config import EnvConfig
from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.stock_trading import StockTradingVecEnv

__all__ = ["env_params", "make_env"]


def env_params(cfg: EnvConfig, evaluation: bool = False) -> StockTradingParams:
    """``StockTradingParams`` of a config; evaluation runs one episode over the whole split from its first bar."""
    fields = cfg.model_dump(exclude={"kind", "num_envs", "device", "scales", "dtype", "features"})
    if evaluation:
        fields.update(episode_length=None, random_start=False)
    return StockTradingParams(
        **fields,
        features=tuple(cfg.features) if cfg.features is not None else None,
        scales=ObservationScales(**cfg.scales.model_dump()),
        dtype=torch.float64 if cfg.dtype == "float64" else torch.float32,
    )


def make_env(cfg: EnvConfig, market: MarketData, seed: int = 0, evaluation: bool = False) -> StockTradingVecEnv:
    """The training batch (``cfg.num_envs`` environments) or a single evaluation environment."""
    return StockTradingVecEnv(
        market,
        env_params(cfg, evaluation),
        num_envs=1 if evaluation else cfg.num_envs,
        device=cfg.device,
        seed=seed,
    )
