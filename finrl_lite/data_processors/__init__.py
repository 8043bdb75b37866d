"""Data processors: sources, cleaning, indicators, risk features, splits, cache and `MarketData`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finrl_lite.data_processors.market_data import MarketData, TorchMarketData
from finrl_lite.data_processors.splits import DateRange, Splits

if TYPE_CHECKING:
    from finrl_lite.data_processors.processor import DataProcessor, PreparedData, prepare_data

__all__ = ["DataProcessor", "DateRange", "MarketData", "PreparedData", "Splits", "TorchMarketData", "prepare_data"]


def __getattr__(name: str) -> Any:
    if name in ("DataProcessor", "PreparedData", "prepare_data"):
        from finrl_lite.data_processors import processor

        return getattr(processor, name)
    raise AttributeError(f"module 'finrl_lite.data_processors' has no attribute '{name}'")
