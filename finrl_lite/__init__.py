"""finrl_lite: reinforcement-learning trading research, from market data to paper trading.

Importing the package is light (no numpy, torch, pandas, gymnasium or SB3): the names below load their modules on
first use, and the gymnasium ids (``finrl_lite/StockTrading-v0``...) are registered as soon as gymnasium is imported
too (:mod:`finrl_lite.gym_envs`). Heavy optional dependencies (ray, alpaca-py, cupy, yfinance) are imported only where
they are used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from finrl_lite.gym_envs import register_when_gymnasium_is_imported
from finrl_lite.lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["__version__", "DataProcessor", "MarketData", "Splits", "load_config"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
register_when_gymnasium_is_imported()

__getattr__ = lazy_exports(
    __name__,
    {
        "DataProcessor": ".data_processors",
        "MarketData": ".data_processors",
        "Splits": ".data_processors",
        "load_config": ".config",
    },
)

if TYPE_CHECKING:
    from finrl_lite.config import load_config
    from finrl_lite.data_processors import DataProcessor, MarketData, Splits
