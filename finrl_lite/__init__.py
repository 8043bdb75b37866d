"""finrl_lite: reinforcement-learning trading research, from market data to paper trading.

Heavy optional dependencies (ray, alpaca-py, cupy, yfinance) are imported only where they are used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "DataProcessor", "MarketData", "Splits", "load_config"]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "DataProcessor": "finrl_lite.data_processors",
    "MarketData": "finrl_lite.data_processors",
    "Splits": "finrl_lite.data_processors",
    "load_config": "finrl_lite.config",
}

if TYPE_CHECKING:
    from finrl_lite.config import load_config
    from finrl_lite.data_processors import DataProcessor, MarketData, Splits


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'finrl_lite' has no attribute '{name}'")
