"""Environments built from the ``env`` config section (through its kind's :data:`ENV_KINDS` entry).

Also the parameter builders the built-in env kinds name: each maps a kind's settings onto its
environment's parameter dataclass.
"""

from __future__ import annotations

from typing import Any

import torch

from finrl_lite.data_processors.market_data import MarketData
from finrl_lite.env_config import ENV_KINDS, EnvConfigBase, PortfolioEnvConfig, StockTradingEnvConfig
from finrl_lite.envs.params import ObservationScales, StockTradingParams
from finrl_lite.envs.portfolio import PortfolioParams

__all__ = ["env_params", "make_env", "portfolio_params", "stock_trading_params"]

_NOT_PARAMS = {"kind", "num_envs", "device", "step_mode", "dtype", "features"}
"""Settings of how the batch runs, or converted below: not fields of the parameter dataclasses."""


def _dtype(cfg: EnvConfigBase) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def _features(cfg: EnvConfigBase) -> tuple[str, ...] | None:
    return tuple(cfg.features) if cfg.features is not None else None


def stock_trading_params(cfg: StockTradingEnvConfig) -> StockTradingParams:
    """``StockTradingParams`` of ``env.kind: stock_trading`` settings."""
    return StockTradingParams(
        **cfg.model_dump(exclude=_NOT_PARAMS | {"scales"}),
        features=_features(cfg),
        scales=ObservationScales(**cfg.scales.model_dump()),
        dtype=_dtype(cfg),
    )


def portfolio_params(cfg: PortfolioEnvConfig) -> PortfolioParams:
    """``PortfolioParams`` of ``env.kind: portfolio`` settings."""
    return PortfolioParams(**cfg.model_dump(exclude=_NOT_PARAMS), features=_features(cfg), dtype=_dtype(cfg))


def _episodes(cfg: EnvConfigBase, evaluation: bool) -> EnvConfigBase:
    # Evaluation runs one episode over the whole split from its first bar.
    return cfg.model_copy(update={"episode_length": None, "random_start": False}) if evaluation else cfg


def env_params(cfg: EnvConfigBase, evaluation: bool = False) -> Any:
    """The environment parameters of a config (built by its kind's entry)."""
    return ENV_KINDS.get(cfg.kind).build_params(_episodes(cfg, evaluation))


def make_env(cfg: EnvConfigBase, market: MarketData, seed: int = 0, evaluation: bool = False) -> Any:
    """The training batch (``cfg.num_envs`` environments) or a single evaluation environment."""
    kind = ENV_KINDS.get(cfg.kind)
    num_envs = 1 if evaluation else cfg.num_envs
    return kind.env_class()(
        market, env_params(cfg, evaluation), num_envs=num_envs, device=cfg.device, seed=seed, step_mode=cfg.step_mode
    )
