"""Data processors: sources, cleaning, indicators, risk features, splits, cache and `MarketData`.

The names below are imported on first use, so importing a submodule (the source registry that
:mod:`finrl_lite.config` validates against) does not import numpy or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finrl_lite.lazy import lazy_exports

if TYPE_CHECKING:
    from finrl_lite.data_processors.market_data import MarketData, TorchMarketData
    from finrl_lite.data_processors.processor import DataProcessor, PreparedData, prepare_data
    from finrl_lite.data_processors.splits import DateRange, Splits

__all__ = ["DataProcessor", "DateRange", "MarketData", "PreparedData", "Splits", "TorchMarketData", "prepare_data"]

__getattr__ = lazy_exports(
    __name__,
    {
        "DataProcessor": ".processor",
        "PreparedData": ".processor",
        "prepare_data": ".processor",
        "MarketData": ".market_data",
        "TorchMarketData": ".market_data",
        "DateRange": ".splits",
        "Splits": ".splits",
    },
)
